//! The etcd backend through the tools, on the cluster `POOLEDSTORE_TEST_ETCD_URL` names:
//! `copy` SQLite -> etcd -> SQLite keeps every key, value and expiry and the order of
//! versions; the `pooledstore` binary's `health`, `validate`, data commands,
//! `export`/`import`, `copy`, `serve` and `conform` work on an etcd URL; and `etcdctl
//! get --prefix <table>/` reads what `pooledstore put` wrote.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use backend_etcd::EtcdStore;
use backend_sqlx::SqlxStore;
use pooledstore_ops::{Progress, copy};
use server_tests::cli::{
    config_file, http_get, json, ok, pooledstore, spawn_serve, stop_with_sigterm, wait_for_answer,
};
use server_tests::copied::{assert_same, check_versions, entries, fill_awkward};
use server_tests::etcd::{ScratchTable, endpoints};
use server_tests::private_pg::spare_port;
use storage_api::{PooledStore, StoreOptions};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn copy_round_trips_sqlite_to_etcd_to_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let sqlite = |name: &str| format!("sqlite://{}", dir.path().join(name).display());
    let source = SqlxStore::open(StoreOptions::new(sqlite("source.db")))
        .await
        .unwrap();
    let written = fill_awkward(&source, 300, 100 * 1024).await;
    let expected = entries(&source).await;
    assert_eq!(expected.len(), written);

    let table = ScratchTable::new("copy_etcd");
    let etcd = EtcdStore::open(table.options()).await.unwrap();
    let report = copy(&source, &etcd, &Progress::hidden()).await.unwrap();
    assert_eq!(report.copied as usize, written);
    let on_etcd = entries(&etcd).await;
    assert_same("SQLite -> etcd", &on_etcd, &expected);

    let back = SqlxStore::open(StoreOptions::new(sqlite("back.db")))
        .await
        .unwrap();
    let report = copy(&etcd, &back, &Progress::hidden()).await.unwrap();
    assert_eq!(report.copied as usize, written);
    let on_back = entries(&back).await;
    assert_same("etcd -> SQLite", &on_back, &on_etcd);
    assert_same("SQLite -> etcd -> SQLite", &on_back, &expected);

    check_versions(&etcd, &on_etcd).await;
    check_versions(&back, &on_back).await;
    for store in [&source as &dyn PooledStore, &etcd, &back] {
        store.close().await;
    }
}

/// Writes a config file for `backend` at `url`, table `table`.
fn config(dir: &Path, name: &str, backend: &str, url: &str, table: &str) -> PathBuf {
    config_file(dir, name, backend, url, table, "")
}

/// `etcdctl get --prefix PREFIX` on the cluster, its output as text.
fn etcdctl_get_prefix(url: &str, prefix: &str) -> String {
    let output = Command::new("etcdctl")
        .env("ETCDCTL_API", "3")
        .args([
            "--endpoints",
            &endpoints(url).join(","),
            "get",
            "--prefix",
            prefix,
        ])
        .output()
        .expect("etcdctl runs (Debian package etcd-client)");
    ok(&output)
}

#[test]
fn the_binary_serves_an_etcd_url_and_etcdctl_reads_what_it_wrote() {
    let table = ScratchTable::new("cli_etcd");
    let dir = tempfile::tempdir().unwrap();
    let etcd = config(dir.path(), "etcd.toml", "etcd", &table.url, &table.table);

    let health = json(&pooledstore(&etcd, &["health", "--json"]));
    assert_eq!(health["healthy"], true, "{health}");
    assert_eq!(health["engine"], "etcd", "{health}");
    assert!(
        health["detail"]
            .as_str()
            .unwrap()
            .contains("3/3 members answer"),
        "{health}"
    );
    let validate = json(&pooledstore(&etcd, &["validate", "--json"]));
    assert_eq!(validate["passed"], true, "{validate}");

    ok(&pooledstore(&etcd, &["put", "greeting", "hello etcd"]));
    ok(&pooledstore(
        &etcd,
        &["put", "session", "short", "--ttl", "600"],
    ));
    assert_eq!(
        ok(&pooledstore(&etcd, &["get", "greeting"])),
        "hello etcd\n"
    );
    let listed = etcdctl_get_prefix(&table.url, &format!("{}/", table.table));
    assert_eq!(
        listed,
        format!(
            "{t}/greeting\nps1\nhello etcd\n{t}/session\n",
            t = table.table
        ) + &listed[listed.find("ps1 e=").expect("the session's expiry header")..],
        "{listed}"
    );
    assert!(listed.ends_with("\nshort\n"), "{listed}");

    let export = dir.path().join("export.jsonl");
    ok(&pooledstore(
        &etcd,
        &["export", "--output", export.to_str().unwrap()],
    ));
    let copy_table = ScratchTable::new("cli_etcd_import");
    let imported = config(
        dir.path(),
        "imported.toml",
        "etcd",
        &copy_table.url,
        &copy_table.table,
    );
    ok(&pooledstore(
        &imported,
        &["import", "--input", export.to_str().unwrap()],
    ));
    assert_eq!(
        ok(&pooledstore(&imported, &["get", "greeting"])),
        "hello etcd\n"
    );

    let sqlite = config(
        dir.path(),
        "sqlite.toml",
        "sqlx",
        &format!("sqlite://{}", dir.path().join("copy.db").display()),
        "kv",
    );
    ok(&pooledstore(
        &etcd,
        &["copy", "--to", sqlite.to_str().unwrap()],
    ));
    assert_eq!(ok(&pooledstore(&sqlite, &["get", "session"])), "short\n");
    let back_table = ScratchTable::new("cli_etcd_back");
    let back = config(
        dir.path(),
        "back.toml",
        "etcd",
        &back_table.url,
        &back_table.table,
    );
    ok(&pooledstore(
        &sqlite,
        &["copy", "--to", back.to_str().unwrap()],
    ));
    assert_eq!(
        ok(&pooledstore(&back, &["get", "greeting"])),
        "hello etcd\n"
    );
}

#[test]
fn conform_passes_on_an_etcd_url() {
    let table = ScratchTable::new("conform_etcd");
    let dir = tempfile::tempdir().unwrap();
    let etcd = config(dir.path(), "etcd.toml", "etcd", &table.url, &table.table);
    let report = ok(&pooledstore(&etcd, &["conform"]));
    assert!(report.contains(" passed, 0 failed"), "{report}");
}

#[test]
fn serve_answers_probes_for_an_etcd_store() {
    let table = ScratchTable::new("serve_etcd");
    let dir = tempfile::tempdir().unwrap();
    let port = spare_port();
    let path = config_file(
        dir.path(),
        "serve.toml",
        "etcd",
        &table.url,
        &table.table,
        &format!("\n[serve]\nlisten = \"127.0.0.1:{port}\"\n"),
    );
    let mut child = spawn_serve(&path);
    let started = Instant::now();
    let ready = wait_for_answer(&mut child, port, "/ready", started);
    let metrics = http_get(port, "/metrics").expect("/metrics answers");
    let status = stop_with_sigterm(&mut child, started);
    assert_eq!(ready.0, 200, "{}", ready.1);
    assert!(ready.1.contains("3/3 members answer"), "{}", ready.1);
    assert_eq!(metrics.0, 200);
    assert!(metrics.1.contains("engine=\"etcd\""), "{}", metrics.1);
    assert!(status.success(), "serve exited with {status}");
}
