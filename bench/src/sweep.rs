//! How cost grows (`--sweep`): point reads, puts and scans over data sizes (at the pool
//! size `--connections`) and over pool sizes (at the smallest data size). Every
//! measurement is a child of the ordinary run; the data of each size is preloaded once
//! and shared by that size's children, then removed. The medians are written as JSON
//! and SVG pictures.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Instant, SystemTime};

use serde::Serialize;

use crate::cli::Cli;
use crate::dataset::build_template;
use crate::outcome::RunResult;
use crate::parent::{Data, Job, Progress, run_jobs, schedule, select_configs, select_workloads};
use crate::plan::{Config, Workload};
use crate::plot::{Chart, Series, write_svg};
use crate::procstat::load_average;
use crate::report::{Failure, Row, median_row, rate, utc_date};

/// What the sweep measures.
pub(crate) const WORKLOADS: [Workload; 3] = [Workload::PointRead, Workload::Put, Workload::Scan];

/// One data size and pool size the sweep measures at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub(crate) struct Point {
    /// Preloaded keys.
    pub(crate) keys: u64,
    /// Connections in the pool under test.
    pub(crate) connections: u32,
}

/// The points of the sweep, by size then pool size, each once: every size at the pool
/// size `connections` and every pool size at the smallest size.
pub(crate) fn points(keys: &[u64], pools: &[u32], connections: u32) -> Vec<Point> {
    let smallest = keys.iter().copied().min().unwrap_or(0);
    let mut points: Vec<Point> = keys
        .iter()
        .map(|&keys| Point { keys, connections })
        .chain(pools.iter().map(|&connections| Point {
            keys: smallest,
            connections,
        }))
        .collect();
    points.sort_unstable();
    points.dedup();
    points
}

/// When, where and how the sweep ran.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct SweepMeta {
    /// UTC date and time of the end of the sweep.
    pub(crate) date: String,
    /// The command line, as typed.
    pub(crate) command: String,
    /// Cores available to the process.
    pub(crate) cores: usize,
    /// The machine's memory (`MemTotal`), KiB: the page cache can hold at most this.
    pub(crate) memory_kib: Option<u64>,
    /// The SQLite library the SQLite configurations run.
    pub(crate) sqlite_version: String,
    /// Load averages (1, 5, 15 minutes) when the sweep started.
    pub(crate) load_average_start: String,
    /// Load averages when it ended.
    pub(crate) load_average_end: String,
    /// Data sizes, at the pool size `keys_axis_connections`.
    pub(crate) keys: Vec<u64>,
    /// Pool sizes, at the data size `pool_axis_keys`.
    pub(crate) pools: Vec<u32>,
    /// The pool size of the data-size axis.
    pub(crate) keys_axis_connections: u32,
    /// The data size of the pool-size axis.
    pub(crate) pool_axis_keys: u64,
    /// Concurrency levels.
    pub(crate) tasks: Vec<u32>,
    /// Measured seconds per measurement.
    pub(crate) duration_s: f64,
    /// Warm-up seconds per measurement.
    pub(crate) warmup_s: f64,
    /// Repetitions per measurement.
    pub(crate) reps: u32,
    /// Wall-clock seconds of the whole sweep, preloading included.
    pub(crate) elapsed_s: f64,
}

/// One engine's copy of the data at one size.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct Stored {
    /// Size on disk, bytes (SQLite: the file; servers: table and indexes).
    pub(crate) bytes: u64,
    /// Seconds the preload took.
    pub(crate) preload_s: f64,
    /// What caches the engine's pages, as configured.
    pub(crate) cache: String,
}

/// The data of one size, per engine the sweep ran.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub(crate) struct Size {
    /// Preloaded keys.
    pub(crate) keys: u64,
    /// The SQLite file every SQLite configuration copied.
    pub(crate) sqlite: Option<Stored>,
    /// The PostgreSQL table the PostgreSQL configurations shared.
    pub(crate) postgres: Option<Stored>,
    /// The MySQL table the MySQL configurations shared.
    pub(crate) mysql: Option<Stored>,
}

