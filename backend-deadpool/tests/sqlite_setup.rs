//! Every connection gets the store's pragmas; WAL is really on for files; an in-memory
//! database outlives the pool connections that come and go.

mod common;

use std::sync::{Arc, Barrier};
use std::time::Duration;

use backend_deadpool::DeadpoolStore;
use common::{eventually, file_options, memory_options, open};
use storage_api::{PooledStore, PutOptions, Synchronous};

/// `(journal_mode, busy_timeout ms, synchronous)` of one pooled connection, answered
/// once `together` callers hold a connection each.
async fn pragmas(store: &DeadpoolStore, together: Arc<Barrier>) -> (String, i64, i64) {
    store
        .with_connection(move |conn| {
            together.wait();
            let pragma = |name: &str| format!("PRAGMA {name}");
            let mode = conn.query_row(&pragma("journal_mode"), [], |r| r.get(0));
            let busy = conn.query_row(&pragma("busy_timeout"), [], |r| r.get(0));
            let sync = conn.query_row(&pragma("synchronous"), [], |r| r.get(0));
            (mode.unwrap(), busy.unwrap(), sync.unwrap())
        })
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_connection_gets_wal_busy_timeout_and_synchronous() {
    let dir = tempfile::tempdir().unwrap();
    let mut options = file_options(dir.path(), "kv.db");
    options.max_connections = 3;
    options.busy_timeout = Duration::from_millis(1234);
    options.sqlite.synchronous = Synchronous::Full;
    let store = Arc::new(open(options).await);
    // Three at once, so three different connections answer.
    let together = Arc::new(Barrier::new(3));
    let answers: Vec<_> = (0..3)
        .map(|_| {
            let (store, together) = (Arc::clone(&store), Arc::clone(&together));
            tokio::spawn(async move { pragmas(&store, together).await })
        })
        .collect();
    for answer in answers {
        assert_eq!(answer.await.unwrap(), ("wal".to_owned(), 1234, 2));
    }
    assert_eq!(store.pool_metrics().created, 3);

    store.put(b"k", b"v", PutOptions::default()).await.unwrap();
    let wal = dir.path().join("kv.db-wal");
    assert!(wal.exists(), "writes go through the WAL file");
    store.close().await;
    let left = std::fs::metadata(&wal).map(|m| m.len()).unwrap_or(0);
    assert_eq!(left, 0, "close checkpoints the WAL");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_wal_the_rollback_journal_is_used() {
    let dir = tempfile::tempdir().unwrap();
    let mut options = file_options(dir.path(), "kv.db");
    options.sqlite.enable_wal = false;
    options.sqlite.synchronous = Synchronous::Normal;
    let store = open(options).await;
    let (mode, busy, sync) = pragmas(&store, Arc::new(Barrier::new(1))).await;
    assert_eq!((mode.as_str(), busy, sync), ("delete", 5000, 1));
    store.put(b"k", b"v", PutOptions::default()).await.unwrap();
    assert!(!dir.path().join("kv.db-wal").exists());
    store.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_memory_database_outlives_every_pool_connection() {
    let mut options = memory_options();
    options.max_connections = 2;
    options.max_lifetime = Some(Duration::from_millis(150));
    let store = open(options).await;
    let version = store
        .put(b"k", b"kept", PutOptions::default())
        .await
        .unwrap();
    let created = store.pool_metrics().created;
    let retired = eventually(Duration::from_secs(3), || {
        let m = store.pool_metrics();
        m.size == 0 && m.closed.max_lifetime >= created
    })
    .await;
    assert!(retired, "{:?}", store.pool_metrics());

    let entry = store.get(b"k").await.unwrap().unwrap();
    assert_eq!((entry.value, entry.version), (b"kept".to_vec(), version));
    store.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_readers_are_not_blocked_by_an_open_write_transaction() {
    let mut options = memory_options();
    options.busy_timeout = Duration::from_secs(5);
    let store = open(options).await;
    store
        .put(b"k", b"old", PutOptions::default())
        .await
        .unwrap();
    let mut tx = store
        .begin(storage_api::TxOptions::default())
        .await
        .unwrap();
    tx.put(b"k", b"new", PutOptions::default()).await.unwrap();

    let started = std::time::Instant::now();
    assert_eq!(store.get(b"k").await.unwrap().unwrap().value, b"old");
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
    tx.commit().await.unwrap();
    assert_eq!(store.get(b"k").await.unwrap().unwrap().value, b"new");
    store.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_memory_database_is_private_and_removed_at_close() {
    let store = open(memory_options()).await;
    let path = store
        .with_connection(|conn| conn.path().map(std::path::PathBuf::from))
        .await
        .unwrap()
        .expect("a private database file");
    assert!(path.exists());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let dir = path.parent().unwrap();
        let mode = std::fs::metadata(dir).unwrap().permissions().mode();
        assert_eq!(
            mode & 0o077,
            0,
            "only the owner can read the directory: {mode:o}"
        );
    }
    store.close().await;
    assert!(!path.exists());
    assert!(!path.parent().unwrap().exists());
}
