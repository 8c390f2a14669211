//! The acquire deadline and the pending gauge while callers queue for a connection.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{eventually, file_options, open, quiet};
use storage_api::{ErrorKind, HealthStatus, PooledStore, PutOptions, TxOptions};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_pool_times_out_after_the_acquire_timeout_and_recovers() {
    let dir = tempfile::tempdir().unwrap();
    let mut options = file_options(dir.path(), "kv.db");
    options.max_connections = 2;
    let acquire_timeout = Duration::from_millis(600);
    options.acquire_timeout = acquire_timeout;
    let store = open(options).await;
    let writer = store.begin(TxOptions::default()).await.unwrap();
    let reader = store.begin(TxOptions { read_only: true }).await.unwrap();

    let started = Instant::now();
    let err = store.get(b"k").await.unwrap_err();
    let waited = started.elapsed();
    assert_eq!(err.kind(), ErrorKind::Timeout);
    assert!(err.is_retryable());
    assert!(
        waited >= acquire_timeout.mul_f64(0.9) && waited < acquire_timeout * 3,
        "timed out after {waited:?}"
    );
    let metrics = store.pool_metrics();
    assert_eq!(
        (metrics.timeouts, metrics.pending, metrics.in_use),
        (1, 0, 2)
    );
    assert_eq!(store.health_check().await.status, HealthStatus::Saturated);

    drop(writer);
    reader.rollback().await.unwrap();
    store.put(b"k", b"v", PutOptions::default()).await.unwrap();
    assert_eq!(store.get(b"k").await.unwrap().unwrap().value, b"v");
    assert!(store.health_check().await.healthy);
    store.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pending_counts_callers_waiting_for_a_connection() {
    let dir = tempfile::tempdir().unwrap();
    let mut options = file_options(dir.path(), "kv.db");
    options.max_connections = 1;
    let store = Arc::new(open(options).await);
    let tx = store.begin(TxOptions { read_only: true }).await.unwrap();

    let waiters: Vec<_> = (0..3)
        .map(|_| {
            let store = Arc::clone(&store);
            tokio::spawn(async move { store.get(b"k").await })
        })
        .collect();
    let queued = eventually(Duration::from_secs(3), || store.pool_metrics().pending == 3).await;
    assert!(queued, "{:?}", store.pool_metrics());

    tx.commit().await.unwrap();
    for waiter in waiters {
        assert_eq!(waiter.await.unwrap().unwrap(), None);
    }
    let metrics = quiet(&store).await;
    assert_eq!((metrics.pending, metrics.timeouts), (0, 0));
    assert!(metrics.acquire_wait.count >= 4);
    store.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn close_turns_waiting_callers_away_with_closed() {
    let dir = tempfile::tempdir().unwrap();
    let mut options = file_options(dir.path(), "kv.db");
    options.max_connections = 1;
    options.close_grace = Duration::from_millis(500);
    let store = Arc::new(open(options).await);
    let tx = store.begin(TxOptions::default()).await.unwrap();
    let waiter = tokio::spawn({
        let store = Arc::clone(&store);
        async move { store.get(b"k").await }
    });
    assert!(eventually(Duration::from_secs(3), || store.pool_metrics().pending == 1).await);
    let closer = tokio::spawn({
        let store = Arc::clone(&store);
        async move { store.close().await }
    });
    let refused = tokio::time::timeout(Duration::from_secs(2), waiter).await;
    assert_eq!(
        refused.unwrap().unwrap().unwrap_err().kind(),
        ErrorKind::Closed
    );
    tx.commit().await.unwrap();
    let report = closer.await.unwrap();
    assert_eq!(report.forced, 0, "{report:?}");
}
