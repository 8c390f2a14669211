//! Data semantics on MySQL/MariaDB: bytewise keys (no case folding, no trailing-space
//! padding, bytewise order) in a `VARBINARY(1024)` InnoDB column, versions that only
//! grow (across deletes, reopens and concurrent writers), TTLs on the store's clock
//! rather than the server's, atomic batches.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::SeqCst};
use std::time::{Duration, UNIX_EPOCH};

use server_tests::mysql::{ScratchDatabase, open};
use storage_api::{
    Condition, ErrorKind, KeyRange, ManualClock, PooledStore, PutOptions, ScanOptions, WriteOp,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scans_are_bytewise_whatever_the_collation() {
    let scratch = ScratchDatabase::new("mysql_keys").await;
    let store = open(scratch.options("kv")).await;
    // Under a linguistic collation "a" < "B" and case or accents would reorder these.
    let keys: [&[u8]; 13] = [
        b"a",
        b"B",
        b"\x00",
        b"\xff",
        b"\x7f",
        b"\x80",
        b"a\x00",
        b"ab",
        "é".as_bytes(),
        // A `_ci` collation would make these equal to "a" or "B"; PAD SPACE would
        // make "a " equal to "a".
        b"A",
        b"b",
        b"a ",
        b"a  ",
    ];
    for key in keys {
        store.put(key, b"v", PutOptions::default()).await.unwrap();
    }
    let mut expected: Vec<Vec<u8>> = keys.iter().map(|k| k.to_vec()).collect();
    expected.sort();
    let scanned: Vec<Vec<u8>> = store
        .scan(ScanOptions::default())
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.key)
        .collect();
    assert_eq!(scanned, expected);

    let page = store
        .scan(ScanOptions::range(KeyRange::between(&b"\x7f"[..], &b"\xff"[..])).with_limit(2))
        .await
        .unwrap();
    let page: Vec<Vec<u8>> = page.into_iter().map(|e| e.key).collect();
    assert_eq!(page, [b"\x7f".to_vec(), b"\x80".to_vec()]);
    let rest = store
        .scan(ScanOptions::prefix(&b"a"[..]).with_after(&b"a"[..]))
        .await
        .unwrap();
    let rest: Vec<Vec<u8>> = rest.into_iter().map(|e| e.key).collect();
    assert_eq!(
        rest,
        [
            b"a\x00".to_vec(),
            b"a ".to_vec(),
            b"a  ".to_vec(),
            b"ab".to_vec()
        ]
    );
    for key in keys {
        let entry = store
            .get(key)
            .await
            .unwrap()
            .expect("every key is its own entry");
        assert_eq!(entry.key, key);
    }
    store.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_longest_key_and_a_large_value_round_trip_unchanged() {
    let scratch = ScratchDatabase::new("mysql_keys").await;
    let store = open(scratch.options("kv")).await;
    let key: Vec<u8> = (0..storage_api::MAX_KEY_BYTES)
        .map(|i| (i % 256) as u8)
        .collect();
    let value: Vec<u8> = (0..1_048_576u32).map(|i| (i * 7 % 251) as u8).collect();
    store
        .put(&key, &value, PutOptions::default())
        .await
        .unwrap();
    let entry = store.get(&key).await.unwrap().unwrap();
    assert_eq!((entry.key, entry.value), (key.clone(), value));
    // Keys that differ only in their last byte, or by a trailing NUL, stay apart.
    let mut shorter = key.clone();
    shorter.pop();
    assert_eq!(store.get(&shorter).await.unwrap(), None);
    store.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_table_is_innodb_with_binary_keys_and_blob_values() {
    let scratch = ScratchDatabase::new("mysql_keys").await;
    let store = open(scratch.options("kv")).await;
    let mut admin = scratch.admin().await;
    let columns: Vec<(String, String, Option<String>)> = sqlx::query_as(
        "SELECT CAST(COLUMN_NAME AS CHAR), CAST(COLUMN_TYPE AS CHAR), \
         CAST(COLLATION_NAME AS CHAR) FROM information_schema.COLUMNS \
         WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'kv' ORDER BY ORDINAL_POSITION",
    )
    .fetch_all(&mut admin)
    .await
    .unwrap();
    let types: Vec<(&str, &str)> = columns
        .iter()
        .map(|(name, kind, _)| (name.as_str(), kind.as_str()))
        .collect();
    assert_eq!(types[0], ("key", "varbinary(1024)"));
    assert_eq!(types[1], ("value", "longblob"));
    assert!(types[2].1.starts_with("bigint") && types[3].1.starts_with("bigint"));
    assert!(
        columns.iter().all(|(_, _, collation)| collation.is_none()),
        "binary columns have no collation: {columns:?}"
    );
    let engines: Vec<String> = sqlx::query_scalar(
        "SELECT CAST(ENGINE AS CHAR) FROM information_schema.TABLES \
         WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME LIKE 'kv%'",
    )
    .fetch_all(&mut admin)
    .await
    .unwrap();
    assert_eq!(engines.len(), 2, "{engines:?}");
    assert!(engines.iter().all(|e| e == "InnoDB"), "{engines:?}");
    store.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn versions_never_repeat_across_deletes_and_reopens() {
    let scratch = ScratchDatabase::new("mysql_keys").await;
    let store = open(scratch.options("kv")).await;
    let v1 = store.put(b"k", b"1", PutOptions::default()).await.unwrap();
    assert!(store.delete(b"k", Condition::Version(v1)).await.unwrap());
    let v2 = store
        .put(b"k", b"2", PutOptions::if_absent())
        .await
        .unwrap();
    assert!(v2 > v1);
    store.close().await;
    let store = open(scratch.options("kv")).await;
    store.delete(b"k", Condition::Any).await.unwrap();
    let v3 = store.put(b"k", b"3", PutOptions::default()).await.unwrap();
    assert!(v3 > v2);
    let e = store
        .put(b"k", b"4", PutOptions::if_version(v1))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::ConditionFailed);
    store.close().await;
}

/// Writers and deleters race on one key while a reader watches it. A put that starts
/// after another completed gets a greater version, and the reader, reading one get
/// after another, never sees the version go back, even across a delete and
/// re-create. No operation fails: conflicts are retried inside the store.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_writers_and_deleters_never_see_a_version_go_back() {
    let scratch = ScratchDatabase::new("mysql_keys").await;
    let mut options = scratch.options("kv");
    options.max_connections = 7;
    let store = Arc::new(open(options).await);
    let completed = Arc::new(AtomicU64::new(0));
    let writers_done = Arc::new(AtomicU64::new(0));
    let mut tasks: Vec<_> = (0..6)
        .map(|task| {
            let store = Arc::clone(&store);
            let completed = Arc::clone(&completed);
            let writers_done = Arc::clone(&writers_done);
            tokio::spawn(async move {
                for round in 0..40 {
                    if task % 3 == 2 && round % 2 == 0 {
                        store.delete(b"hot", Condition::Any).await.unwrap();
                        continue;
                    }
                    let before = completed.load(SeqCst);
                    let v = store
                        .put(b"hot", &[task as u8, round as u8], PutOptions::default())
                        .await
                        .unwrap()
                        .get();
                    assert!(v > before, "put returned {v} after {before} had completed");
                    completed.fetch_max(v, SeqCst);
                }
                writers_done.fetch_add(1, SeqCst);
            })
        })
        .collect();
    let reader = {
        let store = Arc::clone(&store);
        tokio::spawn(async move {
            let mut highest = 0;
            let mut reads = 0;
            while writers_done.load(SeqCst) < 6 {
                if let Some(entry) = store.get(b"hot").await.unwrap() {
                    let v = entry.version.get();
                    assert!(v >= highest, "read version {v} after having read {highest}");
                    highest = v;
                }
                reads += 1;
            }
            assert!(reads > 0);
        })
    };
    tasks.push(reader);
    for task in tasks {
        task.await.unwrap();
    }
    store.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ttls_follow_the_store_clock_not_the_server_clock() {
    let scratch = ScratchDatabase::new("mysql_keys").await;
    // Far from the server's own time in both directions.
    for start_secs in [86_400u64, 4_102_444_800] {
        let clock = ManualClock::new(UNIX_EPOCH + Duration::from_secs(start_secs));
        let mut options = scratch.options(&format!("kv_{start_secs}"));
        options.clock = Arc::new(clock.clone());
        let store = open(options).await;
        let ttl = PutOptions::default().with_ttl(Duration::from_secs(10));
        store.put(b"short", b"v", ttl).await.unwrap();
        store
            .put(b"kept", b"v", PutOptions::default())
            .await
            .unwrap();
        let entry = store.get(b"short").await.unwrap().unwrap();
        assert_eq!(
            entry.expires_at,
            Some(UNIX_EPOCH + Duration::from_secs(start_secs + 10))
        );
        clock.advance(Duration::from_secs(9));
        assert!(store.get(b"short").await.unwrap().is_some());
        clock.advance(Duration::from_secs(1));
        assert_eq!(store.get(b"short").await.unwrap(), None);
        assert_eq!(store.scan(ScanOptions::default()).await.unwrap().len(), 1);
        // Expired counts as absent for conditions, and purge removes it.
        store
            .put(
                b"short",
                b"again",
                PutOptions::if_absent().with_ttl(Duration::from_secs(1)),
            )
            .await
            .unwrap();
        clock.advance(Duration::from_secs(1));
        assert!(!store.delete(b"short", Condition::Absent).await.unwrap());
        store.put(b"gone", b"v", ttl).await.unwrap();
        clock.advance(Duration::from_secs(10));
        assert_eq!(store.purge_expired().await.unwrap(), 1);
        assert_eq!(store.purge_expired().await.unwrap(), 0);
        store.close().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_with_a_failing_condition_applies_nothing() {
    let scratch = ScratchDatabase::new("mysql_keys").await;
    let store = open(scratch.options("kv")).await;
    let v = store.put(b"a", b"1", PutOptions::default()).await.unwrap();
    let ops = vec![
        WriteOp::put("b", "2"),
        WriteOp::delete("a"),
        WriteOp::Put {
            key: b"a".to_vec(),
            value: b"3".to_vec(),
            options: PutOptions::if_version(v),
        },
    ];
    let e = store.batch(ops).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::ConditionFailed);
    assert_eq!(e.batch_index(), Some(2));
    assert_eq!(store.get(b"a").await.unwrap().unwrap().version, v);
    assert_eq!(store.get(b"b").await.unwrap(), None);
    let done = store
        .batch(vec![
            WriteOp::delete("a"),
            WriteOp::Put {
                key: b"a".to_vec(),
                value: b"4".to_vec(),
                options: PutOptions::if_absent(),
            },
        ])
        .await
        .unwrap();
    assert_eq!(done.len(), 2);
    store.close().await;
}
