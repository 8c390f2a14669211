//! `pooledstore-bench`: measures pooledstore's backends side by side with the raw
//! libraries they wrap (rusqlite, a deadpool-sqlite pool, an sqlx pool), each
//! measurement in its own child process. See `bench/README.md`.

mod callgrind;
mod child;
mod cli;
mod dataset;
mod drive;
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
        return match sweep::run(&cli) {
            Ok(report) => {
                if cli.json {
                    println!("{}", report.to_json());
                } else {
                    print!("{}", sweep::to_table(&report));
                }
                if report.rows.is_empty() {
                    ExitCode::FAILURE
                } else {
                    ExitCode::SUCCESS
                }
            }
            Err(message) => {
                eprintln!("error: {message}");
                ExitCode::FAILURE
            }
        };
    }
    match parent::run(&cli) {
        Ok(report) => {
            if let Some(path) = &cli.save
                && let Err(e) = std::fs::write(path, report.to_json())
            {
                eprintln!("error: writing {}: {e}", path.display());
                return ExitCode::FAILURE;
            }
            if cli.json {
                println!("{}", report.to_json());
            } else {
                print!("{}", report.to_table());
            }
            if report.runs.is_empty() || report.threads_grew() {
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
