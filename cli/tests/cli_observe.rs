//! The `pooledstore` binary's observability commands: `metrics` prints parseable
//! Prometheus text, and `serve` answers over HTTP and exits 0 on SIGTERM.
#![cfg(any(feature = "sqlx", feature = "deadpool"))]

#[path = "../../tests/common/mod.rs"]
mod common;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{BACKEND, get, parse_metrics, sample};
use hyper::StatusCode;

const BIN: &str = env!("CARGO_BIN_EXE_pooledstore");

fn write_config(dir: &Path) -> PathBuf {
    let path = dir.join("pooledstore.toml");
    let text = format!(
        "[storage]\nbackend = \"{BACKEND}\"\nurl = \"sqlite://{}\"\ndb_pool_size = 3\n\n\
         [serve]\npool_name = \"cli\"\nvalidate_interval_secs = 1\n",
        dir.join("cli.db").display()
    );
    std::fs::write(&path, text).expect("write config");
    path
}

#[test]
fn metrics_prints_the_pool_metrics_as_prometheus_text() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path());
    let out = Command::new(BIN)
        .arg("--config")
        .arg(&config)
        .arg("metrics")
        .output()
        .expect("run pooledstore metrics");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let scrape = parse_metrics(&stdout);
    assert_eq!(sample(&scrape, "db_client_connection_max", &[]), 3.0);
    assert!(
        scrape
            .samples
            .iter()
            .any(|s| s.metric == "db_client_connection_wait_time_seconds")
    );
    assert!(
        scrape
            .samples
            .iter()
            .any(|s| s.metric == "pooledstore_operations_total")
    );
    for s in &scrape.samples {
        assert_eq!(s.labels.get("pool"), Some("cli"), "{s:?}");
        assert_eq!(s.labels.get("backend"), Some(BACKEND), "{s:?}");
        assert_eq!(s.labels.get("engine"), Some("sqlite"), "{s:?}");
    }
}

#[test]
fn metrics_with_a_bad_serve_section_names_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("bad.toml");
    std::fs::write(&config, "[serve]\nmetrics_namespace = \"has space\"\n").unwrap();
    let out = Command::new(BIN)
        .arg("--config")
        .arg(&config)
        .arg("metrics")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("metrics_namespace"));
}

#[tokio::test]
async fn serve_answers_then_exits_0_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path());
    let child = Command::new(BIN)
        .arg("--config")
        .arg(&config)
        .args(["serve", "--listen", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn pooledstore serve");
    let mut child = Reaped(child);
    let addr = listening_address(&mut child.0).await;

    assert_eq!(get(addr, "/health").await.status, StatusCode::OK);
    let ready = get(addr, "/ready").await;
    assert_eq!(ready.status, StatusCode::OK, "{}", ready.body);
    let metrics = get(addr, "/metrics").await;
    assert_eq!(metrics.status, StatusCode::OK);
    let scrape = parse_metrics(&metrics.body);
    assert_eq!(sample(&scrape, "db_client_connection_max", &[]), 3.0);

    let kill = Command::new("kill")
        .args(["-TERM", &child.0.id().to_string()])
        .status()
        .expect("run kill");
    assert!(kill.success());
    let status = wait_for_exit(&mut child.0, Duration::from_secs(30)).await;
    assert!(status.success(), "exit status {status:?}");
    assert!(
        tokio::net::TcpStream::connect(addr).await.is_err(),
        "listener closed"
    );
}

/// Reads the `listening on http://ADDR` line the server prints once bound.
async fn listening_address(child: &mut Child) -> std::net::SocketAddr {
    let stdout = child.stdout.take().expect("piped stdout");
    let line = tokio::task::spawn_blocking(move || {
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line).map(|_| line)
    });
    let line = tokio::time::timeout(Duration::from_secs(60), line)
        .await
        .expect("server announces its address within 60 s")
        .expect("reader task")
        .expect("read stdout");
    let addr = line
        .trim()
        .strip_prefix("listening on http://")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"));
    addr.parse().expect("socket address")
}

async fn wait_for_exit(child: &mut Child, limit: Duration) -> std::process::ExitStatus {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            return status;
        }
        assert!(
            Instant::now() < deadline,
            "server did not exit within {limit:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Kills the server if the test fails before it exits, so no process outlives it.
/// (`Child::kill` does nothing once the child has been reaped.)
struct Reaped(Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        if self.0.kill().is_ok() {
            let _ = self.0.wait();
        }
    }
}
