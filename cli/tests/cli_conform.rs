//! `pooledstore conform`: runs the kit against the configured backend on scratch
//! databases, reports JSON, leaves the configured data alone, and names an unreachable
//! PostgreSQL server without its password (runs against a real server are in
//! server-tests' `cli_postgres`).
#![cfg(any(feature = "sqlx", feature = "deadpool"))]

#[path = "../../tests/common/mod.rs"]
mod common;

use std::path::Path;
use std::process::Command;

use common::BACKEND;
use conformance::{Outcome, Report};

const BIN: &str = env!("CARGO_BIN_EXE_pooledstore");

fn pooledstore(config: &Path, args: &[&str]) -> std::process::Output {
    Command::new(BIN)
        .arg("--config")
        .arg(config)
        .args(args)
        .output()
        .expect("run pooledstore")
}

#[test]
fn conform_runs_the_kit_on_scratch_databases_and_reports_json() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("app.db");
    let config = dir.path().join("pooledstore.toml");
    std::fs::write(
        &config,
        format!(
            "[storage]\nbackend = \"{BACKEND}\"\nurl = \"sqlite://{}\"\n",
            db.display()
        ),
    )
    .unwrap();
    let put = pooledstore(&config, &["put", "mine", "keep me"]);
    assert!(put.status.success(), "{put:?}");

    let out = pooledstore(
        &config,
        &[
            "conform",
            "--json",
            "--filter",
            "get_absent,scan_order,persistence_reopen",
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Report = serde_json::from_slice(&out.stdout).expect("JSON report");
    let names: Vec<_> = report.cases.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["get_absent", "scan_order", "persistence_reopen"]);
    assert_eq!(report.count(Outcome::Passed), 3, "{report}");

    let scan = pooledstore(&config, &["scan"]);
    assert_eq!(String::from_utf8_lossy(&scan.stdout), "mine\tkeep me\n");
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.starts_with(".pooledstore-conform"))
        .collect();
    assert!(leftovers.is_empty(), "scratch left behind: {leftovers:?}");
}

#[test]
fn conform_on_an_unreachable_postgres_url_names_it_without_the_password() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("pooledstore.toml");
    std::fs::write(
        &config,
        "[storage]\nurl = \"postgres://app:s3cret@127.0.0.1:1/app\"\n",
    )
    .unwrap();
    let out = pooledstore(&config, &["conform"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    if cfg!(feature = "postgres") {
        assert!(stderr.contains("cannot connect to 127.0.0.1:1"), "{stderr}");
    } else {
        assert!(stderr.contains("PostgreSQL"), "{stderr}");
    }
    assert!(!stderr.contains("s3cret"), "{stderr}");
}

#[test]
fn a_filter_that_matches_no_case_is_a_usage_error() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("pooledstore.toml");
    let url = format!("sqlite://{}", dir.path().join("app.db").display());
    std::fs::write(&config, format!("[storage]\nurl = \"{url}\"\n")).unwrap();
    let out = pooledstore(&config, &["conform", "--filter", "get_absent,scan_ordr"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("\"scan_ordr\" matches no case"), "{stderr}");
    assert!(stderr.contains("did you mean \"scan_order\""), "{stderr}");
    assert!(
        stderr.contains("persistence_reopen"),
        "lists the cases: {stderr}"
    );
    let json = pooledstore(&config, &["conform", "--json", "--filter", "nosuchcase"]);
    assert_eq!(json.status.code(), Some(2));
    let body: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(body["passed"], false, "{body}");
}
