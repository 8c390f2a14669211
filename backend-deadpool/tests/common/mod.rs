//! Helpers shared by the backend's integration tests.
#![allow(dead_code)]

use std::path::Path;
use std::time::{Duration, Instant};

use backend_deadpool::DeadpoolStore;
use storage_api::{PoolMetrics, PooledStore, StoreOptions};

/// Options for a file database `name` inside `dir`, with test-friendly timeouts.
pub(crate) fn file_options(dir: &Path, name: &str) -> StoreOptions {
    let mut options = StoreOptions::new(format!("sqlite://{}", dir.join(name).display()));
    options.acquire_timeout = Duration::from_secs(5);
    options.close_grace = Duration::from_secs(5);
    options
}

/// Options for a private in-memory database.
pub(crate) fn memory_options() -> StoreOptions {
    let mut options = StoreOptions::new("sqlite::memory:");
    options.acquire_timeout = Duration::from_secs(5);
    options.close_grace = Duration::from_secs(5);
    options
}

/// Opens a store, failing the test with the error if it cannot.
pub(crate) async fn open(options: StoreOptions) -> DeadpoolStore {
    match DeadpoolStore::open(options).await {
        Ok(store) => store,
        Err(e) => panic!("open failed: {e:?}"),
    }
}

/// Polls `check` every 5 ms until it holds or `limit` passes; whether it held.
pub(crate) async fn eventually(limit: Duration, mut check: impl FnMut() -> bool) -> bool {
    let started = Instant::now();
    loop {
        if check() {
            return true;
        }
        if started.elapsed() >= limit {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Waits until no connection is checked out (background resets included).
pub(crate) async fn quiet(store: &DeadpoolStore) -> PoolMetrics {
    let settled = eventually(Duration::from_secs(5), || store.pool_metrics().in_use == 0).await;
    let metrics = store.pool_metrics();
    assert!(settled, "connections still in use: {metrics:?}");
    metrics
}

/// Takes a lock on the database at `path` from a connection of another thread with
/// `begin` (`BEGIN EXCLUSIVE`, say), holds it for `hold`, then commits. Returns once the
/// lock is held.
pub(crate) fn hold_lock(
    path: std::path::PathBuf,
    begin: &'static str,
    hold: Duration,
) -> std::thread::JoinHandle<()> {
    let (locked_tx, locked) = std::sync::mpsc::channel();
    let holder = std::thread::spawn(move || {
        let conn = backend_deadpool::rusqlite::Connection::open(&path).unwrap();
        conn.execute_batch(begin).unwrap();
        locked_tx.send(()).unwrap();
        std::thread::sleep(hold);
        conn.execute_batch("COMMIT").unwrap();
    });
    locked.recv().unwrap();
    holder
}
