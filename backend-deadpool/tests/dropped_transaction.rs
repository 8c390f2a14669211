//! Trap 3: a transaction dropped without commit rolls back and frees its connection
//! promptly.

mod common;

use std::time::{Duration, Instant};

use common::{file_options, memory_options, open, quiet};
use storage_api::{PooledStore, PutOptions, ScanOptions, TxOptions};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_write_transaction_rolls_back_and_frees_its_connection() {
    let dir = tempfile::tempdir().unwrap();
    let mut options = file_options(dir.path(), "kv.db");
    options.max_connections = 1;
    options.acquire_timeout = Duration::from_secs(3);
    let store = open(options).await;

    let mut tx = store.begin(TxOptions::default()).await.unwrap();
    tx.put(b"k", b"uncommitted", PutOptions::default())
        .await
        .unwrap();
    drop(tx);

    let started = Instant::now();
    assert_eq!(
        store.get(b"k").await.unwrap(),
        None,
        "the write was rolled back"
    );
    store.put(b"k2", b"v", PutOptions::default()).await.unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "took {:?}",
        started.elapsed()
    );

    let metrics = quiet(&store).await;
    assert_eq!(
        metrics.closed.total(),
        0,
        "rolled back and reused: {metrics:?}"
    );
    assert_eq!(metrics.created, 1);
    store.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_read_transaction_releases_its_read_lock() {
    // Without WAL, an open read transaction blocks commits.
    let dir = tempfile::tempdir().unwrap();
    let mut options = file_options(dir.path(), "kv.db");
    options.sqlite.enable_wal = false;
    options.max_connections = 2;
    options.busy_timeout = Duration::from_secs(3);
    let store = open(options).await;
    store.put(b"k", b"v", PutOptions::default()).await.unwrap();

    let mut reader = store.begin(TxOptions { read_only: true }).await.unwrap();
    assert_eq!(reader.scan(ScanOptions::default()).await.unwrap().len(), 1);
    drop(reader);

    let started = Instant::now();
    store.put(b"k", b"v2", PutOptions::default()).await.unwrap();
    assert!(
        started.elapsed() < Duration::from_millis(1500),
        "took {:?}",
        started.elapsed()
    );
    quiet(&store).await;
    store.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transaction_dropped_inside_a_cancelled_task_is_rolled_back() {
    let mut options = memory_options();
    options.max_connections = 1;
    let store = std::sync::Arc::new(open(options).await);
    let task = tokio::spawn({
        let store = std::sync::Arc::clone(&store);
        async move {
            let mut tx = store.begin(TxOptions::default()).await.unwrap();
            tx.put(b"k", b"never", PutOptions::default()).await.unwrap();
            std::future::pending::<()>().await;
        }
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    task.abort();
    assert!(task.await.unwrap_err().is_cancelled());
    assert_eq!(store.get(b"k").await.unwrap(), None);
    quiet(&store).await;
    store.close().await;
}
