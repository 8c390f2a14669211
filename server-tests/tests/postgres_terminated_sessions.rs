//! Sessions the server terminates (`pg_terminate_backend`, as an administrator or a
//! restart would) are detected and evicted, never handed out again: by
//! `validate_connections`, by operations that find their connection dead on its first
//! statement, and inside a transaction.

use std::time::Duration;

use server_tests::postgres::{Scratch, open, settle, wait_for_metrics};
use storage_api::{ErrorKind, HealthStatus, PooledStore, PutOptions, Transaction, TxOptions};

const READ_ONLY: TxOptions = TxOptions { read_only: true };

/// Opens `n` connections by holding `n` transactions at once, then returns them.
async fn warm(store: &dyn PooledStore, n: usize) {
    let mut held: Vec<Box<dyn Transaction>> = Vec::new();
    for _ in 0..n {
        held.push(store.begin(READ_ONLY).await.unwrap());
    }
    drop(held);
    let m = wait_for_metrics(store, Duration::from_secs(5), |m| {
        m.idle as usize == n && m.in_use == 0
    })
    .await;
    assert_eq!(m.size as usize, n, "{m:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn validation_evicts_terminated_sessions_and_the_pool_recovers() {
    let scratch = Scratch::new().await;
    let mut options = scratch.options("kv");
    options.max_connections = 4;
    let store = open(options).await;
    warm(&store, 3).await;
    let name = store.application_name().unwrap().to_owned();
    assert_eq!(scratch.sessions(&name).await.len(), 3);

    assert_eq!(scratch.terminate(&store, "idle").await, 3);
    let report = store.validate_connections().await.unwrap();
    assert_eq!((report.checked, report.valid, report.invalid), (3, 0, 3));
    assert!(!report.passed);
    let m = store.pool_metrics();
    assert_eq!((m.size, m.closed.invalid), (0, 3), "{m:?}");

    // The next operations run on fresh connections.
    let v = store.put(b"k", b"v", PutOptions::default()).await.unwrap();
    assert_eq!(store.get(b"k").await.unwrap().unwrap().version, v);
    let health = store.health_check().await;
    assert_eq!(health.status, HealthStatus::Healthy, "{health:?}");
    // sqlx hands a released connection back to the pool in a task of its own: wait
    // until one is idle so the second validation has something to check.
    wait_for_metrics(&store, Duration::from_secs(5), |m| m.idle >= 1).await;
    let again = store.validate_connections().await.unwrap();
    assert!(
        again.passed && again.invalid == 0 && again.checked >= 1,
        "{again:?}"
    );
    let m = settle(&store).await;
    assert_eq!(m.created - m.closed.total(), u64::from(m.size), "{m:?}");
    store.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operations_skip_connections_found_dead_without_failing() {
    let scratch = Scratch::new().await;
    let mut options = scratch.options("kv");
    options.max_connections = 3;
    let store = open(options).await;
    store.put(b"k", b"1", PutOptions::default()).await.unwrap();
    warm(&store, 3).await;
    assert_eq!(scratch.terminate(&store, "idle").await, 3);

    // Every idle connection is dead; each kind of operation still succeeds, moving on
    // past the dead ones (each evicted as broken, none handed out twice).
    assert_eq!(store.get(b"k").await.unwrap().unwrap().value, b"1");
    store.put(b"k", b"2", PutOptions::default()).await.unwrap();
    let mut tx = store.begin(TxOptions::default()).await.unwrap();
    assert_eq!(tx.get(b"k").await.unwrap().unwrap().value, b"2");
    tx.commit().await.unwrap();
    assert!(store.health_check().await.healthy);
    let m = settle(&store).await;
    assert_eq!(m.closed.broken, 3, "{m:?}");
    assert_eq!(m.created - m.closed.total(), u64::from(m.size), "{m:?}");
    store.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transaction_whose_session_is_terminated_fails_and_its_connection_is_evicted() {
    let scratch = Scratch::new().await;
    let mut options = scratch.options("kv");
    options.max_connections = 2;
    let store = open(options).await;
    let mut tx = store.begin(TxOptions::default()).await.unwrap();
    tx.put(b"lost", b"v", PutOptions::default()).await.unwrap();
    assert_eq!(scratch.terminate(&store, "idle in transaction").await, 1);

    let err = tx.get(b"lost").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Connection, "{err}");
    assert!(err.is_retryable());
    // The transaction stays failed; commit reports it rather than pretending.
    let err = tx.commit().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Connection, "{err}");

    let m = settle(&store).await;
    assert_eq!(m.closed.broken, 1, "{m:?}");
    assert_eq!(store.get(b"lost").await.unwrap(), None);
    store
        .put(b"after", b"v", PutOptions::default())
        .await
        .unwrap();
    store.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_the_server_times_out_while_idle_are_replaced() {
    let scratch = Scratch::new().await;
    let mut options = scratch.options("kv");
    options.max_connections = 2;
    // The server ends any session idle for 300 ms (FATAL 57P05).
    options.url = format!("{}%20-c%20idle_session_timeout%3D300", options.url);
    let store = open(options).await;
    store.put(b"k", b"v", PutOptions::default()).await.unwrap();
    warm(&store, 2).await;
    let name = store.application_name().unwrap().to_owned();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !scratch.sessions(&name).await.is_empty() {
        assert!(
            std::time::Instant::now() < deadline,
            "the server kept the sessions"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    assert_eq!(store.get(b"k").await.unwrap().unwrap().value, b"v");
    let m = settle(&store).await;
    assert_eq!(m.closed.broken, 2, "{m:?}");
    assert_eq!(m.created - m.closed.total(), u64::from(m.size), "{m:?}");
    store.close().await;
}
