//! Trap 4: `close` refuses new work at once but lets in-flight work finish within the
//! grace period, then closes every connection.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use backend_deadpool::rusqlite;
use common::{eventually, file_options, open};
use storage_api::{ErrorKind, HealthStatus, PooledStore, PutOptions, TxOptions};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn close_waits_for_an_open_transaction() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(open(file_options(dir.path(), "kv.db")).await);
    let mut tx = store.begin(TxOptions::default()).await.unwrap();
    tx.put(b"k", b"committed during close", PutOptions::default())
        .await
        .unwrap();

    let closer = tokio::spawn({
        let store = Arc::clone(&store);
        async move { store.close().await }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        !closer.is_finished(),
        "close returned while a transaction was open"
    );
    assert_eq!(store.get(b"k").await.unwrap_err().kind(), ErrorKind::Closed);
    tx.commit().await.unwrap();

    let report = closer.await.unwrap();
    assert!(!report.already_closed);
    assert_eq!((report.in_flight, report.forced), (1, 0));
    assert!(report.waited >= Duration::from_millis(250), "{report:?}");
    assert!(report.connections_closed >= 1, "{report:?}");
    assert_eq!(store.pool_metrics().size, 0);
    assert_eq!(store.health_check().await.status, HealthStatus::Closed);
    assert_eq!(
        store.begin(TxOptions::default()).await.unwrap_err().kind(),
        ErrorKind::Closed
    );
    assert!(store.close().await.already_closed);

    let reopened = open(file_options(dir.path(), "kv.db")).await;
    let entry = reopened.get(b"k").await.unwrap().unwrap();
    assert_eq!(entry.value, b"committed during close");
    reopened.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn close_lets_a_running_operation_finish() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(open(file_options(dir.path(), "kv.db")).await);
    let running = tokio::spawn({
        let store = Arc::clone(&store);
        async move {
            store
                .with_connection(|conn| {
                    std::thread::sleep(Duration::from_millis(400));
                    conn.query_row("SELECT 7", [], |r| r.get::<_, i64>(0))
                })
                .await
        }
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    let started = Instant::now();
    let report = store.close().await;
    assert!(
        started.elapsed() >= Duration::from_millis(200),
        "{report:?}"
    );
    assert_eq!((report.in_flight, report.forced), (1, 0));
    assert_eq!(running.await.unwrap().unwrap().unwrap(), 7);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_the_grace_period_close_forces_open_transactions_shut() {
    let dir = tempfile::tempdir().unwrap();
    let mut options = file_options(dir.path(), "kv.db");
    options.close_grace = Duration::from_millis(300);
    let store = open(options).await;
    let mut tx = store.begin(TxOptions::default()).await.unwrap();
    tx.put(b"k", b"abandoned", PutOptions::default())
        .await
        .unwrap();

    let started = Instant::now();
    let report = store.close().await;
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(270) && took < Duration::from_secs(3),
        "{took:?}"
    );
    assert_eq!((report.in_flight, report.forced), (1, 1));
    assert_eq!(report.connections_closed, 1, "{report:?}");
    assert_eq!(tx.commit().await.unwrap_err().kind(), ErrorKind::Closed);
    let closed = eventually(Duration::from_secs(3), || {
        let m = store.pool_metrics();
        m.size == 0 && m.closed.shutdown == 1 && m.closed.total() == 1
    })
    .await;
    assert!(closed, "{:?}", store.pool_metrics());

    let reopened = open(file_options(dir.path(), "kv.db")).await;
    assert_eq!(
        reopened.get(b"k").await.unwrap(),
        None,
        "the forced transaction rolled back"
    );
    reopened.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forced_close_interrupts_a_running_statement() {
    let dir = tempfile::tempdir().unwrap();
    let mut options = file_options(dir.path(), "kv.db");
    options.close_grace = Duration::from_millis(200);
    let store = Arc::new(open(options).await);
    // Counts far enough to run for many seconds unless interrupted.
    let long = tokio::spawn({
        let store = Arc::clone(&store);
        async move {
            store
                .with_connection(|conn| {
                    conn.query_row(
                        "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c \
                         WHERE x < 2000000000) SELECT count(*) FROM c",
                        [],
                        |r| r.get::<_, i64>(0),
                    )
                })
                .await
        }
    });
    tokio::time::sleep(Duration::from_millis(100)).await;

    let started = Instant::now();
    let report = store.close().await;
    assert!(started.elapsed() < Duration::from_secs(2), "{report:?}");
    assert_eq!(
        (report.forced, report.connections_closed),
        (1, 1),
        "{report:?}"
    );
    let counted = long.await.unwrap().unwrap();
    assert_eq!(
        counted.unwrap_err().sqlite_error_code(),
        Some(rusqlite::ErrorCode::OperationInterrupted)
    );
}
