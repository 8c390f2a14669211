//! With SQLite's automatic checkpoint off (it would stall every queued writer inside
//! one commit), the store checkpoints the write-ahead log itself, so the log stays
//! bounded under a long run of writes.

mod common;

use common::{Kind, db_path, open, options, temp_dir};
use storage_api::{PooledStore, PutOptions, TxOptions};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_log_stays_bounded_under_many_commits() {
    let dir = temp_dir();
    let store = open(options(Kind::File, &dir)).await;
    let wal = std::path::PathBuf::from(format!("{}-wal", db_path(&dir).display()));
    let value = vec![7u8; 512];
    let mut largest = 0;
    // 15000 commits of a few pages each: about 170 MB of log if nothing rewound it
    // (the writer rewinds it every 2048 or so).
    for i in 0..15000u32 {
        let key = format!("key/{:05}", i % 3000);
        if i % 3 == 0 {
            let mut tx = store.begin(TxOptions::default()).await.unwrap();
            tx.put(key.as_bytes(), &value, PutOptions::default())
                .await
                .unwrap();
            tx.commit().await.unwrap();
        } else {
            store
                .put(key.as_bytes(), &value, PutOptions::default())
                .await
                .unwrap();
        }
        if i % 500 == 0 {
            largest = largest.max(std::fs::metadata(&wal).map_or(0, |m| m.len()));
        }
    }
    largest = largest.max(std::fs::metadata(&wal).map_or(0, |m| m.len()));
    // Unbounded, the log would reach about 170 MB. A third of these commits are
    // transactions committed on pooled connections beside the writer, which hold back
    // the checkpoints' progress now and then: peaks measured 20-52 MB. The bound is
    // what "bounded" means here, with room for a busy machine, not a target.
    assert!(
        largest < 64 << 20,
        "the write-ahead log grew to {largest} bytes"
    );
    store.close().await;
    assert_eq!(std::fs::metadata(&wal).map_or(0, |m| m.len()), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_log_stays_bounded_under_concurrent_writers_and_readers() {
    let dir = temp_dir();
    let store = std::sync::Arc::new(open(options(Kind::File, &dir)).await);
    let wal = std::path::PathBuf::from(format!("{}-wal", db_path(&dir).display()));
    let tasks: Vec<_> = (0..16u32)
        .map(|t| {
            let store = std::sync::Arc::clone(&store);
            tokio::spawn(async move {
                let value = vec![t as u8; 512];
                for i in 0..400u32 {
                    let key = format!("key/{:05}", (i * 16 + t) % 3000);
                    if t % 4 == 0 {
                        store.get(key.as_bytes()).await.unwrap();
                    } else {
                        store
                            .put(key.as_bytes(), &value, PutOptions::default())
                            .await
                            .unwrap();
                    }
                }
            })
        })
        .collect();
    let mut largest = 0;
    for task in tasks {
        task.await.unwrap();
        largest = largest.max(std::fs::metadata(&wal).map_or(0, |m| m.len()));
    }
    // A few more writes after the burst let the writer rewind the log.
    for i in 0..1200u32 {
        let key = format!("key/{:05}", i);
        store
            .put(key.as_bytes(), b"v", PutOptions::default())
            .await
            .unwrap();
    }
    // SQLite rewinds the log in place, so the file keeps its high-water size: both
    // checks bound that mark, during the burst and after the writes that follow it.
    // (On two loaded cores background checkpoints lag, and the mark has reached
    // about 17 MB.)
    let last = std::fs::metadata(&wal).map_or(0, |m| m.len());
    assert!(
        largest < 32 << 20,
        "the write-ahead log grew to {largest} bytes"
    );
    assert!(last < 32 << 20, "the write-ahead log ended at {last} bytes");
    store.close().await;
}