/// The medians of one (point, configuration, workload, concurrency).
#[derive(Debug, Clone, Serialize)]
pub(crate) struct SweepRow {
    /// Preloaded keys.
    pub(crate) keys: u64,
    /// Connections in the pool.
    pub(crate) connections: u32,
    /// The medians, as in the ordinary report (its ratios are left empty).
    #[serde(flatten)]
    pub(crate) row: Row,
}

/// A child that failed, or an engine that could not be preloaded, at one point.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct SweepFailure {
    /// Preloaded keys.
    pub(crate) keys: u64,
    /// Connections in the pool.
    pub(crate) connections: u32,
    /// What failed.
    #[serde(flatten)]
    pub(crate) failure: Failure,
}

/// One child's result at its point.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct SweepRun {
    /// Preloaded keys.
    pub(crate) keys: u64,
    /// Connections in the pool.
    pub(crate) connections: u32,
    /// What the child printed.
    #[serde(flatten)]
    pub(crate) run: RunResult,
}

/// Everything a sweep produced.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct SweepReport {
    /// How the sweep was made.
    pub(crate) meta: SweepMeta,
    /// The data of each size.
    pub(crate) sizes: Vec<Size>,
    /// Medians per (point, configuration, workload, concurrency).
    pub(crate) rows: Vec<SweepRow>,
    /// The pictures written, file names beside the JSON.
    pub(crate) pictures: Vec<String>,
    /// Configurations not run, and why.
    pub(crate) skipped: Vec<String>,
    /// Children that failed.
    pub(crate) failures: Vec<SweepFailure>,
    /// Every child's own result.
    pub(crate) runs: Vec<SweepRun>,
}

impl SweepReport {
    /// The report as pretty JSON.
    pub(crate) fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
    }
}

/// Runs the sweep, writes its JSON and pictures into the results directory and returns
/// the report.
pub(crate) fn run(cli: &Cli) -> Result<SweepReport, String> {
    let (mut configs, mut skipped) = select_configs(cli);
    configs.retain(|c| {
        let keep = !c.is_etcd();
        if !keep {
            skipped.push(format!("{c}: not part of the sweep"));
        }
        keep
    });
    for line in &skipped {
        eprintln!("skipped: {line}");
    }
    let workloads = select_workloads(cli, &WORKLOADS);
    if configs.is_empty() || workloads.is_empty() {
        return Err("the filters select no configuration or no workload of the sweep".into());
    }
    let points = points(&cli.sweep_keys, &cli.sweep_pools, cli.connections);
    let (tasks, reps) = (cli.tasks(), cli.reps());
    let started = Instant::now();
    let load_average_start = load_average().unwrap_or_default();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("starting tokio: {e}"))?;
    let dir = tempfile::tempdir().map_err(|e| format!("creating a temp dir: {e}"))?;
    let mut progress = Progress {
        done: 0,
        total: points.len() * configs.len() * workloads.len() * tasks.len() * reps as usize,
    };
    let (mut sizes, mut runs, mut failures) = (Vec::new(), Vec::new(), Vec::new());
    let mut sizes_in_order: Vec<u64> = points.iter().map(|p| p.keys).collect();
    sizes_in_order.dedup();
    for keys in sizes_in_order {
        let at_size: Vec<Point> = points.iter().copied().filter(|p| p.keys == keys).collect();
        let plan = Plan {
            configs: &configs,
            workloads: &workloads,
            tasks: &tasks,
            reps,
        };
        let (size, done, failed) =
            run_size(cli, &plan, &at_size, &runtime, dir.path(), &mut progress);
        sizes.push(size);
        runs.extend(done);
        failures.extend(failed);
    }
    let meta = SweepMeta {
        date: utc_date(SystemTime::now()),
        command: std::env::args().collect::<Vec<_>>().join(" "),
        cores: std::thread::available_parallelism().map_or(0, |n| n.get()),
        memory_kib: memory_kib(),
        sqlite_version: rusqlite::version().to_owned(),
        load_average_start,
        load_average_end: load_average().unwrap_or_default(),
        keys: cli.sweep_keys.clone(),
        pools: cli.sweep_pools.clone(),
        keys_axis_connections: cli.connections,
        pool_axis_keys: points.first().map_or(0, |p| p.keys),
        tasks,
        duration_s: cli.measure().as_secs_f64(),
        warmup_s: cli.warmup().as_secs_f64(),
        reps,
        elapsed_s: started.elapsed().as_secs_f64(),
    };
    let mut report = SweepReport {
        rows: medians(&runs),
        meta,
        sizes,
        pictures: Vec::new(),
        skipped,
        failures,
        runs,
    };
    write_results(&mut report, &results_dir(cli))?;
    Ok(report)
}

