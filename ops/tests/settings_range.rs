//! Every setting works across its whole documented range on both SQLite backends: a
//! store opened at each range edge (pool size and idle floor at their maxima, zero and
//! maximum timeouts, zero and maximum grace) is used and closed, close finishes within
//! its grace, and the connections opened stay proportional to the pool size.

mod common;

use std::time::{Duration, Instant};

use common::{BACKENDS, Backend, open_with};
use storage_api::{PutOptions, ScanOptions, StorageConfig, StoreOptions};

/// Time close may take past its grace (closing idle connections, checkpointing).
const CLOSE_SLACK: Duration = Duration::from_secs(5);

fn edges() -> Vec<(&'static str, StorageConfig)> {
    let base = StorageConfig {
        db_pool_size: 4,
        db_connection_timeout_secs: 10,
        db_close_grace_secs: 2,
        ..StorageConfig::default()
    };
    vec![
        (
            "pool size and idle floor at their maxima",
            StorageConfig {
                db_pool_size: 1024,
                db_min_idle: 1024,
                ..base.clone()
            },
        ),
        (
            "idle floor at a large pool's size",
            StorageConfig {
                db_pool_size: 100,
                db_min_idle: 100,
                ..base.clone()
            },
        ),
        (
            "idle floor at a large pool's size, short idle timeout",
            StorageConfig {
                db_pool_size: 100,
                db_min_idle: 100,
                db_idle_timeout_secs: 1,
                db_max_lifetime_secs: 1,
                ..base.clone()
            },
        ),
        (
            "smallest pool, idle floor at its size",
            StorageConfig {
                db_pool_size: 1,
                db_min_idle: 1,
                db_connection_timeout_secs: 1,
                ..base.clone()
            },
        ),
        (
            "zero timeouts and grace",
            StorageConfig {
                db_idle_timeout_secs: 0,
                db_max_lifetime_secs: 0,
                db_busy_timeout_ms: 0,
                db_leak_detection_threshold_secs: 0,
                db_close_grace_secs: 0,
                db_min_idle: 4,
                ..base.clone()
            },
        ),
        (
            "maximum timeouts",
            StorageConfig {
                db_connection_timeout_secs: 3600,
                db_idle_timeout_secs: 86_400,
                db_max_lifetime_secs: 604_800,
                db_busy_timeout_ms: 600_000,
                db_leak_detection_threshold_secs: 86_400,
                db_close_grace_secs: 3600,
                max_value_bytes: 268_435_456,
                max_scan_limit: 1_000_000,
                ..base.clone()
            },
        ),
    ]
}

async fn exercise(backend: Backend, what: &str, config: &StorageConfig) {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("edge.db").display());
    let config = StorageConfig {
        url,
        ..config.clone()
    };
    let options: StoreOptions = config.to_options().unwrap();
    let started = Instant::now();
    let store = open_with(backend, options)
        .await
        .unwrap_or_else(|e| panic!("{backend:?}, {what}: open: {e}"));
    let version = store
        .put(b"edge", b"value", PutOptions::default())
        .await
        .unwrap();
    let entry = store.get(b"edge").await.unwrap().expect("just written");
    assert_eq!(entry.version, version, "{backend:?}, {what}");
    let page = store
        .scan(ScanOptions::prefix("ed").with_limit(10))
        .await
        .unwrap();
    assert_eq!(page.len(), 1, "{backend:?}, {what}");
    let health = store.health_check().await;
    assert!(health.healthy, "{backend:?}, {what}: {health:?}");
    store.validate_connections().await.unwrap();

    let grace = Duration::from_secs(config.db_close_grace_secs);
    let closing = Instant::now();
    store.close().await;
    let close_took = closing.elapsed();
    assert!(
        close_took <= grace.min(Duration::from_secs(10)) + CLOSE_SLACK,
        "{backend:?}, {what}: close took {close_took:?} (grace {grace:?})"
    );
    let created = store.pool_metrics().created;
    let pool = u64::from(config.db_pool_size);
    assert!(
        created <= 2 * pool + 4,
        "{backend:?}, {what}: {created} connections opened for a pool of {pool}"
    );
    // Nothing keeps opening connections after close.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        store.pool_metrics().created,
        created,
        "{backend:?}, {what}: opens after close"
    );
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "{backend:?}, {what}: took {:?}",
        started.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_backend_works_at_every_range_edge() {
    for backend in BACKENDS {
        for (what, config) in edges() {
            exercise(backend, what, &config).await;
        }
    }
}
