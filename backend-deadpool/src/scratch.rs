//! The private database behind `sqlite::memory:`: a WAL database file in a fresh
//! owner-only temporary directory, removed when the store closes or is dropped.
//!
//! SQLite's in-memory databases do not give pooled connections the concurrency of a
//! file. Shared-cache `:memory:` databases fail a reader of a table with uncommitted
//! writes at once with `SQLITE_LOCKED`, which `busy_timeout` does not cover. The `memdb`
//! VFS lets no `SHARED` lock join a `RESERVED` one, so every reader and every new
//! connection waits out the busy timeout behind an open write transaction. A private
//! WAL file behaves exactly like a file store; with `synchronous = OFF` it never waits
//! for the disk, and with `TMPDIR` on a tmpfs it lives in memory.

use std::path::PathBuf;

use storage_api::{ErrorKind, Result, StoreError};
use tempfile::TempDir;

/// A private directory holding one database; deleted with everything in it on drop.
#[derive(Debug)]
pub(crate) struct ScratchDir {
    dir: TempDir,
}

impl ScratchDir {
    /// Creates a directory no other store uses, readable by its owner only.
    pub(crate) fn create() -> Result<Self> {
        let mut builder = tempfile::Builder::new();
        builder.prefix("pooledstore-deadpool-");
        #[cfg(unix)]
        builder.permissions(std::os::unix::fs::PermissionsExt::from_mode(0o700));
        let dir = builder.tempdir().map_err(|e| {
            StoreError::new(
                ErrorKind::Connection,
                format!(
                    "cannot create a directory for the in-memory database in {}",
                    std::env::temp_dir().display()
                ),
            )
            .with_source(e)
        })?;
        Ok(Self { dir })
    }

    /// The database file inside the directory.
    pub(crate) fn db_path(&self) -> PathBuf {
        self.dir.path().join("memory.db")
    }
}
