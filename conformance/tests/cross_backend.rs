//! The two SQLite backends share one file format: what one writes and closes, the other
//! reads back exactly — entries, versions and expiry — and versions keep rising.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::Backend;
use storage_api::{Clock, Condition, ManualClock, PutOptions, ScanOptions, StoreOptions, WriteOp};

fn options(dir: &tempfile::TempDir, clock: &ManualClock) -> StoreOptions {
    let path = dir.path().join("shared.db");
    let mut options = StoreOptions::new(format!("sqlite://{}", path.display()));
    options.clock = Arc::new(clock.clone());
    options.max_connections = 2;
    options
}

async fn hand_over(writer: Backend, reader: Backend) {
    let dir = tempfile::tempdir().expect("temporary directory");
    let clock = ManualClock::default();
    let start = clock.now();
    let options = options(&dir, &clock);
    let plain = PutOptions::default();

    let store = writer.open(options.clone()).await.expect("writer opens");
    store.put(b"a", b"1", plain).await.expect("put a");
    let va = store.put(b"a", b"2", plain).await.expect("put a again");
    let vc = store.put(b"c", b"gone", plain).await.expect("put c");
    assert!(store.delete(b"c", Condition::Any).await.expect("delete c"));
    let ttl = plain.with_ttl(Duration::from_secs(60));
    let vt = store.put(b"t", b"expiring", ttl).await.expect("put t");
    let binary_key = [0u8, 0xFF];
    let binary_value = [0xFFu8, 0, 0x80];
    let vb = store
        .put(&binary_key, &binary_value, plain)
        .await
        .expect("put binary");
    store
        .batch(vec![WriteOp::put("d", "4"), WriteOp::put("e", "")])
        .await
        .expect("batch");
    store.close().await;

    let store = reader.open(options.clone()).await.expect("reader opens");
    let a = store.get(b"a").await.expect("get a").expect("a survives");
    assert_eq!((a.value.as_slice(), a.version), (&b"2"[..], va));
    assert!(
        store.get(b"c").await.expect("get c").is_none(),
        "deleted c stays deleted"
    );
    let t = store
        .get(b"t")
        .await
        .expect("get t")
        .expect("t not yet expired");
    assert_eq!(t.version, vt);
    assert_eq!(t.expires_at, Some(start + Duration::from_secs(60)));
    let b = store
        .get(&binary_key)
        .await
        .expect("get binary")
        .expect("binary key");
    assert_eq!((b.value.as_slice(), b.version), (&binary_value[..], vb));
    let keys: Vec<Vec<u8>> = store
        .scan(ScanOptions::default())
        .await
        .expect("scan")
        .into_iter()
        .map(|e| e.key)
        .collect();
    let expected: Vec<Vec<u8>> = vec![
        binary_key.to_vec(),
        b"a".to_vec(),
        b"d".to_vec(),
        b"e".to_vec(),
        b"t".to_vec(),
    ];
    assert_eq!(keys, expected, "bytewise order across backends");

    let vc2 = store.put(b"c", b"back", plain).await.expect("put c again");
    assert!(
        vc2 > vc,
        "a deleted key's next version rises across backends"
    );
    let va2 = store
        .put(b"a", b"3", PutOptions::if_version(va))
        .await
        .expect("swap a with the version the other backend gave");
    assert!(va2 > va);
    clock.advance(Duration::from_secs(61));
    assert!(store.get(b"t").await.expect("get t").is_none(), "t expires");
    assert_eq!(store.purge_expired().await.expect("purge"), 1);
    store.close().await;

    let store = writer.open(options).await.expect("writer reopens");
    let a = store.get(b"a").await.expect("get a").expect("a");
    assert_eq!((a.value.as_slice(), a.version), (&b"3"[..], va2));
    let va3 = store.put(b"a", b"4", plain).await.expect("put a");
    assert!(va3 > va2, "versions keep rising after the hand back");
    store.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlx_writes_deadpool_reads() {
    hand_over(Backend::Sqlx, Backend::Deadpool).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deadpool_writes_sqlx_reads() {
    hand_over(Backend::Deadpool, Backend::Sqlx).await;
}
