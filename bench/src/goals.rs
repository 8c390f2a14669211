//! The performance targets, checked against a report's medians: every pooledstore
//! configuration at least as fast as the raw library it wraps (item 1), pooledstore-
//! deadpool close to raw rusqlite (item 2), and pooledstore-pg against the raw `PgPool`
//! (item 3). Each check prints PASS or FAIL with the ratio it measured and the ratio it
//! needs; rows that were not measured are not checked.

use std::fmt::Write as _;

use serde::Serialize;

use crate::plan::{Config, Workload};

/// What the checks read of one row of a report.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Measured<'a> {
    /// Configuration name.
    pub(crate) config: &'a str,
    /// Workload name.
    pub(crate) workload: &'a str,
    /// Concurrency.
    pub(crate) tasks: u32,
    /// Throughput relative to the raw pool the configuration wraps.
    pub(crate) vs_pool: Option<f64>,
    /// Throughput relative to raw rusqlite.
    pub(crate) vs_rusqlite: Option<f64>,
}

/// One target checked against one row of the report.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct Goal {
    /// The item of the performance targets this check belongs to (1, 2 or 3).
    pub(crate) item: u8,
    /// Configuration measured.
    pub(crate) config: String,
    /// Workload measured.
    pub(crate) workload: String,
    /// Concurrency.
    pub(crate) tasks: u32,
    /// The configuration the ratio is taken against.
    pub(crate) anchor: String,
    /// Throughput over the anchor's.
    pub(crate) ratio: f64,
    /// The lowest ratio that passes.
    pub(crate) needed: f64,
    /// Whether `ratio >= needed`.
    pub(crate) pass: bool,
}

/// Reads written by item 3's PostgreSQL check.
const PG_READS: [Workload; 3] = [Workload::PointRead, Workload::Scan, Workload::YcsbC];

/// What item 2 asks of pooledstore-deadpool against raw rusqlite at `tasks`, if anything.
fn close_to_rusqlite(workload: Workload, tasks: u32) -> Option<f64> {
    use Workload::*;
    match (workload, tasks) {
        (PointRead, 1) => Some(0.9),
        (Put | YcsbA | YcsbB | YcsbC | YcsbF, 1) => Some(0.8),
        (Put | Batch | YcsbA | YcsbB | YcsbF, t) if t > 1 => Some(1.0),
        _ => None,
    }
}

/// What item 3 asks of pooledstore-pg against the raw `PgPool` at `tasks`, if anything.
fn against_pg_pool(workload: Workload, tasks: u32) -> Option<f64> {
    if PG_READS.contains(&workload) {
        Some(0.95)
    } else if workload == Workload::Put && tasks > 1 {
        Some(2.0)
    } else {
        None
    }
}

/// Every check the rows allow, in row order, item by item.
pub(crate) fn check<'a>(rows: impl IntoIterator<Item = Measured<'a>>) -> Vec<Goal> {
    let mut goals = Vec::new();
    for row in rows {
        let (Some(config), Some(workload)) = (
            Config::from_name(row.config),
            Workload::from_name(row.workload),
        ) else {
            continue;
        };
        let mut add = |item: u8, anchor: Config, ratio: Option<f64>, needed: Option<f64>| {
            if let (Some(ratio), Some(needed)) = (ratio, needed) {
                goals.push(Goal {
                    item,
                    config: row.config.into(),
                    workload: row.workload.into(),
                    tasks: row.tasks,
                    anchor: anchor.name().into(),
                    ratio,
                    needed,
                    pass: ratio >= needed,
                });
            }
        };
        if let Some(pool) = config.wraps() {
            add(1, pool, row.vs_pool, Some(1.0));
        }
        if config == Config::PooledDeadpool {
            let needed = close_to_rusqlite(workload, row.tasks);
            add(2, Config::Rusqlite, row.vs_rusqlite, needed);
        }
        if config == Config::PooledPg {
            let needed = against_pg_pool(workload, row.tasks);
            add(3, Config::PgSqlx, row.vs_pool, needed);
        }
    }
    goals.sort_by_key(|g| g.item);
    goals
}

/// The table's section: a PASS or FAIL line per check, then how many passed.
pub(crate) fn write_section(out: &mut String, goals: &[Goal]) {
    if goals.is_empty() {
        return;
    }
    let _ = writeln!(
        out,
        "\ntargets (throughput over the anchor's, medians)\n  {:<6}{:<6}{:<46}{:>9}{:>9}",
        "", "item", "check", "measured", "needed"
    );
    for g in goals {
        let check = format!("{} {} x{} vs {}", g.config, g.workload, g.tasks, g.anchor);
        let _ = writeln!(
            out,
            "  {:<6}{:<6}{:<46}{:>9}{:>9}",
            if g.pass { "PASS" } else { "FAIL" },
            g.item,
            check,
            format!("{:.2}x", g.ratio),
            format!("{:.2}x", g.needed),
        );
    }
    let passed = goals.iter().filter(|g| g.pass).count();
    let _ = writeln!(out, "targets: {passed} of {} PASS", goals.len());
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(config: Config, workload: Workload, tasks: u32) -> Measured<'static> {
        Measured {
            config: config.name(),
            workload: workload.name(),
            tasks,
            vs_pool: None,
            vs_rusqlite: None,
        }
    }

    #[test]
    fn each_item_reads_its_own_anchor() {
        let mut deadpool_read = row(Config::PooledDeadpool, Workload::PointRead, 1);
        deadpool_read.vs_pool = Some(8.0);
        deadpool_read.vs_rusqlite = Some(0.85);
        let mut deadpool_scan = row(Config::PooledDeadpool, Workload::Scan, 1);
        deadpool_scan.vs_pool = Some(1.2);
        deadpool_scan.vs_rusqlite = Some(0.1);
        let mut pg_put = row(Config::PooledPg, Workload::Put, 16);
        pg_put.vs_pool = Some(1.5);
        let raw = row(Config::Rusqlite, Workload::PointRead, 1);
        let goals = check([raw, deadpool_read, deadpool_scan, pg_put]);
        let summary: Vec<(u8, &str, &str, bool)> = goals
            .iter()
            .map(|g| (g.item, g.workload.as_str(), g.anchor.as_str(), g.pass))
            .collect();
        assert_eq!(
            summary,
            [
                (1, "point_read", "deadpool", true),
                (1, "scan", "deadpool", true),
                (1, "put", "pg-sqlx", true),
                (2, "point_read", "rusqlite", false),
                (3, "put", "pg-sqlx", false),
            ]
        );
        let mut out = String::new();
        write_section(&mut out, &goals);
        assert!(
            out.contains("FAIL  2     pooledstore-deadpool point_read x1 vs rusqlite"),
            "{out}"
        );
        assert!(out.contains("0.85x    0.90x"), "{out}");
        assert!(out.contains("targets: 3 of 5 PASS"), "{out}");
    }

    #[test]
    fn item_two_asks_more_of_concurrent_writes_than_of_lone_ones() {
        assert_eq!(close_to_rusqlite(Workload::PointRead, 1), Some(0.9));
        assert_eq!(close_to_rusqlite(Workload::YcsbB, 1), Some(0.8));
        assert_eq!(close_to_rusqlite(Workload::YcsbB, 16), Some(1.0));
        assert_eq!(close_to_rusqlite(Workload::YcsbC, 16), None);
        assert_eq!(close_to_rusqlite(Workload::Acquire, 1), None);
        assert_eq!(against_pg_pool(Workload::Put, 1), None);
        assert_eq!(against_pg_pool(Workload::Scan, 16), Some(0.95));
    }
}
