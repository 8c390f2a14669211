//! Files that appear whole or not at all: written under a temporary name in the
//! target's directory, fsynced, renamed into place, and the directory fsynced.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use storage_api::{Result, StoreError};

use crate::paths::{parent_dir, with_sidecars};
use crate::sqlite_file::io_error;

/// A file under a temporary name beside its target, removed on drop unless persisted.
/// Created with owner-only permissions (0600): it holds the store's data.
#[derive(Debug)]
pub(crate) struct TempFile {
    path: PathBuf,
    target: PathBuf,
    persisted: bool,
}

impl TempFile {
    /// Creates an empty file beside `target`, named `.NAME.TAG-PID-NANOS.tmp`.
    pub(crate) fn beside(target: &Path, tag: &str) -> Result<(Self, File)> {
        let name = target
            .file_name()
            .ok_or_else(|| {
                StoreError::invalid_input(format!("{} is not a file name", target.display()))
            })?
            .to_string_lossy();
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let temp_name = format!(".{name}.{tag}-{}-{nanos}.tmp", std::process::id());
        let path = parent_dir(target).join(temp_name);
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
            .map_err(|e| io_error(e, &format!("creating {}", path.display())))?;
        let temp = Self {
            path,
            target: target.to_owned(),
            persisted: false,
        };
        Ok((temp, file))
    }

    /// The temporary path.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Flushes the file to disk and moves it to its target, then flushes the directory.
    /// With `replace` false an existing target is never overwritten, even if it appeared
    /// meanwhile (the move is a hard link, which refuses an existing name).
    pub(crate) fn persist(mut self, replace: bool) -> Result<()> {
        sync_file(&self.path)?;
        if replace {
            std::fs::rename(&self.path, &self.target).map_err(|e| {
                io_error(
                    e,
                    &format!("moving the new file into {}", self.target.display()),
                )
            })?;
        } else {
            std::fs::hard_link(&self.path, &self.target).map_err(|e| {
                if e.kind() == std::io::ErrorKind::AlreadyExists {
                    exists_error(&self.target)
                } else {
                    io_error(e, &format!("creating {}", self.target.display()))
                }
            })?;
            remove_if_present(&self.path)?;
        }
        self.persisted = true;
        sync_dir(parent_dir(&self.target))
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if !self.persisted {
            for path in with_sidecars(&self.path) {
                let _ = std::fs::remove_file(path);
            }
        }
    }
}

/// Writes `bytes` to `target` whole or not at all, owner-only (0600): refuses what
/// [`check_output_path`](crate::check_output_path) refuses (with `live` the command's
/// database), and an existing `target` unless `replace`.
pub fn write_file_atomically(
    target: &Path,
    bytes: &[u8],
    live: Option<&Path>,
    replace: bool,
) -> Result<()> {
    use std::io::Write;
    crate::target::check_output_path(target, live)?;
    check_overwrite(target, replace)?;
    let (temp, mut file) = TempFile::beside(target, "write")?;
    file.write_all(bytes)
        .map_err(|e| io_error(e, &format!("writing {}", temp.path().display())))?;
    drop(file);
    temp.persist(replace)
}

/// Fails unless `target` is absent or `force` allows replacing it.
pub(crate) fn check_overwrite(target: &Path, force: bool) -> Result<()> {
    if !force && target.symlink_metadata().is_ok() {
        return Err(exists_error(target));
    }
    Ok(())
}

fn exists_error(target: &Path) -> StoreError {
    StoreError::invalid_input(format!(
        "{} already exists; pass --force to replace it",
        target.display()
    ))
}

/// Removes `path`; a file that is already gone is fine.
pub(crate) fn remove_if_present(path: &Path) -> Result<()> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(io_error(e, &format!("removing {}", path.display()))),
    }
}

/// Flushes a file's data and metadata to disk.
pub(crate) fn sync_file(path: &Path) -> Result<()> {
    File::open(path)
        .and_then(|f| f.sync_all())
        .map_err(|e| io_error(e, &format!("flushing {} to disk", path.display())))
}

/// Flushes a directory, making renames and removals in it durable.
pub(crate) fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| io_error(e, &format!("flushing directory {}", dir.display())))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;
    use storage_api::ErrorKind;

    #[test]
    fn persist_refuses_an_existing_target_unless_replacing() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("out.bin");
        std::fs::write(&target, b"old").unwrap();

        let (temp, _) = TempFile::beside(&target, "t").unwrap();
        std::fs::write(temp.path(), b"new").unwrap();
        let e = temp.persist(false).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput);
        assert_eq!(std::fs::read(&target).unwrap(), b"old");

        let (temp, _) = TempFile::beside(&target, "t").unwrap();
        std::fs::write(temp.path(), b"new").unwrap();
        temp.persist(true).unwrap();
        assert_eq!(std::fs::read(&target).unwrap(), b"new");
        let mode = std::fs::metadata(&target).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let leftovers: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(leftovers.len(), 1, "temporary files left behind");
    }

    #[test]
    fn dropped_temp_files_are_removed() {
        let dir = tempfile::tempdir().unwrap();
        let (temp, _) = TempFile::beside(&dir.path().join("x"), "t").unwrap();
        let path = temp.path().to_owned();
        assert!(path.exists());
        drop(temp);
        assert!(!path.exists());
    }
}
