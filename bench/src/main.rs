//! `pooledstore-bench`: measures pooledstore's backends side by side with the raw
//! libraries they wrap (rusqlite, a deadpool-sqlite pool, an sqlx pool), each
//! measurement in its own child process. See `bench/README.md`.

mod child;
mod cli;
mod dataset;
mod drive;
mod histogram;
mod ops;
mod outcome;
mod parent;
mod plan;
mod procstat;
mod report;
mod rng;
mod sql;
mod targets;
mod zipf;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    if let Some([config, workload]) = cli.child.as_deref() {
        return match child::run(&cli, config, workload) {
            Ok(result) => match serde_json::to_string(&result) {
                Ok(json) => {
                    println!("{json}");
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("error: encoding the result: {e}");
                    ExitCode::FAILURE
                }
            },
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
            if report.runs.is_empty() {
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
