//! A server restart under load, on a private server (never the shared one): writers
//! and readers run while the server stops (`pg_ctl stop -m fast`, then in another test
//! `-m immediate`, a crash) and starts again. During the outage every operation fails
//! within the acquire timeout with the retryable `Connection` kind and none hangs;
//! health says unreachable, then healthy; the pool recovers by itself, without a
//! reopen, within seconds of the server's return (the time is printed); every write
//! acknowledged before, during or after is there, and every write reported as failed
//! is there whole or not at all (each write is a two-key batch).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use backend_sqlx::SqlxStore;
use server_tests::private_pg::{PgConfig, PrivatePg};
use storage_api::{
    ErrorKind, HealthStatus, PooledStore, PutOptions, StoreOptions, Version, WriteOp, WriteResult,
};

const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(2);
/// What an operation may take beyond the acquire timeout (a statement's own round
/// trip, scheduling on a busy machine).
const SLACK: Duration = Duration::from_millis(1500);
const WRITERS: usize = 4;
const READERS: usize = 2;
/// The longest the pool may take to serve again once the server accepts connections.
const RECOVERY_LIMIT: Duration = Duration::from_secs(5);

/// What the load saw.
#[derive(Debug, Default)]
struct Outcomes {
    /// Keys of acknowledged writes, with their versions.
    acknowledged: HashMap<Vec<u8>, Version>,
    /// Key pairs of writes reported as failed.
    failed: Vec<(Vec<u8>, Vec<u8>)>,
    /// Every error: its kind, whether retryable, how long the operation took, message.
    errors: Vec<(ErrorKind, bool, Duration, String)>,
    /// The longest any operation took.
    slowest: Duration,
    /// Writes acknowledged after the server came back.
    acknowledged_after_restart: usize,
}

fn key(writer: usize, n: u64, half: &str) -> Vec<u8> {
    format!("w{writer}-{n}-{half}").into_bytes()
}

