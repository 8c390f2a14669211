//! `health_check` acquires, runs a round trip and reports what it found.

mod common;

use std::time::{Duration, Instant};

use common::{KINDS, open, options, temp_dir};
use storage_api::{HealthStatus, PooledStore, TxOptions};

#[tokio::test]
async fn healthy_pool_reports_sub_second_non_zero_timings_and_the_sqlite_version() {
    for kind in KINDS {
        let dir = temp_dir();
        let store = open(options(kind, &dir)).await;
        let health = store.health_check().await;
        assert!(health.healthy, "{kind:?}: {health:?}");
        assert_eq!(health.status, HealthStatus::Healthy);
        assert!(health.acquire_time > Duration::ZERO, "{health:?}");
        assert!(health.query_time > Duration::ZERO, "{health:?}");
        assert!(health.acquire_time < Duration::from_secs(1), "{health:?}");
        assert!(health.query_time < Duration::from_secs(1), "{health:?}");
        let version = health.server_version.clone().unwrap_or_default();
        assert!(version.starts_with("3."), "{health:?}");
        store.close().await;
    }
}

#[tokio::test]
async fn saturated_when_no_connection_frees_up_in_time() {
    for kind in KINDS {
        let dir = temp_dir();
        let mut opts = options(kind, &dir);
        opts.max_connections = 1;
        opts.acquire_timeout = Duration::from_millis(300);
        let store = open(opts).await;
        let held = store.begin(TxOptions { read_only: true }).await.unwrap();
        let started = Instant::now();
        let health = store.health_check().await;
        assert_eq!(
            health.status,
            HealthStatus::Saturated,
            "{kind:?}: {health:?}"
        );
        assert!(!health.healthy);
        assert!(started.elapsed() < Duration::from_secs(3), "{health:?}");
        assert!(
            health.acquire_time >= Duration::from_millis(250),
            "{health:?}"
        );
        drop(held);
        let health = store.health_check().await;
        assert!(health.healthy, "{kind:?} after release: {health:?}");
        store.close().await;
    }
}

#[tokio::test]
async fn closed_after_close() {
    for kind in KINDS {
        let dir = temp_dir();
        let store = open(options(kind, &dir)).await;
        store.close().await;
        let health = store.health_check().await;
        assert_eq!(health.status, HealthStatus::Closed, "{kind:?}");
        assert!(!health.healthy);
    }
}
