//! `pooledstore-bench`: measures pooledstore's backends side by side with the raw
//! libraries they wrap (rusqlite, a deadpool-sqlite pool, an sqlx pool), each
//! measurement in its own child process. See `bench/README.md`.

mod callgrind;
mod child;
mod cli;
mod dataset;
mod drive;
mod goals;
mod histogram;
mod load;
mod ops;
mod outcome;
mod parent;
mod plan;
mod plot;
mod procstat;
mod report;
mod rng;
mod sql;
mod sweep;
mod targets;
mod zipf;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    if let Some(config) = &cli.callgrind_workload {
        return print_json_line(callgrind::run(config));
    }
    if let Some([config, workload]) = cli.child.as_deref() {
        return print_json_line(child::run(&cli, config, workload));
    }
    if cli.sweep {
        let finished = sweep::run(&cli).map(|report| Finished {
            json: report.to_json(),
            table: sweep::to_table(&report),
            failed: report.rows.is_empty(),
        });
        return print_finished(&cli, finished);
    }
    let finished = parent::run(&cli).and_then(|report| {
        let json = report.to_json();
        if let Some(path) = &cli.save {
            std::fs::write(path, &json).map_err(|e| format!("writing {}: {e}", path.display()))?;
        }
        Ok(Finished {
            json,
            table: report.to_table(),
            failed: report.runs.is_empty() || report.threads_grew(),
        })
    });
    print_finished(&cli, finished)
}

/// A finished run (the bench's or a sweep's) as it is printed.
struct Finished {
    json: String,
    table: String,
    /// Nothing was measured, or pooledstore's threads grew with its tasks.
    failed: bool,
}

/// Prints `finished` as JSON (`--json`) or as a table, or its error on stderr.
fn print_finished(cli: &cli::Cli, finished: Result<Finished, String>) -> ExitCode {
    match finished {
        Ok(finished) => {
            if cli.json {
                println!("{}", finished.json);
            } else {
                print!("{}", finished.table);
            }
            if finished.failed {
                ExitCode::FAILURE
            } else {
                ExitCode::SUCCESS
            }
        }
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}

/// Prints `result` as one JSON line on stdout, or its error on stderr.
fn print_json_line<T: serde::Serialize>(result: Result<T, String>) -> ExitCode {
    match result.and_then(|r| serde_json::to_string(&r).map_err(|e| format!("encoding: {e}"))) {
        Ok(json) => {
            println!("{json}");
            ExitCode::SUCCESS
        }
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}
