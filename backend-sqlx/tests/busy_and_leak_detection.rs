//! Lock contention maps to `Busy` and is counted; transactions held past the leak
//! threshold are reported once.

mod common;

use std::time::{Duration, Instant};

use common::{KINDS, open, options, temp_dir};
use storage_api::{ErrorKind, PooledStore, PutOptions, TxOptions};

#[tokio::test]
async fn a_second_writer_gets_busy_at_once_with_a_zero_busy_timeout() {
    for kind in KINDS {
        let dir = temp_dir();
        let mut opts = options(kind, &dir);
        opts.busy_timeout = Duration::ZERO;
        let store = open(opts).await;
        let mut writer = store.begin(TxOptions::default()).await.unwrap();
        writer.put(b"k", b"1", PutOptions::default()).await.unwrap();

        let started = Instant::now();
        let err = store
            .put(b"k", b"2", PutOptions::default())
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Busy, "{kind:?}: {err:?}");
        assert!(err.is_retryable());
        assert!(started.elapsed() < Duration::from_secs(1), "{kind:?}");
        let err = store.begin(TxOptions::default()).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Busy, "{kind:?}: {err:?}");
        assert_eq!(store.pool_metrics().busy, 2, "{kind:?}");

        writer.commit().await.unwrap();
        store.put(b"k", b"3", PutOptions::default()).await.unwrap();
        assert_eq!(store.get(b"k").await.unwrap().unwrap().value, b"3");
        store.close().await;
    }
}

#[tokio::test]
async fn a_writer_waits_for_the_lock_within_the_busy_timeout() {
    for kind in KINDS {
        let dir = temp_dir();
        let mut opts = options(kind, &dir);
        opts.busy_timeout = Duration::from_secs(10);
        let store = std::sync::Arc::new(open(opts).await);
        let mut writer = store.begin(TxOptions::default()).await.unwrap();
        writer.put(b"k", b"1", PutOptions::default()).await.unwrap();
        let second = {
            let store = std::sync::Arc::clone(&store);
            tokio::spawn(async move { store.put(b"k", b"2", PutOptions::default()).await })
        };
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert!(
            !second.is_finished(),
            "{kind:?}: the second writer did not wait"
        );
        writer.commit().await.unwrap();
        let v2 = second.await.unwrap().unwrap();
        let entry = store.get(b"k").await.unwrap().unwrap();
        assert_eq!((entry.value, entry.version), (b"2".to_vec(), v2));
        assert_eq!(store.pool_metrics().busy, 0);
        store.close().await;
    }
}

#[tokio::test]
async fn transactions_held_past_the_threshold_are_counted_once() {
    for kind in KINDS {
        let dir = temp_dir();
        let mut opts = options(kind, &dir);
        opts.leak_detection_threshold = Some(Duration::from_millis(150));
        let store = open(opts).await;

        // Short transactions are not leaks.
        for _ in 0..3 {
            let tx = store.begin(TxOptions::default()).await.unwrap();
            tx.commit().await.unwrap();
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(store.pool_metrics().leaks, 0, "{kind:?}");

        let held = store.begin(TxOptions { read_only: true }).await.unwrap();
        tokio::time::sleep(Duration::from_millis(600)).await;
        assert_eq!(store.pool_metrics().leaks, 1, "{kind:?}: counted once");
        drop(held);
        store.close().await;
    }
}
