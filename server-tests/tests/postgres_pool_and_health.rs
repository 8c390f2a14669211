//! The pool on PostgreSQL: health reports the server version, every connection is
//! tagged with the store's own `application_name`, the acquire timeout holds, and
//! `close` ends every server session.

use std::time::{Duration, Instant};

use server_tests::postgres::{Scratch, open, settle};
use storage_api::{ErrorKind, HealthStatus, PooledStore, PutOptions, TxOptions};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_reports_the_server_version_and_timings() {
    let scratch = Scratch::new().await;
    let store = open(scratch.options("kv")).await;
    assert_eq!(
        (store.backend_name(), store.engine_name()),
        ("sqlx", "postgres")
    );
    let health = store.health_check().await;
    assert_eq!(health.status, HealthStatus::Healthy, "{health:?}");
    assert!(health.query_time > Duration::ZERO && health.query_time < Duration::from_secs(5));
    let mut admin = scratch.admin().await;
    let version: String = sqlx::query_scalar("SHOW server_version")
        .fetch_one(&mut admin)
        .await
        .unwrap();
    assert_eq!(health.server_version.as_deref(), Some(version.as_str()));
    store.close().await;
    assert_eq!(store.health_check().await.status, HealthStatus::Closed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_carry_the_stores_application_name_until_close() {
    let scratch = Scratch::new().await;
    let mut options = scratch.options("kv");
    options.min_idle = 2;
    options.max_connections = 4;
    let store = open(options.clone()).await;
    let other = open(options).await;
    let name = store.application_name().unwrap().to_owned();
    assert_ne!(Some(name.as_str()), other.application_name());
    let m = settle(&store).await;
    assert!(m.size >= 2, "min_idle connections open: {m:?}");
    let sessions = scratch.sessions(&name).await;
    assert_eq!(sessions.len(), m.size as usize, "{sessions:?}");

    let report = store.close().await;
    assert_eq!(report.connections_closed, m.size);
    let deadline = Instant::now() + Duration::from_secs(5);
    while !scratch.sessions(&name).await.is_empty() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(scratch.sessions(&name).await.is_empty());
    assert_eq!(store.get(b"k").await.unwrap_err().kind(), ErrorKind::Closed);
    // The other store was not touched.
    other.put(b"k", b"v", PutOptions::default()).await.unwrap();
    other.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operation_that_cannot_get_a_connection_times_out() {
    let scratch = Scratch::new().await;
    let mut options = scratch.options("kv");
    options.max_connections = 1;
    options.acquire_timeout = Duration::from_millis(400);
    let store = open(options).await;
    let holder = store.begin(TxOptions { read_only: true }).await.unwrap();
    let started = Instant::now();
    let e = store.get(b"k").await.unwrap_err();
    let waited = started.elapsed();
    assert_eq!(e.kind(), ErrorKind::Timeout, "{e}");
    assert!(waited >= Duration::from_millis(350), "{waited:?}");
    assert!(waited < Duration::from_secs(3), "{waited:?}");
    assert_eq!(store.health_check().await.status, HealthStatus::Saturated);
    drop(holder);
    store.get(b"k").await.unwrap();
    // The get and the saturated health check each gave up once.
    assert_eq!(store.pool_metrics().timeouts, 2);
    store.close().await;
}
