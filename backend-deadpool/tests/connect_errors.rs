//! A store that cannot open its database file says why and which file, at once.

use std::time::{Duration, Instant};

use backend_deadpool::DeadpoolStore;
use storage_api::{ErrorKind, StoreError, StoreOptions};

/// Opens the SQLite file at `path` and returns the error it must fail with, and how
/// long that took.
async fn open_error(path: &std::path::Path) -> (StoreError, Duration) {
    let started = Instant::now();
    match DeadpoolStore::open(StoreOptions::new(format!("sqlite://{}", path.display()))).await {
        Ok(_) => panic!("the store opened"),
        Err(e) => (e, started.elapsed()),
    }
}

#[tokio::test]
async fn a_missing_directory_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("missing").join("kv.db");
    let (e, took) = open_error(&path).await;
    assert_eq!(e.kind(), ErrorKind::Config, "{e}");
    let message = e.to_string();
    assert!(message.contains(&path.display().to_string()), "{message}");
    assert!(message.contains("does not exist"), "{message}");
    assert!(took < Duration::from_secs(2), "took {took:?}");
}

#[tokio::test]
async fn a_file_that_is_not_a_database_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("notes.db");
    std::fs::write(&path, "these are notes, not a database; ".repeat(200)).unwrap();
    let (e, took) = open_error(&path).await;
    assert_eq!(e.kind(), ErrorKind::Corrupt, "{e}");
    let message = e.to_string();
    assert!(message.contains(&path.display().to_string()), "{message}");
    assert!(message.contains("not a database"), "{message}");
    assert!(took < Duration::from_secs(2), "took {took:?}");
}
