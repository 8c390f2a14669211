//! `restore`: replaces a SQLite store's file with a verified backup, atomically, and only
//! while no other process has the database open (unless forced).

use std::fs::File;
use std::path::Path;
use std::time::Duration;

use rusqlite::Connection;
use storage_api::{ErrorKind, Result, StoreError, StoreOptions};

use crate::atomic_file::{TempFile, remove_if_present, sync_dir};
use crate::paths::{absolute, parent_dir, with_sidecars};
use crate::sqlite_file::{
    FileSummary, io_error, make_self_contained, open_existing, sqlite_error, sqlite_path,
    verify_connection,
};
use crate::target::check_output_path;

/// What a restore did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RestoreReport {
    /// What the restored file holds.
    pub summary: FileSummary,
    /// The live database was replaced although another process might still use it
    /// (`force`); such a process keeps writing to the replaced file until restarted.
    pub forced: bool,
}

/// Replaces the database at `options.url` with the backup at `input`.
///
/// A live path that is not a regular file (a symbolic link, a device) or that a store
/// of this process has open is refused first (see
/// [`check_output_path`](crate::check_output_path)).
///
/// 1. Copies `input` (one self-contained file, as [`backup`](crate::backup) writes; one
///    with a non-empty `-wal` beside it is refused) to a temporary file beside the live
///    database and verifies the copy (`PRAGMA integrity_check`, the pooledstore schema, a
///    schema version this build understands, the configured table registered). A bad
///    file is refused and the live database is not touched.
/// 2. Checks that no other process uses the live database (see below); refuses if one
///    does, unless `force`.
/// 3. Moves the copy over the live file (fsync, rename, directory fsync) and removes the
///    old file's `-wal`, `-shm` and `-journal`, which must never meet the new file.
///
/// **In-use check.** There is no lock every store takes, so the check asks SQLite
/// itself, with a busy timeout of zero: switching the live file out of WAL mode needs
/// every other connection closed, and `BEGIN EXCLUSIVE` then needs no transaction
/// running. In WAL mode (the default) this detects any process holding the database
/// open, even an idle pool. With `db_enable_wal = false` an idle pool holds no lock and
/// cannot be seen; only a running transaction can. Neither catches a process that opens
/// the database after the check. Stop every process using the store before restoring.
/// A live file that SQLite cannot read cannot be checked, so replacing it needs `force`.
pub fn restore(options: &StoreOptions, input: &Path, force: bool) -> Result<RestoreReport> {
    let live = sqlite_path(&options.url, "restore")?;
    check_output_path(&live, None)?;
    check_input(&live, input)?;
    let (temp, summary) = stage_copy(&live, input, &options.table)?;
    let (lock, forced) = match Access::check(&live)? {
        Access::Absent => (None, false),
        Access::Exclusive(lock) => (Some(lock), false),
        Access::InUse(reason) if !force => return Err(reason),
        Access::InUse(reason) => {
            tracing::warn!(%reason, "replacing the database although it may be in use (--force)");
            (None, true)
        }
    };
    remove_stale_sidecars(&live)?;
    temp.persist(true)?;
    remove_stale_sidecars(&live)?;
    sync_dir(parent_dir(&live))?;
    drop(lock);
    Ok(RestoreReport { summary, forced })
}

fn check_input(live: &Path, input: &Path) -> Result<()> {
    if !input.is_file() {
        return Err(StoreError::invalid_input(format!(
            "backup file {} does not exist or is not a file",
            input.display()
        )));
    }
    let input_wal = &with_sidecars(input)[1];
    if std::fs::metadata(input_wal).is_ok_and(|m| m.len() > 0) {
        return Err(StoreError::invalid_input(format!(
            "{} has a write-ahead log beside it ({}) holding part of its data; restore \
             a file written by `pooledstore backup`, or close every connection to it first",
            input.display(),
            input_wal.display()
        )));
    }
    if absolute(input) == absolute(live) {
        return Err(StoreError::invalid_input(format!(
            "{} is the live database itself",
            input.display()
        )));
    }
    if !parent_dir(live).is_dir() {
        return Err(StoreError::config(format!(
            "the directory of the database {} does not exist",
            live.display()
        )));
    }
    Ok(())
}

