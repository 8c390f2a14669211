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
#[derive(Debug, Clone, Copy)]
struct Job {
    config: Config,
    workload: Workload,
    concurrency: u32,
    rep: u32,
}

/// Runs every selected measurement and returns the report.
pub(crate) fn run(cli: &Cli) -> Result<Report, String> {
    let (configs, skipped) = select_configs(cli);
    for line in &skipped {
        eprintln!("skipped: {line}");
    }
    let workloads: Vec<Workload> = Workload::ALL
        .into_iter()
        .filter(|w| cli.filter.as_deref().is_none_or(|f| w.name().contains(f)))
        .collect();
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

    let jobs = schedule(&configs, &workloads, &cli.tasks, cli.reps());
    let mut runs = Vec::new();
    let mut failures = Vec::new();
    for (n, job) in jobs.iter().enumerate() {
        let label = format!(
            "[{}/{}] rep {} {} x{} {}",
            n + 1,
            jobs.len(),
            job.rep + 1,
            job.workload,
            job.concurrency,
            job.config
        );
        match run_child(cli, &template, job) {
            Ok(result) => {
                eprintln!("{label}: {:.0} ops/s", result.ops_per_sec);
                runs.push(result);
            }
            Err(message) => {
                eprintln!("{label}: FAILED: {message}");
                failures.push(Failure {
                    config: job.config.name().into(),
                    workload: job.workload.name().into(),
                    concurrency: job.concurrency,
                    rep: job.rep + 1,
                    message,
                });
            }
        }
    }
    let meta = Meta::now(cli, started.elapsed(), load_at_start);
    Ok(Report::new(meta, runs, failures, skipped))
}

/// The configurations the filters and this build select, and a line for each left out.
fn select_configs(cli: &Cli) -> (Vec<Config>, Vec<String>) {
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
/// configuration's runs are spread over the whole invocation.
fn schedule(configs: &[Config], workloads: &[Workload], tasks: &[u32], reps: u32) -> Vec<Job> {
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
                    });
                }
            }
        }
    }
    jobs
}

/// Runs one child and parses the JSON line it prints last.
fn run_child(cli: &Cli, template: &Path, job: &Job) -> Result<RunResult, String> {
    let mut command = Command::new(own_executable()?);
    command
        .arg("--child")
        .arg(job.config.name())
        .arg(job.workload.name())
        .arg("--concurrency")
        .arg(job.concurrency.to_string())
        .arg("--template")
        .arg(template)
        .arg("--keys")
        .arg(cli.keys.to_string())
        .arg("--connections")
        .arg(cli.connections.to_string())
        .arg("--seed")
        .arg(cli.seed.wrapping_add(u64::from(job.rep)).to_string())
        .arg("--duration")
        .arg(cli.measure().as_secs_f64().to_string())
        .arg("--warmup")
        .arg(cli.warmup().as_secs_f64().to_string())
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
        let jobs = schedule(&configs, &[Workload::Put], &[1, 16], 2);
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
