//! `validate_connections` checks each idle connection once, without waiting for
//! the ones in use.

mod common;

use std::time::{Duration, Instant};

use common::{KINDS, assert_reconciles, open, options, settle, temp_dir, wait_for_metrics};
use storage_api::{PooledStore, TxOptions};

const N: usize = 4;

#[tokio::test]
async fn every_idle_connection_is_checked_once() {
    for kind in KINDS {
        let dir = temp_dir();
        let mut opts = options(kind, &dir);
        opts.max_connections = 6;
        let store = open(opts).await;
        // Hold N transactions at once so the pool opens N connections, then return them.
        let mut held = Vec::new();
        for _ in 0..N {
            held.push(store.begin(TxOptions { read_only: true }).await.unwrap());
        }
        drop(held);
        let m = wait_for_metrics(&store, Duration::from_secs(5), |m| {
            m.idle as usize == N && m.in_use == 0
        })
        .await;
        assert_eq!(m.size as usize, N, "{kind:?}: {m:?}");

        let report = store.validate_connections().await.unwrap();
        assert_eq!(report.checked as usize, N, "{kind:?}: {report:?}");
        assert_eq!(report.valid as usize, N, "{kind:?}: {report:?}");
        assert_eq!(report.invalid, 0);
        assert!(report.passed);
        assert_eq!(report.max_connections, 6);

        // Every connection went back to the pool; none was closed.
        let m = settle(&store).await;
        assert_eq!(
            (m.size as usize, m.idle as usize),
            (N, N),
            "{kind:?}: {m:?}"
        );
        assert_eq!(m.closed.invalid, 0);
        assert_reconciles(&m);
        store.close().await;
    }
}

#[tokio::test]
async fn connections_in_use_are_not_waited_for() {
    for kind in KINDS {
        let dir = temp_dir();
        let mut opts = options(kind, &dir);
        opts.max_connections = 3;
        opts.min_idle = 3;
        let store = open(opts).await;
        let busy = store.begin(TxOptions { read_only: true }).await.unwrap();
        let started = Instant::now();
        let report = store.validate_connections().await.unwrap();
        assert!(started.elapsed() < Duration::from_secs(2), "{kind:?}");
        assert_eq!(report.checked, 2, "{kind:?}: {report:?}");
        assert!(report.passed);
        drop(busy);
        store.close().await;
    }
}
