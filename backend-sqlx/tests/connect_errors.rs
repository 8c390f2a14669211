//! A store that cannot reach its database says why and where, at once: a refused port,
//! an unknown host, a missing directory, a file that is not a database. Never the
//! password.

mod common;

use std::time::{Duration, Instant};

use backend_sqlx::SqlxStore;
use common::{sqlite_url, temp_dir};
use storage_api::{ErrorKind, StoreError, StoreOptions};

/// Opens `url` and returns the error it must fail with, and how long that took.
async fn open_error(url: String) -> (StoreError, Duration) {
    let mut options = StoreOptions::new(url);
    options.acquire_timeout = Duration::from_secs(30);
    let started = Instant::now();
    match SqlxStore::open(options).await {
        Ok(_) => panic!("the store opened"),
        Err(e) => (e, started.elapsed()),
    }
}

/// A loopback port nothing listens on.
#[cfg(feature = "postgres")]
fn refused_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

#[cfg(feature = "postgres")]
#[tokio::test]
async fn a_refused_port_is_named_within_two_seconds() {
    let port = refused_port();
    let (e, took) = open_error(format!("postgres://app:hunter2@127.0.0.1:{port}/db")).await;
    assert_eq!(e.kind(), ErrorKind::Connection, "{e}");
    assert!(e.is_retryable());
    let message = e.to_string();
    assert!(message.contains("refused"), "{message}");
    assert!(message.contains(&format!("127.0.0.1:{port}")), "{message}");
    assert!(!message.contains("hunter2") && !format!("{e:?}").contains("hunter2"));
    assert!(took < Duration::from_secs(2), "took {took:?}: {message}");
}

#[cfg(feature = "postgres")]
#[tokio::test]
async fn an_unknown_host_is_named() {
    let (e, took) = open_error("postgres://app:hunter2@no-such-host.invalid:5432/db".into()).await;
    assert_eq!(e.kind(), ErrorKind::Connection, "{e}");
    let message = e.to_string();
    assert!(message.contains("no-such-host.invalid:5432"), "{message}");
    assert!(message.contains("lookup"), "{message}");
    assert!(!message.contains("hunter2"));
    assert!(took < Duration::from_secs(10), "took {took:?}: {message}");
}

#[tokio::test]
async fn a_missing_directory_is_named() {
    let dir = temp_dir();
    let path = dir.path().join("missing").join("kv.db");
    let (e, took) = open_error(sqlite_url(&path)).await;
    assert_eq!(e.kind(), ErrorKind::Config, "{e}");
    let message = e.to_string();
    assert!(message.contains(&path.display().to_string()), "{message}");
    assert!(message.contains("does not exist"), "{message}");
    assert!(took < Duration::from_secs(2), "took {took:?}");
}

#[tokio::test]
async fn a_file_that_is_not_a_database_is_named() {
    let dir = temp_dir();
    let path = dir.path().join("notes.db");
    std::fs::write(&path, "these are notes, not a database; ".repeat(200)).unwrap();
    let (e, took) = open_error(sqlite_url(&path)).await;
    assert_eq!(e.kind(), ErrorKind::Corrupt, "{e}");
    let message = e.to_string();
    assert!(message.contains(&path.display().to_string()), "{message}");
    assert!(message.contains("not a database"), "{message}");
    assert!(took < Duration::from_secs(2), "took {took:?}");
}
