//! The key-value operations on both database kinds, end to end through the pool.

mod common;

use std::time::Duration;

use common::{file_options, memory_options, open};
use storage_api::{
    Condition, ErrorKind, KeyRange, ManualClock, PooledStore, PutOptions, ScanOptions, TxOptions,
    WriteOp, WriteResult,
};

async fn exercise(store: &dyn PooledStore) {
    assert_eq!(store.get(b"a").await.unwrap(), None);
    let v1 = store.put(b"a", b"1", PutOptions::default()).await.unwrap();
    let v2 = store
        .put(b"a", b"", PutOptions::if_version(v1))
        .await
        .unwrap();
    assert!(v2 > v1);
    let entry = store.get(b"a").await.unwrap().unwrap();
    assert_eq!((entry.value, entry.version), (Vec::new(), v2));
    let stale = store.put(b"a", b"x", PutOptions::if_version(v1)).await;
    assert_eq!(stale.unwrap_err().kind(), ErrorKind::ConditionFailed);
    assert!(store.delete(b"a", Condition::Version(v2)).await.unwrap());
    assert!(!store.delete(b"a", Condition::Any).await.unwrap());
    let v3 = store
        .put(b"a", &[0u8, 255], PutOptions::if_absent())
        .await
        .unwrap();
    assert!(v3 > v2, "versions keep increasing across a delete");

    let ops = vec![
        WriteOp::put("b", "2"),
        WriteOp::put("c", "3"),
        WriteOp::delete("a"),
    ];
    let results = store.batch(ops).await.unwrap();
    assert!(matches!(
        results[..],
        [
            WriteResult::Put(_),
            WriteResult::Put(_),
            WriteResult::Delete(true)
        ]
    ));
    let failing = vec![
        WriteOp::put("d", "4"),
        WriteOp::Delete {
            key: b"zz".to_vec(),
            condition: Condition::Version(v3),
        },
    ];
    let err = store.batch(failing).await.unwrap_err();
    assert_eq!(
        (err.kind(), err.batch_index()),
        (ErrorKind::ConditionFailed, Some(1))
    );
    assert_eq!(
        store.get(b"d").await.unwrap(),
        None,
        "a failed batch applies nothing"
    );

    for key in ["p1", "p2", "p3", "q1"] {
        store
            .put(key.as_bytes(), b"v", PutOptions::default())
            .await
            .unwrap();
    }
    let keys = |entries: Vec<storage_api::Entry>| {
        entries
            .into_iter()
            .map(|e| String::from_utf8(e.key).unwrap())
            .collect::<Vec<_>>()
    };
    let page = store
        .scan(ScanOptions::prefix("p").with_limit(2))
        .await
        .unwrap();
    assert_eq!(keys(page), ["p1", "p2"]);
    let next = store
        .scan(ScanOptions::prefix("p").with_after("p2"))
        .await
        .unwrap();
    assert_eq!(keys(next), ["p3"]);
    let range = store
        .scan(ScanOptions::range(KeyRange::between("c", "p2")))
        .await
        .unwrap();
    assert_eq!(keys(range), ["c", "p1"]);

    let mut tx = store.begin(TxOptions::default()).await.unwrap();
    tx.put(b"t", b"in-tx", PutOptions::default()).await.unwrap();
    assert_eq!(tx.get(b"t").await.unwrap().unwrap().value, b"in-tx");
    tx.commit().await.unwrap();
    assert_eq!(store.get(b"t").await.unwrap().unwrap().value, b"in-tx");
    let mut ro = store.begin(TxOptions { read_only: true }).await.unwrap();
    assert_eq!(ro.scan(ScanOptions::prefix("t")).await.unwrap().len(), 1);
    ro.rollback().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operations_work_on_a_file_database() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(file_options(dir.path(), "kv.db")).await;
    exercise(&store).await;
    assert!(store.capabilities().persistent);
    store.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operations_work_on_a_memory_database() {
    let store = open(memory_options()).await;
    exercise(&store).await;
    assert!(!store.capabilities().persistent);
    store.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ttl_uses_the_store_clock_and_purge_counts() {
    let clock = ManualClock::default();
    let mut options = memory_options();
    options.clock = std::sync::Arc::new(clock.clone());
    let store = open(options).await;
    let ttl = PutOptions::default().with_ttl(Duration::from_secs(10));
    store.put(b"short", b"v", ttl).await.unwrap();
    store
        .put(b"long", b"v", PutOptions::default())
        .await
        .unwrap();
    clock.advance(Duration::from_secs(9));
    assert!(store.get(b"short").await.unwrap().is_some());
    clock.advance(Duration::from_secs(1));
    assert_eq!(
        store.get(b"short").await.unwrap(),
        None,
        "expired at exactly expires_at"
    );
    store
        .put(
            b"short",
            b"again",
            PutOptions::if_absent().with_ttl(Duration::from_secs(10)),
        )
        .await
        .unwrap();
    clock.advance(Duration::from_secs(11));
    assert_eq!(store.scan(ScanOptions::default()).await.unwrap().len(), 1);
    assert_eq!(store.purge_expired().await.unwrap(), 1);
    assert_eq!(store.purge_expired().await.unwrap(), 0);
    store.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn data_survives_close_and_reopen_of_a_file() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(file_options(dir.path(), "kv.db")).await;
    let version = store
        .put(b"k", b"kept", PutOptions::default())
        .await
        .unwrap();
    store.close().await;
    let reopened = open(file_options(dir.path(), "kv.db")).await;
    let entry = reopened.get(b"k").await.unwrap().unwrap();
    assert_eq!((entry.value, entry.version), (b"kept".to_vec(), version));
    let next = reopened
        .put(b"k", b"v2", PutOptions::default())
        .await
        .unwrap();
    assert!(next > version, "the version counter persists");
    reopened.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_stores_are_private() {
    let first = open(memory_options()).await;
    let second = open(memory_options()).await;
    first
        .put(b"k", b"mine", PutOptions::default())
        .await
        .unwrap();
    assert_eq!(second.get(b"k").await.unwrap(), None);
    first.close().await;
    second.close().await;
}
