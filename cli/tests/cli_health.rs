//! `pooledstore health` names the engine and its version, and a server it cannot reach
//! at once, by cause and address, without the password.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

/// Writes a config for `url` into `dir` and runs `health` on it: (exit code, stdout,
/// stderr, how long it took).
fn health(dir: &Path, backend: &str, url: &str) -> (i32, String, String, Duration) {
    let config = dir.join("pooledstore.toml");
    std::fs::write(
        &config,
        format!("[storage]\nbackend = \"{backend}\"\nurl = \"{url}\"\n"),
    )
    .unwrap();
    let started = Instant::now();
    let out = Command::new(env!("CARGO_BIN_EXE_pooledstore"))
        .arg("--config")
        .arg(&config)
        .arg("health")
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
        started.elapsed(),
    )
}

#[test]
fn health_names_the_sqlite_version() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("kv.db").display());
    let backend = if cfg!(feature = "sqlx") {
        "sqlx"
    } else {
        "deadpool"
    };
    let (code, out, err, _) = health(dir.path(), backend, &url);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("SQLite 3."), "{out}");
}

#[cfg(feature = "postgres")]
#[test]
fn health_on_a_refused_port_fails_fast_naming_it() {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let dir = tempfile::tempdir().unwrap();
    let url = format!("postgres://app:hunter2@127.0.0.1:{port}/app");
    let (code, out, err, took) = health(dir.path(), "sqlx", &url);
    assert_ne!(code, 0, "{out}{err}");
    assert!(err.contains("refused"), "{err}");
    assert!(err.contains(&format!("127.0.0.1:{port}")), "{err}");
    assert!(
        !out.contains("hunter2") && !err.contains("hunter2"),
        "{out}{err}"
    );
    assert!(took < Duration::from_secs(5), "took {took:?}");
}
