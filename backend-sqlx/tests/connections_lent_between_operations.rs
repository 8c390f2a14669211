//! A connection whose operation ended is lent straight to the next operation for a
//! moment instead of going back through the pool, or handed to a caller waiting for a
//! full pool. It still counts as idle, is still validated, goes back to the pool when
//! idle, never leaves a waiter waiting past its turn, and never delays `close`.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{KINDS, open, options, temp_dir, wait_for_metrics};
use storage_api::{PooledStore, PutOptions, TxOptions};

#[tokio::test]
async fn a_lent_connection_counts_as_idle_and_is_validated() {
    for kind in KINDS {
        let dir = temp_dir();
        let mut opts = options(kind, &dir);
        opts.max_connections = 2;
        let store = open(opts).await;
        store.put(b"k", b"v", PutOptions::default()).await.unwrap();
        store.get(b"k").await.unwrap();
        // Right after the operation, without waiting for anything to come back.
        let m = store.pool_metrics();
        assert_eq!(m.in_use, 0, "{kind:?}: {m:?}");
        assert_eq!(m.idle, m.size, "{kind:?}: {m:?}");
        let report = store.validate_connections().await.unwrap();
        assert_eq!(report.checked, m.idle, "{kind:?}: {report:?}");
        assert!(report.passed, "{kind:?}: {report:?}");
        store.close().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readers_never_starve_a_caller_waiting_for_the_pool() {
    for kind in KINDS {
        let dir = temp_dir();
        let mut opts = options(kind, &dir);
        opts.max_connections = 2;
        // Shorter than the longest a connection is lent on (1 s): a waiter left to
        // wait until then would time out.
        opts.acquire_timeout = Duration::from_millis(800);
        let store = Arc::new(open(opts).await);
        store.put(b"k", b"v", PutOptions::default()).await.unwrap();
        let until = Instant::now() + Duration::from_secs(1);
        let readers: Vec<_> = (0..8)
            .map(|_| {
                let store = Arc::clone(&store);
                tokio::spawn(async move {
                    while Instant::now() < until {
                        store.get(b"k").await.unwrap();
                    }
                })
            })
            .collect();
        // Transactions keep their connection to the end, so each needs one from the
        // pool or the stash while eight readers pass theirs around.
        let mut transactions = 0;
        while Instant::now() < until {
            let mut tx = store.begin(TxOptions { read_only: true }).await.unwrap();
            tx.get(b"k").await.unwrap();
            tx.commit().await.unwrap();
            transactions += 1;
        }
        for reader in readers {
            reader.await.unwrap();
        }
        assert!(transactions > 0);
        let m = store.pool_metrics();
        assert_eq!(m.timeouts, 0, "{kind:?}: {m:?}");
        store.close().await;
    }
}

#[tokio::test]
async fn lent_connections_go_back_to_the_pool_when_idle() {
    for kind in KINDS {
        let dir = temp_dir();
        let mut opts = options(kind, &dir);
        opts.idle_timeout = Some(Duration::from_millis(200));
        opts.min_idle = 0;
        let store = open(opts).await;
        store.get(b"k").await.unwrap();
        // Back in the pool, the idle reaper closes it like any idle connection.
        let m = wait_for_metrics(&store, Duration::from_secs(10), |m| m.size == 0).await;
        assert_eq!(m.size, 0, "{kind:?}: {m:?}");
        assert!(m.closed.idle_timeout >= 1, "{kind:?}: {m:?}");
        store.close().await;
    }
}

#[tokio::test]
async fn close_does_not_wait_for_lent_connections() {
    for kind in KINDS {
        let dir = temp_dir();
        let store = open(options(kind, &dir)).await;
        for _ in 0..10 {
            store.get(b"k").await.unwrap();
        }
        let started = Instant::now();
        let report = store.close().await;
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "{kind:?}: close took {:?}",
            started.elapsed()
        );
        assert_eq!(store.pool_metrics().size, 0, "{kind:?}: {report:?}");
    }
}
