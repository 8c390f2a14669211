//! Threads and memory under load (`--tasks 16,256`): each configuration's peak thread
//! count and RSS at every concurrency level, and the check that a pooledstore
//! configuration's threads do not grow with tasks once its pool is full.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::Serialize;

use crate::outcome::RunResult;
use crate::plan::Config;

/// One configuration's peaks over every workload at one concurrency level.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct TaskPeaks {
    /// Configuration name.
    pub(crate) config: String,
    /// Concurrent tasks.
    pub(crate) tasks: u32,
    /// Most threads any child at this level had.
    pub(crate) peak_threads: Option<u64>,
    /// Largest peak RSS of those children, KiB.
    pub(crate) peak_rss_kib: Option<u64>,
}

/// Whether a pooledstore configuration's peak threads stayed put from the lowest to the
/// highest concurrency level at or above the pool size.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct ThreadCheck {
    /// Configuration name.
    pub(crate) config: String,
    /// The lowest level compared, and its peak threads.
    pub(crate) from: (u32, u64),
    /// The highest level compared, and its peak threads.
    pub(crate) to: (u32, u64),
    /// Whether the highest level had no more threads than the lowest.
    pub(crate) pass: bool,
}

/// Peaks per (configuration, tasks), in configuration then task order.
pub(crate) fn peaks_by_tasks(runs: &[RunResult]) -> Vec<TaskPeaks> {
    let mut cells: BTreeMap<(Config, u32), TaskPeaks> = BTreeMap::new();
    for run in runs {
        let Some(config) = Config::from_name(&run.config) else {
            continue;
        };
        let cell = cells
            .entry((config, run.concurrency))
            .or_insert_with(|| TaskPeaks {
                config: run.config.clone(),
                tasks: run.concurrency,
                peak_threads: None,
                peak_rss_kib: None,
            });
        cell.peak_threads = cell.peak_threads.max(run.peak_threads);
        cell.peak_rss_kib = cell.peak_rss_kib.max(run.peak_rss_kib);
    }
    cells.into_values().collect()
}

/// The thread checks of the pooledstore configurations: levels below `pool_size` are
/// left out (threads may grow there as the pool opens connections); none where fewer
/// than two levels remain.
pub(crate) fn thread_checks(peaks: &[TaskPeaks], pool_size: u32) -> Vec<ThreadCheck> {
    let mut by_config: BTreeMap<Config, Vec<(u32, u64)>> = BTreeMap::new();
    for p in peaks {
        let (Some(config), Some(threads)) = (Config::from_name(&p.config), p.peak_threads) else {
            continue;
        };
        if config.wraps().is_some() && p.tasks >= pool_size {
            by_config
                .entry(config)
                .or_default()
                .push((p.tasks, threads));
        }
    }
    by_config
        .into_iter()
        .filter_map(|(config, mut levels)| {
            levels.sort_unstable();
            let (from, to) = (*levels.first()?, *levels.last()?);
            (from.0 < to.0).then(|| ThreadCheck {
                config: config.name().into(),
                from,
                to,
                pass: to.1 <= from.1,
            })
        })
        .collect()
}

/// The section of the table: peaks per level, then a PASS or FAIL line per check.
pub(crate) fn write_section(out: &mut String, peaks: &[TaskPeaks], checks: &[ThreadCheck]) {
    let levels: Vec<u32> = {
        let mut l: Vec<u32> = peaks.iter().map(|p| p.tasks).collect();
        l.sort_unstable();
        l.dedup();
        l
    };
    if levels.len() < 2 {
        return;
    }
    let _ = write!(
        out,
        "\npeak threads / RSS MiB by tasks (all workloads)\n  {:<22}",
        "config"
    );
    for tasks in &levels {
        let _ = write!(out, "{:>16}", format!("{tasks} tasks"));
    }
    let _ = writeln!(out);
    let mut current: Option<&str> = None;
    for p in peaks {
        if current != Some(p.config.as_str()) {
            if current.is_some() {
                let _ = writeln!(out);
            }
            let _ = write!(out, "  {:<22}", p.config);
            current = Some(&p.config);
        }
        let threads = p.peak_threads.map_or("-".into(), |t| t.to_string());
        let rss = p
            .peak_rss_kib
            .map_or("-".into(), |k| format!("{:.1}", k as f64 / 1024.0));
        let _ = write!(out, "{:>16}", format!("{threads} / {rss}"));
    }
    let _ = writeln!(out);
    for c in checks {
        let _ = writeln!(
            out,
            "{}: {} {} threads at {} tasks, {} at {} tasks",
            if c.pass { "PASS" } else { "FAIL" },
            c.config,
            c.from.1,
            c.from.0,
            c.to.1,
            c.to.0
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(config: Config, tasks: u32, threads: u64, rss: u64) -> RunResult {
        let json = serde_json::json!({
            "config": config.name(), "workload": "put", "concurrency": tasks,
            "workers": tasks, "ops": 1, "rows_per_op": 1, "seconds": 1.0,
            "ops_per_sec": 1.0, "p50_us": 1.0, "p99_us": 1.0, "max_us": 1.0,
            "errors": {}, "cas_retries": 0, "peak_threads": threads,
            "peak_rss_kib": rss, "load_1m": null, "others_cpu": null
        });
        serde_json::from_value(json).unwrap()
    }

    #[test]
    fn peaks_per_level_and_checks_above_the_pool_size() {
        let runs = vec![
            run(Config::PooledSqlx, 1, 5, 100),
            run(Config::PooledSqlx, 16, 12, 200),
            run(Config::PooledSqlx, 16, 11, 300),
            run(Config::PooledSqlx, 256, 12, 400),
            run(Config::PooledDeadpool, 16, 10, 100),
            run(Config::PooledDeadpool, 256, 14, 100),
            run(Config::Deadpool, 16, 20, 100),
            run(Config::Deadpool, 256, 400, 100),
        ];
        let peaks = peaks_by_tasks(&runs);
        let sqlx16 = peaks
            .iter()
            .find(|p| p.config == "pooledstore-sqlx" && p.tasks == 16)
            .unwrap();
        assert_eq!(
            (sqlx16.peak_threads, sqlx16.peak_rss_kib),
            (Some(12), Some(300))
        );
        let checks = thread_checks(&peaks, 8);
        // The raw pool is not checked; 1 task is below the pool size.
        let verdicts: Vec<(&str, (u32, u64), bool)> = checks
            .iter()
            .map(|c| (c.config.as_str(), c.from, c.pass))
            .collect();
        assert_eq!(
            verdicts,
            [
                ("pooledstore-sqlx", (16, 12), true),
                ("pooledstore-deadpool", (16, 10), false)
            ]
        );
        assert!(thread_checks(&peaks, 32).is_empty());
        let mut out = String::new();
        write_section(&mut out, &peaks, &checks);
        assert!(
            out.contains("PASS: pooledstore-sqlx 12 threads at 16 tasks, 12 at 256 tasks"),
            "{out}"
        );
        assert!(out.contains("FAIL: pooledstore-deadpool"), "{out}");
        assert!(out.contains("400 / 0.1"), "{out}");
        let mut none = String::new();
        write_section(&mut none, &peaks_by_tasks(&runs[1..2]), &[]);
        assert!(none.is_empty());
    }
}