async fn writer(
    store: SqlxStore,
    id: usize,
    stop: Arc<AtomicBool>,
    restarted: Arc<AtomicBool>,
    outcomes: Arc<Mutex<Outcomes>>,
    recent: Arc<Mutex<Vec<Vec<u8>>>>,
) {
    let mut n = 0u64;
    while !stop.load(Ordering::SeqCst) {
        n += 1;
        let (a, b) = (key(id, n, "a"), key(id, n, "b"));
        let value = n.to_be_bytes().to_vec();
        let ops = vec![
            WriteOp::put(a.clone(), value.clone()),
            WriteOp::put(b.clone(), value),
        ];
        let started = Instant::now();
        let result = store.batch(ops).await;
        let took = started.elapsed();
        let after_restart = restarted.load(Ordering::SeqCst);
        let failed = {
            let mut out = outcomes.lock().unwrap();
            out.slowest = out.slowest.max(took);
            match result {
                Ok(results) => {
                    for (k, r) in [a.clone(), b].into_iter().zip(results) {
                        let WriteResult::Put(version) = r else {
                            panic!("a put answered {r:?}")
                        };
                        out.acknowledged.insert(k, version);
                    }
                    if after_restart {
                        out.acknowledged_after_restart += 1;
                    }
                    recent.lock().unwrap().push(a);
                    false
                }
                Err(e) => {
                    out.errors
                        .push((e.kind(), e.is_retryable(), took, e.to_string()));
                    out.failed.push((a, b));
                    true
                }
            }
        };
        if failed {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

async fn reader(
    store: SqlxStore,
    stop: Arc<AtomicBool>,
    outcomes: Arc<Mutex<Outcomes>>,
    recent: Arc<Mutex<Vec<Vec<u8>>>>,
) {
    while !stop.load(Ordering::SeqCst) {
        let Some(key) = recent.lock().unwrap().last().cloned() else {
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        };
        let started = Instant::now();
        let result = store.get(&key).await;
        let took = started.elapsed();
        let failed = {
            let mut out = outcomes.lock().unwrap();
            out.slowest = out.slowest.max(took);
            match result {
                Ok(found) => {
                    assert!(found.is_some(), "an acknowledged write is missing");
                    false
                }
                Err(e) => {
                    out.errors
                        .push((e.kind(), e.is_retryable(), took, e.to_string()));
                    true
                }
            }
        };
        if failed {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// Health checks until one reports `status` (within `limit`); the time it took.
async fn health_becomes(store: &SqlxStore, status: HealthStatus, limit: Duration) -> Duration {
    let started = Instant::now();
    loop {
        let health = store.health_check().await;
        if health.status == status {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < limit,
            "health did not become {status:?} within {limit:?}: {health:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn restart_under_load(mode: &str) {
    let server = PrivatePg::start(&PgConfig::default());
    let mut options = StoreOptions::new(server.url());
    options.table = "restart_kv".into();
    options.max_connections = 4;
    options.min_idle = 2;
    options.acquire_timeout = ACQUIRE_TIMEOUT;
    options.close_grace = Duration::from_secs(2);
    let store = SqlxStore::open(options).await.expect("open");

    let stop = Arc::new(AtomicBool::new(false));
    let restarted = Arc::new(AtomicBool::new(false));
    let outcomes = Arc::new(Mutex::new(Outcomes::default()));
    let recent = Arc::new(Mutex::new(Vec::new()));
    let mut tasks = Vec::new();
    for id in 0..WRITERS {
        tasks.push(tokio::spawn(writer(
            store.clone(),
            id,
            Arc::clone(&stop),
            Arc::clone(&restarted),
            Arc::clone(&outcomes),
            Arc::clone(&recent),
        )));
    }
    for _ in 0..READERS {
        tasks.push(tokio::spawn(reader(
            store.clone(),
            Arc::clone(&stop),
            Arc::clone(&outcomes),
            Arc::clone(&recent),
        )));
    }
    tokio::time::sleep(Duration::from_millis(800)).await;
    let before = outcomes.lock().unwrap().acknowledged.len();
    assert!(before > 0, "no write went through before the stop");

    tokio::task::block_in_place(|| server.stop(mode));
    let unreachable_after =
        health_becomes(&store, HealthStatus::Unreachable, Duration::from_secs(5)).await;
    println!("{mode} stop: health said unreachable {unreachable_after:?} after the stop");
    tokio::time::sleep(Duration::from_millis(1500)).await;

    tokio::task::block_in_place(|| server.start_again());
    let back = Instant::now();
    restarted.store(true, Ordering::SeqCst);
    health_becomes(&store, HealthStatus::Healthy, RECOVERY_LIMIT).await;
    let probe = loop {
        match store.put(b"probe", b"back", PutOptions::default()).await {
            Ok(_) => break back.elapsed(),
            Err(e) => {
                assert!(
                    back.elapsed() < RECOVERY_LIMIT,
                    "no write within {RECOVERY_LIMIT:?} of the restart: {e}"
                );
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    };
    println!("{mode} stop: the pool served again {probe:?} after the server accepted connections");
    assert!(probe < RECOVERY_LIMIT, "recovery took {probe:?}");
    tokio::time::sleep(Duration::from_millis(800)).await;
    stop.store(true, Ordering::SeqCst);
    for task in tasks {
        tokio::time::timeout(ACQUIRE_TIMEOUT + SLACK * 2, task)
            .await
            .expect("a load task hung")
            .expect("a load task panicked");
    }

    let out = std::mem::take(&mut *outcomes.lock().unwrap());
    println!(
        "{mode} stop: {} keys acknowledged, {} writes failed, {} errors, slowest operation {:?}",
        out.acknowledged.len(),
        out.failed.len(),
        out.errors.len(),
        out.slowest
    );
    for (_, _, took, message) in out.errors.iter().take(3) {
        println!("{mode} stop: an operation failed after {took:?}: {message}");
    }
    assert!(!out.errors.is_empty(), "the outage failed no operation");
    for (kind, retryable, took, message) in &out.errors {
        assert_eq!(*kind, ErrorKind::Connection, "{message}");
        assert!(*retryable, "{message}");
        assert!(*took <= ACQUIRE_TIMEOUT + SLACK, "took {took:?}: {message}");
    }
    assert!(
        out.slowest <= ACQUIRE_TIMEOUT + SLACK,
        "slowest {:?}",
        out.slowest
    );
    assert!(
        out.acknowledged_after_restart > 0,
        "no write after the restart"
    );

    for (key, version) in &out.acknowledged {
        let entry =
            store.get(key).await.expect("read back").unwrap_or_else(|| {
                panic!("acknowledged write {} lost", String::from_utf8_lossy(key))
            });
        assert_eq!(entry.version, *version, "{}", String::from_utf8_lossy(key));
    }
    for (a, b) in &out.failed {
        let (a_found, b_found) = (store.get(a).await.unwrap(), store.get(b).await.unwrap());
        assert_eq!(
            a_found.is_some(),
            b_found.is_some(),
            "a failed write is half applied: {}",
            String::from_utf8_lossy(a)
        );
    }
    store.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fast_shutdown_and_restart_under_load_loses_no_acknowledged_write() {
    restart_under_load("fast").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_immediate_shutdown_and_restart_under_load_loses_no_acknowledged_write() {
    restart_under_load("immediate").await;
}
