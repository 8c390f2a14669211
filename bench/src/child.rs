//! The child side: one configuration, one workload, one concurrency level, on a fresh
//! copy of the preloaded database; prints one [`RunResult`] as JSON.

use std::path::Path;
use std::sync::Arc;

use crate::cli::Cli;
use crate::dataset::fresh_copy;
use crate::drive::{Measured, Window, drive_tasks, drive_threads};
use crate::ops::OpGen;
use crate::outcome::{RunResult, micros};
use crate::plan::{Config, TOKIO_WORKERS, Workload};
use crate::procstat::{CpuTimes, ThreadSampler, load_1m, peak_rss_kib};
use crate::targets::raw_deadpool::RawDeadpool;
use crate::targets::raw_rusqlite::RawConnection;
use crate::targets::raw_sqlx::RawSqlx;

/// Runs the measurement `--child CONFIG WORKLOAD` asks for.
pub(crate) fn run(cli: &Cli, config: &str, workload: &str) -> Result<RunResult, String> {
    let config = Config::from_name(config).ok_or_else(|| format!("unknown config {config:?}"))?;
    let workload =
        Workload::from_name(workload).ok_or_else(|| format!("unknown workload {workload:?}"))?;
    if !config.compiled() {
        return Err(format!("{config} is not compiled into this build"));
    }
    if cli.keys < 2 {
        return Err("--keys must be at least 2".into());
    }
    crate::plan::set_pool_size(cli.connections);
    let window = Window {
        warmup: cli.warmup(),
        measure: cli.measure(),
    };
    let workers = config.workers(cli.concurrency.max(1));
    let generators = OpGen::for_workers(workload, cli.keys, cli.seed, workers);
    let dir = tempfile::tempdir().map_err(|e| format!("creating a temp dir: {e}"))?;
    let path = if config.is_postgres() || config.is_mysql() || config.is_etcd() {
        dir.path().join("unused.db")
    } else {
        let template = cli.template.as_deref().ok_or("--child needs --template")?;
        fresh_copy(template, dir.path()).map_err(|e| format!("copying the template: {e}"))?
    };

    let load = load_1m();
    let sampler = ThreadSampler::start();
    let cpu_before = CpuTimes::now();
    let measured = match config {
        Config::Rusqlite => measure_threads(&path, generators, window)?,
        _ => tokio::runtime::Builder::new_multi_thread()
            .worker_threads(TOKIO_WORKERS)
            .enable_all()
            .build()
            .map_err(|e| format!("starting tokio: {e}"))?
            .block_on(measure_async(config, &path, cli, generators, window))?,
    };
    let cpu_after = CpuTimes::now();
    let peak_threads = sampler.finish();
    let mut result = result(
        config,
        workload,
        cli.concurrency,
        workers,
        &measured,
        peak_threads,
    );
    result.load_1m = load;
    result.others_cpu = cpu_before
        .zip(cpu_after)
        .map(|(before, after)| before.others_cores(&after));
    Ok(result)
}

fn result(
    config: Config,
    workload: Workload,
    concurrency: u32,
    workers: u32,
    measured: &Measured,
    peak_threads: Option<u64>,
) -> RunResult {
    let tally = &measured.tally;
    let ops = tally.ops();
    RunResult {
        config: config.name().into(),
        workload: workload.name().into(),
        concurrency,
        workers,
        ops,
        rows_per_op: workload.rows_per_op(),
        seconds: measured.seconds,
        ops_per_sec: if measured.seconds > 0.0 {
            ops as f64 / measured.seconds
        } else {
            0.0
        },
        p50_us: micros(tally.latencies.quantile(0.50)),
        p99_us: micros(tally.latencies.quantile(0.99)),
        max_us: micros(tally.latencies.quantile(1.0)),
        errors: tally
            .errors
            .iter()
            .map(|(kind, n)| ((*kind).to_owned(), *n))
            .collect(),
        cas_retries: tally.cas_retries,
        peak_threads,
        peak_rss_kib: peak_rss_kib(),
        load_1m: None,
        others_cpu: None,
    }
}

/// Raw rusqlite: one OS thread per worker, each with its own connection.
fn measure_threads(
    path: &Path,
    generators: Vec<OpGen>,
    window: Window,
) -> Result<Measured, String> {
    let workers = generators
        .into_iter()
        .map(|generator| RawConnection::open(path).map(|conn| (conn, generator)))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("opening rusqlite: {e}"))?;
    Ok(drive_threads(workers, window))
}

/// The pooled configurations, on a two-worker tokio runtime. The server configurations
/// preload `--keys` keys into a table of their own, or use the preloaded `--table`
/// (SQLite ones copy the template instead).
#[cfg_attr(
    not(any(feature = "postgres", feature = "mysql", feature = "etcd")),
    allow(unused_variables)
)]
async fn measure_async(
    config: Config,
    path: &Path,
    cli: &Cli,
    generators: Vec<OpGen>,
    window: Window,
) -> Result<Measured, String> {
    let (keys, table) = (cli.keys, cli.table.as_deref());
    match config {
        Config::Deadpool => {
            // Dropping the pool closes its connections.
            let pool = Arc::new(RawDeadpool::open(path)?);
            Ok(drive_tasks(pool, generators, window).await)
        }
        Config::Sqlx => {
            let pool = Arc::new(
                RawSqlx::open(path)
                    .await
                    .map_err(|e| format!("opening the sqlx pool: {e}"))?,
            );
            let measured = drive_tasks(pool.clone(), generators, window).await;
            pool.close().await;
            Ok(measured)
        }
        #[cfg(feature = "pooledstore")]
        Config::PooledSqlx | Config::PooledDeadpool => {
            let store = crate::targets::pooled::Pooled::open_sqlite_config(config, path).await?;
            let store = Arc::new(store);
            let measured = drive_tasks(store.clone(), generators, window).await;
            store.close().await;
            Ok(measured)
        }
        #[cfg(feature = "postgres")]
        Config::PgSqlx | Config::PooledPg => {
            crate::targets::raw_postgres::measure(config, keys, table, generators, window).await
        }
        #[cfg(feature = "mysql")]
        Config::MysqlSqlx | Config::PooledMysql => {
            crate::targets::raw_mysql::measure(config, keys, table, generators, window).await
        }
        #[cfg(feature = "etcd")]
        Config::EtcdClient | Config::PooledEtcd => {
            crate::targets::raw_etcd::measure(config, keys, generators, window).await
        }
        other => Err(format!("{other} is not compiled into this build")),
    }
}