/// What the sweep runs at every point.
struct Plan<'a> {
    configs: &'a [Config],
    workloads: &'a [Workload],
    tasks: &'a [u32],
    reps: u32,
}

/// Preloads the data of one size (the points' common key count) into `dir` and the
/// servers, runs every job at `points`, and removes the data again.
fn run_size(
    cli: &Cli,
    plan: &Plan<'_>,
    points: &[Point],
    runtime: &tokio::runtime::Runtime,
    dir: &Path,
    progress: &mut Progress,
) -> (Size, Vec<SweepRun>, Vec<SweepFailure>) {
    let keys = points.first().map_or(0, |p| p.keys);
    // Dropping `shared` removes the server tables, whatever happens in between.
    let mut shared = Shared::new(runtime, keys);
    let (size, preload_failures) = preload(cli, plan.configs, &mut shared, dir);
    let mut failures = Vec::new();
    for (config, message) in &preload_failures {
        for point in points {
            failures.push(preload_failure(*config, *point, message));
        }
    }
    let preloaded: Vec<Config> = plan
        .configs
        .iter()
        .copied()
        .filter(|c| !preload_failures.iter().any(|(failed, _)| failed == c))
        .collect();
    let mut jobs = Vec::new();
    for rep in 0..plan.reps {
        for point in points {
            let at = (keys, point.connections);
            let once = schedule(&preloaded, plan.workloads, plan.tasks, 1, at);
            jobs.extend(once.into_iter().map(|job| Job { rep, ..job }));
        }
    }
    let template = template_path(dir, keys);
    let ran = run_jobs(cli, &jobs, progress, |job| Data {
        template: &template,
        table: shared.table(job.config),
    });
    let _ = std::fs::remove_file(&template);
    let runs = ran
        .runs
        .into_iter()
        .map(|(job, run)| SweepRun {
            keys: job.keys,
            connections: job.connections,
            run,
        })
        .collect();
    failures.extend(ran.failures.into_iter().map(|(job, failure)| SweepFailure {
        keys: job.keys,
        connections: job.connections,
        failure,
    }));
    (size, runs, failures)
}

/// The server tables of one size, dropped when this is.
struct Shared<'a> {
    runtime: &'a tokio::runtime::Runtime,
    postgres: Option<String>,
    mysql: Option<String>,
    keys: u64,
}

impl<'a> Shared<'a> {
    fn new(runtime: &'a tokio::runtime::Runtime, keys: u64) -> Self {
        Self {
            runtime,
            postgres: None,
            mysql: None,
            keys,
        }
    }

    /// The name of this size's table, unique to this process.
    fn name(&self) -> String {
        format!("bench_sweep_{}_{}", std::process::id(), self.keys)
    }

    /// The shared table `config` runs on, if it is a server configuration.
    fn table(&self, config: Config) -> Option<&str> {
        if config.is_postgres() {
            self.postgres.as_deref()
        } else if config.is_mysql() {
            self.mysql.as_deref()
        } else {
            None
        }
    }
}

