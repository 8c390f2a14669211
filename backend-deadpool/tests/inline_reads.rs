//! Short reads run on the async thread with the busy handler off; a locked database
//! sends them to a blocking thread that waits the full `busy_timeout`, and the
//! connection keeps its `busy_timeout` afterwards.

mod common;

use std::time::{Duration, Instant};

use common::{file_options, hold_lock, open, quiet};
use storage_api::{PooledStore, PutOptions, ScanOptions};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_behind_an_exclusive_lock_waits_instead_of_failing_busy() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kv.db");
    let mut options = file_options(dir.path(), "kv.db");
    // The rollback journal: a writer's EXCLUSIVE lock keeps readers out.
    options.sqlite.enable_wal = false;
    options.max_connections = 1;
    let store = open(options).await;
    store.put(b"k", b"v", PutOptions::default()).await.unwrap();

    let holder = hold_lock(path, "BEGIN EXCLUSIVE", Duration::from_millis(300));

    let started = Instant::now();
    let entry = store.get(b"k").await.unwrap().unwrap();
    assert_eq!(entry.value, b"v");
    let found = store.scan(ScanOptions::prefix("k")).await.unwrap();
    assert_eq!(found.len(), 1);
    assert!(
        started.elapsed() >= Duration::from_millis(200),
        "the read did not wait for the lock: {:?}",
        started.elapsed()
    );
    holder.join().unwrap();

    // The busy handler is back on the connection the reads used.
    let busy_ms = store
        .with_connection(|conn| conn.query_row("PRAGMA busy_timeout", [], |r| r.get::<_, i64>(0)))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(busy_ms, 5000);
    let metrics = quiet(&store).await;
    assert_eq!(metrics.busy, 0, "{metrics:?}");
    store.close().await;
}

#[tokio::test]
async fn closures_after_a_short_read_run_with_the_full_busy_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let mut options = file_options(dir.path(), "kv.db");
    options.max_connections = 1;
    let store = open(options).await;
    store.put(b"k", b"v", PutOptions::default()).await.unwrap();
    let busy_timeout = || {
        store.with_connection(|conn| {
            conn.query_row("PRAGMA busy_timeout", [], |r| r.get::<_, i64>(0))
        })
    };
    for _ in 0..2 {
        // Answered on the async thread, which leaves the busy handler off for the next
        // short read; anything else on the connection gets it back first.
        assert_eq!(store.get(b"k").await.unwrap().unwrap().value, b"v");
        assert_eq!(busy_timeout().await.unwrap().unwrap(), 5000);
    }
    store.close().await;
}
