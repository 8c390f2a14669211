//! The parent side: builds the preloaded database once, runs every measurement in its
//! own child process (interleaved across repetitions) and collects their results.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::cli::Cli;
use crate::dataset::build_template;
use crate::outcome::RunResult;
use crate::plan::{Config, Workload};
use crate::procstat::load_average;
use crate::report::{Failure, Meta, Report};

/// The variable naming the PostgreSQL database the PostgreSQL configurations use.
pub(crate) const POSTGRES_URL_VAR: &str = "POOLEDSTORE_TEST_POSTGRES_URL";
/// The variable naming the MySQL/MariaDB database the MySQL configurations run on.
pub(crate) const MYSQL_URL_VAR: &str = "POOLEDSTORE_TEST_MYSQL_URL";
/// The variable naming the etcd cluster the etcd configurations use.
pub(crate) const ETCD_URL_VAR: &str = "POOLEDSTORE_TEST_ETCD_URL";

/// How much longer than its nominal time a child may take before it is killed.
const CHILD_SLACK: Duration = Duration::from_secs(120);

/// One child to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Job {
    pub(crate) config: Config,
    pub(crate) workload: Workload,
    pub(crate) concurrency: u32,
    pub(crate) rep: u32,
    /// Preloaded keys.
    pub(crate) keys: u64,
    /// Connections in the pool under test.
    pub(crate) connections: u32,
}

/// The preloaded data a child starts from.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Data<'a> {
    /// The SQLite database the SQLite configurations copy.
    pub(crate) template: &'a Path,
    /// A preloaded server table the child uses as it is; without one, a server
    /// configuration preloads and drops a table of its own.
    pub(crate) table: Option<&'a str>,
}

/// What a list of jobs produced: each result or failure with its job.
#[derive(Debug, Default)]
pub(crate) struct Ran {
    pub(crate) runs: Vec<(Job, RunResult)>,
    pub(crate) failures: Vec<(Job, Failure)>,
}

/// Children run so far and in all, for the progress lines.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Progress {
    pub(crate) done: usize,
    pub(crate) total: usize,
}

/// Runs every selected measurement and returns the report.
pub(crate) fn run(cli: &Cli) -> Result<Report, String> {
    let (configs, skipped) = select_configs(cli);
    for line in &skipped {
        eprintln!("skipped: {line}");
    }
    let workloads = select_workloads(cli, &Workload::ALL);
    if configs.is_empty() || workloads.is_empty() {
        return Err("the filters select no configuration or no workload".into());
    }
    if cli.keys < 2 {
        return Err("--keys must be at least 2".into());
    }
    let started = Instant::now();
    let load_at_start = load_average().unwrap_or_default();
    let dir = tempfile::tempdir().map_err(|e| format!("creating a temp dir: {e}"))?;
    let template = dir.path().join("template.db");
    build_template(&template, cli.keys, cli.seed)
        .map_err(|e| format!("preloading {} keys: {e}", cli.keys))?;
    eprintln!(
        "preloaded {} keys in {:.1} s",
        cli.keys,
        started.elapsed().as_secs_f64()
    );

    let jobs = schedule(
        &configs,
        &workloads,
        &cli.tasks(),
        cli.reps(),
        (cli.keys, cli.connections),
    );
    let data = Data {
        template: &template,
        table: None,
    };
    let mut progress = Progress {
        done: 0,
        total: jobs.len(),
    };
    let ran = run_jobs(cli, &jobs, &mut progress, |_| data);
    let runs = ran.runs.into_iter().map(|(_, run)| run).collect();
    let failures = ran.failures.into_iter().map(|(_, f)| f).collect();
    let meta = Meta::now(cli, started.elapsed(), load_at_start);
    Ok(Report::new(meta, runs, failures, skipped))
}

