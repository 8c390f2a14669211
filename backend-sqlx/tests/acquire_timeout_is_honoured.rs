//! An operation that cannot get a connection fails with `Timeout` after roughly the
//! acquire timeout, is counted, and the pool recovers.

mod common;

use std::time::{Duration, Instant};

use common::{KINDS, open, options, settle, temp_dir};
use storage_api::{ErrorKind, PooledStore, PutOptions, TxOptions};

const ACQUIRE_TIMEOUT: Duration = Duration::from_millis(500);

#[tokio::test]
async fn third_caller_times_out_when_two_transactions_hold_the_pool() {
    for kind in KINDS {
        let dir = temp_dir();
        let mut opts = options(kind, &dir);
        opts.max_connections = 2;
        opts.acquire_timeout = ACQUIRE_TIMEOUT;
        let store = open(opts).await;
        let first = store.begin(TxOptions::default()).await.unwrap();
        let second = store
            .begin(TxOptions { read_only: true })
            .await
            .unwrap_or_else(|e| panic!("{kind:?}: {e:?}"));

        let started = Instant::now();
        let err = store.get(b"k").await.unwrap_err();
        let waited = started.elapsed();
        assert_eq!(err.kind(), ErrorKind::Timeout, "{kind:?}: {err:?}");
        assert!(err.is_retryable());
        assert!(err.message().contains("acquiring a connection"), "{err}");
        assert!(
            waited >= ACQUIRE_TIMEOUT.mul_f64(0.9),
            "{kind:?}: {waited:?}"
        );
        assert!(waited < ACQUIRE_TIMEOUT * 3, "{kind:?}: {waited:?}");

        let m = store.pool_metrics();
        assert_eq!(m.timeouts, 1, "{kind:?}: {m:?}");
        assert_eq!(m.pending, 0, "{kind:?}: {m:?}");
        assert_eq!((m.size, m.in_use), (2, 2), "{kind:?}: {m:?}");
        assert!(m.acquire_wait.sum >= 0.45, "{m:?}");

        drop(first);
        drop(second);
        store.put(b"k", b"v", PutOptions::default()).await.unwrap();
        assert_eq!(store.get(b"k").await.unwrap().unwrap().value, b"v");
        let m = settle(&store).await;
        assert_eq!(m.in_use, 0, "{kind:?}: {m:?}");
        assert_eq!(m.timeouts, 1);
        store.close().await;
    }
}
