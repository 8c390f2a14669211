//! Helpers shared by this crate's integration tests.
#![allow(dead_code, unreachable_pub)]

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant, UNIX_EPOCH};

use backend_sqlx::SqlxStore;
use storage_api::{Clock, ManualClock, PoolMetrics, PooledStore, StoreOptions};
use tempfile::TempDir;

/// The two kinds of database a SQLite store can open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    File,
    Memory,
}

pub const KINDS: [Kind; 2] = [Kind::File, Kind::Memory];

/// A directory for database files, removed when dropped.
pub fn temp_dir() -> TempDir {
    tempfile::tempdir().expect("temporary directory")
}

/// The URL of `path` as a SQLite database.
pub fn sqlite_url(path: &std::path::Path) -> String {
    format!("sqlite://{}", path.display())
}

/// Options for a store of `kind`; file databases live in `dir`.
pub fn options(kind: Kind, dir: &TempDir) -> StoreOptions {
    match kind {
        Kind::File => StoreOptions::new(sqlite_url(&db_path(dir))),
        Kind::Memory => StoreOptions::new("sqlite::memory:"),
    }
}

/// Options for a store of `kind` (see [`options`]) on a manual clock starting at
/// 1000 s after the epoch, and that clock.
pub fn options_on_manual_clock(kind: Kind, dir: &TempDir) -> (StoreOptions, Arc<ManualClock>) {
    let clock = Arc::new(ManualClock::new(UNIX_EPOCH + Duration::from_secs(1_000)));
    let mut options = options(kind, dir);
    options.clock = Arc::clone(&clock) as Arc<dyn Clock>;
    (options, clock)
}

/// The database file the file-kind options of `dir` use.
pub fn db_path(dir: &TempDir) -> PathBuf {
    dir.path().join("store.db")
}

/// Opens a store, failing the test with the error.
pub async fn open(options: StoreOptions) -> SqlxStore {
    match SqlxStore::open(options).await {
        Ok(store) => store,
        Err(e) => panic!("open failed: {e:?}"),
    }
}

/// Waits (up to 5 s) until no connection is in use and nobody waits for one:
/// returned connections come back through spawned tasks.
pub async fn settle(store: &dyn PooledStore) -> PoolMetrics {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let m = store.pool_metrics();
        if (m.in_use == 0 && m.pending == 0) || Instant::now() > deadline {
            return m;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Waits (up to `limit`) until `check` holds for the pool's metrics; returns the
/// last metrics seen.
pub async fn wait_for_metrics(
    store: &dyn PooledStore,
    limit: Duration,
    check: impl Fn(&PoolMetrics) -> bool,
) -> PoolMetrics {
    let deadline = Instant::now() + limit;
    loop {
        let m = store.pool_metrics();
        if check(&m) || Instant::now() > deadline {
            return m;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Asserts the quiet-pool invariant `idle + in_use == size <= max`.
pub fn assert_reconciles(m: &PoolMetrics) {
    assert_eq!(m.idle + m.in_use, m.size, "{m:?}");
    assert!(m.size <= m.max, "{m:?}");
}
