//! What `open` reports for locations and files it cannot use.

mod common;

use std::time::Duration;

use backend_deadpool::{DeadpoolStore, rusqlite};
use common::{file_options, open};
use storage_api::{ErrorKind, PooledStore, PutOptions, StoreOptions};

async fn open_err(options: StoreOptions) -> storage_api::StoreError {
    match DeadpoolStore::open(options).await {
        Ok(store) => panic!("open succeeded: {store:?}"),
        Err(e) => e,
    }
}

#[tokio::test]
async fn a_missing_directory_is_a_config_error_naming_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let options = file_options(&dir.path().join("no-such-dir"), "kv.db");
    let err = open_err(options).await;
    assert_eq!(err.kind(), ErrorKind::Config);
    assert!(err.message().contains("no-such-dir"), "{err}");
    assert!(
        !dir.path().join("no-such-dir").exists(),
        "nothing was created"
    );
}

#[tokio::test]
async fn a_path_that_cannot_be_a_database_file_is_a_config_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("taken")).unwrap();
    let err = open_err(file_options(dir.path(), "taken")).await;
    assert_eq!(err.kind(), ErrorKind::Config);
    assert!(err.message().contains("taken"), "{err}");
}

#[tokio::test]
async fn a_file_that_is_not_a_database_is_corrupt() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("notes.txt"),
        "plain text, no SQLite header here\n".repeat(64),
    )
    .unwrap();
    for enable_wal in [true, false] {
        let mut options = file_options(dir.path(), "notes.txt");
        options.sqlite.enable_wal = enable_wal;
        assert_eq!(
            open_err(options).await.kind(),
            ErrorKind::Corrupt,
            "wal {enable_wal}"
        );
    }
}

#[tokio::test]
async fn a_table_from_a_newer_schema_is_unsupported_and_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(file_options(dir.path(), "kv.db")).await;
    store.put(b"k", b"v", PutOptions::default()).await.unwrap();
    store.close().await;
    let path = dir.path().join("kv.db");
    let raw = rusqlite::Connection::open(&path).unwrap();
    raw.execute(
        "UPDATE pooledstore_meta SET schema_version = 2 WHERE table_name = 'pooledstore_kv'",
        [],
    )
    .unwrap();
    drop(raw);

    let err = open_err(file_options(dir.path(), "kv.db")).await;
    assert_eq!(err.kind(), ErrorKind::Unsupported, "{err}");
    let raw = rusqlite::Connection::open(&path).unwrap();
    let version: i64 = raw
        .query_row("SELECT schema_version FROM pooledstore_meta", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(version, 2);

    // Another table in the same file is unaffected.
    let mut other = file_options(dir.path(), "kv.db");
    other.table = "other_kv".into();
    let store = open(other).await;
    store.put(b"k", b"v", PutOptions::default()).await.unwrap();
    store.close().await;
}

#[tokio::test]
async fn postgres_and_invalid_settings_are_config_errors() {
    let err = open_err(StoreOptions::new("postgres://app:secret@db/app")).await;
    assert_eq!(err.kind(), ErrorKind::Config);
    assert!(!err.to_string().contains("secret"), "{err}");
    assert!(err.message().contains("postgres://app:***@db/app"), "{err}");
    assert!(err.message().contains("sqlite::memory:"), "{err}");

    let mut zero = StoreOptions::new("sqlite::memory:");
    zero.max_connections = 0;
    assert_eq!(open_err(zero).await.kind(), ErrorKind::Config);

    let mut bad_table = StoreOptions::new("sqlite::memory:");
    bad_table.table = "kv; DROP TABLE x".into();
    assert_eq!(open_err(bad_table).await.kind(), ErrorKind::Config);

    let mut huge = StoreOptions::new("sqlite::memory:");
    huge.busy_timeout = Duration::from_secs(u64::MAX / 4);
    huge.acquire_timeout = Duration::from_secs(u64::MAX / 4);
    let store = open(huge).await;
    assert!(
        store.health_check().await.healthy,
        "huge timeouts are clamped, not a panic"
    );
    store.close().await;
}
