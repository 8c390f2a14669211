//! The private database behind `sqlite::memory:`: a WAL database file in a fresh
//! owner-only temporary directory, removed when the store closes or is dropped.
//!
//! SQLite's own in-memory options do not give pooled connections the concurrency
//! of a file: shared-cache `:memory:` databases fail readers of a table with
//! uncommitted writes at once with `SQLITE_LOCKED` (which `busy_timeout` does not
//! cover), and the `memdb` VFS refuses every new reader while any write transaction
//! is open (its lock lets no `SHARED` lock join a `RESERVED` one), so a reader waits
//! out the busy timeout behind each open transaction. A temporary WAL file behaves
//! exactly like a file store; with `synchronous = OFF` it never waits for the disk,
//! and with `TMPDIR` on a tmpfs it lives in memory.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{SystemTime, UNIX_EPOCH};

use storage_api::{ErrorKind, Result, StoreError};

/// A private temporary directory holding one database, removed on [`remove`] or drop.
///
/// [`remove`]: ScratchDir::remove
#[derive(Debug)]
pub struct ScratchDir {
    dir: PathBuf,
    backend: &'static str,
}

impl ScratchDir {
    /// Creates a directory no other store uses, readable by its owner only, named
    /// after `backend`.
    pub fn create(backend: &'static str) -> Result<Self> {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let dir = std::env::temp_dir().join(format!(
            "pooledstore-{backend}-{}-{}-{nanos}",
            std::process::id(),
            NEXT.fetch_add(1, Relaxed)
        ));
        let mut builder = std::fs::DirBuilder::new();
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
        builder.create(&dir).map_err(|e| {
            StoreError::new(
                ErrorKind::Connection,
                format!(
                    "cannot create a directory for the in-memory database in {}: {e}",
                    std::env::temp_dir().display()
                ),
            )
        })?;
        Ok(Self { dir, backend })
    }

    /// The database file inside the directory.
    pub fn db_path(&self) -> PathBuf {
        self.dir.join("memory.db")
    }

    /// Deletes the directory and the database in it.
    pub fn remove(&self) {
        if let Err(error) = std::fs::remove_dir_all(&self.dir)
            && error.kind() != std::io::ErrorKind::NotFound
        {
            tracing::debug!(backend = self.backend, %error, "removing the in-memory database");
        }
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        self.remove();
    }
}
