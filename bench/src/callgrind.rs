//! The fixed single-task workload of the instruction-count guard
//! (`bench/callgrind/check`, `--callgrind-workload CONFIG`): one configuration on a fresh
//! SQLite file holding the same rows every run, the same operations in four phases, on
//! one task of a current-thread runtime, with the phases marked for callgrind by
//! [`callgrind_zero`] and [`callgrind_dump`].

use std::sync::Mutex;
use std::time::Duration;

use serde::Serialize;

use crate::dataset::build_template;
use crate::drive::{SyncTarget, Target};
use crate::ops::{Op, OpGen, OpResult};
use crate::plan::{Config, Workload};
use crate::targets::raw_deadpool::RawDeadpool;
use crate::targets::raw_rusqlite::RawConnection;
use crate::targets::raw_sqlx::RawSqlx;

/// Preloaded keys.
pub(crate) const KEYS: u64 = 5_000;
/// Seed of the rows and of the operations.
pub(crate) const SEED: u64 = 0x5EED;
/// Point reads in the `get` phase.
pub(crate) const GETS: usize = 2_000;
/// Single upserts in the `put` phase.
pub(crate) const PUTS: usize = 500;
/// Scans of [`SCAN_ROWS`](crate::plan::SCAN_ROWS) rows in the `scan` phase.
pub(crate) const SCANS: usize = 100;
/// Atomic batches in the `batch` phase, of [`BATCH_ROWS`] upserts each.
pub(crate) const BATCHES: usize = 100;
/// Upserts per batch.
pub(crate) const BATCH_ROWS: usize = 10;
/// Operations of each kind run before the counters are zeroed, so connections are
/// open and statements prepared when the phases start.
const WARMUP_OPS: usize = 5;
/// The pause after every operation, long enough for the threads the operation handed
/// work to (sqlx's connection workers, deadpool's blocking threads, the group-commit
/// writer) to finish and go idle, so how much they do never depends on how soon the
/// next operation arrives (a write arriving while the writer's round is still open
/// joins it and skips the round's setup; a reply arriving while a worker still spins
/// spares it a park and a wake-up).
const SETTLE: Duration = Duration::from_millis(1);
/// Pauses measured alone after the phases (the `settle` count), so the guard can take
/// the pauses' own instructions out of each phase's count.
pub(crate) const SETTLE_SAMPLES: usize = 500;

/// What one phase ran.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct PhaseRun {
    /// `get`, `put`, `scan`, `batch` or `settle` (the pauses alone): the order of
    /// callgrind's dumps.
    pub(crate) name: &'static str,
    /// Operations issued.
    pub(crate) ops: usize,
    /// Operations that failed (a guard run with errors measured something else).
    pub(crate) errors: usize,
}

/// What the workload ran, printed as one JSON line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct WorkloadRun {
    /// Configuration name.
    pub(crate) config: &'static str,
    /// Preloaded keys.
    pub(crate) keys: u64,
    /// The phases, in order.
    pub(crate) phases: Vec<PhaseRun>,
}

/// One phase's operations, generated before the counters start.
struct Phase {
    name: &'static str,
    ops: Vec<Op>,
}

/// Where the measured phases start: callgrind zeroes every thread's counters on entry
/// (`--zero-before='*callgrind_zero*'`).
#[inline(never)]
fn callgrind_zero() {
    std::hint::black_box(0_u8);
}

/// Where phase `name` ends: callgrind writes every thread's counters since the last
/// zero or dump to a file of its own on entry (`--dump-before='*callgrind_dump*'`).
#[inline(never)]
fn callgrind_dump(name: &str) {
    std::hint::black_box(name);
}

/// Runs the workload on `config` (`rusqlite`, `deadpool`, `sqlx`,
/// `pooledstore-deadpool`, `pooledstore-sqlx`).
pub(crate) fn run(config: &str) -> Result<WorkloadRun, String> {
    let config = Config::from_name(config).ok_or_else(|| format!("unknown config {config:?}"))?;
    if !config.compiled() || config.is_postgres() || config.is_mysql() || config.is_etcd() {
        return Err(format!(
            "{config}: the callgrind workload runs the embedded configurations this build has"
        ));
    }
    let dir = tempfile::tempdir().map_err(|e| format!("creating a temp dir: {e}"))?;
    let path = dir.path().join("callgrind.db");
    build_template(&path, KEYS, SEED).map_err(|e| format!("preloading {KEYS} keys: {e}"))?;
    let warmup = phases(SEED.wrapping_add(1), WARMUP_OPS, WARMUP_OPS, WARMUP_OPS, 1);
    let measured = phases(SEED, GETS, PUTS, SCANS, BATCHES);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("starting tokio: {e}"))?;
    let phases = runtime.block_on(async {
        match config {
            Config::Rusqlite => {
                let conn = RawConnection::open(&path).map_err(|e| format!("rusqlite: {e}"))?;
                Ok(run_phases(&OnThisTask(Mutex::new(conn)), warmup, measured).await)
            }
            Config::Deadpool => {
                let pool = RawDeadpool::open(&path)?;
                Ok(run_phases(&pool, warmup, measured).await)
            }
            Config::Sqlx => {
                let pool = RawSqlx::open(&path)
                    .await
                    .map_err(|e| format!("opening the sqlx pool: {e}"))?;
                let phases = run_phases(&pool, warmup, measured).await;
                pool.close().await;
                Ok(phases)
            }
            #[cfg(feature = "pooledstore")]
            Config::PooledSqlx | Config::PooledDeadpool => {
                let store =
                    crate::targets::pooled::Pooled::open_sqlite_config(config, &path).await?;
                let phases = run_phases(&store, warmup, measured).await;
                store.close().await;
                Ok(phases)
            }
            other => Err(format!("{other} is not compiled into this build")),
        }
    })?;
    Ok(WorkloadRun {
        config: config.name(),
        keys: KEYS,
        phases,
    })
}

