//! Bad paths and bad input fail with the right kind, name what is wrong, and write
//! nothing. Bad arguments are refused by the checking layer every store is opened
//! behind (`pooledstore::open`, the kit), before the backend acquires a connection.

mod common;

use std::sync::Arc;
use std::time::Duration;

use backend_sqlx::SqlxStore;
use common::{KINDS, open, options, sqlite_url, temp_dir};
use storage_api::backend::Checked;
use storage_api::{ErrorKind, PooledStore, PutOptions, ScanOptions, StoreOptions, WriteOp};

#[tokio::test]
async fn missing_directory_is_a_config_error_naming_the_path_and_creates_nothing() {
    let dir = temp_dir();
    let path = dir.path().join("missing").join("db.sqlite");
    let err = SqlxStore::open(StoreOptions::new(sqlite_url(&path)))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Config, "{err:?}");
    assert!(err.message().contains(&path.display().to_string()), "{err}");
    assert!(!dir.path().join("missing").exists());
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}

#[tokio::test]
async fn path_below_a_regular_file_is_an_error_naming_the_path() {
    // Tests run as root, where permission bits do not stop writes; a directory that
    // is really a file cannot be written by anyone.
    let dir = temp_dir();
    let file = dir.path().join("plain-file");
    std::fs::write(&file, b"not a directory").unwrap();
    for path in [file.join("db.sqlite"), file.join("sub").join("db.sqlite")] {
        let err = SqlxStore::open(StoreOptions::new(sqlite_url(&path)))
            .await
            .unwrap_err();
        assert!(
            matches!(err.kind(), ErrorKind::Config | ErrorKind::Connection),
            "{err:?}"
        );
        assert!(err.message().contains(&path.display().to_string()), "{err}");
    }
    assert_eq!(std::fs::read(&file).unwrap(), b"not a directory");
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
}

#[tokio::test]
async fn unwritable_directory_is_a_connection_error_naming_the_path() {
    let dir = temp_dir();
    let locked = dir.path().join("locked");
    std::fs::create_dir(&locked).unwrap();
    set_mode(&locked, 0o500);
    // Root ignores permission bits: probe before relying on them.
    let probe = locked.join("probe");
    if std::fs::write(&probe, b"x").is_ok() {
        println!("skipped: this user can write to a read-only directory (root)");
        set_mode(&locked, 0o700);
        return;
    }
    let path = locked.join("db.sqlite");
    let err = SqlxStore::open(StoreOptions::new(sqlite_url(&path)))
        .await
        .unwrap_err();
    set_mode(&locked, 0o700);
    assert_eq!(err.kind(), ErrorKind::Connection, "{err:?}");
    assert!(err.message().contains(&path.display().to_string()), "{err}");
    assert!(!path.exists());
}

fn set_mode(path: &std::path::Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

#[tokio::test]
async fn a_directory_as_database_path_is_a_config_error() {
    let dir = temp_dir();
    let err = SqlxStore::open(StoreOptions::new(sqlite_url(dir.path())))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Config, "{err:?}");
}

#[tokio::test]
async fn invalid_options_are_config_errors() {
    let mut opts = StoreOptions::new("sqlite::memory:");
    opts.table = "bad name; drop".into();
    assert_eq!(
        SqlxStore::open(opts).await.unwrap_err().kind(),
        ErrorKind::Config
    );
    let mut opts = StoreOptions::new("sqlite::memory:");
    opts.max_connections = 0;
    assert_eq!(
        SqlxStore::open(opts).await.unwrap_err().kind(),
        ErrorKind::Config
    );
    let err = SqlxStore::open(StoreOptions::new("redis://u:secret@h/db"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Config);
    assert!(!err.message().contains("secret"), "{err}");
    let err = SqlxStore::open(StoreOptions::new("mysql://u:secret@h/db"))
        .await
        .unwrap_err();
    assert!(!err.message().contains("secret"), "{err}");
    let err = SqlxStore::open(StoreOptions::new("postgres://u:secret@h/db"))
        .await
        .unwrap_err();
    assert!(!err.message().contains("secret"), "{err}");
}

#[tokio::test]
async fn bad_keys_and_values_are_invalid_input_and_never_reach_the_database() {
    for kind in KINDS {
        let dir = temp_dir();
        let mut opts = options(kind, &dir);
        opts.limits.max_value_bytes = 64;
        opts.limits.max_scan_limit = 10;
        let store = Checked::new(Arc::new(open(opts).await));
        let acquired_before = store.pool_metrics().acquired;
        let put = PutOptions::default();
        let long_key = vec![7u8; 1025];
        let big_value = vec![1u8; 65];
        let cases: Vec<(&str, storage_api::StoreError)> = vec![
            (
                "empty key put",
                store.put(b"", b"v", put).await.unwrap_err(),
            ),
            (
                "1025-byte key put",
                store.put(&long_key, b"v", put).await.unwrap_err(),
            ),
            (
                "value over max",
                store.put(b"k", &big_value, put).await.unwrap_err(),
            ),
            (
                "zero ttl",
                store
                    .put(b"k", b"v", put.with_ttl(Duration::ZERO))
                    .await
                    .unwrap_err(),
            ),
            ("empty key get", store.get(b"").await.unwrap_err()),
            ("1025-byte key get", store.get(&long_key).await.unwrap_err()),
            (
                "empty key delete",
                store.delete(b"", Default::default()).await.unwrap_err(),
            ),
            (
                "scan over max",
                store
                    .scan(ScanOptions::default().with_limit(11))
                    .await
                    .unwrap_err(),
            ),
        ];
        for (what, err) in &cases {
            assert_eq!(
                err.kind(),
                ErrorKind::InvalidInput,
                "{kind:?} {what}: {err:?}"
            );
            assert!(!err.is_retryable());
        }
        // The message names the size, never the bytes.
        let long = &cases[1].1;
        assert!(long.message().contains("1025"), "{long}");
        let err = store
            .batch(vec![
                WriteOp::put(b"ok".to_vec(), b"v".to_vec()),
                WriteOp::put(long_key.clone(), b"v".to_vec()),
            ])
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput);
        assert_eq!(err.batch_index(), Some(1));
        // None of that acquired a connection or wrote anything.
        assert_eq!(store.pool_metrics().acquired, acquired_before, "{kind:?}");
        assert!(store.scan(ScanOptions::default()).await.unwrap().is_empty());
        // Exactly 1024 bytes and max_value_bytes are accepted.
        store.put(&[0xFF; 1024], &[0; 64], put).await.unwrap();
        store.close().await;
    }
}
