//! The command line's promises about exit codes and output: 0 ok, 1 unhealthy or a
//! failed check, 2 a usage, configuration or open error, 3 a failed condition; `--json` forms print JSON
//! with the cause even when the store cannot be opened; directories the command
//! creates are owner-only whatever the umask.
#![cfg(any(feature = "sqlx", feature = "deadpool"))]

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output};

fn run_in(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_pooledstore"))
        .current_dir(dir)
        .args(args)
        .output()
        .unwrap()
}

/// The backend this build has (the deadpool-only build has no sqlx).
const BACKEND: &str = if cfg!(feature = "sqlx") {
    "sqlx"
} else {
    "deadpool"
};

fn config(dir: &Path, url: &str) -> String {
    let path = dir.join("c.toml");
    std::fs::write(
        &path,
        format!("[storage]\nbackend = \"{BACKEND}\"\nurl = \"{url}\"\n"),
    )
    .unwrap();
    path.display().to_string()
}

#[test]
fn json_forms_print_the_cause_when_the_store_cannot_be_opened() {
    let dir = tempfile::tempdir().unwrap();
    let missing = format!("sqlite://{}/no/such/dir/x.db", dir.path().display());
    let bad_file = dir.path().join("bad.toml");
    std::fs::write(&bad_file, "[storage]\ndb_pool_size = 0\n").unwrap();
    let cases = [config(dir.path(), &missing), bad_file.display().to_string()];
    for config in cases {
        for command in ["health", "validate"] {
            let out = run_in(dir.path(), &["--config", &config, command, "--json"]);
            assert_eq!(out.status.code(), Some(2), "{command}");
            let stdout = String::from_utf8(out.stdout).unwrap();
            let body: serde_json::Value = serde_json::from_str(stdout.trim())
                .unwrap_or_else(|e| panic!("{command}: not JSON ({e}): {stdout:?}"));
            assert_eq!(body["healthy"], false, "{body}");
            assert_eq!(body["error"]["kind"], "config", "{body}");
            assert!(
                body["error"]["message"].as_str().unwrap().len() > 10,
                "{body}"
            );
        }
    }
}

#[test]
fn exit_codes_follow_the_table() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/x.db", dir.path().display());
    let config = config(dir.path(), &url);
    let code = |args: &[&str]| {
        let mut all = vec!["--config", config.as_str()];
        all.extend_from_slice(args);
        run_in(dir.path(), &all).status.code()
    };
    assert_eq!(code(&["health"]), Some(0));
    assert_eq!(code(&["health", "--json"]), Some(0));
    assert_eq!(code(&["validate", "--json"]), Some(0));
    assert_eq!(code(&["put", "k", "v"]), Some(0));
    assert_eq!(code(&["get", "k"]), Some(0));
    assert_eq!(code(&["get", "absent"]), Some(1));
    assert_eq!(code(&["delete", "absent"]), Some(1));
    assert_eq!(code(&["no-such-command"]), Some(2));
    assert_eq!(code(&["get"]), Some(2));
    assert_eq!(code(&["get", ""]), Some(2));
    assert_eq!(code(&["put", "k", "v", "--if-absent"]), Some(3));
    assert_eq!(code(&["put", "k", "v", "--if-version", "999"]), Some(3));
    assert_eq!(code(&["delete", "k", "--if-version", "999"]), Some(3));
    let batch = dir.path().join("batch.jsonl");
    std::fs::write(
        &batch,
        "{\"op\":\"put\",\"key\":\"k\",\"value\":\"v\",\"if_absent\":true}\n",
    )
    .unwrap();
    let batch = batch.to_str().unwrap();
    assert_eq!(code(&["batch", batch]), Some(3));
    assert_eq!(code(&["tx", batch]), Some(3));
    assert_eq!(code(&["ttl", "k"]), Some(0));
    assert_eq!(code(&["ttl", "absent"]), Some(1));
    assert_eq!(code(&["put", "k", "--if-version", "0", "v"]), Some(2));
    assert_eq!(code(&["scan", "--limit", "0", "--all"]), Some(2));
    assert_eq!(
        code(&["delete", "k", "--if-version", "1", "--if-version", "2"]),
        Some(2)
    );
    assert_eq!(code(&["completions", "bash"]), Some(0));
    assert_eq!(code(&["man"]), Some(0));
}

#[test]
fn the_default_data_directory_is_owner_only_whatever_the_umask() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new("sh")
        .current_dir(dir.path())
        .arg("-c")
        .arg("umask 000; exec \"$0\" health")
        .arg(env!("CARGO_BIN_EXE_pooledstore"))
        .env_remove("POOLEDSTORE_URL")
        .env("POOLEDSTORE_BACKEND", BACKEND)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mode = std::fs::metadata(dir.path().join("data"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(
        mode & 0o777,
        0o700,
        "data directory mode {:o}",
        mode & 0o777
    );
}
