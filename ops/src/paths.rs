//! Paths of a SQLite database: its directory, its absolute form, and the files SQLite
//! keeps beside it.

use std::path::{Path, PathBuf};

/// The directory holding `path` (`.` for a bare file name).
pub(crate) fn parent_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    }
}

/// `path` made absolute and resolved through symbolic links as far as it exists.
pub(crate) fn absolute(path: &Path) -> PathBuf {
    if let Ok(real) = path.canonicalize() {
        return real;
    }
    let dir = parent_dir(path);
    match (dir.canonicalize(), path.file_name()) {
        (Ok(dir), Some(name)) => dir.join(name),
        _ => path.to_owned(),
    }
}

/// `path` and the `-wal`, `-shm` and `-journal` files SQLite keeps beside it.
pub(crate) fn with_sidecars(path: &Path) -> [PathBuf; 4] {
    let suffixed = |suffix: &str| {
        let mut name = path.as_os_str().to_owned();
        name.push(suffix);
        PathBuf::from(name)
    };
    [
        path.to_owned(),
        suffixed("-wal"),
        suffixed("-shm"),
        suffixed("-journal"),
    ]
}
