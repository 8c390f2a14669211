//! The `pooledstore` binary on a PostgreSQL URL, end to end, against the scratch
//! database `POOLEDSTORE_TEST_POSTGRES_URL` names: `health`, `validate`, data commands,
//! `export`/`import`, `copy` both ways between SQLite and PostgreSQL, `conform` (in a
//! scratch schema it drops afterwards) and `serve`. The binary is built on first use
//! (see `server_tests::cli`).

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use server_tests::cli::{
    config_file, conform_outcomes, http_get, json, ok, pooledstore, pooledstore_bin, spawn_serve,
    stop_with_sigterm, wait_for_answer,
};
use server_tests::postgres::Scratch;
use server_tests::private_pg::spare_port;

/// Writes a config file for the sqlx backend at `url`, with `extra` lines appended.
fn config(dir: &Path, name: &str, url: &str, table: &str, extra: &str) -> PathBuf {
    config_file(dir, name, "sqlx", url, table, extra)
}

#[tokio::test]
async fn health_validate_and_data_commands_work_on_a_postgres_url() {
    let scratch = Scratch::new().await;
    let dir = tempfile::tempdir().unwrap();
    let pg = config(dir.path(), "pg.toml", &scratch.url(), "cli_kv", "");

    let health = json(&pooledstore(&pg, &["health", "--json"]));
    assert_eq!(health["healthy"], true, "{health}");
    assert_eq!(health["engine"], "PostgreSQL", "{health}");
    assert!(
        health["server_version"]
            .as_str()
            .is_some_and(|v| !v.is_empty()),
        "{health}"
    );
    assert!(
        health["detail"].as_str().unwrap().contains("session"),
        "{health}"
    );
    let validate = json(&pooledstore(&pg, &["validate", "--json"]));
    assert_eq!(validate["passed"], true, "{validate}");

    ok(&pooledstore(&pg, &["put", "greeting", "hello"]));
    assert_eq!(ok(&pooledstore(&pg, &["get", "greeting"])), "hello\n");
    assert_eq!(ok(&pooledstore(&pg, &["scan"])), "greeting\thello\n");
}

#[tokio::test]
async fn export_import_and_copy_move_data_between_postgres_and_sqlite() {
    let scratch = Scratch::new().await;
    let dir = tempfile::tempdir().unwrap();
    let source = config(dir.path(), "source.toml", &scratch.url(), "cli_source", "");
    for (k, v) in [("a", "1"), ("b", "2"), ("c", "3")] {
        ok(&pooledstore(&source, &["put", k, v]));
    }
    let expected = ok(&pooledstore(&source, &["scan"]));
    assert_eq!(expected, "a\t1\nb\t2\nc\t3\n");

    let export = dir.path().join("export.jsonl");
    ok(&pooledstore(
        &source,
        &["export", "--output", export.to_str().unwrap(), "--snapshot"],
    ));
    let imported = config(
        dir.path(),
        "imported.toml",
        &scratch.url(),
        "cli_imported",
        "",
    );
    ok(&pooledstore(
        &imported,
        &["import", "--input", export.to_str().unwrap()],
    ));
    assert_eq!(ok(&pooledstore(&imported, &["scan"])), expected);

    let sqlite_url = format!("sqlite://{}", dir.path().join("copy.db").display());
    let sqlite = config(dir.path(), "sqlite.toml", &sqlite_url, "kv", "");
    ok(&pooledstore(
        &source,
        &["copy", "--to", sqlite.to_str().unwrap()],
    ));
    assert_eq!(ok(&pooledstore(&sqlite, &["scan"])), expected);
    let back = config(dir.path(), "back.toml", &scratch.url(), "cli_back", "");
    ok(&pooledstore(
        &sqlite,
        &["copy", "--to", back.to_str().unwrap()],
    ));
    assert_eq!(ok(&pooledstore(&back, &["scan"])), expected);
}

#[tokio::test]
async fn conform_runs_the_kit_in_a_scratch_schema_it_drops() {
    let scratch = Scratch::new().await;
    let dir = tempfile::tempdir().unwrap();
    // The configured store's own data, which the kit must leave alone.
    let pg = config(dir.path(), "pg.toml", &scratch.url(), "app_kv", "");
    ok(&pooledstore(&pg, &["put", "mine", "keep me"]));
    let cases = "get_absent,put_get_roundtrip,scan_order,batch_atomic,cas_counter,tx_rollback,persistence_reopen";
    let report = json(&pooledstore(
        &pg,
        &["conform", "--json", "--filter", cases, "--cases", "16"],
    ));
    let outcomes = conform_outcomes(&report);
    assert!(!outcomes.is_empty(), "{report}");
    for (name, outcome) in &outcomes {
        assert!(outcome.contains("passed"), "{name}: {outcome}\n{report}");
    }
    assert_eq!(ok(&pooledstore(&pg, &["scan"])), "mine\tkeep me\n");

    let mut admin = scratch.admin().await;
    let left: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM pg_namespace WHERE nspname LIKE 'pooledstore_conform%'",
    )
    .fetch_one(&mut admin)
    .await
    .unwrap();
    assert_eq!(left, 0, "the scratch schema was left behind");
}

