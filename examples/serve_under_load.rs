//! Serves `/metrics` for one store per compiled-in backend while a changing load runs
//! against it, so the metrics, the alert rules and the dashboard can be watched on real
//! data: `ops/prometheus/demo/run.sh` scrapes it with Prometheus and draws the
//! dashboard's key panels from what was scraped.
//!
//! ```text
//! cargo run --example serve_under_load --features deadpool -- [SECONDS] [FIRST_PORT]
//! ```
//!
//! Each backend gets a pool of 4 connections named `orders` on 127.0.0.1:FIRST_PORT,
//! FIRST_PORT+1, … (default 9461), a 1 s acquire timeout, a 1 s leak threshold, a
//! 100 ms busy timeout, and idle and lifetime limits of 20 s and 60 s. The run
//! (default 240 s) has four equal phases: a steady mix of reads, writes, scans and
//! compare-and-swap; the same plus four read-only transactions held for up to 2.5 s
//! each (saturation, waiters, acquire timeouts, leaks); the steady mix while a second
//! pool on the same file holds its write lock (SQLite busy errors); the steady mix
//! again.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

use pooledstore::observe::{ExportOptions, Instrumented};
use pooledstore::serve::{Server, ServerOptions};
use pooledstore::{BACKENDS, PooledStore, PutOptions, ScanOptions, StorageConfig, TxOptions};

/// Which part of the run is under way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Steady,
    HeldTransactions,
    LockedDatabase,
}

#[derive(Debug)]
struct Clock {
    started: Instant,
    total: Duration,
}

impl Clock {
    /// The phase now, or `None` once the run is over.
    fn phase(&self) -> Option<Phase> {
        let quarter =
            (self.started.elapsed().as_secs_f64() / self.total.as_secs_f64() * 4.0) as u32;
        match quarter {
            0 | 3 => Some(Phase::Steady),
            1 => Some(Phase::HeldTransactions),
            2 => Some(Phase::LockedDatabase),
            _ => None,
        }
    }
}

/// A small xorshift generator: the load needs variety, not quality.
fn next(seed: &AtomicU64) -> u64 {
    let mut x = seed.load(Relaxed);
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    seed.store(x, Relaxed);
    x
}

fn config(backend: &str, path: &std::path::Path) -> StorageConfig {
    StorageConfig {
        backend: backend.into(),
        url: format!("sqlite://{}", path.display()),
        db_pool_size: 4,
        db_connection_timeout_secs: 1,
        db_busy_timeout_ms: 100,
        db_leak_detection_threshold_secs: 1,
        db_idle_timeout_secs: 20,
        db_max_lifetime_secs: 60,
        ..StorageConfig::default()
    }
}

/// One client: a mix of operations with short pauses, until the run ends.
async fn steady(store: Arc<Instrumented>, clock: Arc<Clock>, seed: u64) {
    let seed = AtomicU64::new(seed | 1);
    while clock.phase().is_some() {
        let key = format!("key{:03}", next(&seed) % 500);
        let _ = match next(&seed) % 10 {
            0..=4 => store.get(key.as_bytes()).await.map(drop),
            5..=6 => store
                .put(key.as_bytes(), b"value", PutOptions::default())
                .await
                .map(drop),
            7 => store
                .put(key.as_bytes(), b"value", PutOptions::if_absent())
                .await
                .map(drop),
            8 => store.scan(ScanOptions::prefix("key1")).await.map(drop),
            _ => store
                .delete(key.as_bytes(), pooledstore::Condition::Any)
                .await
                .map(drop),
        };
        tokio::time::sleep(Duration::from_millis(2 + next(&seed) % 6)).await;
    }
}

/// During the second phase, holds a read-only transaction for 0.5 to 2.5 s at a time.
async fn holder(store: Arc<Instrumented>, clock: Arc<Clock>, seed: u64) {
    let seed = AtomicU64::new(seed | 1);
    while let Some(phase) = clock.phase() {
        if phase != Phase::HeldTransactions {
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        }
        // Read-only, so the connection is held without SQLite's write lock.
        let read_only = TxOptions { read_only: true };
        if let Ok(mut tx) = store.begin(read_only).await {
            let _ = tx.get(b"held").await;
            tokio::time::sleep(Duration::from_millis(500 + next(&seed) % 2000)).await;
            let _ = tx.commit().await;
        }
    }
}

/// During the third phase, a second pool on the same file keeps its write lock most of
/// the time, so the served store's writes wait out the busy timeout.
async fn intruder(store: Arc<dyn PooledStore>, clock: Arc<Clock>) {
    while let Some(phase) = clock.phase() {
        if phase != Phase::LockedDatabase {
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        }
        if let Ok(mut tx) = store.begin(TxOptions::default()).await {
            let _ = tx.put(b"intruder", b"value", PutOptions::default()).await;
            tokio::time::sleep(Duration::from_millis(400)).await;
            let _ = tx.commit().await;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let secs: u64 = args.next().map(|s| s.parse()).transpose()?.unwrap_or(240);
    let first_port: u16 = args.next().map(|s| s.parse()).transpose()?.unwrap_or(9461);
    let dir = tempfile::tempdir()?;
    let clock = Arc::new(Clock {
        started: Instant::now(),
        total: Duration::from_secs(secs),
    });
    let mut servers = Vec::new();
    let mut tasks = Vec::new();
    let compiled = BACKENDS.iter().filter(|b| b.compiled);
    for (i, backend) in compiled.enumerate() {
        let path = dir.path().join(format!("{}.db", backend.name));
        let store = pooledstore::open_instrumented(&config(backend.name, &path)).await?;
        let second = pooledstore::open(&config(backend.name, &path)).await?;
        let listen = SocketAddr::from(([127, 0, 0, 1], first_port + i as u16));
        let export = ExportOptions {
            namespace: String::new(),
            pool: "orders".into(),
        };
        let options = ServerOptions {
            listen,
            validate_interval: Some(Duration::from_secs(10)),
            ..ServerOptions::default()
        };
        let server = Server::bind(Arc::clone(&store), &export, options).await?;
        println!(
            "{} backend: http://{}/metrics",
            backend.name,
            server.local_addr()
        );
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        servers.push((
            stop,
            tokio::spawn(server.run(async {
                let _ = stopped.await;
            })),
        ));
        for client in 0..6 {
            let seed = 0x9e37_79b9_7f4a_7c15 ^ ((i as u64) << 32 | client);
            tasks.push(tokio::spawn(steady(
                Arc::clone(&store),
                Arc::clone(&clock),
                seed,
            )));
        }
        for client in 0..4 {
            tasks.push(tokio::spawn(holder(
                Arc::clone(&store),
                Arc::clone(&clock),
                client + 7,
            )));
        }
        tasks.push(tokio::spawn(intruder(second, Arc::clone(&clock))));
    }
    for task in tasks {
        task.await?;
    }
    for (stop, server) in servers {
        let _ = stop.send(());
        server.await?;
    }
    println!("load finished after {:?}", clock.started.elapsed());
    Ok(())
}
