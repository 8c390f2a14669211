//! The connection given back last waits beside deadpool's queue while nobody waits
//! for one: it still counts as idle, goes to a waiting caller at once, and closes with
//! the store.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{eventually, file_options, open};
use storage_api::{PooledStore, PutOptions, ScanOptions, TxOptions};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_given_back_while_a_caller_waits_goes_to_that_caller() {
    let dir = tempfile::tempdir().unwrap();
    let mut options = file_options(dir.path(), "kv.db");
    options.max_connections = 1;
    options.acquire_timeout = Duration::from_secs(30);
    // The maintenance task, which returns a parked connection to deadpool's queue,
    // then runs once a second.
    options.idle_timeout = None;
    options.max_lifetime = None;
    let store = Arc::new(open(options).await);
    store.put(b"k", b"v", PutOptions::default()).await.unwrap();

    // Parked beside a waiting caller, the connection would reach it only at the
    // maintenance task's next tick: each round would take about a second.
    let rounds = 10;
    let mut waited = Duration::ZERO;
    for round in 0..rounds {
        let tx = store.begin(TxOptions { read_only: true }).await.unwrap();
        let waiter = {
            let store = Arc::clone(&store);
            tokio::spawn(async move { store.get(b"k").await })
        };
        let queued = eventually(Duration::from_secs(3), || store.pool_metrics().pending == 1);
        assert!(queued.await, "round {round}: the get never queued");
        let given_back = Instant::now();
        tx.commit().await.unwrap();
        let entry = waiter.await.unwrap().unwrap().unwrap();
        waited += given_back.elapsed();
        assert_eq!(entry.value, b"v");
    }
    assert!(
        waited < Duration::from_secs(3),
        "{rounds} waiting gets had their connection after {waited:?} in all"
    );
    store.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_parked_connection_counts_as_idle_and_closes_with_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let mut options = file_options(dir.path(), "kv.db");
    options.max_connections = 4;
    let store = open(options).await;
    for i in 0..50_u32 {
        store
            .put(&i.to_be_bytes(), b"v", PutOptions::default())
            .await
            .unwrap();
        assert!(store.get(&i.to_be_bytes()).await.unwrap().is_some());
    }
    let metrics = store.pool_metrics();
    assert!(metrics.size >= 1, "{metrics:?}");
    assert_eq!(
        (metrics.in_use, metrics.idle),
        (0, metrics.size),
        "{metrics:?}"
    );
    assert!(metrics.acquired >= 50, "{metrics:?}");

    let report = store.close().await;
    assert_eq!(report.connections_closed, metrics.size, "{report:?}");
    let closed = store.pool_metrics().closed;
    assert_eq!(closed.shutdown, u64::from(metrics.size), "{closed:?}");
}

#[tokio::test]
async fn reads_on_the_parked_connection_count_as_acquisitions_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let options = file_options(dir.path(), "kv.db");
    let store = open(options).await;
    store.put(b"k", b"v", PutOptions::default()).await.unwrap();
    let before = store.pool_metrics();
    let reads = 20;
    for _ in 0..reads {
        assert_eq!(store.get(b"k").await.unwrap().unwrap().value, b"v");
        assert_eq!(store.scan(ScanOptions::prefix("k")).await.unwrap().len(), 1);
    }
    let after = store.pool_metrics();
    assert_eq!(after.acquired - before.acquired, 2 * reads, "{after:?}");
    // Taken from the parked slot: no wait, so every one in the first bucket (50 µs).
    let at_once = after.acquire_wait.counts[0] - before.acquire_wait.counts[0];
    assert!(at_once >= reads, "{at_once} of {} at once", 2 * reads);
    assert_eq!((after.in_use, after.idle), (0, after.size), "{after:?}");
    store.close().await;
}
