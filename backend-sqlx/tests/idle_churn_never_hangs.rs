//! Pools that empty themselves over and over (tiny idle timeout, no `min_idle`)
//! while new connections open beside the closing ones: the mix in which SQLite 3.51.1
//! could deadlock (a closing and an opening connection to one WAL file). Kept as a
//! guard against that coming back; the kit's `open_close_churn` case covers whole
//! stores. A hang fails the test through the timeout instead of blocking the run.

mod common;

use std::time::Duration;

use backend_sqlx::SqlxStore;
use common::{KINDS, Kind, open, options, temp_dir};
use storage_api::{PooledStore, PutOptions};

/// Operations each worker runs, pausing between them for a few reaper periods now
/// and then, so the pool empties and refills all the time.
const OPS_PER_WORKER: u64 = 400;

/// Concurrent workers, each on its own connection while it runs an operation.
const WORKERS: u64 = 4;

/// The whole churn must finish within this, hang or not.
const BOUND: Duration = Duration::from_secs(120);

/// The runtime is shut down with a bound rather than dropped: sqlx's idle reaper can
/// spin without yielding on a pool that closed under it (with an idle timeout this
/// small), and dropping the runtime would wait for it forever.
#[test]
fn emptying_the_pool_while_connections_open_never_hangs() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(churn_every_kind());
    rt.shutdown_timeout(Duration::from_secs(5));
}

async fn churn_every_kind() {
    for kind in KINDS {
        let dir = temp_dir();
        let mut opts = options(kind, &dir);
        opts.min_idle = 0;
        opts.max_connections = WORKERS as u32;
        opts.idle_timeout = Some(Duration::from_millis(1));
        opts.max_lifetime = None;
        opts.acquire_timeout = Duration::from_secs(10);
        let store = open(opts.clone()).await;
        let churn = churn(&store, kind, opts);
        if tokio::time::timeout(BOUND, churn).await.is_err() {
            panic!("{kind:?}: hung for {BOUND:?} while the pool churned");
        }
        let m = store.pool_metrics();
        // The pool really emptied and refilled, over and over.
        assert!(
            m.created >= 100 && m.closed.idle_timeout >= 100,
            "{kind:?}: too little churn: {m:?}"
        );
        // With the pool empty, the database is still open: had its last connection
        // closed, SQLite would have checkpointed and deleted the WAL file.
        let path = store.database_path().expect("a SQLite store").to_path_buf();
        let wal = std::path::PathBuf::from(format!("{}-wal", path.display()));
        let emptied = wait_until(|| store.pool_metrics().size == 0).await;
        assert!(emptied, "{kind:?}: the pool never emptied");
        assert!(wal.exists(), "{kind:?}: the last connection closed");
        let report = tokio::time::timeout(BOUND, store.close())
            .await
            .unwrap_or_else(|_| panic!("{kind:?}: close hung"));
        assert!(!report.already_closed, "{kind:?}: {report:?}");
        if kind == Kind::File {
            // Closed, the store leaves one self-contained file.
            let left = std::fs::metadata(&wal).map(|m| m.len()).unwrap_or(0);
            assert_eq!(left, 0, "{kind:?}: WAL left behind");
        }
    }
}

/// Runs the workers; for file stores, a second store on the same file opens, reads
/// and closes over and over meanwhile.
async fn churn(store: &SqlxStore, kind: Kind, opts: storage_api::StoreOptions) {
    let mut tasks = Vec::new();
    for worker in 0..WORKERS {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let key = format!("k{worker}").into_bytes();
            for op in 0..OPS_PER_WORKER {
                let value = op.to_be_bytes();
                store
                    .put(&key, &value, PutOptions::default())
                    .await
                    .expect("put");
                let entry = store.get(&key).await.expect("get").expect("present");
                assert_eq!(entry.value, value);
                // Pauses of 0 to 6 ms, different per worker: connections go idle
                // and are reaped while other workers open new ones.
                let pause = (op * 7 + worker * 3) % 7;
                tokio::time::sleep(Duration::from_millis(pause)).await;
            }
        }));
    }
    if kind == Kind::File {
        let opts = opts.clone();
        tasks.push(tokio::spawn(async move {
            for _ in 0..40 {
                let other = SqlxStore::open(opts.clone()).await.expect("second open");
                assert!(other.get(b"k0").await.is_ok());
                other.close().await;
                tokio::time::sleep(Duration::from_millis(3)).await;
            }
        }));
    }
    for task in tasks {
        task.await.expect("worker");
    }
}

/// Polls `done` for up to 5 s.
async fn wait_until(done: impl Fn() -> bool) -> bool {
    for _ in 0..500 {
        if done() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    false
}