/// Copies `input` beside `live`, verifies the copy and makes it self-contained.
fn stage_copy(live: &Path, input: &Path, table: &str) -> Result<(TempFile, FileSummary)> {
    let (temp, mut file) = TempFile::beside(live, "restore")?;
    let mut source =
        File::open(input).map_err(|e| io_error(e, &format!("opening {}", input.display())))?;
    std::io::copy(&mut source, &mut file)
        .and_then(|_| file.sync_all())
        .map_err(|e| io_error(e, &format!("copying {}", input.display())))?;
    drop(file);

    let conn = open_existing(temp.path(), Duration::ZERO)?;
    let summary = verify_connection(&conn, table).map_err(|e| {
        StoreError::new(
            e.kind(),
            format!(
                "refusing to restore {}: {}; the live database was not touched",
                input.display(),
                e.message()
            ),
        )
        .with_source(e)
    })?;
    make_self_contained(&conn)?;
    conn.close()
        .map_err(|(_, e)| sqlite_error(e, "closing the verified copy"))?;
    let bytes = crate::sqlite_file::file_len(temp.path())?;
    Ok((temp, FileSummary { bytes, ..summary }))
}

/// Removes the `-wal`, `-shm` and `-journal` files beside `live`: they belong to the old
/// file, and SQLite would replay them into the new one.
fn remove_stale_sidecars(live: &Path) -> Result<()> {
    for sidecar in with_sidecars(live).iter().skip(1) {
        remove_if_present(sidecar)?;
    }
    Ok(())
}

/// Whether the live database can be replaced safely.
#[derive(Debug)]
enum Access {
    /// No live database yet: nothing to lock.
    Absent,
    /// Every other connection is closed, and this lock keeps it so.
    Exclusive(ExclusiveLock),
    /// Another process may use the database; why.
    InUse(StoreError),
}

impl Access {
    fn check(live: &Path) -> Result<Self> {
        if !live.exists() {
            return Ok(Self::Absent);
        }
        let conn = open_existing(live, Duration::ZERO)?;
        match ExclusiveLock::take(conn) {
            Ok(lock) => Ok(Self::Exclusive(lock)),
            Err(e) if e.kind() == ErrorKind::Busy => Ok(Self::InUse(StoreError::new(
                ErrorKind::Busy,
                format!(
                    "{} is in use by another process (an open connection or a running \
                     transaction); stop every process using the store, or pass --force \
                     (processes still using it then keep writing to the replaced file)",
                    live.display()
                ),
            ))),
            Err(e) if e.kind() == ErrorKind::Corrupt => Ok(Self::InUse(StoreError::new(
                ErrorKind::Corrupt,
                format!(
                    "{} cannot be read, so whether another process uses it cannot be \
                     checked; make sure none does and pass --force to replace it",
                    live.display()
                ),
            ))),
            Err(e) => Err(e),
        }
    }
}

/// A connection to the live database holding an exclusive lock until dropped.
#[derive(Debug)]
struct ExclusiveLock(Connection);

impl ExclusiveLock {
    /// Leaves WAL mode (needs every other connection closed), then takes the exclusive
    /// lock (needs every transaction finished), without waiting: busy timeout is zero.
    fn take(conn: Connection) -> Result<Self> {
        make_self_contained(&conn)?;
        conn.execute_batch("BEGIN EXCLUSIVE")
            .map_err(|e| sqlite_error(e, "locking the database"))?;
        Ok(Self(conn))
    }
}

impl Drop for ExclusiveLock {
    fn drop(&mut self) {
        let _ = self.0.execute_batch("ROLLBACK");
    }
}
