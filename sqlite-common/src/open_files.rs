//! Which database files stores of this process hold open, so tools that write files
//! (backup, export, `get --output`) can refuse to overwrite one of them.
//!
//! A SQLite backend registers its database file when it opens it and keeps the
//! returned [`OpenFile`] until the store is dropped; the file leaves the registry then.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};

/// Paths (made absolute) of the files stores of this process hold open, counted.
static OPEN_FILES: Mutex<Option<HashMap<PathBuf, usize>>> = Mutex::new(None);

fn registry() -> MutexGuard<'static, Option<HashMap<PathBuf, usize>>> {
    OPEN_FILES.lock().unwrap_or_else(PoisonError::into_inner)
}

/// `path` made absolute and resolved through symbolic links as far as it exists.
fn absolute(path: &Path) -> PathBuf {
    if let Ok(real) = path.canonicalize() {
        return real;
    }
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    match (dir.canonicalize(), path.file_name()) {
        (Ok(dir), Some(name)) => dir.join(name),
        _ => path.to_owned(),
    }
}

/// Registration of one database file a store holds open; the file leaves the registry
/// when the last registration of it is released (at the store's close) or dropped.
#[derive(Debug)]
pub struct OpenFile {
    path: PathBuf,
    released: AtomicBool,
}

impl OpenFile {
    /// Records that a store of this process holds the database file at `path` open.
    pub fn register(path: &Path) -> Self {
        let path = absolute(path);
        *registry()
            .get_or_insert_with(HashMap::new)
            .entry(path.clone())
            .or_insert(0) += 1;
        Self {
            path,
            released: AtomicBool::new(false),
        }
    }

    /// Takes this registration out of the registry (the store has closed the file).
    /// Idempotent.
    pub fn release(&self) {
        if self.released.swap(true, Ordering::AcqRel) {
            return;
        }
        let mut guard = registry();
        if let Some(files) = guard.as_mut()
            && let Some(count) = files.get_mut(&self.path)
        {
            *count -= 1;
            if *count == 0 {
                files.remove(&self.path);
            }
        }
    }

    /// The registered path, absolute.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for OpenFile {
    fn drop(&mut self) {
        self.release();
    }
}

/// The database files stores of this process hold open (absolute paths), without the
/// `-wal`/`-shm` files SQLite keeps beside them.
pub fn open_database_files() -> Vec<PathBuf> {
    registry()
        .as_ref()
        .map(|files| files.keys().cloned().collect())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_is_listed_while_any_registration_lives() {
        let path = std::env::temp_dir().join(format!("open-files-{}.db", std::process::id()));
        let first = OpenFile::register(&path);
        let second = OpenFile::register(&path);
        assert!(open_database_files().contains(&first.path().to_owned()));
        first.release();
        drop(first);
        assert!(open_database_files().contains(&second.path().to_owned()));
        let kept = second.path().to_owned();
        second.release();
        second.release();
        assert!(!open_database_files().contains(&kept));
    }
}
