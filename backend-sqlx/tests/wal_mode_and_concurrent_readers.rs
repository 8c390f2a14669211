//! File databases run in WAL mode when asked: readers keep their snapshot and never
//! block the writer.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{Kind, db_path, open, options, temp_dir};
use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{ConnectOptions, Connection};
use storage_api::{PooledStore, PutOptions, ScanOptions, TxOptions};

async fn journal_mode(path: &std::path::Path) -> String {
    let mut conn = SqliteConnectOptions::new()
        .filename(path)
        .connect()
        .await
        .expect("inspection connection");
    let mode: String = sqlx::query_scalar("PRAGMA journal_mode")
        .fetch_one(&mut conn)
        .await
        .expect("journal_mode");
    conn.close().await.ok();
    mode
}

#[tokio::test]
async fn journal_mode_reads_wal_while_the_store_is_open() {
    let dir = temp_dir();
    let store = open(options(Kind::File, &dir)).await;
    store.put(b"k", b"v", PutOptions::default()).await.unwrap();
    assert_eq!(journal_mode(&db_path(&dir)).await, "wal");
    assert!(dir.path().join("store.db-wal").exists(), "no WAL file");
    store.close().await;
}

#[tokio::test]
async fn journal_mode_is_a_rollback_journal_when_wal_is_off() {
    let dir = temp_dir();
    // First in WAL mode, then reopened without: the file is switched back.
    let store = open(options(Kind::File, &dir)).await;
    store.close().await;
    let mut opts = options(Kind::File, &dir);
    opts.sqlite.enable_wal = false;
    let store = open(opts).await;
    store.put(b"k", b"v", PutOptions::default()).await.unwrap();
    assert_eq!(journal_mode(&db_path(&dir)).await, "delete");
    store.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn readers_keep_their_snapshot_while_a_writer_commits() {
    let dir = temp_dir();
    let mut opts = options(Kind::File, &dir);
    opts.max_connections = 6;
    // Short enough that a writer blocked by readers would fail fast.
    opts.busy_timeout = Duration::from_millis(200);
    let store = Arc::new(open(opts).await);
    store
        .put(b"counter", b"0", PutOptions::default())
        .await
        .unwrap();

    // Three readers open snapshots and hold them.
    let mut readers = Vec::new();
    for _ in 0..3 {
        let mut tx = store.begin(TxOptions { read_only: true }).await.unwrap();
        let seen = tx.get(b"counter").await.unwrap().unwrap();
        assert_eq!(seen.value, b"0");
        readers.push(tx);
    }
    // The writer commits while every reader still holds its snapshot.
    for i in 1..=5u8 {
        store
            .put(b"counter", &[b'0' + i], PutOptions::default())
            .await
            .unwrap();
    }
    // Concurrent readers outside transactions see the latest commit.
    let latest = store.get(b"counter").await.unwrap().unwrap();
    assert_eq!(latest.value, b"5");
    for mut tx in readers {
        let seen = tx.get(b"counter").await.unwrap().unwrap();
        assert_eq!(seen.value, b"0", "a reader's snapshot moved");
        assert_eq!(tx.scan(ScanOptions::default()).await.unwrap().len(), 1);
        tx.commit().await.unwrap();
    }
    assert_eq!(store.pool_metrics().busy, 0);
    store.close().await;
}
