//! Idle-timeout and max-lifetime retirement, done by the backend's own task (deadpool
//! has no reaper): idle and old connections go, `min_idle` stay, one in use never goes.

mod common;

use std::time::Duration;

use common::{eventually, file_options, open, quiet};
use storage_api::{PooledStore, PutOptions, ScanOptions, Transaction, TxOptions};

/// Holds `n` connections at once with read-only transactions, then gives them back.
async fn use_connections(store: &dyn PooledStore, n: usize) {
    let mut held: Vec<Box<dyn Transaction>> = Vec::new();
    for _ in 0..n {
        let mut tx = store.begin(TxOptions { read_only: true }).await.unwrap();
        tx.scan(ScanOptions::default()).await.unwrap();
        held.push(tx);
    }
    for tx in held {
        tx.commit().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_connections_retire_down_to_min_idle() {
    let dir = tempfile::tempdir().unwrap();
    let mut options = file_options(dir.path(), "kv.db");
    options.max_connections = 4;
    options.min_idle = 1;
    options.idle_timeout = Some(Duration::from_millis(300));
    options.max_lifetime = None;
    let store = open(options).await;
    use_connections(&store, 3).await;
    assert_eq!(quiet(&store).await.size, 3);

    // A snapshot is not atomic across fields: wait for both to settle.
    let reaped = eventually(Duration::from_secs(4), || {
        let m = store.pool_metrics();
        m.size == 1 && m.closed.idle_timeout == 2
    })
    .await;
    assert!(reaped, "{:?}", store.pool_metrics());
    tokio::time::sleep(Duration::from_millis(700)).await;
    let later = store.pool_metrics();
    assert_eq!(
        (later.size, later.closed.idle_timeout),
        (1, 2),
        "min_idle stays open"
    );
    store.put(b"k", b"v", PutOptions::default()).await.unwrap();
    store.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_in_use_is_never_retired() {
    let dir = tempfile::tempdir().unwrap();
    let mut options = file_options(dir.path(), "kv.db");
    options.max_connections = 2;
    options.idle_timeout = Some(Duration::from_millis(150));
    options.max_lifetime = Some(Duration::from_millis(250));
    let store = open(options).await;
    let mut tx = store.begin(TxOptions::default()).await.unwrap();
    tx.put(b"k", b"v", PutOptions::default()).await.unwrap();
    let created = store.pool_metrics().created;

    // Well past both limits, several reaper rounds later.
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let held = store.pool_metrics();
    assert_eq!((held.in_use, held.created), (1, created), "{held:?}");
    assert_eq!(
        held.closed.max_lifetime + held.closed.idle_timeout,
        held.created - 1
    );
    tx.put(b"k2", b"v2", PutOptions::default()).await.unwrap();
    tx.commit().await.unwrap();
    assert_eq!(store.get(b"k2").await.unwrap().unwrap().value, b"v2");

    // Given back past its lifetime, it retires instead of being reused.
    let retired = eventually(Duration::from_secs(3), || {
        store.pool_metrics().closed.max_lifetime >= 1 && store.pool_metrics().in_use == 0
    })
    .await;
    assert!(retired, "{:?}", store.pool_metrics());
    store.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn old_connections_retire_and_min_idle_refills() {
    let dir = tempfile::tempdir().unwrap();
    let mut options = file_options(dir.path(), "kv.db");
    options.max_connections = 2;
    options.min_idle = 1;
    options.idle_timeout = None;
    options.max_lifetime = Some(Duration::from_millis(300));
    let store = open(options).await;
    assert_eq!(store.pool_metrics().size, 1);

    let rotated = eventually(Duration::from_secs(5), || {
        let m = store.pool_metrics();
        m.closed.max_lifetime >= 2 && m.size == 1
    })
    .await;
    let metrics = store.pool_metrics();
    assert!(rotated, "{metrics:?}");
    assert!(
        metrics.created >= 3,
        "replacements were opened: {metrics:?}"
    );
    assert_eq!(metrics.closed.total(), metrics.closed.max_lifetime);
    store.put(b"k", b"v", PutOptions::default()).await.unwrap();
    assert_eq!(store.get(b"k").await.unwrap().unwrap().value, b"v");
    store.close().await;
}
