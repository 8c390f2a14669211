//! The `pooledstore` command-line binary, for end-to-end tests against a server.
//!
//! `env!("CARGO_BIN_EXE_pooledstore")` exists only in the `pooledstore-cli` package's own
//! tests, so the first test that needs the binary builds it once per test process with
//! `cargo build -p pooledstore-cli --all-features --bin pooledstore` (the same cargo and
//! target directory as the running tests; quick when the embedded suite has already
//! built it) and takes its path from cargo's JSON messages.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;

/// The path of the `pooledstore` binary, built on first use.
///
/// # Panics
/// When cargo cannot build it, with cargo's output.
pub fn pooledstore_bin() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(build)
}

/// Runs `pooledstore --config CONFIG ARGS…` to completion.
pub fn pooledstore(config: &Path, args: &[&str]) -> Output {
    Command::new(pooledstore_bin())
        .arg("--config")
        .arg(config)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run pooledstore")
}

fn build() -> PathBuf {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the workspace root");
    let output = Command::new(cargo)
        .current_dir(workspace)
        .args([
            "build",
            "-p",
            "pooledstore-cli",
            "--all-features",
            "--bin",
            "pooledstore",
            "--message-format=json-render-diagnostics",
        ])
        .stderr(Stdio::inherit())
        .output()
        .expect("run cargo to build the pooledstore binary");
    assert!(
        output.status.success(),
        "cargo build of the pooledstore binary failed"
    );
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|message| {
            message["reason"] == "compiler-artifact" && message["target"]["name"] == "pooledstore"
        })
        .find_map(|message| message["executable"].as_str().map(PathBuf::from))
        .expect("cargo named the pooledstore executable")
}

/// The cases of a `conform --json` report, each as its name and its outcome (in JSON).
pub fn conform_outcomes(report: &serde_json::Value) -> Vec<(String, String)> {
    report["cases"]
        .as_array()
        .map(|cases| {
            cases
                .iter()
                .map(|case| {
                    (
                        case["name"].as_str().unwrap_or_default().to_owned(),
                        case["outcome"].to_string(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}
