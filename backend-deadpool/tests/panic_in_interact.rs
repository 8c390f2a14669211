//! Trap 1: a panic inside a closure run on a connection must not poison the pool or
//! break later operations; the connection it happened on is discarded, never reused.

mod common;

use std::time::Duration;

use common::{file_options, memory_options, open, quiet};
use storage_api::{ErrorKind, PooledStore, PutOptions};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panic_mid_transaction_discards_the_connection() {
    let dir = tempfile::tempdir().unwrap();
    let mut options = file_options(dir.path(), "kv.db");
    options.max_connections = 1;
    options.acquire_timeout = Duration::from_secs(2);
    let store = open(options).await;
    store
        .put(b"before", b"1", PutOptions::default())
        .await
        .unwrap();
    let created = store.pool_metrics().created;

    let err = store
        .with_connection(|conn| {
            conn.execute_batch(
                "BEGIN IMMEDIATE; \
                 INSERT INTO pooledstore_kv (key, value, version) VALUES (x'6c6f7374', x'00', 999)",
            )
            .unwrap();
            panic!("boom inside interact");
        })
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Backend);

    // The only slot of the pool must come back usable, outside that transaction.
    for i in 0..20u8 {
        store
            .put(&[b'k', i], &[i], PutOptions::default())
            .await
            .unwrap();
        assert_eq!(store.get(&[b'k', i]).await.unwrap().unwrap().value, [i]);
    }
    assert_eq!(store.get(b"lost").await.unwrap(), None);
    assert!(store.get(b"before").await.unwrap().is_some());

    let metrics = quiet(&store).await;
    assert_eq!(metrics.closed.broken, 1, "{metrics:?}");
    assert_eq!(
        metrics.created,
        created + 1,
        "the panicked connection was replaced"
    );
    store.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repeated_panics_never_take_the_store_down() {
    let mut options = memory_options();
    options.max_connections = 2;
    let store = open(options).await;
    for round in 0..5u8 {
        let panicked = store
            .with_connection(move |_| -> () { panic!("round {round}") })
            .await;
        assert_eq!(panicked.unwrap_err().kind(), ErrorKind::Backend);
        store
            .put(b"k", &[round], PutOptions::default())
            .await
            .unwrap();
        assert_eq!(store.get(b"k").await.unwrap().unwrap().value, [round]);
    }
    let metrics = quiet(&store).await;
    assert_eq!(metrics.closed.broken, 5);
    assert_eq!(metrics.idle + metrics.in_use, metrics.size);
    assert!(store.health_check().await.healthy);
    store.close().await;
}
