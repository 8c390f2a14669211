//! A PostgreSQL store that cannot connect says why and where: at open (an unknown role,
//! a missing database, a TLS demand the server cannot meet) and on later acquires
//! (a server that stops accepting connections is named within seconds; one that stops
//! answering is named in the timeout).

use std::net::{SocketAddr, ToSocketAddrs};
use std::str::FromStr;
use std::time::{Duration, Instant};

use backend_sqlx::SqlxStore;
use server_tests::postgres::{Scratch, open, with_search_path};
use server_tests::private_pg::{PgConfig, PrivatePg};
use server_tests::proxy::Proxy;
use sqlx::postgres::PgConnectOptions;
use storage_api::{ErrorKind, PooledStore, PutOptions, StoreError, StoreOptions};

/// Opens `url`, which must fail: the error and how long it took.
async fn open_error(url: String) -> (StoreError, Duration) {
    let mut options = StoreOptions::new(url);
    options.acquire_timeout = Duration::from_secs(30);
    let started = Instant::now();
    match SqlxStore::open(options).await {
        Ok(_) => panic!("the store opened"),
        Err(e) => (e, started.elapsed()),
    }
}

/// The scratch database's URL with `user`, `database` and `query` swapped in.
fn variant(scratch: &Scratch, user: Option<&str>, database: Option<&str>, query: &str) -> String {
    let base = PgConnectOptions::from_str(&scratch.base_url).unwrap();
    let user = user.unwrap_or(base.get_username());
    let database = database.unwrap_or(base.get_database().unwrap_or("postgres"));
    format!(
        "postgres://{user}:hunter2@{}:{}/{database}{query}",
        base.get_host(),
        base.get_port()
    )
}

#[tokio::test]
async fn an_unknown_role_is_named_at_open() {
    let scratch = Scratch::new().await;
    let (e, took) = open_error(variant(&scratch, Some("no_such_role"), None, "")).await;
    assert_eq!(e.kind(), ErrorKind::Config, "{e}");
    assert!(e.to_string().contains("no_such_role"), "{e}");
    assert!(!format!("{e} {e:?}").contains("hunter2"));
    assert!(took < Duration::from_secs(5), "took {took:?}");
}

#[tokio::test]
async fn a_missing_database_is_named_at_open() {
    let scratch = Scratch::new().await;
    let (e, took) = open_error(variant(&scratch, None, Some("no_such_database"), "")).await;
    assert_eq!(e.kind(), ErrorKind::Config, "{e}");
    assert!(e.to_string().contains("no_such_database"), "{e}");
    assert!(e.to_string().contains("does not exist"), "{e}");
    assert!(took < Duration::from_secs(5), "took {took:?}");
}

#[tokio::test]
async fn a_tls_demand_the_server_cannot_meet_is_named_at_open() {
    // A private server: `ssl` is off there, as initdb leaves it.
    let server = PrivatePg::start(&PgConfig::default());
    let (e, took) = open_error(format!("{}?sslmode=require", server.url())).await;
    assert!(
        matches!(e.kind(), ErrorKind::Connection | ErrorKind::Config),
        "{e}"
    );
    assert!(e.to_string().contains("TLS"), "{e}");
    assert!(e.to_string().contains("server does not support TLS"), "{e}");
    assert!(took < Duration::from_secs(5), "took {took:?}");
}

/// The server's address, as the scratch URL names it.
fn server_addr(scratch: &Scratch) -> SocketAddr {
    let base = PgConnectOptions::from_str(&scratch.base_url).unwrap();
    (base.get_host(), base.get_port())
        .to_socket_addrs()
        .unwrap()
        .next()
        .expect("the server's address")
}

/// A store on the scratch schema, reached through `proxy`.
async fn open_through(scratch: &Scratch, proxy: &Proxy, acquire_timeout: Duration) -> SqlxStore {
    let base = PgConnectOptions::from_str(&scratch.base_url).unwrap();
    let url = format!(
        "postgres://{}@{}/{}",
        base.get_username(),
        proxy.addr(),
        base.get_database().unwrap_or("postgres")
    );
    let mut options = StoreOptions::new(with_search_path(&url, &scratch.schema));
    options.table = "kv".into();
    options.max_connections = 2;
    options.acquire_timeout = acquire_timeout;
    options.close_grace = Duration::from_secs(1);
    open(options).await
}

#[tokio::test]
async fn a_server_that_refuses_new_connections_is_named_within_seconds() {
    let scratch = Scratch::new().await;
    let mut proxy = Proxy::start(server_addr(&scratch)).await;
    let store = open_through(&scratch, &proxy, Duration::from_secs(30)).await;
    store.put(b"k", b"v", PutOptions::default()).await.unwrap();
    proxy.refuse();
    let started = Instant::now();
    let e = store.get(b"k").await.expect_err("the server is gone");
    let took = started.elapsed();
    assert_eq!(e.kind(), ErrorKind::Connection, "{e}");
    assert!(e.to_string().contains("refused"), "{e}");
    assert!(e.to_string().contains(&proxy.addr().to_string()), "{e}");
    assert!(took < Duration::from_secs(3), "took {took:?}: {e}");
    store.close().await;
}

#[tokio::test]
async fn a_timeout_while_connects_fail_names_the_last_connect_error() {
    let scratch = Scratch::new().await;
    let proxy = Proxy::start(server_addr(&scratch)).await;
    let store = open_through(&scratch, &proxy, Duration::from_secs(4)).await;
    store.put(b"k", b"v", PutOptions::default()).await.unwrap();
    proxy.blackhole();
    let started = Instant::now();
    let e = store
        .get(b"k")
        .await
        .expect_err("the server does not answer");
    let took = started.elapsed();
    assert!(
        matches!(e.kind(), ErrorKind::Timeout | ErrorKind::Connection),
        "{e}"
    );
    assert!(e.is_retryable());
    assert!(e.to_string().contains("no answer"), "{e}");
    assert!(e.to_string().contains(&proxy.addr().to_string()), "{e}");
    assert!(took < Duration::from_secs(12), "took {took:?}: {e}");
    store.close().await;
}
