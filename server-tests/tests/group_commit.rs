//! Group commit on the server engines (PostgreSQL and MySQL/MariaDB): many concurrent
//! writes outside transactions share transactions and commits, and each still gets
//! exactly its own outcome. Conditional puts on one key lose no update and succeed
//! exactly as often as they should; a batch refused inside a group writes nothing and
//! fails alone; versions keep rising and are never reused; large values are split
//! across statements.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use futures::future::join_all;
use server_tests::{mysql, postgres};
use storage_api::{Condition, ErrorKind, PooledStore, PutOptions, Version, WriteOp, WriteResult};
use tokio::sync::Barrier;

/// Concurrent tasks in each case.
const TASKS: usize = 16;

/// Runs `case` on a fresh store of each engine.
macro_rules! on_both_engines {
    ($($case:ident),* $(,)?) => {$(
        mod $case {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                let scratch = super::postgres::Scratch::new().await;
                let store = super::postgres::open(scratch.options("kv")).await;
                super::$case(std::sync::Arc::new(store)).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn mysql() {
                let scratch = super::mysql::ScratchDatabase::new("group_commit").await;
                let store = super::mysql::open(scratch.options("kv")).await;
                super::$case(std::sync::Arc::new(store)).await;
            }
        }
    )*};
}

on_both_engines!(
    compare_and_set_counters_lose_no_update,
    put_if_absent_succeeds_once_per_key,
    a_refused_batch_fails_alone_in_its_group,
    versions_rise_and_are_never_reused,
    puts_of_large_values_share_groups_in_several_statements,
);

/// `TASKS` tasks each add 1 to a counter 20 times with read / put-if-version; the
/// counter ends at the number of increments that succeeded, which is all of them.
async fn compare_and_set_counters_lose_no_update(store: Arc<dyn PooledStore>) {
    const EACH: u64 = 20;
    store
        .put(b"counter", &0u64.to_be_bytes(), PutOptions::default())
        .await
        .unwrap();
    let barrier = Arc::new(Barrier::new(TASKS));
    let tasks = (0..TASKS).map(|_| {
        let (store, barrier) = (Arc::clone(&store), Arc::clone(&barrier));
        tokio::spawn(async move {
            barrier.wait().await;
            let mut refused = 0u64;
            for _ in 0..EACH {
                loop {
                    let entry = store.get(b"counter").await.unwrap().unwrap();
                    let n = u64::from_be_bytes(entry.value.as_slice().try_into().unwrap());
                    let put = PutOptions::if_version(entry.version);
                    match store.put(b"counter", &(n + 1).to_be_bytes(), put).await {
                        Ok(_) => break,
                        Err(e) if e.kind() == ErrorKind::ConditionFailed => refused += 1,
                        Err(e) if e.is_retryable() => {}
                        Err(e) => panic!("increment: {e}"),
                    }
                }
            }
            refused
        })
    });
    let refused: u64 = join_all(tasks).await.into_iter().map(Result::unwrap).sum();
    let entry = store.get(b"counter").await.unwrap().unwrap();
    let total = u64::from_be_bytes(entry.value.as_slice().try_into().unwrap());
    assert_eq!(
        total,
        TASKS as u64 * EACH,
        "({refused} increments were refused)"
    );
}

