//! The report: medians across repetitions, ratios to the raw anchors, peaks per
//! configuration; printed as a table or as JSON.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Serialize;

use crate::cli::Cli;
use crate::goals::{Goal, Measured};
use crate::load::{TaskPeaks, ThreadCheck, peaks_by_tasks, thread_checks};
use crate::outcome::RunResult;
use crate::plan::{Config, Workload};
use crate::procstat::load_average;

/// When, where and how the benchmark ran.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Meta {
    /// UTC date and time of the end of the run.
    pub(crate) date: String,
    /// The command line, as typed.
    pub(crate) command: String,
    /// Cores available to the process.
    pub(crate) cores: usize,
    /// Load averages (1, 5, 15 minutes) when the run started.
    pub(crate) load_average_start: String,
    /// Load averages when the run ended.
    pub(crate) load_average_end: String,
    /// Preloaded keys.
    pub(crate) keys: u64,
    /// Connections in every pool under test.
    pub(crate) connections: u32,
    /// Concurrency levels.
    pub(crate) tasks: Vec<u32>,
    /// Measured seconds per measurement.
    pub(crate) duration_s: f64,
    /// Warm-up seconds per measurement.
    pub(crate) warmup_s: f64,
    /// Repetitions per measurement.
    pub(crate) reps: u32,
    /// Wall-clock seconds of the whole run.
    pub(crate) elapsed_s: f64,
}

impl Meta {
    /// Describes the run that just ended; `load_average_start` as read when it began.
    pub(crate) fn now(cli: &Cli, elapsed: Duration, load_average_start: String) -> Self {
        Self {
            date: utc_date(SystemTime::now()),
            command: std::env::args().collect::<Vec<_>>().join(" "),
            cores: std::thread::available_parallelism().map_or(0, |n| n.get()),
            load_average_start,
            load_average_end: load_average().unwrap_or_default(),
            keys: cli.keys,
            connections: cli.connections,
            tasks: cli.tasks(),
            duration_s: cli.measure().as_secs_f64(),
            warmup_s: cli.warmup().as_secs_f64(),
            reps: cli.reps(),
            elapsed_s: elapsed.as_secs_f64(),
        }
    }
}

/// A measurement whose child failed.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Failure {
    /// Configuration name.
    pub(crate) config: String,
    /// Workload name.
    pub(crate) workload: String,
    /// Concurrency.
    pub(crate) concurrency: u32,
    /// Repetition, from 1.
    pub(crate) rep: u32,
    /// What went wrong (the child's last stderr lines).
    pub(crate) message: String,
}

/// The medians of one (configuration, workload, concurrency) over its repetitions.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Row {
    /// Configuration name.
    pub(crate) config: String,
    /// Workload name.
    pub(crate) workload: String,
    /// Concurrency asked for.
    pub(crate) concurrency: u32,
    /// Tasks or threads that ran.
    pub(crate) workers: u32,
    /// Repetitions that produced a result.
    pub(crate) reps: usize,
    /// Median successful operations per second.
    pub(crate) ops_per_sec: f64,
    /// `ops_per_sec` times rows per operation.
    pub(crate) rows_per_sec: f64,
    /// Median of the repetitions' p50 latency, microseconds.
    pub(crate) p50_us: f64,
    /// Median of the repetitions' p99 latency, microseconds.
    pub(crate) p99_us: f64,
    /// Failed operations over all repetitions, by kind.
    pub(crate) errors: BTreeMap<String, u64>,
    /// Retried compare-and-swaps over all repetitions.
    pub(crate) cas_retries: u64,
    /// Throughput relative to raw rusqlite on the same workload and concurrency.
    pub(crate) vs_rusqlite: Option<f64>,
    /// Throughput relative to the raw pool this configuration wraps.
    pub(crate) vs_pool: Option<f64>,
    /// p50 latency relative to the raw pool this configuration wraps.
    pub(crate) p50_vs_pool: Option<f64>,
    /// Most threads any repetition had.
    pub(crate) peak_threads: Option<u64>,
    /// Largest peak RSS of any repetition, KiB.
    pub(crate) peak_rss_kib: Option<u64>,
    /// The highest 1 minute load average any repetition started under.
    pub(crate) max_load_1m: Option<f64>,
    /// The most CPU (in cores) other processes used during any repetition.
    pub(crate) max_others_cpu: Option<f64>,
}