#[tokio::test]
async fn serve_answers_probes_for_a_postgres_store_and_stops_on_sigterm() {
    let scratch = Scratch::new().await;
    let dir = tempfile::tempdir().unwrap();
    let port = spare_port();
    let pg = config(
        dir.path(),
        "pg.toml",
        &scratch.url(),
        "serve_kv",
        &format!("\n[serve]\nlisten = \"127.0.0.1:{port}\"\n"),
    );
    let mut child = spawn_serve(&pg);
    let started = Instant::now();
    let ready = wait_for_answer(&mut child, port, "/ready", started);
    let health = http_get(port, "/health").expect("/health answers");
    let metrics = http_get(port, "/metrics").expect("/metrics answers");
    let status = stop_with_sigterm(&mut child, started);
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    assert_eq!(ready.0, 200, "{}", ready.1);
    assert!(ready.1.contains("\"ready\":true"), "{}", ready.1);
    assert_eq!(health.0, 200, "{}", health.1);
    assert_eq!(metrics.0, 200);
    assert!(
        metrics.1.contains("db_client_connection_max"),
        "{}",
        metrics.1
    );
    assert!(status.success(), "serve exited with {status}: {stderr}");
}

/// The contract's commands on PostgreSQL: `get --json` shows the version a conditional
/// put needs, a cursor walk pages through every key, a failed batch applies nothing,
/// and a transaction that meets a real serialization conflict is retried and commits.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_contract_commands_work_on_a_postgres_url() {
    let scratch = Scratch::new().await;
    let dir = tempfile::tempdir().unwrap();
    let pg = config(
        dir.path(),
        "pg.toml",
        &scratch.url(),
        "cli_contract",
        "max_scan_limit = 10\n",
    );

    let v1: u64 = ok(&pooledstore(&pg, &["put", "counter", "1"]))
        .trim()
        .parse()
        .unwrap();
    let got = json(&pooledstore(&pg, &["get", "counter", "--json"]));
    assert_eq!(got["version"].as_u64(), Some(v1), "{got}");
    let stale = pooledstore(
        &pg,
        &[
            "put",
            "counter",
            "x",
            "--if-version",
            &(v1 + 1000).to_string(),
        ],
    );
    assert_eq!(stale.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&stale.stderr).contains(&format!("version {v1}")));

    for i in 0..25 {
        ok(&pooledstore(&pg, &["put", &format!("k/{i:02}"), "v"]));
    }
    let all = ok(&pooledstore(
        &pg,
        &["scan", "--prefix", "k/", "--all", "--keys-only"],
    ));
    assert_eq!(all.lines().count(), 25, "{all}");
    assert_eq!(
        ok(&pooledstore(&pg, &["scan", "--prefix", "k/", "--count"])).trim(),
        "25"
    );

    let batch = dir.path().join("batch.jsonl");
    std::fs::write(
        &batch,
        format!(
            "{{\"op\":\"put\",\"key\":\"new\",\"value\":\"x\"}}\n\
             {{\"op\":\"put\",\"key\":\"counter\",\"value\":\"y\",\"if_version\":{}}}\n",
            v1 + 1000
        ),
    )
    .unwrap();
    let failed = pooledstore(&pg, &["batch", batch.to_str().unwrap()]);
    assert_eq!(failed.status.code(), Some(3));
    assert_eq!(pooledstore(&pg, &["get", "new"]).status.code(), Some(1));

    // Another session updates the row the transaction reads and writes, and commits
    // while the transaction waits for the row: PostgreSQL fails it with a
    // serialization error (a retryable Conflict), and the retry commits.
    let mut other = scratch.admin().await;
    sqlx::query("BEGIN ISOLATION LEVEL SERIALIZABLE")
        .execute(&mut other)
        .await
        .unwrap();
    sqlx::query("UPDATE cli_contract SET value = 'other' WHERE key = 'counter'::bytea")
        .execute(&mut other)
        .await
        .unwrap();
    let tx = dir.path().join("tx.jsonl");
    std::fs::write(
        &tx,
        "{\"op\":\"get\",\"key\":\"counter\"}\n{\"op\":\"put\",\"key\":\"counter\",\"value\":\"mine\"}\n",
    )
    .unwrap();
    let child = Command::new(pooledstore_bin())
        .arg("--config")
        .arg(&pg)
        .args(["tx", tx.to_str().unwrap(), "--retries", "5"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    tokio::time::sleep(Duration::from_millis(800)).await;
    sqlx::query("COMMIT").execute(&mut other).await.unwrap();
    let out = tokio::task::spawn_blocking(move || child.wait_with_output().unwrap())
        .await
        .unwrap();
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{log}");
    assert!(
        log.contains("retrying"),
        "the transaction was not retried: {log}"
    );
    assert_eq!(ok(&pooledstore(&pg, &["get", "counter"])), "mine\n");
}
