//! Backup and restore against real stores of both SQLite backends.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use common::{BACKENDS, Backend, assert_filled, fill, open, options};
use pooledstore_ops::{backup, count_entries, restore, verify};
use rusqlite::Connection;
use sqlite_common::schema::{META_TABLE, SCHEMA_VERSION};
use storage_api::{ErrorKind, ScanOptions, WriteOp};

fn files_in(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    files
}

async fn closed_store_with(backend: Backend, path: &Path, n: usize) {
    let store = open(backend, path).await.unwrap();
    fill(&*store, "k/", n).await;
    store.close().await;
}

/// Writers keep committing pairs of keys atomically while the backup runs; the backup
/// must hold whole pairs only, and everything committed before it started.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backup_is_a_consistent_snapshot_while_writers_run() {
    for backend in BACKENDS {
        let dir = tempfile::tempdir().unwrap();
        let live = dir.path().join("live.db");
        let store = open(backend, &live).await.unwrap();
        fill(&*store, "k/", 300).await;

        let stop = Arc::new(AtomicBool::new(false));
        let pairs = Arc::new(AtomicUsize::new(0));
        let writer = {
            let (store, stop, pairs) = (Arc::clone(&store), Arc::clone(&stop), Arc::clone(&pairs));
            tokio::spawn(async move {
                let mut n = 0usize;
                while !stop.load(Ordering::Relaxed) {
                    let v = n.to_string().into_bytes();
                    let ops = vec![
                        WriteOp::put(format!("pair/{n:08}/a"), v.clone()),
                        WriteOp::put(format!("pair/{n:08}/b"), v),
                    ];
                    store.batch(ops).await.expect("writer batch");
                    n += 1;
                    pairs.store(n, Ordering::Relaxed);
                }
            })
        };
        while pairs.load(Ordering::Relaxed) < 20 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let out = dir.path().join("snap.db");
        let opts = options(&live);
        let report = tokio::task::spawn_blocking({
            let out = out.clone();
            move || backup(&opts, &out, false)
        })
        .await
        .unwrap()
        .unwrap();
        stop.store(true, Ordering::Relaxed);
        writer.await.unwrap();
        let written = pairs.load(Ordering::Relaxed);
        store.close().await;

        assert_eq!(report.bytes, std::fs::metadata(&out).unwrap().len());
        let mode = std::fs::metadata(&out).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "{backend:?}: backup permissions");
        let snap = open(backend, &out).await.unwrap();
        assert_filled(&*snap, "k/", 300).await;
        let pair_entries = snap
            .scan(ScanOptions::prefix("pair/").with_limit(10_000))
            .await
            .unwrap();
        assert_eq!(pair_entries.len() % 2, 0, "{backend:?}: a torn pair");
        for two in pair_entries.chunks(2) {
            assert_eq!(
                two[0].key[..13],
                two[1].key[..13],
                "{backend:?}: a torn pair"
            );
            assert_eq!(two[0].value, two[1].value);
        }
        let pairs_in_backup = pair_entries.len() / 2;
        assert!(
            (20..=written).contains(&pairs_in_backup),
            "{backend:?}: {pairs_in_backup} pairs in the backup, {written} written"
        );
        assert_eq!(report.entries, 300 + pair_entries.len() as u64);
        snap.close().await;
    }
}

#[tokio::test]
async fn backup_refuses_to_overwrite_and_to_target_the_live_database() {
    let dir = tempfile::tempdir().unwrap();
    let live = dir.path().join("live.db");
    closed_store_with(Backend::Sqlx, &live, 10).await;
    let opts = options(&live);

    let out = dir.path().join("out.db");
    std::fs::write(&out, b"precious").unwrap();
    let e = backup(&opts, &out, false).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e}");
    assert!(e.message().contains("--force"), "{e}");
    assert_eq!(std::fs::read(&out).unwrap(), b"precious");

    let report = backup(&opts, &out, true).unwrap();
    assert_eq!(report.entries, 10);
    assert_eq!(verify(&out, &opts.table).unwrap().entries, 10);

    for target in [live.clone(), dir.path().join("live.db-wal")] {
        let e = backup(&opts, &target, true).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e}");
    }
    let e = backup(&options(&dir.path().join("missing.db")), &out, true).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Config, "{e}");
    assert!(
        !dir.path().join("missing.db").exists(),
        "backup created the database"
    );

    let leftovers: Vec<_> = files_in(dir.path())
        .into_iter()
        .filter(|p| p.to_string_lossy().ends_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "temporary files left: {leftovers:?}");
}