impl Drop for Shared<'_> {
    fn drop(&mut self) {
        #[cfg(feature = "postgres")]
        if let Some(table) = self.postgres.take() {
            let dropped = self
                .runtime
                .block_on(crate::targets::raw_postgres::drop_shared(&table));
            if let Err(e) = dropped {
                eprintln!("error: dropping PostgreSQL table {table}: {e}");
            }
        }
        #[cfg(feature = "mysql")]
        if let Some(table) = self.mysql.take() {
            let dropped = self
                .runtime
                .block_on(crate::targets::raw_mysql::drop_shared(&table));
            if let Err(e) = dropped {
                eprintln!("error: dropping MySQL table {table}: {e}");
            }
        }
    }
}

/// Preloads `shared.keys` keys for every engine among `configs`: an SQLite template in
/// `dir` and the server tables `shared` will drop. Returns the sizes and, for each
/// configuration whose engine failed, why.
fn preload(
    cli: &Cli,
    configs: &[Config],
    shared: &mut Shared<'_>,
    dir: &Path,
) -> (Size, Vec<(Config, String)>) {
    let keys = shared.keys;
    let mut size = Size {
        keys,
        ..Size::default()
    };
    let mut failed = Vec::new();
    let mut fail = |engine: fn(Config) -> bool, message: String| {
        eprintln!("error: preloading {keys} keys: {message}");
        for config in configs.iter().copied().filter(|&c| engine(c)) {
            failed.push((config, message.clone()));
        }
    };
    let is_sqlite = |c: Config| !c.is_postgres() && !c.is_mysql() && !c.is_etcd();
    if configs.iter().any(|&c| is_sqlite(c)) {
        let started = Instant::now();
        let template = template_path(dir, keys);
        let built = build_template(&template, keys, cli.seed)
            .map_err(|e| e.to_string())
            .and_then(|()| std::fs::metadata(&template).map_err(|e| e.to_string()));
        match built {
            Ok(file) => {
                let cache = "2 MiB per connection (SQLite's default), then the OS page cache";
                size.sqlite = Some(stored((file.len(), cache.into()), started, keys, "SQLite"));
            }
            Err(e) => fail(is_sqlite, format!("SQLite: {e}")),
        }
    }
    if configs.iter().any(|c| c.is_postgres()) {
        let started = Instant::now();
        let table = shared.name();
        shared.postgres = Some(table.clone());
        match shared.runtime.block_on(preload_postgres(&table, keys)) {
            Ok(found) => size.postgres = Some(stored(found, started, keys, "PostgreSQL")),
            Err(e) => fail(Config::is_postgres, format!("PostgreSQL: {e}")),
        }
    }
    if configs.iter().any(|c| c.is_mysql()) {
        let started = Instant::now();
        let table = shared.name();
        shared.mysql = Some(table.clone());
        match shared.runtime.block_on(preload_mysql(&table, keys)) {
            Ok(found) => size.mysql = Some(stored(found, started, keys, "MySQL")),
            Err(e) => fail(Config::is_mysql, format!("MySQL: {e}")),
        }
    }
    (size, failed)
}

/// Where the SQLite data of `keys` keys goes in `dir`.
fn template_path(dir: &Path, keys: u64) -> PathBuf {
    dir.join(format!("template-{keys}.db"))
}

/// What one engine's preload produced (its size in bytes and its cache), told on
/// stderr.
fn stored((bytes, cache): (u64, String), started: Instant, keys: u64, engine: &str) -> Stored {
    let preload_s = started.elapsed().as_secs_f64();
    eprintln!(
        "preloaded {keys} keys into {engine}: {:.0} MiB in {preload_s:.1} s; cache: {cache}",
        bytes as f64 / 1_048_576.0
    );
    Stored {
        bytes,
        preload_s,
        cache,
    }
}

#[cfg(feature = "postgres")]
async fn preload_postgres(table: &str, keys: u64) -> Result<(u64, String), String> {
    crate::targets::raw_postgres::preload_shared(table, keys).await
}

#[cfg(not(feature = "postgres"))]
async fn preload_postgres(_table: &str, _keys: u64) -> Result<(u64, String), String> {
    Err("this build lacks the `postgres` feature".into())
}

