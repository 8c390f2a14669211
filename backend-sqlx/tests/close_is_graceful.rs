//! `close` lets in-flight work finish within the grace period, refuses new work,
//! is idempotent, and bounds what it waits for.

mod common;

use std::time::{Duration, Instant};

use common::{KINDS, Kind, db_path, open, options, sqlite_url, temp_dir};
use storage_api::{ErrorKind, HealthStatus, PooledStore, PutOptions, StoreOptions, TxOptions};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_flight_transaction_commits_within_the_grace_then_everything_is_closed() {
    for kind in KINDS {
        let dir = temp_dir();
        let mut opts = options(kind, &dir);
        opts.close_grace = Duration::from_secs(10);
        let store = open(opts).await;
        let mut tx = store.begin(TxOptions::default()).await.unwrap();
        tx.put(b"late", b"committed", PutOptions::default())
            .await
            .unwrap();
        let finisher = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(300)).await;
            tx.commit().await
        });

        let report = store.close().await;
        assert!(!report.already_closed);
        assert_eq!(
            (report.in_flight, report.forced),
            (1, 0),
            "{kind:?}: {report:?}"
        );
        assert!(report.waited >= Duration::from_millis(200), "{report:?}");
        assert!(report.waited < Duration::from_secs(5), "{report:?}");
        assert!(report.connections_closed >= 1, "{report:?}");
        finisher
            .await
            .unwrap()
            .expect("commit within the grace period");

        let err = store.get(b"late").await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Closed);
        let err = store
            .put(b"k", b"v", PutOptions::default())
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Closed);
        let err = store.begin(TxOptions::default()).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Closed);
        assert_eq!(
            store.validate_connections().await.unwrap_err().kind(),
            ErrorKind::Closed
        );
        assert_eq!(store.health_check().await.status, HealthStatus::Closed);

        let again = store.close().await;
        assert!(again.already_closed, "{again:?}");

        let m = store.pool_metrics();
        assert_eq!(m.size, 0, "{kind:?}: {m:?}");
        assert_eq!(m.closed.shutdown, m.created, "{kind:?}: {m:?}");

        if kind == Kind::File {
            let reopened = open(StoreOptions::new(sqlite_url(&db_path(&dir)))).await;
            let entry = reopened.get(b"late").await.unwrap().expect("committed");
            assert_eq!(entry.value, b"committed");
            reopened.close().await;
            // The WAL was checkpointed and truncated on close.
            let wal = dir.path().join("store.db-wal");
            let wal_len = std::fs::metadata(&wal).map(|m| m.len()).unwrap_or(0);
            assert_eq!(wal_len, 0, "WAL left with {wal_len} bytes");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn work_past_the_grace_is_forced_and_close_does_not_hang() {
    for kind in KINDS {
        let dir = temp_dir();
        let mut opts = options(kind, &dir);
        opts.close_grace = Duration::from_millis(200);
        let store = open(opts).await;
        let mut stuck = store.begin(TxOptions::default()).await.unwrap();
        stuck
            .put(b"never", b"x", PutOptions::default())
            .await
            .unwrap();

        let started = Instant::now();
        let report = store.close().await;
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "{kind:?}: {report:?}"
        );
        assert_eq!(
            (report.in_flight, report.forced),
            (1, 1),
            "{kind:?}: {report:?}"
        );

        // The forced transaction can no longer do anything.
        let err = stuck.get(b"never").await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Closed);
        assert_eq!(stuck.commit().await.unwrap_err().kind(), ErrorKind::Closed);
        // Its connection closes once it is dropped.
        let m = common::wait_for_metrics(&store, Duration::from_secs(5), |m| m.size == 0).await;
        assert_eq!(m.size, 0, "{kind:?}: {m:?}");

        if kind == Kind::File {
            let reopened = open(StoreOptions::new(sqlite_url(&db_path(&dir)))).await;
            assert_eq!(reopened.get(b"never").await.unwrap(), None);
            reopened.close().await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn callers_waiting_for_a_connection_get_closed_at_once() {
    for kind in KINDS {
        let dir = temp_dir();
        let mut opts = options(kind, &dir);
        opts.max_connections = 1;
        opts.acquire_timeout = Duration::from_secs(20);
        opts.close_grace = Duration::from_secs(1);
        let store = std::sync::Arc::new(open(opts).await);
        let holder = store.begin(TxOptions { read_only: true }).await.unwrap();
        let waiter = {
            let store = std::sync::Arc::clone(&store);
            tokio::spawn(async move {
                let started = Instant::now();
                (store.get(b"k").await, started.elapsed())
            })
        };
        common::wait_for_metrics(store.as_ref(), Duration::from_secs(5), |m| m.pending == 1).await;
        let closer = {
            let store = std::sync::Arc::clone(&store);
            tokio::spawn(async move { store.close().await })
        };
        let (result, waited) = waiter.await.unwrap();
        assert_eq!(result.unwrap_err().kind(), ErrorKind::Closed, "{kind:?}");
        assert!(
            waited < Duration::from_secs(5),
            "{kind:?}: waited {waited:?}"
        );
        drop(holder);
        let report = closer.await.unwrap();
        assert_eq!(report.in_flight, 2, "{kind:?}: {report:?}");
        assert_eq!(store.pool_metrics().pending, 0);
    }
}
