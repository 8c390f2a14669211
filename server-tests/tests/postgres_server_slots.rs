//! The pool's size against the server's connection slots, on a private server with few
//! (`max_connections = 8`, 3 reserved for superusers): open warns, and health says,
//! when the pool cannot be filled; a pool that runs the server out of slots gets a
//! `Connection` error naming the limit within the acquire timeout, never a hang.

use std::time::{Duration, Instant};

use backend_sqlx::SqlxStore;
use server_tests::postgres::wait_for_metrics;
use server_tests::private_pg::{PgConfig, PrivatePg};
use sqlx::{Connection, PgConnection};
use storage_api::{ErrorKind, PooledStore, PutOptions, StoreOptions, TxOptions};

const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(2);

#[tokio::test]
async fn a_pool_larger_than_the_free_slots_is_named_and_exhaustion_is_a_clear_error() {
    let server = PrivatePg::start(&PgConfig {
        max_connections: 8,
        superuser_reserved: 3,
        ..PgConfig::default()
    });
    server.psql("postgres", "CREATE ROLE app LOGIN");
    server.psql("postgres", "CREATE DATABASE app OWNER app");
    let url = server.url_for("app", "127.0.0.1", "app");
    // Two sessions of someone else: 8 - 3 reserved - 2 leaves 3 for the store.
    let mut others = Vec::new();
    for _ in 0..2 {
        others.push(PgConnection::connect(&url).await.expect("another client"));
    }

    let mut options = StoreOptions::new(url.clone());
    options.table = "slots_kv".into();
    options.max_connections = 10;
    options.acquire_timeout = ACQUIRE_TIMEOUT;
    options.close_grace = Duration::from_secs(1);
    let store = SqlxStore::open(options).await.expect("open");
    let health = store.health_check().await;
    assert!(health.healthy, "{health:?}");
    assert!(
        health.detail.contains("cannot be filled"),
        "{}",
        health.detail
    );
    assert!(
        health.detail.contains("max_connections = 8"),
        "{}",
        health.detail
    );
    assert!(
        health.detail.contains("db_pool_size = 10"),
        "{}",
        health.detail
    );

    // Hold every connection the server lets the store have, then ask for one more.
    let mut held = Vec::new();
    for _ in 0..3 {
        held.push(
            store
                .begin(TxOptions::default())
                .await
                .expect("a connection within the server's slots"),
        );
    }
    let started = Instant::now();
    let e = store
        .put(b"k", b"v", PutOptions::default())
        .await
        .expect_err("the server has no slot left");
    let took = started.elapsed();
    assert_eq!(e.kind(), ErrorKind::Connection, "{e}");
    assert!(e.is_retryable());
    assert!(e.message().contains("53300"), "{e}");
    assert!(e.message().contains("max_connections"), "{e}");
    assert!(
        took < ACQUIRE_TIMEOUT + Duration::from_millis(1500),
        "took {took:?}: {e}"
    );

    // A connection given back is used again (once it is back in the pool: an
    // operation that is already opening a connection keeps at it until its timeout).
    drop(held.pop());
    let back = wait_for_metrics(&store, Duration::from_secs(5), |m| m.idle >= 1).await;
    assert!(back.idle >= 1, "{back:?}");
    store
        .put(b"k", b"v", PutOptions::default())
        .await
        .expect("a freed slot");
    drop(held);
    store.close().await;

    // A pool that fits says nothing about slots.
    let mut small = StoreOptions::new(url);
    small.table = "slots_kv".into();
    small.max_connections = 2;
    let store = SqlxStore::open(small).await.expect("open");
    let health = store.health_check().await;
    assert!(
        !health.detail.contains("cannot be filled"),
        "{}",
        health.detail
    );
    store.close().await;
    for other in others {
        let _ = other.close().await;
    }
}
