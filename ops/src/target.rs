//! The one check every command that writes a file runs on its target first: never a
//! database a store uses, never one of its journal files, never anything but a regular
//! file (a device, a directory, a symbolic link, a pipe).

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use sqlite_common::open_database_files;
use storage_api::{Result, StoreError};

use crate::paths::{absolute, with_sidecars};
use crate::sqlite_file::io_error;

/// Fails with `InvalidInput`, naming `target` and the reason, when writing (or
/// replacing) `target` could destroy something:
///
/// - it exists and is not a regular file (a device such as `/dev/full`, a directory, a
///   symbolic link, a FIFO or socket): replacing it by rename would swap it for a file;
/// - it is `live` (the database of the command's store), a database file any store of
///   this process has open, or the `-wal`, `-shm` or `-journal` file of either, by path
///   or as another hard link to the same file.
///
/// An absent `target` is fine. `restore`, whose target is the live database itself,
/// passes `live` as `None` and is held to the rest.
pub fn check_output_path(target: &Path, live: Option<&Path>) -> Result<()> {
    let metadata = match target.symlink_metadata() {
        Ok(metadata) => Some(metadata),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(io_error(e, &format!("checking {}", target.display()))),
    };
    if let Some(metadata) = &metadata
        && !metadata.file_type().is_file()
    {
        return Err(refused(target, &not_regular(metadata)));
    }
    let wanted = absolute(target);
    let identity = metadata.map(|m| (m.dev(), m.ino()));
    for (database, what) in protected(live) {
        for (index, file) in with_sidecars(&database).iter().enumerate() {
            let same_path = absolute(file) == wanted;
            let same_file = identity.is_some()
                && file
                    .metadata()
                    .is_ok_and(|m| Some((m.dev(), m.ino())) == identity);
            if same_path || same_file {
                let reason = match index {
                    0 => format!("it is {what} {}", database.display()),
                    _ => format!("it is a journal file of {what} {}", database.display()),
                };
                return Err(refused(target, &reason));
            }
        }
    }
    Ok(())
}

/// The databases no output may touch, each with how to name it.
fn protected(live: Option<&Path>) -> Vec<(PathBuf, &'static str)> {
    let mut files: Vec<(PathBuf, &'static str)> = live
        .map(|live| (live.to_owned(), "the live database"))
        .into_iter()
        .collect();
    files.extend(
        open_database_files()
            .into_iter()
            .map(|path| (path, "the database a store of this process has open,")),
    );
    files
}

fn not_regular(metadata: &std::fs::Metadata) -> String {
    use std::os::unix::fs::FileTypeExt;
    let file_type = metadata.file_type();
    let what = if file_type.is_symlink() {
        "a symbolic link"
    } else if file_type.is_dir() {
        "a directory"
    } else if file_type.is_char_device() || file_type.is_block_device() {
        "a device"
    } else if file_type.is_fifo() {
        "a named pipe"
    } else if file_type.is_socket() {
        "a socket"
    } else {
        "not a regular file"
    };
    format!("it is {what}, and only regular files are written or replaced")
}

fn refused(target: &Path, reason: &str) -> StoreError {
    StoreError::invalid_input(format!("refusing to write {}: {reason}", target.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use sqlite_common::OpenFile;
    use storage_api::ErrorKind;

    #[test]
    fn devices_directories_links_and_open_databases_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("live.db");
        std::fs::write(&db, b"x").unwrap();
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&db, &link).unwrap();
        let hard = dir.path().join("hard");
        std::fs::hard_link(&db, &hard).unwrap();
        for target in [Path::new("/dev/full"), dir.path(), &link] {
            let e = check_output_path(target, None).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::InvalidInput);
            assert!(e.message().contains(&target.display().to_string()), "{e}");
        }
        let registered = OpenFile::register(&db);
        for target in [db.clone(), dir.path().join("live.db-wal"), hard.clone()] {
            let e = check_output_path(&target, None).unwrap_err();
            assert!(e.message().contains("has open"), "{e}");
        }
        drop(registered);
        check_output_path(&dir.path().join("other.jsonl"), Some(&db)).unwrap();
        let e = check_output_path(&dir.path().join("live.db-shm"), Some(&db)).unwrap_err();
        assert!(
            e.message().contains("journal file of the live database"),
            "{e}"
        );
    }
}
