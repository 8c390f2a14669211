//! The single writer: writes queued together commit together, a write that fails is
//! rolled back alone, concurrent writers never see `Busy`, and cancelled writers leave
//! neither a half-applied batch nor a connection in use.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{file_options, open, quiet};
use storage_api::{
    Condition, ErrorKind, PooledStore, PutOptions, ScanOptions, TxOptions, Version, WriteOp,
    WriteResult,
};

fn batch_of(task: usize, len: usize) -> Vec<WriteOp> {
    (0..len)
        .map(|i| WriteOp::put(format!("b/{task}/{i}"), vec![1u8; 8]))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_write_is_rolled_back_alone_within_its_group() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(open(file_options(dir.path(), "kv.db")).await);
    store
        .put(b"taken", b"0", PutOptions::default())
        .await
        .unwrap();

    // Hold the write lock in a transaction so the writes below pile up in the queue
    // and go to the database as groups.
    let tx = store.begin(TxOptions::default()).await.unwrap();
    let holder = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(300)).await;
        tx.commit().await.unwrap();
    });

    let tasks: Vec<_> = (0..24usize)
        .map(|task| {
            let store = Arc::clone(&store);
            tokio::spawn(async move {
                match task % 4 {
                    // Fails: the key exists.
                    0 => {
                        let err = store
                            .put(b"taken", b"lost", PutOptions::if_absent())
                            .await
                            .unwrap_err();
                        assert_eq!(err.kind(), ErrorKind::ConditionFailed, "{err}");
                    }
                    // Fails at its last operation: none of it may stay.
                    1 => {
                        let mut ops = batch_of(task, 5);
                        ops.push(WriteOp::Delete {
                            key: b"missing".to_vec(),
                            condition: Condition::Version(Version::new(1).unwrap()),
                        });
                        let err = store.batch(ops).await.unwrap_err();
                        assert_eq!(err.kind(), ErrorKind::ConditionFailed, "{err}");
                        assert_eq!(err.batch_index(), Some(5));
                    }
                    2 => {
                        let results = store.batch(batch_of(task, 5)).await.unwrap();
                        assert_eq!(results.len(), 5);
                        assert!(results.iter().all(|r| matches!(r, WriteResult::Put(_))));
                    }
                    _ => {
                        let key = format!("p/{task}");
                        store
                            .put(key.as_bytes(), b"kept", PutOptions::default())
                            .await
                            .unwrap();
                    }
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    holder.await.unwrap();

    assert_eq!(store.get(b"taken").await.unwrap().unwrap().value, b"0");
    for task in 0..24usize {
        let first = store.get(format!("b/{task}/0").as_bytes()).await.unwrap();
        let put = store.get(format!("p/{task}").as_bytes()).await.unwrap();
        match task % 4 {
            1 => assert!(first.is_none(), "batch {task} was applied in part"),
            2 => assert!(first.is_some(), "batch {task} is missing"),
            3 => assert_eq!(put.unwrap().value, b"kept"),
            _ => {}
        }
    }
    let metrics = quiet(&store).await;
    assert_eq!(metrics.busy, 0, "{metrics:?}");
    store.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_concurrent_writers_never_see_busy_and_versions_stay_unique() {
    let dir = tempfile::tempdir().unwrap();
    let mut options = file_options(dir.path(), "kv.db");
    // A short busy timeout: writers fighting over the lock would fail fast.
    options.busy_timeout = Duration::from_millis(1);
    let store = Arc::new(open(options).await);
    let tasks: Vec<_> = (0..32u32)
        .map(|task| {
            let store = Arc::clone(&store);
            tokio::spawn(async move {
                let mut versions = Vec::new();
                for i in 0..20u32 {
                    let key = format!("k/{}", (task * 7 + i) % 50);
                    let version = store
                        .put(key.as_bytes(), &task.to_be_bytes(), PutOptions::default())
                        .await
                        .unwrap();
                    versions.push(version);
                }
                versions
            })
        })
        .collect();
    let mut all = Vec::new();
    for task in tasks {
        all.extend(task.await.unwrap());
    }
    let count = all.len();
    all.sort();
    all.dedup();
    assert_eq!(all.len(), count, "two puts got the same version");
    let metrics = quiet(&store).await;
    assert_eq!(metrics.busy, 0, "{metrics:?}");
    store.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelled_writers_leave_no_half_batch_and_no_connection_in_use() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(open(file_options(dir.path(), "kv.db")).await);
    let tasks: Vec<_> = (0..40usize)
        .map(|task| {
            let store = Arc::clone(&store);
            tokio::spawn(async move {
                // Give up after anything from nothing to a few milliseconds.
                let patience = Duration::from_micros((task as u64 * 137) % 3000);
                let write = store.batch(batch_of(task, 50));
                let _ = tokio::time::timeout(patience, write).await;
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    // Whatever was still queued or running finishes by itself.
    quiet(&store).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    for task in 0..40usize {
        let prefix = format!("b/{task}/");
        let found = store
            .scan(ScanOptions::prefix(prefix.as_bytes()))
            .await
            .unwrap();
        assert!(
            found.is_empty() || found.len() == 50,
            "batch {task} was applied in part: {} of 50",
            found.len()
        );
    }
    // Writes still work afterwards.
    store
        .put(b"after", b"1", PutOptions::default())
        .await
        .unwrap();
    let metrics = quiet(&store).await;
    assert_eq!((metrics.in_use, metrics.pending), (0, 0), "{metrics:?}");
    store.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_writer_checkpoints_in_the_background_and_restores_autocheckpoint() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(open(file_options(dir.path(), "kv.db")).await);
    let tasks: Vec<_> = (0..16u32)
        .map(|task| {
            let store = Arc::clone(&store);
            tokio::spawn(async move {
                for i in 0..150u32 {
                    let key = format!("c/{task}/{i}");
                    store
                        .put(key.as_bytes(), &[7u8; 64], PutOptions::default())
                        .await
                        .unwrap();
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    quiet(&store).await;
    // Every connection, the writer's included, is back to SQLite's default.
    let settings = (0..4).map(|_| {
        let store = Arc::clone(&store);
        async move {
            store
                .with_connection(|conn| {
                    conn.query_row("PRAGMA wal_autocheckpoint", [], |r| r.get::<_, i64>(0))
                })
                .await
                .unwrap()
                .unwrap()
        }
    });
    for setting in futures_join(settings).await {
        assert_eq!(setting, 1000);
    }
    // 2400 writes: at least one checkpoint copied pages into the database file.
    let db_len = std::fs::metadata(dir.path().join("kv.db")).unwrap().len();
    assert!(db_len > 64 * 1024, "database file only {db_len} bytes");
    let found = store.scan(ScanOptions::prefix("c/15/")).await.unwrap();
    assert_eq!(found.len(), 150);
    store.close().await;
}

async fn futures_join<T: Send + 'static>(
    futures: impl Iterator<Item = impl std::future::Future<Output = T> + Send + 'static>,
) -> Vec<T> {
    let handles: Vec<_> = futures.map(tokio::spawn).collect();
    let mut out = Vec::new();
    for handle in handles {
        out.push(handle.await.unwrap());
    }
    out
}
