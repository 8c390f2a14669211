//! Transactions see their own writes; dropping one (or a future of one) rolls back
//! and gives the connection back at once; read-only ones refuse writes.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{KINDS, open, options, settle, temp_dir};
use futures::FutureExt;
use storage_api::backend::Checked;
use storage_api::{Condition, ErrorKind, PooledStore, PutOptions, ScanOptions, TxOptions};

fn pool_of_one(kind: common::Kind, dir: &tempfile::TempDir) -> storage_api::StoreOptions {
    let mut opts = options(kind, dir);
    opts.max_connections = 1;
    opts.acquire_timeout = Duration::from_secs(2);
    opts.busy_timeout = Duration::from_millis(500);
    opts
}

#[tokio::test]
async fn a_transaction_sees_its_own_writes_and_commits_them() {
    for kind in KINDS {
        let dir = temp_dir();
        let store = open(options(kind, &dir)).await;
        store
            .put(b"old", b"1", PutOptions::default())
            .await
            .unwrap();
        let mut tx = store.begin(TxOptions::default()).await.unwrap();
        let v = tx.put(b"new", b"2", PutOptions::if_absent()).await.unwrap();
        assert!(tx.delete(b"old", Condition::Any).await.unwrap());
        assert_eq!(tx.get(b"new").await.unwrap().unwrap().version, v);
        assert_eq!(tx.get(b"old").await.unwrap(), None);
        let keys: Vec<_> = tx.scan(ScanOptions::default()).await.unwrap();
        assert_eq!(keys.len(), 1);
        // Others still see the state before the transaction.
        assert_eq!(store.get(b"new").await.unwrap(), None);
        assert!(store.get(b"old").await.unwrap().is_some());
        tx.commit().await.unwrap();
        assert_eq!(store.get(b"new").await.unwrap().unwrap().version, v);
        assert_eq!(store.get(b"old").await.unwrap(), None);
        store.close().await;
    }
}

#[tokio::test]
async fn dropping_a_transaction_rolls_back_and_frees_the_connection() {
    for kind in KINDS {
        let dir = temp_dir();
        let store = open(pool_of_one(kind, &dir)).await;
        let mut tx = store.begin(TxOptions::default()).await.unwrap();
        tx.put(b"gone", b"x", PutOptions::default()).await.unwrap();
        assert_eq!(store.pool_metrics().in_use, 1);
        drop(tx);

        // The single connection (and the write lock) is free again: a write succeeds
        // well within the acquire and busy timeouts.
        let started = Instant::now();
        store
            .put(b"after", b"y", PutOptions::default())
            .await
            .unwrap();
        assert!(started.elapsed() < Duration::from_secs(1), "{kind:?}");
        assert_eq!(store.get(b"gone").await.unwrap(), None, "{kind:?}");
        let m = settle(&store).await;
        assert_eq!((m.in_use, m.size), (0, 1), "{kind:?}: {m:?}");
        store.close().await;
    }
}

#[tokio::test]
async fn explicit_rollback_discards_writes() {
    for kind in KINDS {
        let dir = temp_dir();
        let store = open(pool_of_one(kind, &dir)).await;
        let mut tx = store.begin(TxOptions::default()).await.unwrap();
        tx.put(b"gone", b"x", PutOptions::default()).await.unwrap();
        tx.rollback().await.unwrap();
        assert_eq!(store.get(b"gone").await.unwrap(), None);
        store.close().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn futures_dropped_mid_way_leak_no_connection_and_no_write() {
    for kind in KINDS {
        let dir = temp_dir();
        let store = open(pool_of_one(kind, &dir)).await;

        // A `begin` polled once and dropped.
        let begin = store.begin(TxOptions::default()).now_or_never();
        drop(begin);
        // A put inside a transaction, polled once and dropped, then the transaction.
        let mut tx = store.begin(TxOptions::default()).await.unwrap();
        tx.put(b"a", b"1", PutOptions::default()).await.unwrap();
        let put = tx.put(b"b", b"2", PutOptions::default()).now_or_never();
        drop(put);
        drop(tx);
        // A store-level put polled once and dropped.
        let put = store.put(b"c", b"3", PutOptions::default()).now_or_never();
        drop(put);
        // A put cut off by a timeout while it waits for the connection.
        let holder = store.begin(TxOptions { read_only: true }).await.unwrap();
        let waited = tokio::time::timeout(
            Duration::from_millis(50),
            store.put(b"d", b"4", PutOptions::default()),
        )
        .await;
        assert!(waited.is_err(), "{kind:?}: the put should still be waiting");
        drop(holder);

        let started = Instant::now();
        store.put(b"e", b"5", PutOptions::default()).await.unwrap();
        assert!(started.elapsed() < Duration::from_secs(1), "{kind:?}");
        for key in [&b"a"[..], b"b", b"d"] {
            assert_eq!(store.get(key).await.unwrap(), None, "{kind:?}: {key:?}");
        }
        let m = settle(&store).await;
        assert_eq!((m.in_use, m.pending, m.size), (0, 0, 1), "{kind:?}: {m:?}");
        store.close().await;
    }
}

#[tokio::test]
async fn read_only_transactions_reject_writes_before_touching_the_database() {
    for kind in KINDS {
        let dir = temp_dir();
        let store = Checked::new(Arc::new(open(options(kind, &dir)).await));
        store.put(b"k", b"v", PutOptions::default()).await.unwrap();
        let mut tx = store.begin(TxOptions { read_only: true }).await.unwrap();
        let err = tx.put(b"k", b"w", PutOptions::default()).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput);
        let err = tx.delete(b"k", Condition::Any).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput);
        assert_eq!(tx.get(b"k").await.unwrap().unwrap().value, b"v");
        tx.commit().await.unwrap();
        assert_eq!(store.get(b"k").await.unwrap().unwrap().value, b"v");
        store.close().await;
    }
}