/// Peaks of one configuration over all its measurements.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Peaks {
    /// Configuration name.
    pub(crate) config: String,
    /// Most threads any of its child processes had.
    pub(crate) peak_threads: Option<u64>,
    /// Largest peak RSS of its child processes, KiB.
    pub(crate) peak_rss_kib: Option<u64>,
}

/// Everything a run produced.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Report {
    /// How the run was made.
    pub(crate) meta: Meta,
    /// Medians per (configuration, workload, concurrency).
    pub(crate) rows: Vec<Row>,
    /// Peaks per configuration.
    pub(crate) peaks: Vec<Peaks>,
    /// Peaks per configuration and concurrency level.
    pub(crate) peaks_by_tasks: Vec<TaskPeaks>,
    /// Whether each pooledstore configuration's threads stayed put as tasks grew, from
    /// the pool size on.
    pub(crate) thread_checks: Vec<ThreadCheck>,
    /// The performance targets, checked against `rows`.
    pub(crate) targets: Vec<Goal>,
    /// Configurations not run, and why.
    pub(crate) skipped: Vec<String>,
    /// Children that failed.
    pub(crate) failures: Vec<Failure>,
    /// Every child's own result.
    pub(crate) runs: Vec<RunResult>,
}

type CellKey = (Workload, u32, Config);

impl Report {
    /// Aggregates the children's results.
    pub(crate) fn new(
        meta: Meta,
        runs: Vec<RunResult>,
        failures: Vec<Failure>,
        skipped: Vec<String>,
    ) -> Self {
        let mut cells: BTreeMap<CellKey, Vec<&RunResult>> = BTreeMap::new();
        for run in &runs {
            let (Some(workload), Some(config)) = (
                Workload::from_name(&run.workload),
                Config::from_name(&run.config),
            ) else {
                continue;
            };
            cells
                .entry((workload, run.concurrency, config))
                .or_default()
                .push(run);
        }
        let medians: BTreeMap<CellKey, Row> = cells
            .iter()
            .map(|(key, results)| (*key, median_row(results)))
            .collect();
        let rows = medians
            .iter()
            .map(|(&(workload, concurrency, config), row)| {
                let anchor = |c: Config| medians.get(&(workload, concurrency, c));
                let raw = anchor(Config::Rusqlite);
                let pool = config.wraps().and_then(anchor);
                Row {
                    vs_rusqlite: raw.and_then(|r| ratio(row.ops_per_sec, r.ops_per_sec)),
                    vs_pool: pool.and_then(|p| ratio(row.ops_per_sec, p.ops_per_sec)),
                    p50_vs_pool: pool.and_then(|p| ratio(row.p50_us, p.p50_us)),
                    ..row.clone()
                }
            })
            .collect::<Vec<Row>>();
        let targets = crate::goals::check(rows.iter().map(|r| Measured {
            config: &r.config,
            workload: &r.workload,
            tasks: r.concurrency,
            vs_pool: r.vs_pool,
            vs_rusqlite: r.vs_rusqlite,
        }));
        let peaks = Config::ALL
            .into_iter()
            .filter_map(|config| {
                let mine: Vec<&RunResult> =
                    runs.iter().filter(|r| r.config == config.name()).collect();
                (!mine.is_empty()).then(|| Peaks {
                    config: config.name().into(),
                    peak_threads: mine.iter().filter_map(|r| r.peak_threads).max(),
                    peak_rss_kib: mine.iter().filter_map(|r| r.peak_rss_kib).max(),
                })
            })
            .collect();
        let peaks_by_tasks = peaks_by_tasks(&runs);
        let thread_checks = thread_checks(&peaks_by_tasks, meta.connections);
        Self {
            meta,
            rows,
            peaks,
            peaks_by_tasks,
            thread_checks,
            targets,
            skipped,
            failures,
            runs,
        }
    }