/// Runs `jobs` one child at a time on the data `data` names for each, printing a
/// progress line per child; returns the results and the failures, each with its job.
pub(crate) fn run_jobs<'a>(
    cli: &Cli,
    jobs: &[Job],
    progress: &mut Progress,
    data: impl Fn(&Job) -> Data<'a>,
) -> Ran {
    let mut ran = Ran::default();
    for job in jobs {
        progress.done += 1;
        let mut label = format!(
            "[{}/{}] rep {} {} x{} {}",
            progress.done,
            progress.total,
            job.rep + 1,
            job.workload,
            job.concurrency,
            job.config
        );
        if cli.sweep {
            label += &format!(" {} keys pool {}", job.keys, job.connections);
        }
        match run_child(cli, job, data(job)) {
            Ok(result) => {
                eprintln!("{label}: {:.0} ops/s", result.ops_per_sec);
                ran.runs.push((*job, result));
            }
            Err(message) => {
                eprintln!("{label}: FAILED: {message}");
                let failure = Failure {
                    config: job.config.name().into(),
                    workload: job.workload.name().into(),
                    concurrency: job.concurrency,
                    rep: job.rep + 1,
                    message,
                };
                ran.failures.push((*job, failure));
            }
        }
    }
    ran
}

/// The workloads among `candidates` that `--filter` selects.
pub(crate) fn select_workloads(cli: &Cli, candidates: &[Workload]) -> Vec<Workload> {
    candidates
        .iter()
        .copied()
        .filter(|w| cli.filter.as_deref().is_none_or(|f| w.name().contains(f)))
        .collect()
}

/// The configurations the filters and this build select, and a line for each left out.
pub(crate) fn select_configs(cli: &Cli) -> (Vec<Config>, Vec<String>) {
    let postgres_url = std::env::var(POSTGRES_URL_VAR).is_ok_and(|u| !u.is_empty());
    let mysql_url = std::env::var(MYSQL_URL_VAR).is_ok_and(|u| !u.is_empty());
    let etcd_url = std::env::var(ETCD_URL_VAR).is_ok_and(|u| !u.is_empty());
    let mut selected = Vec::new();
    let mut skipped = Vec::new();
    for config in Config::ALL {
        if cli
            .config
            .as_deref()
            .is_some_and(|f| !config.name().contains(f))
        {
            continue;
        }
        if !config.compiled() {
            let features = match config {
                Config::PgSqlx => "`postgres`",
                Config::PooledPg => "`postgres` and `pooledstore`",
                Config::MysqlSqlx => "`mysql`",
                Config::PooledMysql => "`mysql` and `pooledstore`",
                Config::EtcdClient => "`etcd`",
                Config::PooledEtcd => "`etcd` and `pooledstore`",
                _ => "`pooledstore`",
            };
            skipped.push(format!(
                "{config}: this build lacks the {features} feature(s) of pooledstore-bench"
            ));
        } else if config.is_postgres() && !postgres_url {
            skipped.push(format!("{config}: {POSTGRES_URL_VAR} is not set"));
        } else if config.is_mysql() && !mysql_url {
            skipped.push(format!("{config}: {MYSQL_URL_VAR} is not set"));
        } else if config.is_etcd() && !etcd_url {
            skipped.push(format!("{config}: {ETCD_URL_VAR} is not set"));
        } else {
            selected.push(config);
        }
    }
    (selected, skipped)
}

/// Every repetition runs every measurement once, configurations innermost, so each
/// configuration's runs are spread over the whole invocation; all on `(keys,
/// connections)`.
pub(crate) fn schedule(
    configs: &[Config],
    workloads: &[Workload],
    tasks: &[u32],
    reps: u32,
    (keys, connections): (u64, u32),
) -> Vec<Job> {
    let mut jobs = Vec::new();
    for rep in 0..reps {
        for &workload in workloads {
            for &concurrency in tasks {
                for &config in configs {
                    jobs.push(Job {
                        config,
                        workload,
                        concurrency,
                        rep,
                        keys,
                        connections,
                    });
                }
            }
        }
    }
    jobs
}

