//! The schema is created once, reopening keeps the data, a newer schema is refused,
//! and a file that is not a SQLite database is reported corrupt.

mod common;

use backend_sqlx::SqlxStore;
use common::{Kind, db_path, open, options, sqlite_url, temp_dir};
use sqlite_common::schema::SCHEMA_VERSION;
use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{ConnectOptions, Connection};
use storage_api::{ErrorKind, PooledStore, PutOptions, StoreOptions};

#[tokio::test]
async fn reopening_keeps_data_versions_and_the_schema() {
    let dir = temp_dir();
    let store = open(options(Kind::File, &dir)).await;
    let v1 = store.put(b"k", b"v", PutOptions::default()).await.unwrap();
    assert_eq!(store.schema_version(), SCHEMA_VERSION);
    store.close().await;

    let store = open(options(Kind::File, &dir)).await;
    assert_eq!(store.schema_version(), SCHEMA_VERSION);
    let entry = store.get(b"k").await.unwrap().unwrap();
    assert_eq!((entry.value, entry.version), (b"v".to_vec(), v1));
    let v2 = store.put(b"k", b"w", PutOptions::default()).await.unwrap();
    assert!(v2 > v1);
    store.close().await;
}

#[tokio::test]
async fn new_database_files_are_owner_only() {
    use std::os::unix::fs::PermissionsExt;
    let dir = temp_dir();
    let store = open(options(Kind::File, &dir)).await;
    store.put(b"k", b"v", PutOptions::default()).await.unwrap();
    for name in ["store.db", "store.db-wal", "store.db-shm"] {
        let path = dir.path().join(name);
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{name} has mode {mode:o}");
    }
    store.close().await;
}

#[tokio::test]
async fn a_newer_schema_version_is_unsupported_and_left_untouched() {
    let dir = temp_dir();
    let store = open(options(Kind::File, &dir)).await;
    store.close().await;
    let newer = SCHEMA_VERSION + 1;
    let mut conn = SqliteConnectOptions::new()
        .filename(db_path(&dir))
        .connect()
        .await
        .unwrap();
    sqlx::query("UPDATE pooledstore_meta SET schema_version = ?1 WHERE table_name = ?2")
        .bind(newer)
        .bind("pooledstore_kv")
        .execute(&mut conn)
        .await
        .unwrap();
    conn.close().await.unwrap();

    let err = SqlxStore::open(options(Kind::File, &dir))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unsupported, "{err:?}");
    assert!(err.message().contains(&newer.to_string()), "{err}");
    assert!(err.message().contains(&SCHEMA_VERSION.to_string()), "{err}");

    let mut conn = SqliteConnectOptions::new()
        .filename(db_path(&dir))
        .connect()
        .await
        .unwrap();
    let stored: i64 = sqlx::query_scalar("SELECT schema_version FROM pooledstore_meta")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(stored, newer);
    conn.close().await.unwrap();
}

#[tokio::test]
async fn a_file_that_is_not_a_database_is_corrupt() {
    let dir = temp_dir();
    let path = db_path(&dir);
    let junk: Vec<u8> = (0..8192u32).map(|i| (i * 7 + 3) as u8).collect();
    std::fs::write(&path, &junk).unwrap();
    for enable_wal in [true, false] {
        let mut opts = StoreOptions::new(sqlite_url(&path));
        opts.sqlite.enable_wal = enable_wal;
        let err = SqlxStore::open(opts).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Corrupt, "wal={enable_wal}: {err:?}");
        assert!(!err.is_retryable());
    }
    assert_eq!(std::fs::read(&path).unwrap(), junk, "the file was modified");
}

#[tokio::test]
async fn two_tables_share_one_file_with_separate_version_counters() {
    let dir = temp_dir();
    let first = open(options(Kind::File, &dir)).await;
    let mut other = options(Kind::File, &dir);
    other.table = "second_kv".into();
    let second = open(other).await;
    first.put(b"k", b"1", PutOptions::default()).await.unwrap();
    first.put(b"k", b"2", PutOptions::default()).await.unwrap();
    let v = second.put(b"k", b"x", PutOptions::default()).await.unwrap();
    assert_eq!(v.get(), 1);
    assert_eq!(first.get(b"k").await.unwrap().unwrap().value, b"2");
    assert_eq!(second.get(b"k").await.unwrap().unwrap().value, b"x");
    first.close().await;
    second.close().await;
}