    /// The report as pretty JSON.
    pub(crate) fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
    }

    /// The report as a human-readable table.
    pub(crate) fn to_table(&self) -> String {
        let mut out = String::new();
        let m = &self.meta;
        let _ = writeln!(
            out,
            "pooledstore-bench {}: {} keys, pools of {} connections, {} s measured after {} s warm-up, median of {} rep(s), \
             {} cores, load {} at start and {} at end, {:.0} s in all",
            m.date,
            m.keys,
            m.connections,
            m.duration_s,
            m.warmup_s,
            m.reps,
            m.cores,
            m.load_average_start,
            m.load_average_end,
            m.elapsed_s
        );
        let mut current = None;
        for row in &self.rows {
            let heading = (row.workload.clone(), row.concurrency);
            if current.as_ref() != Some(&heading) {
                let rows_note = Workload::from_name(&row.workload)
                    .map(Workload::rows_per_op)
                    .filter(|&n| n > 1)
                    .map(|n| format!(" (1 op = {n} rows)"))
                    .unwrap_or_default();
                let tasks = if row.concurrency == 1 {
                    "task"
                } else {
                    "tasks"
                };
                let _ = writeln!(
                    out,
                    "\n{} x {} {tasks}{rows_note}\n  {:<22}{:>9}{:>10}{:>10}{:>8}{:>13}{:>9}{:>10}{:>9}{:>9}{:>7}",
                    row.workload,
                    row.concurrency,
                    "config",
                    "ops/s",
                    "p50",
                    "p99",
                    "errors",
                    "vs rusqlite",
                    "vs pool",
                    "p50/pool",
                    "threads",
                    "RSS MiB",
                    "others"
                );
                current = Some(heading);
            }
            let _ = writeln!(
                out,
                "  {:<22}{:>9}{:>10}{:>10}{:>8}{:>13}{:>9}{:>10}{:>9}{:>9}{:>7}",
                with_workers(row),
                rate(row.ops_per_sec),
                latency(row.p50_us),
                latency(row.p99_us),
                row.errors.values().sum::<u64>(),
                times(row.vs_rusqlite),
                times(row.vs_pool),
                times(row.p50_vs_pool),
                opt(row.peak_threads),
                row.peak_rss_kib
                    .map_or("-".into(), |k| format!("{:.1}", k as f64 / 1024.0)),
                row.max_others_cpu.map_or("-".into(), |c| format!("{c:.2}")),
            );
        }
        self.write_notes(&mut out);
        out
    }

    /// Whether a pooledstore configuration's threads grew with tasks.
    pub(crate) fn threads_grew(&self) -> bool {
        self.thread_checks.iter().any(|c| !c.pass)
    }

    fn write_notes(&self, out: &mut String) {
        let _ = writeln!(out, "\npeaks per configuration (all workloads)");
        for p in &self.peaks {
            let _ = writeln!(
                out,
                "  {:<22} threads {:>5}   RSS {:>7} MiB",
                p.config,
                opt(p.peak_threads),
                p.peak_rss_kib
                    .map_or("-".into(), |k| format!("{:.1}", k as f64 / 1024.0))
            );
        }
        crate::load::write_section(out, &self.peaks_by_tasks, &self.thread_checks);
        crate::goals::write_section(out, &self.targets);
        let with_errors: Vec<&Row> = self.rows.iter().filter(|r| !r.errors.is_empty()).collect();
        if !with_errors.is_empty() {
            let _ = writeln!(out, "\nerrors by kind");
            for r in with_errors {
                let kinds: Vec<String> = r.errors.iter().map(|(k, n)| format!("{k} {n}")).collect();
                let _ = writeln!(
                    out,
                    "  {} x{} {}: {}",
                    r.workload,
                    r.concurrency,
                    r.config,
                    kinds.join(", ")
                );
            }
        }
        let retried: Vec<&Row> = self.rows.iter().filter(|r| r.cas_retries > 0).collect();
        if !retried.is_empty() {
            let _ = writeln!(out, "\nretried compare-and-swaps (not errors)");
            for r in retried {
                let _ = writeln!(
                    out,
                    "  {} x{} {}: {}",
                    r.workload, r.concurrency, r.config, r.cas_retries
                );
            }
        }
        if !self.skipped.is_empty() {
            let _ = writeln!(out);
        }
        for s in &self.skipped {
            let _ = writeln!(out, "skipped: {s}");
        }
        for f in &self.failures {
            let _ = writeln!(
                out,
                "\nFAILED: {} x{} {} rep {}: {}",
                f.workload, f.concurrency, f.config, f.rep, f.message
            );
        }
    }
}

