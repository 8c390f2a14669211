//! The pool is built from the store options, and metrics report those settings.

mod common;

use std::time::Duration;

use common::{KINDS, Kind, assert_reconciles, open, options, settle, temp_dir};
use storage_api::PooledStore;

#[tokio::test]
async fn custom_pool_settings_show_in_metrics_and_capabilities() {
    for kind in KINDS {
        let dir = temp_dir();
        let mut opts = options(kind, &dir);
        opts.max_connections = 7;
        opts.min_idle = 3;
        opts.acquire_timeout = Duration::from_secs(4);
        opts.limits.max_value_bytes = 4096;
        opts.limits.max_scan_limit = 50;
        let store = open(opts).await;

        let m = settle(&store).await;
        assert_eq!((m.max, m.min_idle), (7, 3), "{kind:?}");
        // min_idle connections are opened by `open` itself.
        assert_eq!(m.size, 3, "{kind:?}: {m:?}");
        assert_eq!(m.idle, 3, "{kind:?}: {m:?}");
        assert_eq!(m.created, 3, "{kind:?}: {m:?}");
        assert_eq!(m.closed.total(), 0, "{kind:?}: {m:?}");
        assert_reconciles(&m);

        assert_eq!(store.backend_name(), "sqlx");
        let caps = store.capabilities();
        assert!(caps.transactions && caps.ttl);
        assert_eq!(caps.persistent, kind == Kind::File);
        assert_eq!((caps.max_value_bytes, caps.max_scan_limit), (4096, 50));
        assert_eq!(caps.max_key_bytes, 1024);
        assert_eq!(
            store.schema_version(),
            sqlite_common::schema::SCHEMA_VERSION
        );
        store.close().await;
    }
}

#[tokio::test]
async fn acquisitions_and_wait_times_are_counted() {
    for kind in KINDS {
        let dir = temp_dir();
        let store = open(options(kind, &dir)).await;
        let before = store.pool_metrics();
        store.put(b"k", b"v", Default::default()).await.unwrap();
        store.get(b"k").await.unwrap();
        let m = settle(&store).await;
        assert_eq!(m.acquired, before.acquired + 2, "{kind:?}: {m:?}");
        assert_eq!(
            m.acquire_wait.count,
            before.acquire_wait.count + 2,
            "{kind:?}"
        );
        assert_eq!(m.timeouts, 0);
        assert_eq!(m.pending, 0);
        store.close().await;
    }
}

#[tokio::test]
async fn debug_output_masks_nothing_sensitive_and_names_the_backend() {
    let dir = temp_dir();
    let store = open(options(Kind::File, &dir)).await;
    let shown = format!("{store:?}");
    assert!(shown.contains("SqliteStore"), "{shown}");
    assert!(shown.contains("store.db"), "{shown}");
    store.close().await;
}

#[tokio::test]
async fn idle_connections_are_reaped_and_counted_while_memory_data_survives() {
    for kind in KINDS {
        let dir = temp_dir();
        let mut opts = options(kind, &dir);
        opts.idle_timeout = Some(Duration::from_millis(200));
        let store = open(opts).await;
        store.put(b"kept", b"1", Default::default()).await.unwrap();
        let m = wait_until_empty(&store).await;
        assert_eq!(m.size, 0, "{kind:?}: the reaper left connections: {m:?}");
        assert!(m.closed.idle_timeout >= 1, "{kind:?}: {m:?}");
        assert_eq!(m.closed.idle_timeout, m.created, "{kind:?}: {m:?}");
        // The in-memory database outlives every pooled connection.
        let entry = store.get(b"kept").await.unwrap();
        assert_eq!(entry.map(|e| e.value), Some(b"1".to_vec()), "{kind:?}");
        store.close().await;
    }
}

#[tokio::test]
async fn connections_past_max_lifetime_are_retired_and_counted() {
    for kind in KINDS {
        let dir = temp_dir();
        let mut opts = options(kind, &dir);
        opts.max_connections = 1;
        opts.max_lifetime = Some(Duration::from_millis(150));
        let store = open(opts).await;
        store.put(b"a", b"1", Default::default()).await.unwrap();
        tokio::time::sleep(Duration::from_millis(300)).await;
        store.put(b"a", b"2", Default::default()).await.unwrap();
        let m = settle(&store).await;
        assert!(m.closed.max_lifetime >= 1, "{kind:?}: {m:?}");
        assert!(m.created >= 2, "{kind:?}: {m:?}");
        assert_eq!(m.closed.idle_timeout, 0, "{kind:?}: {m:?}");
        assert_eq!(
            store.get(b"a").await.unwrap().map(|e| e.value),
            Some(b"2".to_vec())
        );
        store.close().await;
    }
}

async fn wait_until_empty(store: &backend_sqlx::SqlxStore) -> storage_api::PoolMetrics {
    common::wait_for_metrics(store, Duration::from_secs(10), |m| m.size == 0).await
}