/// A backup taken through one backend restores and opens through the other; writes
/// made after the backup are gone after the restore.
#[tokio::test]
async fn restore_brings_back_the_backup_for_either_backend() {
    for (writer, reader) in [
        (Backend::Sqlx, Backend::Deadpool),
        (Backend::Deadpool, Backend::Sqlx),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let live = dir.path().join("live.db");
        let opts = options(&live);
        let store = open(writer, &live).await.unwrap();
        fill(&*store, "k/", 150).await;
        let out = dir.path().join("b.db");
        backup(&opts, &out, false).unwrap();
        fill(&*store, "after/", 40).await;
        store
            .delete(&common::key("k/", 3), Default::default())
            .await
            .unwrap();
        store.close().await;

        let report = restore(&opts, &out, false).unwrap();
        assert!(!report.forced);
        assert_eq!(report.summary.entries, 150);
        for sidecar in ["live.db-wal", "live.db-shm", "live.db-journal"] {
            assert!(!dir.path().join(sidecar).exists(), "{sidecar} left behind");
        }

        let restored = open(reader, &live).await.unwrap();
        assert_filled(&*restored, "k/", 150).await;
        assert_eq!(
            count_entries(&*restored).await.unwrap(),
            150,
            "{writer:?}->{reader:?}"
        );
        restored.close().await;
        assert!(out.exists(), "restore consumed the backup file");
    }
}

/// Files that must never replace the live database, each refused with the right kind,
/// leaving the live file byte for byte as it was.
#[tokio::test]
async fn restore_refuses_bad_backups_and_leaves_the_live_database_alone() {
    let dir = tempfile::tempdir().unwrap();
    let live = dir.path().join("live.db");
    closed_store_with(Backend::Sqlx, &live, 50).await;
    let opts = options(&live);
    let good = dir.path().join("good.db");
    backup(&opts, &good, false).unwrap();
    let before = std::fs::read(&live).unwrap();

    let text = dir.path().join("text.db");
    std::fs::write(&text, "this is not a database\n".repeat(200)).unwrap();

    let foreign = dir.path().join("foreign.db");
    Connection::open(&foreign)
        .unwrap()
        .execute_batch("CREATE TABLE t (x); INSERT INTO t VALUES (1);")
        .unwrap();

    let newer = dir.path().join("newer.db");
    std::fs::copy(&good, &newer).unwrap();
    Connection::open(&newer)
        .unwrap()
        .execute(
            &format!("UPDATE {META_TABLE} SET schema_version = ?1"),
            [SCHEMA_VERSION + 1],
        )
        .unwrap();

    let other_table = dir.path().join("other.db");
    let mut other_opts = options(&dir.path().join("other-live.db"));
    other_opts.table = "other_kv".into();
    let other = common::open_with(Backend::Sqlx, other_opts.clone())
        .await
        .unwrap();
    fill(&*other, "o/", 5).await;
    other.close().await;
    backup(&other_opts, &other_table, false).unwrap();

    let damaged = dir.path().join("damaged.db");
    let mut bytes = std::fs::read(&good).unwrap();
    let middle = bytes.len() / 2 / 4096 * 4096;
    bytes[middle..middle + 4096].fill(0xA5);
    std::fs::write(&damaged, &bytes).unwrap();

    let with_wal = dir.path().join("with-wal.db");
    std::fs::copy(&good, &with_wal).unwrap();
    std::fs::write(dir.path().join("with-wal.db-wal"), b"frames").unwrap();

    let cases = [
        (with_wal, ErrorKind::InvalidInput),
        (text, ErrorKind::Corrupt),
        (foreign, ErrorKind::Corrupt),
        (newer, ErrorKind::Unsupported),
        (other_table, ErrorKind::Corrupt),
        (damaged, ErrorKind::Corrupt),
        (dir.path().join("missing.db"), ErrorKind::InvalidInput),
    ];
    for (input, kind) in cases {
        let e = restore(&opts, &input, true).unwrap_err();
        assert_eq!(e.kind(), kind, "{}: {e}", input.display());
        assert_eq!(std::fs::read(&live).unwrap(), before, "{}", input.display());
        let temps: Vec<_> = files_in(dir.path())
            .into_iter()
            .filter(|p| p.to_string_lossy().contains(".restore-"))
            .collect();
        assert!(temps.is_empty(), "{}: left {temps:?}", input.display());
    }
    let store = open(Backend::Sqlx, &live).await.unwrap();
    assert_filled(&*store, "k/", 50).await;
    store.close().await;
}