/// Medians of one cell's repetitions (ratios filled in later).
pub(crate) fn median_row(results: &[&RunResult]) -> Row {
    let first = results[0];
    let ops = median(results.iter().map(|r| r.ops_per_sec));
    let mut errors = BTreeMap::new();
    for r in results {
        for (kind, n) in &r.errors {
            *errors.entry(kind.clone()).or_default() += n;
        }
    }
    Row {
        config: first.config.clone(),
        workload: first.workload.clone(),
        concurrency: first.concurrency,
        workers: first.workers,
        reps: results.len(),
        ops_per_sec: ops,
        rows_per_sec: ops * f64::from(first.rows_per_op),
        p50_us: median(results.iter().map(|r| r.p50_us)),
        p99_us: median(results.iter().map(|r| r.p99_us)),
        errors,
        cas_retries: results.iter().map(|r| r.cas_retries).sum(),
        vs_rusqlite: None,
        vs_pool: None,
        p50_vs_pool: None,
        peak_threads: results.iter().filter_map(|r| r.peak_threads).max(),
        peak_rss_kib: results.iter().filter_map(|r| r.peak_rss_kib).max(),
        max_load_1m: results
            .iter()
            .filter_map(|r| r.load_1m)
            .max_by(f64::total_cmp),
        max_others_cpu: results
            .iter()
            .filter_map(|r| r.others_cpu)
            .max_by(f64::total_cmp),
    }
}

/// The median (the mean of the middle two for an even count); 0 when empty.
fn median(values: impl Iterator<Item = f64>) -> f64 {
    let mut v: Vec<f64> = values.collect();
    if v.is_empty() {
        return 0.0;
    }
    v.sort_by(f64::total_cmp);
    let mid = v.len() / 2;
    if v.len() % 2 == 1 {
        v[mid]
    } else {
        (v[mid - 1] + v[mid]) / 2.0
    }
}

fn ratio(value: f64, anchor: f64) -> Option<f64> {
    (anchor > 0.0).then(|| value / anchor)
}

fn with_workers(row: &Row) -> String {
    if row.workers == row.concurrency {
        row.config.clone()
    } else {
        format!("{} ({} thr)", row.config, row.workers)
    }
}

pub(crate) fn rate(ops: f64) -> String {
    if ops >= 1e6 {
        format!("{:.2}M", ops / 1e6)
    } else if ops >= 1e3 {
        format!("{:.1}k", ops / 1e3)
    } else {
        format!("{ops:.0}")
    }
}

fn latency(us: f64) -> String {
    if us >= 1e6 {
        format!("{:.2}s", us / 1e6)
    } else if us >= 1e3 {
        format!("{:.2}ms", us / 1e3)
    } else if us >= 100.0 {
        format!("{us:.0}us")
    } else {
        format!("{us:.1}us")
    }
}

fn times(r: Option<f64>) -> String {
    r.map_or("-".into(), |r| format!("{r:.2}x"))
}

fn opt(v: Option<u64>) -> String {
    v.map_or("-".into(), |v| v.to_string())
}