#[cfg(feature = "mysql")]
async fn preload_mysql(table: &str, keys: u64) -> Result<(u64, String), String> {
    crate::targets::raw_mysql::preload_shared(table, keys).await
}

#[cfg(not(feature = "mysql"))]
async fn preload_mysql(_table: &str, _keys: u64) -> Result<(u64, String), String> {
    Err("this build lacks the `mysql` feature".into())
}

/// A configuration that never ran at `point` because its engine's preload failed.
fn preload_failure(config: Config, point: Point, message: &str) -> SweepFailure {
    SweepFailure {
        keys: point.keys,
        connections: point.connections,
        failure: Failure {
            config: config.name().into(),
            workload: "preload".into(),
            concurrency: 0,
            rep: 0,
            message: message.into(),
        },
    }
}

/// Medians per (point, workload, concurrency, configuration).
fn medians(runs: &[SweepRun]) -> Vec<SweepRow> {
    type Cell = (u64, u32, Workload, u32, Config);
    let mut cells: BTreeMap<Cell, Vec<&RunResult>> = BTreeMap::new();
    for r in runs {
        let (Some(workload), Some(config)) = (
            Workload::from_name(&r.run.workload),
            Config::from_name(&r.run.config),
        ) else {
            continue;
        };
        let cell = (r.keys, r.connections, workload, r.run.concurrency, config);
        cells.entry(cell).or_default().push(&r.run);
    }
    cells
        .into_iter()
        .map(|((keys, connections, ..), results)| SweepRow {
            keys,
            connections,
            row: median_row(&results),
        })
        .collect()
}

/// `--sweep-dir`, or `bench/results` of the source tree this binary was built from.
fn results_dir(cli: &Cli) -> PathBuf {
    cli.sweep_dir
        .clone()
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("results"))
}

/// Writes the pictures and then the JSON (naming them) into `dir`, as
/// `sweep-YYYY-MM-DD*`.
fn write_results(report: &mut SweepReport, dir: &Path) -> Result<(), String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
    let stem = format!("sweep-{}", report.meta.date.get(..10).unwrap_or("undated"));
    for (suffix, chart) in charts(report) {
        let name = format!("{stem}-{suffix}.svg");
        write_svg(&dir.join(&name), &chart)?;
        report.pictures.push(name);
    }
    let json = dir.join(format!("{stem}.json"));
    std::fs::write(&json, report.to_json())
        .map_err(|e| format!("writing {}: {e}", json.display()))?;
    eprintln!(
        "wrote {} and {} pictures",
        json.display(),
        report.pictures.len()
    );
    Ok(())
}

/// One axis of the sweep: what varies along it, what stays fixed, and which rows lie
/// on it where.
struct Axis {
    /// Its part of the picture's file name.
    name: &'static str,
    /// What varies, for the table's heading.
    by: &'static str,
    /// What varies, for the picture's horizontal axis.
    label: &'static str,
    /// What stays fixed.
    fixed: String,
    /// Its points in order, each with its label.
    ticks: Vec<(f64, String)>,
    /// What is held where.
    along: Along,
}

/// Which axis, and where the other one is held.
#[derive(Debug, Clone, Copy)]
enum Along {
    /// Data sizes, at this pool size.
    Keys(u32),
    /// Pool sizes, at this data size.
    Pool(u64),
}

impl Axis {
    /// Where `row` lies on the axis, if it does.
    fn x(&self, row: &SweepRow) -> Option<f64> {
        match self.along {
            Along::Keys(connections) => (row.connections == connections).then_some(row.keys as f64),
            Along::Pool(keys) => (row.keys == keys).then_some(f64::from(row.connections)),
        }
    }
}

