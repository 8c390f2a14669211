//! Bad and hostile database files opened through both SQLite backends: each must give a
//! clear error of the right kind, never a panic, and never damage what was sound.
//! (Read-only files and full disks need other processes: see `processes.rs`.)

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use common::{BACKENDS, Backend, assert_filled, fill, open};
use pooledstore_ops::{count_entries, verify};
use rusqlite::Connection;
use sqlite_common::schema::{META_TABLE, SCHEMA_VERSION};
use storage_api::{ErrorKind, StoreError, WriteOp};

fn name(backend: Backend) -> &'static str {
    match backend {
        Backend::Sqlx => "sqlx",
        Backend::Deadpool => "deadpool",
    }
}

async fn closed_store(backend: Backend, path: &Path, n: usize) {
    let store = open(backend, path).await.unwrap();
    fill(&*store, "k/", n).await;
    store.close().await;
}

/// Opens the store and reads everything; the first error, if any.
async fn open_and_read_all(backend: Backend, path: &Path) -> Option<StoreError> {
    let store = match open(backend, path).await {
        Ok(store) => store,
        Err(e) => return Some(e),
    };
    let outcome = count_entries(&*store).await.err();
    store.close().await;
    outcome
}

#[tokio::test]
async fn a_file_that_is_not_a_database_is_corrupt_and_left_alone() {
    for backend in BACKENDS {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notes.db");
        let text = "meeting notes, definitely not SQLite\n".repeat(300);
        std::fs::write(&path, &text).unwrap();
        let e = open_and_read_all(backend, &path)
            .await
            .unwrap_or_else(|| panic!("{backend:?}: a text file opened as a store"));
        common::expect(
            name(backend),
            "not a database",
            e.kind().as_str(),
            "corrupt",
            e.message(),
        );
        assert_eq!(std::fs::read_to_string(&path).unwrap(), text, "{backend:?}");
        assert_eq!(
            verify(&path, "pooledstore_kv").unwrap_err().kind(),
            ErrorKind::Corrupt
        );
    }
}

/// Garbage over one page in the middle of a sound database: reading through it is
/// `Corrupt` (whether opening notices or the first read does), nothing else.
#[tokio::test]
async fn garbage_in_the_middle_of_a_database_is_corrupt() {
    for backend in BACKENDS {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("damaged.db");
        let store = open(backend, &path).await.unwrap();
        for chunk in 0..20 {
            let ops = (0..100)
                .map(|i| WriteOp::put(format!("k/{chunk:02}/{i:03}"), vec![i as u8; 300]))
                .collect();
            store.batch(ops).await.unwrap();
        }
        store.close().await;
        let mut bytes = std::fs::read(&path).unwrap();
        let page = 4096;
        assert!(
            bytes.len() > 40 * page,
            "{backend:?}: database too small to damage"
        );
        let middle = bytes.len() / 2 / page * page;
        for (i, b) in bytes[middle..middle + page].iter_mut().enumerate() {
            *b = (i * 31 % 251) as u8;
        }
        std::fs::write(&path, &bytes).unwrap();

        let e = open_and_read_all(backend, &path)
            .await
            .unwrap_or_else(|| panic!("{backend:?}: read a damaged database without error"));
        common::expect(
            name(backend),
            "damaged database",
            e.kind().as_str(),
            "corrupt",
            e.message(),
        );
        let after = std::fs::read(&path).unwrap();
        assert_eq!(
            after.len(),
            bytes.len(),
            "{backend:?}: the file was resized"
        );
        assert_eq!(
            after[middle..middle + page],
            bytes[middle..middle + page],
            "{backend:?}"
        );
        assert_eq!(
            verify(&path, "pooledstore_kv").unwrap_err().kind(),
            ErrorKind::Corrupt
        );
    }
}

/// A WAL cut short in its last frame (a crash while appending) is no error: SQLite
/// keeps the commits whose frames are whole and drops the torn one.
#[tokio::test]
async fn a_truncated_wal_loses_only_the_torn_commit() {
    for backend in BACKENDS {
        let dir = tempfile::tempdir().unwrap();
        let live = dir.path().join("live.db");
        closed_store(backend, &live, 10).await;

        let conn = Connection::open(&live).unwrap();
        conn.execute_batch("PRAGMA journal_mode = WAL; PRAGMA wal_autocheckpoint = 0;")
            .unwrap();
        let insert = "INSERT INTO pooledstore_kv (key, value, version, expires_at) \
                      VALUES (?1, ?2, ?3, NULL)";
        for (i, key) in ["w1", "w2", "w3"].iter().enumerate() {
            conn.execute(insert, (key.as_bytes(), b"v".as_slice(), 1000 + i as i64))
                .unwrap();
        }
        let copy = dir.path().join("copy.db");
        std::fs::copy(&live, &copy).unwrap();
        let wal = std::fs::read(dir.path().join("live.db-wal")).unwrap();
        drop(conn);
        assert!(wal.len() > 3 * 4096, "{backend:?}: the WAL holds no frames");
        std::fs::write(dir.path().join("copy.db-wal"), &wal[..wal.len() - 1000]).unwrap();

        let store = open(backend, &copy).await.unwrap();
        assert_filled(&*store, "k/", 10).await;
        assert!(store.get(b"w1").await.unwrap().is_some(), "{backend:?}");
        assert!(store.get(b"w2").await.unwrap().is_some(), "{backend:?}");
        assert!(
            store.get(b"w3").await.unwrap().is_none(),
            "{backend:?}: torn commit kept"
        );
        store.close().await;
        assert_eq!(verify(&copy, "pooledstore_kv").unwrap().entries, 12);
    }
}

#[tokio::test]
async fn a_newer_schema_is_unsupported_and_left_alone() {
    for backend in BACKENDS {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("future.db");
        closed_store(backend, &path, 5).await;
        Connection::open(&path)
            .unwrap()
            .execute(
                &format!("UPDATE {META_TABLE} SET schema_version = ?1"),
                [SCHEMA_VERSION + 1],
            )
            .unwrap();
        let before = std::fs::read(&path).unwrap();
        let e = open(backend, &path).await.unwrap_err();
        common::expect(
            name(backend),
            "newer schema",
            e.kind().as_str(),
            "unsupported",
            e.message(),
        );
        assert_eq!(
            std::fs::read(&path).unwrap(),
            before,
            "{backend:?}: file changed"
        );
    }
}

/// A database file the store creates holds every entry: only its owner may read it.
#[tokio::test]
async fn new_database_files_are_owner_only() {
    for backend in BACKENDS {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("new.db");
        let store = open(backend, &path).await.unwrap();
        common::put(&*store, b"k", b"v").await;
        for file in [path.clone(), dir.path().join("new.db-wal")] {
            let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
            let detail = format!("{} has mode {mode:o}", file.display());
            common::expect(
                name(backend),
                "new database file mode",
                &format!("{mode:o}"),
                "600",
                &detail,
            );
        }
        store.close().await;
    }
}