/// `YYYY-MM-DD HH:MM UTC` (days-to-civil conversion after Howard Hinnant).
pub(crate) fn utc_date(t: SystemTime) -> String {
    let secs = t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let days = (secs / 86_400) as i64;
    let (hour, minute) = ((secs % 86_400) / 3_600, (secs % 3_600) / 60);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02} {hour:02}:{minute:02} UTC")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(config: Config, concurrency: u32, ops: f64, p50: f64) -> RunResult {
        RunResult {
            config: config.name().into(),
            workload: "put".into(),
            concurrency,
            workers: config.workers(concurrency),
            ops: ops as u64,
            rows_per_op: 1,
            seconds: 1.0,
            ops_per_sec: ops,
            p50_us: p50,
            p99_us: p50 * 3.0,
            max_us: p50 * 10.0,
            errors: BTreeMap::new(),
            cas_retries: 0,
            peak_threads: Some(3),
            peak_rss_kib: Some(10_240),
            load_1m: Some(0.5),
            others_cpu: Some(0.25),
        }
    }

    fn meta() -> Meta {
        Meta {
            date: "2026-01-01 00:00 UTC".into(),
            command: "bench".into(),
            cores: 2,
            load_average_start: "0.1 0.1 0.1".into(),
            load_average_end: "0.2 0.1 0.1".into(),
            keys: 100,
            connections: 8,
            tasks: vec![1, 16],
            duration_s: 1.0,
            warmup_s: 0.1,
            reps: 3,
            elapsed_s: 9.0,
        }
    }

    #[test]
    fn medians_and_ratios() {
        let mut busy = run(Config::PooledSqlx, 1, 400.0, 40.0);
        busy.errors.insert("busy".into(), 2);
        let runs = vec![
            run(Config::Rusqlite, 1, 1000.0, 5.0),
            run(Config::Rusqlite, 1, 3000.0, 7.0),
            run(Config::Rusqlite, 1, 2000.0, 6.0),
            run(Config::Sqlx, 1, 500.0, 20.0),
            busy,
            run(Config::PooledSqlx, 1, 300.0, 50.0),
        ];
        let report = Report::new(meta(), runs, vec![], vec![]);
        let row = |c: Config| report.rows.iter().find(|r| r.config == c.name()).unwrap();
        assert_eq!(row(Config::Rusqlite).ops_per_sec, 2000.0);
        assert_eq!(row(Config::Rusqlite).p50_us, 6.0);
        assert_eq!(row(Config::Rusqlite).vs_rusqlite, Some(1.0));
        assert_eq!(row(Config::Rusqlite).vs_pool, None);
        let pooled = row(Config::PooledSqlx);
        assert_eq!(pooled.reps, 2);
        assert_eq!(pooled.ops_per_sec, 350.0);
        assert_eq!(pooled.vs_rusqlite, Some(350.0 / 2000.0));
        assert_eq!(pooled.vs_pool, Some(350.0 / 500.0));
        assert_eq!(pooled.p50_vs_pool, Some(45.0 / 20.0));
        assert_eq!(pooled.errors["busy"], 2);
        let table = report.to_table();
        assert!(table.contains("put x 1 task"), "{table}");
        assert!(table.contains("0.70x"), "{table}");
        assert!(table.contains("busy 2"), "{table}");
        let json: serde_json::Value = serde_json::from_str(&report.to_json()).unwrap();
        assert_eq!(json["rows"].as_array().unwrap().len(), 3);
        assert_eq!(json["runs"].as_array().unwrap().len(), 6);
    }

    #[test]
    fn formats() {
        assert_eq!(median([3.0, 1.0, 2.0].into_iter()), 2.0);
        assert_eq!(median([4.0, 1.0].into_iter()), 2.5);
        assert_eq!(median(std::iter::empty()), 0.0);
        assert_eq!(rate(173_200.0), "173.2k");
        assert_eq!(rate(950.0), "950");
        assert_eq!(latency(5.7), "5.7us");
        assert_eq!(latency(9_500.0), "9.50ms");
        assert_eq!(ratio(1.0, 0.0), None);
        assert_eq!(
            utc_date(UNIX_EPOCH + Duration::from_secs(951_782_400 + 3_660)),
            "2000-02-29 01:01 UTC"
        );
        assert_eq!(utc_date(UNIX_EPOCH), "1970-01-01 00:00 UTC");
    }
}
