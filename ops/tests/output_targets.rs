//! Every command that writes a file refuses a target it could destroy: the live
//! database, its `-wal`/`-shm`, a database any store of this process has open (by path
//! or hard link), and anything that is not a regular file. The message names the path
//! and the reason, and the target is left as it was.

mod common;

use std::path::Path;

use common::{BACKENDS, fill, open, options};
use pooledstore_ops::{ExportOptions, backup, count_entries, export_to_file, restore};
use storage_api::{ErrorKind, StoreError};

const FORCED: ExportOptions = ExportOptions {
    snapshot: false,
    force: true,
};

fn assert_refused(outcome: Result<impl std::fmt::Debug, StoreError>, target: &Path, why: &str) {
    let e = outcome.expect_err("writing the target was allowed");
    assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e}");
    assert!(
        e.message().contains(&target.display().to_string()),
        "the message does not name {}: {e}",
        target.display()
    );
    assert!(
        e.message().contains(why),
        "the message does not say {why:?}: {e}"
    );
}

#[tokio::test]
async fn export_refuses_the_live_database_its_journals_and_non_files() {
    for backend in BACKENDS {
        let dir = tempfile::tempdir().unwrap();
        let live = dir.path().join("live.db");
        let store = open(backend, &live).await.unwrap();
        fill(&*store, "k/", 25).await;
        let link = dir.path().join("link.jsonl");
        std::os::unix::fs::symlink(&live, &link).unwrap();
        let hard = dir.path().join("hard.db");
        std::fs::hard_link(&live, &hard).unwrap();

        for (target, why) in [
            (live.clone(), "has open"),
            (dir.path().join("live.db-wal"), "journal file"),
            (dir.path().join("live.db-shm"), "journal file"),
            (hard.clone(), "has open"),
            (link.clone(), "symbolic link"),
            (dir.path().to_owned(), "directory"),
            (Path::new("/dev/full").to_owned(), "device"),
        ] {
            let outcome = export_to_file(&*store, &target, FORCED).await;
            assert_refused(outcome, &target, why);
        }
        let full = std::fs::symlink_metadata("/dev/full").unwrap().file_type();
        assert!(std::os::unix::fs::FileTypeExt::is_char_device(&full));
        assert_eq!(count_entries(&*store).await.unwrap(), 25, "{backend:?}");
        store.close().await;
        drop(store);

        let reopened = open(backend, &live).await.unwrap();
        assert_eq!(count_entries(&*reopened).await.unwrap(), 25, "{backend:?}");
        reopened.close().await;
    }
}

#[tokio::test]
async fn backup_refuses_any_open_database_and_non_files() {
    let dir = tempfile::tempdir().unwrap();
    let live = dir.path().join("live.db");
    let other = dir.path().join("other.db");
    let source = open(common::Backend::Sqlx, &live).await.unwrap();
    fill(&*source, "k/", 5).await;
    let bystander = open(common::Backend::Deadpool, &other).await.unwrap();
    fill(&*bystander, "o/", 7).await;
    let opts = options(&live);

    for (target, why) in [
        (live.clone(), "live database"),
        (dir.path().join("live.db-shm"), "journal file"),
        (other.clone(), "has open"),
        (dir.path().join("other.db-wal"), "journal file"),
        (Path::new("/dev/full").to_owned(), "device"),
        (dir.path().to_owned(), "directory"),
    ] {
        assert_refused(backup(&opts, &target, true), &target, why);
    }
    assert_eq!(count_entries(&*bystander).await.unwrap(), 7);
    source.close().await;
    bystander.close().await;
}

#[tokio::test]
async fn restore_refuses_a_database_this_process_has_open_or_that_is_not_a_file() {
    for backend in BACKENDS {
        let dir = tempfile::tempdir().unwrap();
        let live = dir.path().join("live.db");
        let store = open(backend, &live).await.unwrap();
        fill(&*store, "k/", 5).await;
        let out = dir.path().join("b.db");
        backup(&options(&live), &out, false).unwrap();
        fill(&*store, "after/", 3).await;
        // Even forced: replacing the file under this process's own store loses its writes.
        assert_refused(restore(&options(&live), &out, true), &live, "has open");
        assert_eq!(count_entries(&*store).await.unwrap(), 8);
        store.close().await;

        let link = dir.path().join("link.db");
        std::os::unix::fs::symlink(&live, &link).unwrap();
        assert_refused(restore(&options(&link), &out, true), &link, "symbolic link");
        assert!(
            std::fs::symlink_metadata(&link)
                .unwrap()
                .file_type()
                .is_symlink()
        );
        restore(&options(&live), &out, false).unwrap();
    }
}