/// The four phases: `gets` point reads, `puts` upserts, `scans` scans and `batches`
/// batches of [`BATCH_ROWS`] upserts, from generators seeded by `seed`.
fn phases(seed: u64, gets: usize, puts: usize, scans: usize, batches: usize) -> Vec<Phase> {
    let take = |workload, n| {
        let mut generator = OpGen::for_workers(workload, KEYS, seed, 1).remove(0);
        (0..n).map(|_| generator.next_op()).collect::<Vec<_>>()
    };
    // A second stream of upserts, so batches write other rows than the single puts.
    let mut batch_rows = OpGen::for_workers(Workload::Put, KEYS, seed, 2).remove(1);
    let batch = |_| {
        let pairs = (0..BATCH_ROWS).filter_map(|_| match batch_rows.next_op() {
            Op::Put(key, value) => Some((key, value)),
            _ => None,
        });
        Op::Batch(pairs.collect())
    };
    vec![
        Phase {
            name: "get",
            ops: take(Workload::PointRead, gets),
        },
        Phase {
            name: "put",
            ops: take(Workload::Put, puts),
        },
        Phase {
            name: "scan",
            ops: take(Workload::Scan, scans),
        },
        Phase {
            name: "batch",
            ops: (0..batches).map(batch).collect(),
        },
    ]
}

/// Runs `warmup` unmeasured, then `measured` between the callgrind markers, each
/// operation followed by a [`SETTLE`] pause, then [`SETTLE_SAMPLES`] pauses alone.
async fn run_phases<T: Target>(
    target: &T,
    warmup: Vec<Phase>,
    measured: Vec<Phase>,
) -> Vec<PhaseRun> {
    for phase in warmup {
        for op in phase.ops {
            let _ = target.run(op).await;
            tokio::time::sleep(SETTLE).await;
        }
    }
    let mut runs = Vec::with_capacity(measured.len());
    callgrind_zero();
    for phase in measured {
        let ops = phase.ops.len();
        let mut errors = 0;
        for op in phase.ops {
            errors += usize::from(target.run(op).await.is_err());
            tokio::time::sleep(SETTLE).await;
        }
        callgrind_dump(phase.name);
        runs.push(PhaseRun {
            name: phase.name,
            ops,
            errors,
        });
    }
    for _ in 0..SETTLE_SAMPLES {
        tokio::time::sleep(SETTLE).await;
    }
    callgrind_dump("settle");
    runs.push(PhaseRun {
        name: "settle",
        ops: SETTLE_SAMPLES,
        errors: 0,
    });
    runs
}

/// A connection used synchronously on the calling task, with no thread hop: raw
/// rusqlite as the floor of the async configurations.
struct OnThisTask<C>(Mutex<C>);

impl<C: SyncTarget + 'static> Target for OnThisTask<C> {
    async fn run(&self, op: Op) -> OpResult {
        let mut conn = self.0.lock().map_err(|_| "poisoned")?;
        conn.run(op)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::SCAN_ROWS;

    #[test]
    fn phases_are_fixed_by_the_seed_and_sized_as_documented() {
        let a = phases(SEED, GETS, PUTS, SCANS, BATCHES);
        let b = phases(SEED, GETS, PUTS, SCANS, BATCHES);
        let names: Vec<&str> = a.iter().map(|p| p.name).collect();
        assert_eq!(names, ["get", "put", "scan", "batch"]);
        let sizes: Vec<usize> = a.iter().map(|p| p.ops.len()).collect();
        assert_eq!(sizes, [GETS, PUTS, SCANS, BATCHES]);
        for (x, y) in a.iter().zip(&b) {
            assert_eq!(x.ops, y.ops);
        }
        let Op::Batch(pairs) = &a[3].ops[0] else {
            panic!("the batch phase issues batches");
        };
        assert_eq!(pairs.len(), BATCH_ROWS);
        assert!(matches!(&a[1].ops[0], Op::Put(..)));
        assert!(a[1].ops.iter().all(|op| !matches!(op, Op::Batch(_))));
        assert!(SCAN_ROWS as u64 <= KEYS);
    }

    #[test]
    fn the_guarded_configurations_run_the_workload_without_errors() {
        // The pauses make a run take seconds: the pooledstore configurations (the raw
        // pools without them), with raw rusqlite left to tests/callgrind_check.rs.
        let configs = if cfg!(feature = "pooledstore") {
            ["pooledstore-sqlx", "pooledstore-deadpool"]
        } else {
            ["sqlx", "deadpool"]
        };
        for config in configs {
            let run = run(config).unwrap();
            assert_eq!(run.config, config);
            let ops: Vec<usize> = run.phases.iter().map(|p| p.ops).collect();
            assert_eq!(
                ops,
                [GETS, PUTS, SCANS, BATCHES, SETTLE_SAMPLES],
                "{config}"
            );
            assert!(
                run.phases.iter().all(|p| p.errors == 0),
                "{config}: {run:?}"
            );
        }
        assert!(run("pg-sqlx").is_err());
        assert!(run("redis").is_err());
    }
}