/// `TASKS` tasks race to put-if-absent each of 8 keys (some already present): exactly
/// one put per absent key succeeds, none for a present key, and the value kept is the
/// winner's.
async fn put_if_absent_succeeds_once_per_key(store: Arc<dyn PooledStore>) {
    let keys: Vec<Vec<u8>> = (0..8).map(|i| format!("k{i}").into_bytes()).collect();
    for key in keys.iter().step_by(3) {
        store
            .put(key, b"before", PutOptions::default())
            .await
            .unwrap();
    }
    let barrier = Arc::new(Barrier::new(TASKS));
    let tasks = (0..TASKS).map(|task| {
        let (store, barrier, keys) = (Arc::clone(&store), Arc::clone(&barrier), keys.clone());
        tokio::spawn(async move {
            barrier.wait().await;
            let mut won = Vec::new();
            for key in &keys {
                let value = format!("task {task}").into_bytes();
                let absent = PutOptions::if_absent();
                match store.put(key, &value, absent).await {
                    Ok(version) => won.push((key.clone(), value, version)),
                    Err(e) if e.kind() == ErrorKind::ConditionFailed => {}
                    Err(e) => panic!("put if absent: {e}"),
                }
            }
            won
        })
    });
    let mut winners: BTreeMap<Vec<u8>, Vec<(Vec<u8>, Version)>> = BTreeMap::new();
    for won in join_all(tasks).await {
        for (key, value, version) in won.unwrap() {
            winners.entry(key).or_default().push((value, version));
        }
    }
    for (i, key) in keys.iter().enumerate() {
        let entry = store.get(key).await.unwrap().unwrap();
        if i % 3 == 0 {
            assert!(
                !winners.contains_key(key),
                "key {i} was present: {winners:?}"
            );
            assert_eq!(entry.value, b"before");
            continue;
        }
        let won = &winners[key];
        assert_eq!(won.len(), 1, "key {i}: {won:?}");
        assert_eq!((&entry.value, entry.version), (&won[0].0, won[0].1));
    }
}

/// Puts, good batches and batches refused at their second operation, all at once: the
/// refused batches fail with the index of that operation and write nothing (not even
/// their first operation); everything else is applied.
async fn a_refused_batch_fails_alone_in_its_group(store: Arc<dyn PooledStore>) {
    store
        .put(b"taken", b"x", PutOptions::default())
        .await
        .unwrap();
    let barrier = Arc::new(Barrier::new(TASKS));
    let tasks = (0..TASKS).map(|task| {
        let (store, barrier) = (Arc::clone(&store), Arc::clone(&barrier));
        tokio::spawn(async move {
            barrier.wait().await;
            let put = |key: String| WriteOp::Put {
                key: key.into_bytes(),
                value: b"v".to_vec(),
                options: PutOptions::default(),
            };
            for round in 0..5 {
                let mine = format!("t{task}-r{round}");
                match task % 4 {
                    0 => {
                        let second = WriteOp::Put {
                            key: b"taken".to_vec(),
                            value: b"y".to_vec(),
                            options: PutOptions::if_absent(),
                        };
                        let e = store.batch(vec![put(mine), second]).await.unwrap_err();
                        assert_eq!(e.kind(), ErrorKind::ConditionFailed, "{e}");
                        assert_eq!(e.batch_index(), Some(1), "{e}");
                    }
                    1 => {
                        let ops = vec![put(format!("{mine}-a")), put(format!("{mine}-b"))];
                        let results = store.batch(ops).await.unwrap();
                        assert!(results.iter().all(|r| matches!(r, WriteResult::Put(_))));
                    }
                    _ => {
                        store
                            .put(mine.as_bytes(), b"v", PutOptions::default())
                            .await
                            .unwrap();
                    }
                }
            }
        })
    });
    join_all(tasks).await.into_iter().for_each(Result::unwrap);
    for task in 0..TASKS {
        for round in 0..5 {
            let mine = format!("t{task}-r{round}");
            let found = |key: String| {
                let store = Arc::clone(&store);
                async move { store.get(key.as_bytes()).await.unwrap().is_some() }
            };
            match task % 4 {
                0 => assert!(!found(mine.clone()).await, "{mine}: refused batch wrote"),
                1 => {
                    assert!(found(format!("{mine}-a")).await, "{mine}-a");
                    assert!(found(format!("{mine}-b")).await, "{mine}-b");
                }
                _ => assert!(found(mine.clone()).await, "{mine}"),
            }
        }
    }
    assert_eq!(store.get(b"taken").await.unwrap().unwrap().value, b"x");
}

