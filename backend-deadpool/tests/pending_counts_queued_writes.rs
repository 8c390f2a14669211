//! Writes queued behind the single writer count as pending in the pool's metrics, so
//! saturation shows there and not only as latency.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{eventually, file_options, open, quiet};
use storage_api::{PooledStore, PutOptions, TxOptions};

const WRITERS: u32 = 6;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_waiting_for_the_writer_are_pending() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(open(file_options(dir.path(), "kv.db")).await);
    // A transaction holds the write lock, so the writer's first group waits for it and
    // the writes after it queue.
    let mut tx = store.begin(TxOptions::default()).await.unwrap();
    tx.put(b"held", b"1", PutOptions::default()).await.unwrap();
    let first = {
        let store = Arc::clone(&store);
        tokio::spawn(async move { store.put(b"first", b"v", PutOptions::default()).await })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    let writes: Vec<_> = (0..WRITERS)
        .map(|i| {
            let store = Arc::clone(&store);
            tokio::spawn(async move {
                store
                    .put(&[b'k', i as u8], b"v", PutOptions::default())
                    .await
            })
        })
        .collect();
    let queued = eventually(Duration::from_secs(5), || {
        store.pool_metrics().pending >= WRITERS
    })
    .await;
    let seen = store.pool_metrics();
    assert!(
        queued,
        "pending {} while {WRITERS} writes wait: {seen:?}",
        seen.pending
    );
    tx.commit().await.unwrap();
    first.await.unwrap().unwrap();
    for write in writes {
        write.await.unwrap().unwrap();
    }
    assert_eq!(quiet(&store).await.pending, 0);
    store.close().await;
}
