//! Connections opening while others close on the same WAL file must never deadlock.
//! (SQLite 3.51.1 could, inside its unix VFS; a guard against that coming back. The
//! kit's `open_close_churn` case covers whole stores.)

mod common;

use std::sync::Arc;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::{file_options, open};
use storage_api::{PooledStore, PutOptions};

/// How long the churn runs.
const CHURN: Duration = Duration::from_secs(3);
/// How long the whole test may take before it counts as deadlocked.
const WATCHDOG: Duration = Duration::from_secs(60);

async fn churn(dir: &std::path::Path) -> u64 {
    let mut options = file_options(dir, "kv.db");
    // One connection that retires as soon as it is given back: each operation closes
    // the file's last connection while the next one opens a new connection to it.
    options.max_connections = 1;
    options.max_lifetime = Some(Duration::from_millis(1));
    let store = Arc::new(open(options).await);
    let started = Instant::now();
    let workers: Vec<_> = (0..2u8)
        .map(|i| {
            let store = Arc::clone(&store);
            tokio::spawn(async move {
                let mut done = 0u64;
                while started.elapsed() < CHURN {
                    store.put(&[i], &[i], PutOptions::default()).await.unwrap();
                    done += 1;
                }
                done
            })
        })
        .collect();
    let mut total = 0;
    for worker in workers {
        total += worker.await.unwrap();
    }
    assert!(store.pool_metrics().closed.max_lifetime > 10);
    store.close().await;
    total
}

#[test]
fn opening_and_retiring_connections_concurrently_never_deadlocks() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_path_buf();
    let (finished, outcome) = mpsc::channel();
    // On its own thread, so a deadlock fails the test instead of hanging it.
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let total = runtime.block_on(churn(&path));
        let _ = finished.send(total);
    });
    match outcome.recv_timeout(WATCHDOG) {
        Ok(total) => assert!(total > 0),
        Err(mpsc::RecvTimeoutError::Timeout) => {
            panic!("no progress for {WATCHDOG:?}: connections deadlocked")
        }
        Err(mpsc::RecvTimeoutError::Disconnected) => {
            panic!("the churn failed (an operation could not get a connection)")
        }
    }
}