/// `TASKS` tasks put and delete 4 shared keys: every version handed out is distinct,
/// each task sees a key's versions rise, and each key ends with the largest version
/// written to it since its last delete.
async fn versions_rise_and_are_never_reused(store: Arc<dyn PooledStore>) {
    let barrier = Arc::new(Barrier::new(TASKS));
    let tasks = (0..TASKS).map(|task| {
        let (store, barrier) = (Arc::clone(&store), Arc::clone(&barrier));
        tokio::spawn(async move {
            barrier.wait().await;
            let mut seen: Vec<(u8, Version)> = Vec::new();
            for i in 0..30u8 {
                let key = [b'k', (i + task as u8) % 4];
                if i % 10 == 9 {
                    store.delete(&key, Condition::Any).await.unwrap();
                    continue;
                }
                let version = store.put(&key, b"v", PutOptions::default()).await.unwrap();
                if let Some((_, last)) = seen.iter().rev().find(|(k, _)| *k == key[1]) {
                    assert!(version > *last, "task {task}: {version:?} after {last:?}");
                }
                seen.push((key[1], version));
            }
            seen
        })
    });
    let mut all = HashSet::new();
    for seen in join_all(tasks).await {
        for (_, version) in seen.unwrap() {
            assert!(all.insert(version), "version {version:?} handed out twice");
        }
    }
    let after = store
        .put(b"k\x00", b"v", PutOptions::default())
        .await
        .unwrap();
    assert!(all.iter().all(|v| *v < after), "a later put got {after:?}");
}

/// `TASKS` tasks put 256 KiB values on keys of their own at once (more than one
/// multi-row statement holds): every value is stored whole.
async fn puts_of_large_values_share_groups_in_several_statements(store: Arc<dyn PooledStore>) {
    let barrier = Arc::new(Barrier::new(TASKS));
    let value = |task: usize, round: usize| vec![(task * 7 + round) as u8; 256 * 1024];
    let tasks = (0..TASKS).map(|task| {
        let (store, barrier) = (Arc::clone(&store), Arc::clone(&barrier));
        tokio::spawn(async move {
            barrier.wait().await;
            for round in 0..3 {
                let key = format!("big{task}-{round}");
                let value = value(task, round);
                store
                    .put(key.as_bytes(), &value, PutOptions::default())
                    .await
                    .unwrap();
            }
        })
    });
    join_all(tasks).await.into_iter().for_each(Result::unwrap);
    for task in 0..TASKS {
        for round in 0..3 {
            let key = format!("big{task}-{round}");
            let entry = store.get(key.as_bytes()).await.unwrap().unwrap();
            assert!(entry.value == value(task, round), "{key}");
        }
    }
}

/// On MySQL, a group of puts forgets the versions it drew by looking each one up: it
/// never touches a version another transaction drew and has not committed (with the
/// sequence table nearly empty, an `IN (…)` list was a scan that waited on such rows,
/// and two groups in flight deadlocked on each other's). Another session holds a drawn
/// row while `TASKS` tasks put distinct keys: every put succeeds and none waits on a
/// lock (`busy` counts lock waits).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mysql_groups_never_wait_on_versions_drawn_elsewhere() {
    const EACH: usize = 20;
    let scratch = mysql::ScratchDatabase::new("group_commit").await;
    let mut options = scratch.options("kv");
    options.busy_timeout = std::time::Duration::from_millis(300);
    let store = Arc::new(mysql::open(options).await);
    store
        .put(b"first", b"0", PutOptions::default())
        .await
        .unwrap();
    let mut other = scratch.admin().await;
    mysql::execute(&mut other, "START TRANSACTION").await;
    mysql::execute(&mut other, "INSERT INTO `kv_version_seq` () VALUES ()").await;
    let barrier = Arc::new(Barrier::new(TASKS));
    let tasks = (0..TASKS).map(|task| {
        let (store, barrier) = (Arc::clone(&store), Arc::clone(&barrier));
        tokio::spawn(async move {
            barrier.wait().await;
            for n in 0..EACH {
                let key = format!("t{task}-{n}").into_bytes();
                store.put(&key, b"v", PutOptions::default()).await.unwrap();
            }
        })
    });
    for task in join_all(tasks).await {
        task.unwrap();
    }
    mysql::execute(&mut other, "ROLLBACK").await;
    assert_eq!(
        store.pool_metrics().busy,
        0,
        "a put waited on a lock held by a transaction that only drew a version"
    );
    assert_eq!(
        store.scan(Default::default()).await.unwrap().len(),
        TASKS * EACH + 1
    );
}
