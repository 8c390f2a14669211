//! On the server engines (PostgreSQL and MySQL/MariaDB), a connection whose operation
//! ended cleanly is lent straight to the next operation for a moment instead of going
//! back through the pool (and sqlx's ping), or handed to a caller waiting for a full
//! pool. It still counts as idle, is still validated, goes back to the pool when idle,
//! never leaves a waiter waiting past its turn, never delays `close`, and one whose
//! session the server ended while it was lent is skipped like any dead connection.

use std::sync::Arc;
use std::time::{Duration, Instant};

use server_tests::postgres::{settle, wait_for_metrics};
use server_tests::{mysql, postgres};
use storage_api::{PooledStore, PutOptions, StoreOptions, TxOptions};

/// The case of the module it is called in (its `configure` and `run`) on a fresh
/// store of each engine.
macro_rules! on_both_engines {
    () => {
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn postgres() {
            let scratch = server_tests::postgres::Scratch::new().await;
            let store = server_tests::postgres::open(configure(scratch.options("kv"))).await;
            run(Arc::new(store)).await;
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn mysql() {
            let scratch = server_tests::mysql::ScratchDatabase::new("lent").await;
            let store = server_tests::mysql::open(configure(scratch.options("kv"))).await;
            run(Arc::new(store)).await;
        }
    };
}

mod a_lent_connection_counts_as_idle_and_is_validated {
    use super::*;

    on_both_engines!();

    fn configure(mut options: StoreOptions) -> StoreOptions {
        options.max_connections = 2;
        options
    }

    async fn run(store: Arc<dyn PooledStore>) {
        store.put(b"k", b"v", PutOptions::default()).await.unwrap();
        store.get(b"k").await.unwrap();
        // Right after the operation, without waiting for anything to come back.
        let m = store.pool_metrics();
        assert_eq!(m.in_use, 0, "{m:?}");
        assert_eq!(m.idle, m.size, "{m:?}");
        let report = store.validate_connections().await.unwrap();
        assert_eq!(report.checked, m.idle, "{report:?}");
        assert!(report.passed, "{report:?}");
        store.close().await;
    }
}

mod readers_never_starve_a_caller_waiting_for_the_pool {
    use super::*;

    on_both_engines!();

    fn configure(mut options: StoreOptions) -> StoreOptions {
        options.max_connections = 2;
        // Shorter than the longest a connection is lent on (1 s): a waiter left to
        // wait until then would time out.
        options.acquire_timeout = Duration::from_millis(800);
        options
    }

    async fn run(store: Arc<dyn PooledStore>) {
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
        // pool or a released one while eight readers pass theirs around.
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
        assert_eq!(m.timeouts, 0, "{m:?}");
        store.close().await;
    }
}

mod lent_connections_go_back_to_the_pool_when_idle {
    use super::*;

    on_both_engines!();

    fn configure(mut options: StoreOptions) -> StoreOptions {
        options.idle_timeout = Some(Duration::from_millis(200));
        options.min_idle = 0;
        options
    }

    async fn run(store: Arc<dyn PooledStore>) {
        store.get(b"k").await.unwrap();
        // Back in the pool, the idle reaper closes it like any idle connection.
        let m = wait_for_metrics(&*store, Duration::from_secs(10), |m| m.size == 0).await;
        assert_eq!(m.size, 0, "{m:?}");
        assert!(m.closed.idle_timeout >= 1, "{m:?}");
        store.close().await;
    }
}

mod close_does_not_wait_for_lent_connections {
    use super::*;

    on_both_engines!();

    fn configure(options: StoreOptions) -> StoreOptions {
        options
    }

    async fn run(store: Arc<dyn PooledStore>) {
        for _ in 0..10 {
            store.get(b"k").await.unwrap();
        }
        let started = Instant::now();
        let report = store.close().await;
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "close took {:?}",
            started.elapsed()
        );
        assert_eq!(store.pool_metrics().size, 0, "{report:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_a_lent_connection_whose_session_ended_is_skipped() {
    let scratch = postgres::Scratch::new().await;
    let mut options = scratch.options("kv");
    options.max_connections = 1;
    let store = postgres::open(options).await;
    store.put(b"k", b"v", PutOptions::default()).await.unwrap();
    // The put's connection is lent on, idle on the server.
    assert_eq!(scratch.terminate(&store, "idle").await, 1);
    the_dead_connection_is_skipped(&store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mysql_a_lent_connection_whose_session_ended_is_skipped() {
    let scratch = mysql::ScratchDatabase::new("lent").await;
    let mut options = scratch.options("kv");
    options.max_connections = 1;
    let store = mysql::open(options).await;
    store.put(b"k", b"v", PutOptions::default()).await.unwrap();
    let mut admin = scratch.admin().await;
    // The put's connection is lent on, idle on the server.
    assert_eq!(
        mysql::kill_idle_sessions(&mut admin, &scratch.name).await,
        1
    );
    the_dead_connection_is_skipped(&store).await;
}

/// The next read succeeds on a new connection, and the dead one is closed: found dead
/// by the read's first statement (`broken`) or, when the server took longer to end the
/// session than the connection stays lent, by sqlx's check as it went back to the
/// pool (a connection the pool closed on its own counts as `idle_timeout`).
async fn the_dead_connection_is_skipped(store: &dyn PooledStore) {
    assert_eq!(store.get(b"k").await.unwrap().unwrap().value, b"v");
    let m = settle(store).await;
    assert_eq!(m.closed.broken + m.closed.idle_timeout, 1, "{m:?}");
    assert_eq!((m.created, m.size), (2, 1), "{m:?}");
    store.close().await;
}
