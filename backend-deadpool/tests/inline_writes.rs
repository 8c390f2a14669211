//! A lone put or delete, in WAL mode with `synchronous` NORMAL, commits on the async
//! thread when it finds the write lock free: it needs no blocking thread. With
//! `synchronous = FULL` (a commit waits for the disk) it goes to a blocking thread as
//! before, and a lock held elsewhere sends it there to wait with the busy handler.

mod common;

use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::{file_options, hold_lock, open, quiet};
use storage_api::{Condition, PooledStore, PutOptions, StoreOptions, Synchronous};

/// A runtime whose only blocking thread the test can take away.
fn one_blocking_thread() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .max_blocking_threads(1)
        .enable_all()
        .build()
        .unwrap()
}

/// Occupies the runtime's only blocking thread until the returned sender is used or
/// dropped.
async fn hold_the_blocking_thread() -> (mpsc::Sender<()>, tokio::task::JoinHandle<()>) {
    let (release, released) = mpsc::channel::<()>();
    let (started_tx, started) = tokio::sync::oneshot::channel();
    let holder = tokio::task::spawn_blocking(move || {
        let _ = started_tx.send(());
        let _ = released.recv_timeout(Duration::from_secs(30));
    });
    started.await.unwrap();
    (release, holder)
}

/// Whether a put and a delete finish within `limit` while no blocking thread is free;
/// the store is opened with `options`, warmed up with one put first.
fn writes_finish_without_a_blocking_thread(options: StoreOptions, limit: Duration) -> bool {
    one_blocking_thread().block_on(async {
        let store = open(options).await;
        store
            .put(b"warm", b"0", PutOptions::default())
            .await
            .unwrap();
        let (release, holder) = hold_the_blocking_thread().await;

        let writes = async {
            store.put(b"k", b"v", PutOptions::default()).await.unwrap();
            assert!(store.delete(b"warm", Condition::Any).await.unwrap());
        };
        let finished = tokio::time::timeout(limit, writes).await.is_ok();

        drop(release);
        holder.await.unwrap();
        if finished {
            assert_eq!(store.get(b"k").await.unwrap().unwrap().value, b"v");
            assert!(store.get(b"warm").await.unwrap().is_none());
        }
        quiet(&store).await;
        store.close().await;
        finished
    })
}

/// A file database in WAL mode with `synchronous`.
fn wal_options(dir: &tempfile::TempDir, synchronous: Synchronous) -> StoreOptions {
    let mut options = file_options(dir.path(), "kv.db");
    options.sqlite.enable_wal = true;
    options.sqlite.synchronous = synchronous;
    options
}

#[test]
fn lone_writes_commit_on_the_async_thread_in_wal_mode_with_synchronous_normal() {
    let dir = tempfile::tempdir().unwrap();
    let options = wal_options(&dir, Synchronous::Normal);
    assert!(
        writes_finish_without_a_blocking_thread(options, Duration::from_secs(5)),
        "a lone put or delete waited for a blocking thread"
    );
}

#[test]
fn lone_writes_wait_for_a_blocking_thread_when_a_commit_waits_for_the_disk() {
    let dir = tempfile::tempdir().unwrap();
    let options = wal_options(&dir, Synchronous::Full);
    assert!(
        !writes_finish_without_a_blocking_thread(options, Duration::from_millis(500)),
        "a lone put with synchronous = FULL committed on the async thread"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lone_put_behind_a_lock_held_elsewhere_waits_for_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kv.db");
    let store = open(file_options(dir.path(), "kv.db")).await;
    store.put(b"k", b"0", PutOptions::default()).await.unwrap();

    let holder = hold_lock(path, "BEGIN IMMEDIATE", Duration::from_millis(300));

    let started = Instant::now();
    store.put(b"k", b"1", PutOptions::default()).await.unwrap();
    assert!(
        started.elapsed() >= Duration::from_millis(200),
        "the put did not wait for the lock: {:?}",
        started.elapsed()
    );
    holder.join().unwrap();
    assert_eq!(store.get(b"k").await.unwrap().unwrap().value, b"1");
    let metrics = quiet(&store).await;
    assert_eq!(metrics.busy, 0, "{metrics:?}");
    store.close().await;
}