/// The data-size axis and the pool-size axis.
fn axes(meta: &SweepMeta) -> [Axis; 2] {
    let ticks = |mut values: Vec<f64>| {
        values.sort_by(f64::total_cmp);
        values.into_iter().map(|v| (v, count(v))).collect()
    };
    [
        Axis {
            name: "keys",
            by: "keys",
            label: "preloaded keys",
            fixed: format!("pools of {}", meta.keys_axis_connections),
            ticks: ticks(meta.keys.iter().map(|&k| k as f64).collect()),
            along: Along::Keys(meta.keys_axis_connections),
        },
        Axis {
            name: "pool",
            by: "pool size",
            label: "connections in the pool",
            fixed: format!("{} keys", count(meta.pool_axis_keys as f64)),
            ticks: ticks(meta.pools.iter().map(|&p| f64::from(p)).collect()),
            along: Along::Pool(meta.pool_axis_keys),
        },
    ]
}

/// One curve set: a workload at one concurrency along one axis (of at least two
/// points), one series per configuration that ran there.
struct Curves<'a> {
    workload: Workload,
    tasks: u32,
    axis: &'a Axis,
    series: Vec<Series>,
}

/// Every curve set of the report, by workload, concurrency, then axis.
fn curves<'a>(report: &SweepReport, axes: &'a [Axis]) -> Vec<Curves<'a>> {
    let mut all = Vec::new();
    for workload in WORKLOADS {
        for &tasks in &report.meta.tasks {
            let rows: Vec<&SweepRow> = report
                .rows
                .iter()
                .filter(|r| r.row.workload == workload.name() && r.row.concurrency == tasks)
                .collect();
            for axis in axes.iter().filter(|a| a.ticks.len() > 1) {
                let series = series(&rows, |r| axis.x(r));
                if !series.is_empty() {
                    all.push(Curves {
                        workload,
                        tasks,
                        axis,
                        series,
                    });
                }
            }
        }
    }
    all
}

/// The pictures: per workload and concurrency, ops/s against data size and against pool
/// size, one line per configuration; each with its file name suffix. An axis of fewer
/// than two points has no picture.
pub(crate) fn charts(report: &SweepReport) -> Vec<(String, Chart)> {
    let axes = axes(&report.meta);
    curves(report, &axes)
        .into_iter()
        .map(|c| {
            let per_op = match c.workload.rows_per_op() {
                1 => String::new(),
                n => format!(", {n} rows each"),
            };
            let chart = Chart {
                title: format!("{} x{} tasks, {}", c.workload, c.tasks, c.axis.fixed),
                x_label: c.axis.label.into(),
                y_label: format!("operations per second{per_op}"),
                x_ticks: c.axis.ticks.iter().map(|t| t.0).collect(),
                series: c.series,
            };
            (
                format!("{}-{}-x{}", c.axis.name, c.workload, c.tasks),
                chart,
            )
        })
        .collect()
}

/// One series per configuration (in report order) of the rows `x` places on the axis.
fn series(rows: &[&SweepRow], x: impl Fn(&SweepRow) -> Option<f64>) -> Vec<Series> {
    Config::ALL
        .into_iter()
        .enumerate()
        .filter_map(|(index, config)| {
            let mut points: Vec<(f64, f64)> = rows
                .iter()
                .filter(|r| r.row.config == config.name() && r.row.ops_per_sec > 0.0)
                .filter_map(|r| Some((x(r)?, r.row.ops_per_sec)))
                .collect();
            points.sort_by(|a, b| a.0.total_cmp(&b.0));
            (!points.is_empty()).then(|| Series {
                name: config.name().into(),
                color: index,
                points,
            })
        })
        .collect()
}

/// A key count the short way: `100k`, `1M`, `10M`.
pub(crate) fn count(n: f64) -> String {
    if n >= 1e6 {
        format!("{}M", n / 1e6)
    } else if n >= 1e3 {
        format!("{}k", n / 1e3)
    } else {
        format!("{n}")
    }
}