/// Runs one child and parses the JSON line it prints last.
fn run_child(cli: &Cli, job: &Job, data: Data<'_>) -> Result<RunResult, String> {
    let mut command = Command::new(own_executable()?);
    command
        .arg("--child")
        .arg(job.config.name())
        .arg(job.workload.name())
        .arg("--concurrency")
        .arg(job.concurrency.to_string())
        .arg("--template")
        .arg(data.template)
        .arg("--keys")
        .arg(job.keys.to_string())
        .arg("--connections")
        .arg(job.connections.to_string())
        .arg("--seed")
        .arg(cli.seed.wrapping_add(u64::from(job.rep)).to_string())
        .arg("--duration")
        .arg(cli.measure().as_secs_f64().to_string())
        .arg("--warmup")
        .arg(cli.warmup().as_secs_f64().to_string())
        .args(data.table.map(|t| ["--table", t]).into_iter().flatten())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let deadline = Instant::now() + cli.warmup() + cli.measure() + CHILD_SLACK;
    let (status, stdout, stderr) = wait_with_deadline(command, deadline)?;
    if !status.success() {
        return Err(format!("child exited with {status}: {}", tail(&stderr)));
    }
    let line = stdout
        .lines()
        .rev()
        .find(|l| l.trim_start().starts_with('{'))
        .ok_or_else(|| format!("child printed no result: {}", tail(&stderr)))?;
    serde_json::from_str(line).map_err(|e| format!("child printed an unreadable result: {e}"))
}

/// This executable. On Linux, `/proc/self/exe`: it names the running file even after a
/// rebuild replaced it on disk mid-run.
fn own_executable() -> Result<PathBuf, String> {
    let running = Path::new("/proc/self/exe");
    if running.exists() {
        return Ok(running.to_path_buf());
    }
    std::env::current_exe().map_err(|e| format!("finding this executable: {e}"))
}

/// Spawns `command`, drains its output, and kills it if it outlives `deadline`.
fn wait_with_deadline(
    mut command: Command,
    deadline: Instant,
) -> Result<(std::process::ExitStatus, String, String), String> {
    let mut child = command
        .spawn()
        .map_err(|e| format!("starting the child: {e}"))?;
    let drain = |pipe: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut text = String::new();
            if let Some(mut pipe) = pipe {
                let _ = pipe.read_to_string(&mut text);
            }
            text
        })
    };
    let stdout = drain(
        child
            .stdout
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let stderr = drain(
        child
            .stderr
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() >= deadline => {
                let _ = child.kill();
                let _ = child.wait();
                return Err("child ran past its deadline and was killed".into());
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(5)),
            Err(e) => return Err(format!("waiting for the child: {e}")),
        }
    };
    let stdout = stdout.join().unwrap_or_default();
    let stderr = stderr.join().unwrap_or_default();
    Ok((status, stdout, stderr))
}

/// The last few lines of a child's stderr, for failure messages.
fn tail(stderr: &str) -> String {
    let lines: Vec<&str> = stderr.lines().collect();
    lines[lines.len().saturating_sub(5)..].join(" | ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repetitions_interleave_configurations() {
        let configs = [Config::Rusqlite, Config::Sqlx];
        let jobs = schedule(&configs, &[Workload::Put], &[1, 16], 2, (100, 8));
        assert!(jobs.iter().all(|j| (j.keys, j.connections) == (100, 8)));
        let order: Vec<(u32, u32, Config)> = jobs
            .iter()
            .map(|j| (j.rep, j.concurrency, j.config))
            .collect();
        assert_eq!(
            order,
            [
                (0, 1, Config::Rusqlite),
                (0, 1, Config::Sqlx),
                (0, 16, Config::Rusqlite),
                (0, 16, Config::Sqlx),
                (1, 1, Config::Rusqlite),
                (1, 1, Config::Sqlx),
                (1, 16, Config::Rusqlite),
                (1, 16, Config::Sqlx),
            ]
        );
    }

    #[test]
    fn tail_keeps_the_last_lines() {
        let text = (1..=8)
            .map(|i| i.to_string())
            .collect::<Vec<_>>()
            .join("\n");
        assert_eq!(tail(&text), "4 | 5 | 6 | 7 | 8");
        assert_eq!(tail(""), "");
    }
}
