//! Prometheus's own linter over real output: the exposition of every compiled-in
//! backend after real work (failures and an acquire timeout included), the `metrics`
//! command's output and `serve`'s `/metrics` pass `promtool check metrics` without a
//! lint, and the alert rules in `ops/prometheus` pass `promtool check rules` and their
//! unit tests. These tests need `promtool` on the PATH and fail without it; `.ci/run`
//! installs it.
#![cfg(any(feature = "sqlx", feature = "deadpool"))]

#[path = "../../tests/common/mod.rs"]
mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::Arc;

use common::{exercise, get, options, start_with};
use pooledstore::observe::{ExportOptions, Instrumented, PrometheusExporter};
use pooledstore::{PooledStore, StorageConfig};

const BIN: &str = env!("CARGO_BIN_EXE_pooledstore");

/// The SQLite backends compiled into this build.
const SQLITE_BACKENDS: &[&str] = &[
    #[cfg(feature = "sqlx")]
    "sqlx",
    #[cfg(feature = "deadpool")]
    "deadpool",
];

/// Runs promtool with `args`, feeding it `stdin`; fails the test, saying how to install
/// promtool, when it cannot be started.
fn promtool(args: &[&str], stdin: &str) -> Output {
    let mut child = Command::new("promtool")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| {
            panic!(
                "cannot run `promtool` ({e}). These tests lint the exposition with \
                 Prometheus's own checker and do not pass without it: install it with \
                 `apt-get install prometheus` (Debian/Ubuntu, which ships promtool) or \
                 from a Prometheus release tarball, and put it on the PATH. .ci/run \
                 installs it."
            )
        });
    let mut input = child.stdin.take().expect("promtool stdin");
    input
        .write_all(stdin.as_bytes())
        .expect("write to promtool");
    drop(input);
    child.wait_with_output().expect("promtool finishes")
}

/// Asserts that `promtool check metrics` accepts `text` with no lint at all.
fn assert_promtool_accepts(text: &str, what: &str) {
    let out = promtool(&["check", "metrics"], text);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stdout.trim().is_empty() && stderr.trim().is_empty(),
        "promtool check metrics rejects the exposition of {what} ({}):\n{stdout}{stderr}\n\
         --- exposition ---\n{text}",
        out.status
    );
}

/// Asserts that the exposition has every family, histograms with samples and failure
/// series, so the linter saw all of it rather than a fresh, empty store.
fn assert_complete(text: &str, what: &str) {
    for needle in [
        "db_client_connections gauge\n",
        "db_client_connection_wait_time_seconds histogram\n",
        "db_client_connection_closed_total counter\n",
        "pooledstore_operation_duration_seconds_bucket{",
        "outcome=\"condition_failed\"",
        "outcome=\"invalid_input\"",
        "op=\"commit\",outcome=\"ok\"",
    ] {
        assert!(text.contains(needle), "{what}: no `{needle}` in\n{text}");
    }
}

fn sqlite_config(dir: &Path, backend: &str, pool_size: u32) -> StorageConfig {
    StorageConfig {
        backend: backend.into(),
        url: format!("sqlite://{}", dir.join(format!("{backend}.db")).display()),
        db_pool_size: pool_size,
        db_connection_timeout_secs: 1,
        db_close_grace_secs: 5,
        ..StorageConfig::default()
    }
}

/// Opens `config`, runs the workload on it and returns its exposition, once with the
/// default names and once with a namespace and a pool name that needs escaping.
async fn exposition_after_work(config: &StorageConfig, what: &str) -> [String; 2] {
    let store: Arc<Instrumented> = pooledstore::open_instrumented(config)
        .await
        .unwrap_or_else(|e| panic!("open {what}: {e}"));
    let timed_out = exercise(store.as_ref()).await;
    assert!(
        timed_out,
        "{what}: the held pool of one made the waiter time out"
    );
    let plain = PrometheusExporter::new(Arc::clone(&store), &ExportOptions::default())
        .unwrap()
        .render();
    let named = ExportOptions {
        namespace: "app".into(),
        pool: "orders \"eu\"\\1".into(),
    };
    let named = PrometheusExporter::new(Arc::clone(&store), &named)
        .unwrap()
        .render();
    store.close().await;
    assert!(plain.contains("outcome=\"timeout\""), "{what}:\n{plain}");
    assert!(
        named.contains("app_db_client_connections{"),
        "{what}:\n{named}"
    );
    [plain, named]
}

#[tokio::test]
async fn every_sqlite_backend_exposition_passes_promtool() {
    assert!(!SQLITE_BACKENDS.is_empty());
    for backend in SQLITE_BACKENDS {
        let dir = tempfile::tempdir().unwrap();
        let config = sqlite_config(dir.path(), backend, 1);
        for (i, text) in exposition_after_work(&config, backend)
            .await
            .iter()
            .enumerate()
        {
            let what = format!("the {backend} backend (exposition {i})");
            assert_complete(text, &what);
            assert_promtool_accepts(text, &what);
        }
    }
}

#[test]
fn metrics_command_output_passes_promtool() {
    for backend in SQLITE_BACKENDS {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("pooledstore.toml");
        let text = format!(
            "[storage]\nbackend = \"{backend}\"\nurl = \"sqlite://{}\"\n\n\
             [serve]\npool_name = \"cli\"\n",
            dir.path().join("cli.db").display()
        );
        std::fs::write(&config, text).unwrap();
        let out = Command::new(BIN)
            .arg("--config")
            .arg(&config)
            .arg("metrics")
            .output()
            .expect("run pooledstore metrics");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            stdout.contains("db_client_connections{pool=\"cli\""),
            "{stdout}"
        );
        assert_promtool_accepts(&stdout, &format!("`pooledstore metrics` ({backend})"));
    }
}

#[tokio::test]
async fn serve_metrics_endpoint_passes_promtool() {
    for backend in SQLITE_BACKENDS {
        let dir = tempfile::tempdir().unwrap();
        let config = sqlite_config(dir.path(), backend, 2);
        let store = pooledstore::open_instrumented(&config).await.unwrap();
        exercise(store.as_ref()).await;
        let export = ExportOptions {
            namespace: "svc".into(),
            pool: "main".into(),
        };
        let server = start_with(&store, &export, options()).await;
        let reply = get(server.addr, "/metrics").await;
        server.stop().await;
        assert_eq!(reply.status, hyper::StatusCode::OK);
        assert!(reply.body.contains("svc_pooledstore_operations_total{"));
        assert_promtool_accepts(&reply.body, &format!("serve's /metrics ({backend})"));
    }
}

fn rules_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../ops/prometheus")
}

#[test]
fn alert_rules_pass_promtool_check_and_their_unit_tests() {
    let rules = rules_dir().join("alerts.yml");
    let alerts = std::fs::read_to_string(&rules)
        .unwrap()
        .lines()
        .filter(|l| l.trim_start().starts_with("- alert:"))
        .count();
    assert!(alerts >= 8, "{alerts} alerts");
    let out = promtool(&["check", "rules", rules.to_str().unwrap()], "");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains(&format!("SUCCESS: {alerts} rules found")),
        "promtool check rules:\n{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let tests = rules_dir().join("alerts_test.yml");
    let out = promtool(&["test", "rules", tests.to_str().unwrap()], "");
    assert!(
        out.status.success(),
        "promtool test rules:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