/// The machine's memory from `/proc/meminfo`, KiB.
fn memory_kib() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with("MemTotal:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// The sweep as tables: the data sizes, then per workload and concurrency ops/s by data
/// size and by pool size, one row per configuration.
pub(crate) fn to_table(report: &SweepReport) -> String {
    let mut out = String::new();
    let m = &report.meta;
    let _ = writeln!(
        out,
        "pooledstore-bench sweep {}: {} s measured after {} s warm-up, median of {} rep(s), \
         {} cores, {:.1} GiB, load {} at start and {} at end, {:.0} s in all",
        m.date,
        m.duration_s,
        m.warmup_s,
        m.reps,
        m.cores,
        m.memory_kib.unwrap_or(0) as f64 / 1_048_576.0,
        m.load_average_start,
        m.load_average_end,
        m.elapsed_s
    );
    let mib = |s: &Option<Stored>| {
        s.as_ref().map_or("-".into(), |s| {
            format!("{:.0}", s.bytes as f64 / 1_048_576.0)
        })
    };
    let _ = writeln!(
        out,
        "\ndata on disk, MiB\n  {:>10} {:>8} {:>10} {:>8}",
        "keys", "sqlite", "postgres", "mysql"
    );
    for s in &report.sizes {
        let _ = writeln!(
            out,
            "  {:>10} {:>8} {:>10} {:>8}",
            count(s.keys as f64),
            mib(&s.sqlite),
            mib(&s.postgres),
            mib(&s.mysql)
        );
    }
    let axes = axes(m);
    for c in curves(report, &axes) {
        let _ = write!(
            out,
            "\n{} x{} tasks: ops/s by {}, {}\n  {:<22}",
            c.workload, c.tasks, c.axis.by, c.axis.fixed, "config"
        );
        for (_, label) in &c.axis.ticks {
            let _ = write!(out, "{label:>9}");
        }
        let _ = writeln!(out);
        for s in &c.series {
            let _ = write!(out, "  {:<22}", s.name);
            for (at, _) in &c.axis.ticks {
                let cell = s
                    .points
                    .iter()
                    .find(|p| p.0 == *at)
                    .map_or("-".into(), |p| rate(p.1));
                let _ = write!(out, "{cell:>9}");
            }
            let _ = writeln!(out);
        }
    }
    for f in &report.failures {
        let _ = writeln!(
            out,
            "\nFAILED: {} x{} {} at {} keys, pool {}: {}",
            f.failure.workload,
            f.failure.concurrency,
            f.failure.config,
            f.keys,
            f.connections,
            f.failure.message
        );
    }
    let _ = writeln!(out, "\npictures: {}", report.pictures.join(", "));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn points_cover_both_axes_once() {
        let points = points(&crate::plan::SWEEP_KEYS, &crate::plan::SWEEP_POOLS, 8);
        let pairs: Vec<(u64, u32)> = points.iter().map(|p| (p.keys, p.connections)).collect();
        assert_eq!(
            pairs,
            [
                (100_000, 1),
                (100_000, 2),
                (100_000, 4),
                (100_000, 8),
                (100_000, 16),
                (100_000, 32),
                (1_000_000, 8),
                (10_000_000, 8),
            ]
        );
        let narrow = super::points(&[500, 200], &[3], 2);
        let pairs: Vec<(u64, u32)> = narrow.iter().map(|p| (p.keys, p.connections)).collect();
        assert_eq!(pairs, [(200, 2), (200, 3), (500, 2)]);
    }

    fn run(config: Config, workload: Workload, keys: u64, connections: u32, ops: f64) -> SweepRun {
        let json = serde_json::json!({
            "config": config.name(), "workload": workload.name(), "concurrency": 16,
            "workers": 16, "ops": 1, "rows_per_op": workload.rows_per_op(), "seconds": 1.0,
            "ops_per_sec": ops, "p50_us": 1.0, "p99_us": 2.0, "max_us": 3.0,
            "errors": {}, "cas_retries": 0, "peak_threads": 4,
            "peak_rss_kib": 1000, "load_1m": 0.5, "others_cpu": 0.1
        });
        SweepRun {
            keys,
            connections,
            run: serde_json::from_value(json).unwrap(),
        }
    }

    fn report() -> SweepReport {
        let mut runs = Vec::new();
        for (keys, connections) in [(100, 1), (100, 8), (1000, 8)] {
            for (config, ops) in [(Config::Sqlx, 1000.0), (Config::PooledSqlx, 2000.0)] {
                runs.push(run(config, Workload::Put, keys, connections, ops));
            }
        }
        // A second repetition: the median of 1000 and 3000.
        runs.push(run(Config::Sqlx, Workload::Put, 100, 8, 3000.0));
        let meta = SweepMeta {
            date: "2026-12-05 21:00 UTC".into(),
            command: "pooledstore-bench --sweep".into(),
            cores: 2,
            memory_kib: Some(1 << 20),
            sqlite_version: "3.50.0".into(),
            load_average_start: "0.1 0.1 0.1".into(),
            load_average_end: "0.2 0.2 0.2".into(),
            keys: vec![100, 1000],
            pools: vec![1, 8],
            keys_axis_connections: 8,
            pool_axis_keys: 100,
            tasks: vec![16],
            duration_s: 1.0,
            warmup_s: 0.1,
            reps: 2,
            elapsed_s: 10.0,
        };
        SweepReport {
            meta,
            sizes: vec![Size {
                keys: 100,
                sqlite: Some(Stored {
                    bytes: 4096,
                    preload_s: 0.1,
                    cache: "2 MiB".into(),
                }),
                ..Size::default()
            }],
            rows: medians(&runs),
            pictures: Vec::new(),
            skipped: Vec::new(),
            failures: vec![preload_failure(
                Config::PgSqlx,
                Point {
                    keys: 100,
                    connections: 8,
                },
                "no server",
            )],
            runs,
        }
    }

    #[test]
    fn json_has_the_meta_sizes_medians_and_runs_per_point() {
        let json: serde_json::Value = serde_json::from_str(&report().to_json()).unwrap();
        assert_eq!(json["meta"]["keys_axis_connections"], 8);
        assert_eq!(json["meta"]["memory_kib"], 1 << 20);
        assert_eq!(json["sizes"][0]["sqlite"]["bytes"], 4096);
        assert!(json["sizes"][0]["postgres"].is_null());
        let rows = json["rows"].as_array().unwrap();
        assert_eq!(rows.len(), 6);
        let median = rows
            .iter()
            .find(|r| r["config"] == "sqlx" && r["keys"] == 100 && r["connections"] == 8)
            .unwrap();
        assert_eq!(median["ops_per_sec"], 2000.0);
        assert_eq!(median["reps"], 2);
        assert_eq!(median["workload"], "put");
        assert_eq!(json["runs"].as_array().unwrap().len(), 7);
        assert_eq!(json["runs"][0]["keys"], 100);
        assert_eq!(json["failures"][0]["workload"], "preload");
        assert_eq!(json["failures"][0]["config"], "pg-sqlx");
    }

    #[test]
    fn charts_put_one_series_per_configuration_on_each_axis() {
        let charts = charts(&report());
        let names: Vec<&str> = charts.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["keys-put-x16", "pool-put-x16"]);
        let by_keys = &charts[0].1;
        assert_eq!(by_keys.series.len(), 2);
        assert_eq!(by_keys.series[0].name, "sqlx");
        assert_eq!(
            by_keys.series[0].points,
            [(100.0, 2000.0), (1000.0, 1000.0)]
        );
        let by_pool = &charts[1].1;
        assert_eq!(by_pool.series[1].name, "pooledstore-sqlx");
        assert_eq!(by_pool.series[1].points, [(1.0, 2000.0), (8.0, 2000.0)]);
        assert_eq!(by_pool.x_ticks, [1.0, 8.0]);
        let table = to_table(&report());
        assert!(
            table.contains("put x16 tasks: ops/s by pool size, 100 keys"),
            "{table}"
        );
        assert!(
            table.contains("FAILED: preload x0 pg-sqlx at 100 keys"),
            "{table}"
        );
    }

    #[test]
    fn counts_read_short() {
        assert_eq!(count(100_000.0), "100k");
        assert_eq!(count(10_000_000.0), "10M");
        assert_eq!(count(500.0), "500");
    }
}
