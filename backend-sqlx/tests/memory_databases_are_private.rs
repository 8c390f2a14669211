//! Each `sqlite::memory:` store has its own database, shared by all its pooled
//! connections, and deleted when the store closes or is dropped.

mod common;

use std::time::Duration;

use common::{Kind, open, options, settle, temp_dir};
use storage_api::{PooledStore, PutOptions, StoreOptions, TxOptions};

#[tokio::test]
async fn two_memory_stores_do_not_share_data() {
    let a = open(StoreOptions::new("sqlite::memory:")).await;
    let b = open(StoreOptions::new("sqlite::memory:")).await;
    a.put(b"k", b"a", PutOptions::default()).await.unwrap();
    assert_eq!(b.get(b"k").await.unwrap(), None);
    assert_ne!(a.database_path(), b.database_path());
    a.close().await;
    b.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_pooled_connection_sees_the_same_database() {
    let dir = temp_dir();
    let mut opts = options(Kind::Memory, &dir);
    opts.max_connections = 4;
    let store = open(opts).await;
    store.put(b"k", b"v", PutOptions::default()).await.unwrap();
    // Four transactions at once force four distinct connections.
    let mut txs = Vec::new();
    for _ in 0..4 {
        txs.push(store.begin(TxOptions { read_only: true }).await.unwrap());
    }
    assert_eq!(store.pool_metrics().size, 4);
    for tx in &mut txs {
        assert_eq!(tx.get(b"k").await.unwrap().unwrap().value, b"v");
    }
    drop(txs);
    settle(&store).await;
    store.close().await;
}

#[tokio::test]
async fn the_private_database_is_removed_on_close_and_on_drop() {
    let store = open(StoreOptions::new("sqlite::memory:")).await;
    let path = store.database_path().unwrap().to_path_buf();
    let dir = path.parent().unwrap().to_path_buf();
    store.put(b"k", b"v", PutOptions::default()).await.unwrap();
    assert!(path.exists());
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&dir).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700, "directory mode {mode:o}");
    }
    assert!(!store.capabilities().persistent);
    store.close().await;
    assert!(!dir.exists(), "{} left behind", dir.display());

    let store = open(StoreOptions::new("sqlite::memory:")).await;
    let dir = store
        .database_path()
        .unwrap()
        .parent()
        .unwrap()
        .to_path_buf();
    store.put(b"k", b"v", PutOptions::default()).await.unwrap();
    drop(store);
    // Connections go back through spawned tasks; the directory goes with the pool.
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while dir.exists() && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(!dir.exists(), "{} left behind after drop", dir.display());
}