/// A store of this process holding the database is refused outright (even forced);
/// another holder (an idle WAL connection, as another process's pool would be) is
/// detected through SQLite's locks, and `force` replaces the file anyway and says so.
#[tokio::test]
async fn restore_refuses_while_a_store_has_the_database_open() {
    for backend in BACKENDS {
        let dir = tempfile::tempdir().unwrap();
        let live = dir.path().join("live.db");
        let opts = options(&live);
        let store = open(backend, &live).await.unwrap();
        fill(&*store, "k/", 20).await;
        let out = dir.path().join("b.db");
        backup(&opts, &out, false).unwrap();
        fill(&*store, "after/", 5).await;

        for force in [false, true] {
            let e = restore(&opts, &out, force).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::InvalidInput, "{backend:?}: {e}");
            assert!(e.message().contains("has open"), "{e}");
        }
        assert_filled(&*store, "after/", 5).await;
        store.close().await;

        let holder = Connection::open(&live).unwrap();
        holder
            .query_row("PRAGMA journal_mode = WAL", [], |r| r.get::<_, String>(0))
            .unwrap();
        let e = restore(&opts, &out, false).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Busy, "{backend:?}: {e}");
        assert!(e.message().contains("--force"), "{e}");
        let report = restore(&opts, &out, true).unwrap();
        assert!(report.forced, "{backend:?}");
        drop(holder);

        let restored = open(backend, &live).await.unwrap();
        assert_eq!(count_entries(&*restored).await.unwrap(), 20, "{backend:?}");
        restored.close().await;
        let conn = Connection::open(&live).unwrap();
        let check: String = conn
            .query_row("PRAGMA integrity_check", [], |r| r.get(0))
            .unwrap();
        assert_eq!(check, "ok");
    }
}

/// With a rollback journal an idle connection holds no lock, but a running
/// transaction does, and is detected.
#[tokio::test]
async fn restore_detects_a_running_transaction_without_wal() {
    for backend in BACKENDS {
        let dir = tempfile::tempdir().unwrap();
        let live = dir.path().join("live.db");
        let mut opts = options(&live);
        opts.sqlite.enable_wal = false;
        let store = common::open_with(backend, opts.clone()).await.unwrap();
        fill(&*store, "k/", 10).await;
        let out = dir.path().join("b.db");
        backup(&opts, &out, false).unwrap();
        store.close().await;

        let holder = Connection::open(&live).unwrap();
        holder.execute_batch("BEGIN IMMEDIATE").unwrap();
        let e = restore(&opts, &out, false).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Busy, "{backend:?}: {e}");
        holder.execute_batch("ROLLBACK").unwrap();

        restore(&opts, &out, false).unwrap();
        drop(holder);
        let restored = common::open_with(backend, opts.clone()).await.unwrap();
        assert_eq!(count_entries(&*restored).await.unwrap(), 10);
        restored.close().await;
    }
}

/// A forced restore under a connection that still has uncheckpointed WAL frames: the
/// stale WAL must not be replayed into the new file.
#[tokio::test]
async fn forced_restore_never_replays_the_old_wal_into_the_new_file() {
    let dir = tempfile::tempdir().unwrap();
    let live = dir.path().join("live.db");
    closed_store_with(Backend::Sqlx, &live, 30).await;
    let opts = options(&live);
    let out = dir.path().join("b.db");
    backup(&opts, &out, false).unwrap();

    let stale = Connection::open(&live).unwrap();
    stale
        .execute_batch("PRAGMA journal_mode = WAL; PRAGMA wal_autocheckpoint = 0;")
        .unwrap();
    stale
        .execute(
            &format!(
                "INSERT INTO \"{}\" (key, value, version, expires_at) VALUES (?1, ?2, 999999, NULL)",
                opts.table
            ),
            (b"stale".as_slice(), b"old".as_slice()),
        )
        .unwrap();
    assert!(
        std::fs::metadata(dir.path().join("live.db-wal"))
            .unwrap()
            .len()
            > 0
    );

    let e = restore(&opts, &out, false).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Busy);
    assert!(restore(&opts, &out, true).unwrap().forced);
    drop(stale);

    let store = open(Backend::Deadpool, &live).await.unwrap();
    assert_eq!(store.get(b"stale").await.unwrap(), None);
    assert_eq!(count_entries(&*store).await.unwrap(), 30);
    store.close().await;
    assert_eq!(verify(&live, &opts.table).unwrap().entries, 30);
}
