//! A table of the store's name with another layout is never adopted: opening it is
//! `Corrupt` naming the table and what differs (both SQLite backends), and `restore`
//! refuses such a file before replacing anything. And opening an existing, current
//! store only reads the schema, so it works while another process holds the write
//! lock.

mod common;

use std::path::Path;
use std::time::Duration;

use common::{BACKENDS, fill, open, open_with, options};
use pooledstore_ops::{backup, count_entries, restore, verify};
use rusqlite::Connection;
use sqlite_common::schema::META_TABLE;
use storage_api::{ErrorKind, PutOptions};

const TABLE: &str = "pooledstore_kv";

/// A database with the meta table, the table registered, and the table itself with
/// TEXT key and value (what a foreign application might have).
fn foreign_database(path: &Path, registered: bool) {
    let conn = Connection::open(path).unwrap();
    conn.execute_batch(&format!(
        "CREATE TABLE {META_TABLE} (table_name TEXT PRIMARY KEY NOT NULL, \
         schema_version INTEGER NOT NULL, last_version INTEGER NOT NULL);
         CREATE TABLE {TABLE} (key TEXT PRIMARY KEY NOT NULL, value TEXT NOT NULL, \
         version INTEGER NOT NULL, expires_at INTEGER);
         INSERT INTO {TABLE} VALUES ('user:1', 'ada', 1, NULL);"
    ))
    .unwrap();
    if registered {
        conn.execute(
            &format!("INSERT INTO {META_TABLE} VALUES (?1, 1, 1)"),
            [TABLE],
        )
        .unwrap();
    }
}

/// The foreign table's definition and rows.
fn table_contents(path: &Path) -> (String, Vec<(String, String)>) {
    let conn = Connection::open(path).unwrap();
    let sql = conn
        .query_row(
            "SELECT sql FROM sqlite_schema WHERE name = ?1",
            [TABLE],
            |r| r.get(0),
        )
        .unwrap();
    let mut stmt = conn
        .prepare(&format!("SELECT key, value FROM {TABLE} ORDER BY key"))
        .unwrap();
    let rows = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    (sql, rows)
}

#[tokio::test]
async fn a_foreign_layout_is_corrupt_naming_the_table_and_the_difference() {
    for backend in BACKENDS {
        for registered in [true, false] {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("foreign.db");
            foreign_database(&path, registered);
            let before = table_contents(&path);
            let e = open(backend, &path).await.err().unwrap_or_else(|| {
                panic!("{backend:?}: a TEXT-keyed table was adopted (registered {registered})")
            });
            assert_eq!(e.kind(), ErrorKind::Corrupt, "{backend:?}: {e}");
            assert!(e.message().contains(TABLE), "{e}");
            assert!(e.message().contains("TEXT"), "{e}");
            assert_eq!(
                table_contents(&path),
                before,
                "{backend:?}: the table changed"
            );
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("foreign.db");
    foreign_database(&path, true);
    assert_eq!(verify(&path, TABLE).unwrap_err().kind(), ErrorKind::Corrupt);
}

#[tokio::test]
async fn restore_refuses_a_foreign_layout_before_replacing_anything() {
    let dir = tempfile::tempdir().unwrap();
    let live = dir.path().join("live.db");
    let store = open(common::Backend::Sqlx, &live).await.unwrap();
    fill(&*store, "k/", 12).await;
    store.close().await;
    drop(store);
    let good = dir.path().join("good.db");
    backup(&options(&live), &good, false).unwrap();

    let foreign = dir.path().join("foreign.db");
    foreign_database(&foreign, true);
    let e = restore(&options(&live), &foreign, false).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Corrupt, "{e}");
    assert!(e.message().contains("TEXT"), "{e}");
    assert_eq!(verify(&live, TABLE).unwrap().entries, 12);
}

#[tokio::test]
async fn opening_a_current_store_needs_no_write_lock() {
    for backend in BACKENDS {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("busy.db");
        let store = open(backend, &path).await.unwrap();
        fill(&*store, "k/", 3).await;
        store.close().await;
        drop(store);

        // Another process in the middle of a write transaction.
        let writer = Connection::open(&path).unwrap();
        writer.busy_timeout(Duration::ZERO).unwrap();
        writer.execute_batch("BEGIN IMMEDIATE").unwrap();
        writer
            .execute(
                &format!("INSERT INTO {TABLE} VALUES (x'ff', x'00', 99, NULL)"),
                [],
            )
            .unwrap();

        let mut opts = options(&path);
        opts.busy_timeout = Duration::from_millis(200);
        let reader = open_with(backend, opts)
            .await
            .unwrap_or_else(|e| panic!("{backend:?}: open while another writes: {e}"));
        assert!(
            reader.get(b"k/000001").await.unwrap().is_some(),
            "{backend:?}"
        );
        assert_eq!(count_entries(&*reader).await.unwrap(), 3, "{backend:?}");
        assert!(reader.health_check().await.healthy, "{backend:?}");
        writer.execute_batch("COMMIT").unwrap();
        reader
            .put(b"after", b"1", PutOptions::default())
            .await
            .unwrap();
        reader.close().await;
    }
}
