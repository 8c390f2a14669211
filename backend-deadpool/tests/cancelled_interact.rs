//! Trap 2: a future dropped while its closure still runs on a connection must not give
//! that connection back mid-transaction; it is rolled back once the closure finishes.

mod common;

use std::time::{Duration, Instant};

use common::{file_options, open, quiet};
use storage_api::{PooledStore, PutOptions, TxOptions};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_closure_leaves_no_transaction_behind() {
    let dir = tempfile::tempdir().unwrap();
    let mut options = file_options(dir.path(), "kv.db");
    options.max_connections = 1;
    let store = open(options).await;
    store
        .put(b"k", b"committed", PutOptions::default())
        .await
        .unwrap();

    let slow = store.with_connection(|conn| {
        conn.execute_batch(
            "BEGIN IMMEDIATE; \
             INSERT INTO pooledstore_kv (key, value, version) VALUES (x'726177', x'01', 1000); \
             UPDATE pooledstore_kv SET value = x'02' WHERE key = x'6b'",
        )
        .unwrap();
        std::thread::sleep(Duration::from_millis(400));
    });
    assert!(
        tokio::time::timeout(Duration::from_millis(50), slow)
            .await
            .is_err()
    );

    // The pool's only connection: the next operation must neither see nor join the
    // transaction the abandoned closure left open.
    assert_eq!(store.get(b"raw").await.unwrap(), None);
    assert_eq!(store.get(b"k").await.unwrap().unwrap().value, b"committed");
    store
        .put(b"after", b"1", PutOptions::default())
        .await
        .unwrap();

    let metrics = quiet(&store).await;
    assert_eq!(
        metrics.closed.total(),
        0,
        "rolled back and reused, not discarded"
    );
    assert_eq!((metrics.size, metrics.idle), (1, 1));
    store.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_begin_does_not_keep_the_write_lock() {
    let dir = tempfile::tempdir().unwrap();
    let mut options = file_options(dir.path(), "kv.db");
    options.max_connections = 3;
    options.busy_timeout = Duration::from_secs(3);
    let store = open(options).await;

    let mut holder = store.begin(TxOptions::default()).await.unwrap();
    // This BEGIN IMMEDIATE waits in SQLite's busy handler; give up on it.
    let abandoned = tokio::time::timeout(
        Duration::from_millis(200),
        store.begin(TxOptions::default()),
    )
    .await;
    assert!(abandoned.is_err());
    holder.put(b"k", b"v", PutOptions::default()).await.unwrap();
    holder.commit().await.unwrap();

    // The abandoned BEGIN now succeeds on its connection (SQLite's busy handler retries
    // at most 100 ms apart). Left in the pool, that connection would hold the write
    // lock and every writer would end up Busy.
    tokio::time::sleep(Duration::from_millis(400)).await;
    let started = Instant::now();
    store
        .put(b"k2", b"v2", PutOptions::default())
        .await
        .unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "the write waited {:?} for a lock nobody should hold",
        started.elapsed()
    );
    let metrics = quiet(&store).await;
    assert_eq!(metrics.idle, metrics.size);
    store
        .put(b"k3", b"v3", PutOptions::default())
        .await
        .unwrap();
    store.close().await;
}
