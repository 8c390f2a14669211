//! Health, validation, metrics and leak detection as this backend reports them.

mod common;

use std::sync::Arc;
use std::time::Duration;

use backend_deadpool::rusqlite;
use common::{file_options, memory_options, open, quiet};
use storage_api::{PooledStore, PutOptions, ScanOptions, Transaction, TxOptions};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_reports_sub_millisecond_timings_and_the_sqlite_version() {
    let store = open(memory_options()).await;
    let health = store.health_check().await;
    assert!(health.healthy, "{health:?}");
    assert!(health.acquire_time > Duration::ZERO && health.query_time > Duration::ZERO);
    assert_eq!(health.server_version.as_deref(), Some(rusqlite::version()));
    store.close().await;
    assert!(!store.health_check().await.healthy);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn validation_checks_each_idle_connection_once_and_skips_those_in_use() {
    let dir = tempfile::tempdir().unwrap();
    let mut options = file_options(dir.path(), "kv.db");
    options.max_connections = 4;
    let store = open(options).await;
    let mut held: Vec<Box<dyn Transaction>> = Vec::new();
    for _ in 0..3 {
        let mut tx = store.begin(TxOptions { read_only: true }).await.unwrap();
        tx.scan(ScanOptions::default()).await.unwrap();
        held.push(tx);
    }
    let busy = held.pop().unwrap();
    for tx in held {
        tx.commit().await.unwrap();
    }

    let report = tokio::time::timeout(Duration::from_secs(2), store.validate_connections())
        .await
        .expect("validation does not wait for connections in use")
        .unwrap();
    assert_eq!((report.checked, report.valid, report.invalid), (2, 2, 0));
    assert!(report.passed);
    assert_eq!(report.max_connections, 4);
    busy.commit().await.unwrap();

    let all = store.validate_connections().await.unwrap();
    assert_eq!((all.checked, all.valid), (3, 3));
    let metrics = quiet(&store).await;
    assert_eq!((metrics.size, metrics.idle, metrics.created), (3, 3, 3));
    store.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_reconcile_after_concurrent_work() {
    let dir = tempfile::tempdir().unwrap();
    let mut options = file_options(dir.path(), "kv.db");
    options.max_connections = 3;
    let store = Arc::new(open(options).await);
    let tasks: Vec<_> = (0..16u8)
        .map(|i| {
            let store = Arc::clone(&store);
            tokio::spawn(async move {
                store.put(&[i], &[i], PutOptions::default()).await.unwrap();
                assert_eq!(store.get(&[i]).await.unwrap().unwrap().value, [i]);
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    let metrics = quiet(&store).await;
    assert_eq!(metrics.idle + metrics.in_use, metrics.size);
    assert!(
        metrics.size <= metrics.max && metrics.max == 3,
        "{metrics:?}"
    );
    assert!(
        metrics.acquired >= 32 && metrics.pending == 0,
        "{metrics:?}"
    );
    assert_eq!(
        metrics.acquire_wait.count,
        metrics.acquired + metrics.timeouts
    );
    store.close().await;
    assert_eq!(store.pool_metrics().size, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transaction_held_past_the_leak_threshold_is_counted_once() {
    let mut options = memory_options();
    options.leak_detection_threshold = Some(Duration::from_millis(150));
    let store = open(options).await;
    let mut slow = store.begin(TxOptions::default()).await.unwrap();
    slow.put(b"k", b"v", PutOptions::default()).await.unwrap();
    tokio::time::sleep(Duration::from_millis(600)).await;
    slow.commit().await.unwrap();
    assert_eq!(store.pool_metrics().leaks, 1);

    let quick = store.begin(TxOptions::default()).await.unwrap();
    quick.commit().await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        store.pool_metrics().leaks,
        1,
        "a short transaction is not a leak"
    );
    store.close().await;
}
