//! `backup`: a consistent snapshot of a live SQLite store, taken with `VACUUM INTO` from
//! a connection of our own, so it works whichever backend serves the store and while it
//! serves it.

use std::path::{Path, PathBuf};

use storage_api::{Result, StoreError, StoreOptions};

use crate::atomic_file::{TempFile, check_overwrite};
use crate::sqlite_file::{
    make_self_contained, open_existing, registered_version, sqlite_error, sqlite_path,
    verify_connection,
};
use crate::target::check_output_path;

/// What a backup wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackupReport {
    /// The backup file.
    pub path: PathBuf,
    /// Live entries in the snapshot.
    pub entries: u64,
    /// Size of the backup file in bytes.
    pub bytes: u64,
    /// Schema version of the snapshot.
    pub schema_version: i64,
}

/// Writes a consistent snapshot of the store at `options.url` to `output`.
///
/// The snapshot is one self-contained SQLite file: written under a temporary name in
/// `output`'s directory, checked with `PRAGMA integrity_check`, fsynced, then moved into
/// place and the directory fsynced, so `output` is either the old file or a complete
/// backup. An existing `output` is replaced only with `force`. Writers carry on during
/// the backup in WAL mode; with a rollback journal they wait for it (up to
/// `busy_timeout`). The file is created with owner-only permissions.
///
/// Errors: `Unsupported` for PostgreSQL and in-memory stores (use `export`), `Config`
/// when the database file does not exist, `InvalidInput` when `output` exists (without
/// `force`), is the database or one of its journal files, a database another store of
/// this process has open, or not a regular file (see [`check_output_path`](crate::check_output_path)), `Corrupt`/`Unsupported` when the database is not
/// one this build can read.
pub fn backup(options: &StoreOptions, output: &Path, force: bool) -> Result<BackupReport> {
    let live = sqlite_path(&options.url, "backup")?;
    check_output_path(output, Some(&live))?;
    check_overwrite(output, force)?;
    let conn = open_existing(&live, options.busy_timeout)?;
    registered_version(&conn, &options.table)?;

    let (temp, file) = TempFile::beside(output, "backup")?;
    drop(file);
    let temp_name = temp.path().to_str().ok_or_else(|| {
        StoreError::invalid_input(format!("{} is not a UTF-8 path", output.display()))
    })?;
    conn.execute("VACUUM INTO ?1", [temp_name])
        .map_err(|e| sqlite_error(e, "taking the snapshot"))?;
    drop(conn);

    let copy = open_existing(temp.path(), options.busy_timeout)?;
    let summary = verify_connection(&copy, &options.table)?;
    make_self_contained(&copy)?;
    copy.close()
        .map_err(|(_, e)| sqlite_error(e, "closing the snapshot"))?;
    let bytes = crate::sqlite_file::file_len(temp.path())?;
    temp.persist(force)?;
    Ok(BackupReport {
        path: output.to_owned(),
        entries: summary.entries,
        bytes,
        schema_version: summary.schema_version,
    })
}
