//! The etcd backend through the tools, on the cluster `POOLEDSTORE_TEST_ETCD_URL` names:
//! `copy` SQLite -> etcd -> SQLite keeps every key, value and expiry and the order of
//! versions; the `pooledstore` binary's `health`, `validate`, data commands,
//! `export`/`import`, `copy`, `serve` and `conform` work on an etcd URL; and `etcdctl
//! get --prefix <table>/` reads what `pooledstore put` wrote.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use backend_etcd::EtcdStore;
use backend_sqlx::SqlxStore;
use pooledstore_ops::{Progress, copy};
use server_tests::cli::{pooledstore, pooledstore_bin};
use server_tests::copied::{assert_same, entries};
use server_tests::etcd::{ScratchTable, endpoints};
use server_tests::private_pg::spare_port;
use storage_api::{Entry, PooledStore, PutOptions, StoreOptions};

/// Versions follow the copy's (key) order, and a new write outranks them all.
async fn check_versions(store: &dyn PooledStore, copied: &[Entry]) {
    let versions: Vec<u64> = copied.iter().map(|e| e.version.get()).collect();
    assert!(
        versions.windows(2).all(|w| w[0] < w[1]),
        "versions do not follow the copy's order: {versions:?}"
    );
    let newer = store
        .put(&copied[0].key, &copied[0].value, PutOptions::default())
        .await
        .unwrap();
    assert!(newer.get() > *versions.iter().max().unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn copy_round_trips_sqlite_to_etcd_to_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let sqlite = |name: &str| format!("sqlite://{}", dir.path().join(name).display());
    let source = SqlxStore::open(StoreOptions::new(sqlite("source.db")))
        .await
        .unwrap();
    let mut keys: Vec<Vec<u8>> = vec![
        b"\x00".to_vec(),
        b"\xff\xfe".to_vec(),
        b"a".to_vec(),
        b"A".to_vec(),
        b"a ".to_vec(),
        b"a\x00".to_vec(),
        "é".as_bytes().to_vec(),
        vec![0x5a; storage_api::MAX_KEY_BYTES],
    ];
    keys.extend((0..300).map(|i| format!("key{i:03}").into_bytes()));
    for (i, key) in keys.iter().enumerate() {
        let value: Vec<u8> = match i % 4 {
            0 => Vec::new(),
            1 => (0..=255u8).collect(),
            2 => vec![i as u8; 100 * 1024],
            _ => format!("value {i}\nwith a newline").into_bytes(),
        };
        let options = match i % 3 {
            0 => PutOptions::default().with_ttl(Duration::from_secs(3600 + i as u64)),
            _ => PutOptions::default(),
        };
        source.put(key, &value, options).await.unwrap();
    }
    let expected = entries(&source).await;
    assert_eq!(expected.len(), keys.len());

    let table = ScratchTable::new("copy_etcd");
    let etcd = EtcdStore::open(table.options()).await.unwrap();
    let report = copy(&source, &etcd, &Progress::hidden()).await.unwrap();
    assert_eq!(report.copied as usize, keys.len());
    let on_etcd = entries(&etcd).await;
    assert_same("SQLite -> etcd", &on_etcd, &expected);

    let back = SqlxStore::open(StoreOptions::new(sqlite("back.db")))
        .await
        .unwrap();
    let report = copy(&etcd, &back, &Progress::hidden()).await.unwrap();
    assert_eq!(report.copied as usize, keys.len());
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
    let path = dir.join(name);
    std::fs::write(
        &path,
        format!("[storage]\nbackend = \"{backend}\"\nurl = \"{url}\"\ntable = \"{table}\"\n"),
    )
    .unwrap();
    path
}

fn ok(output: &std::process::Output) -> String {
    assert!(
        output.status.success(),
        "exit {:?}: {}{}",
        output.status.code(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn json(output: &std::process::Output) -> serde_json::Value {
    serde_json::from_str(&ok(output)).expect("JSON output")
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

/// `GET path` on the loopback port: the status code and body, or `None` when nothing
/// answers yet.
fn http_get(port: u16, path: &str) -> Option<(u16, String)> {
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .ok()?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    let status = response.split_whitespace().nth(1)?.parse().ok()?;
    let body = response.split_once("\r\n\r\n")?.1.to_owned();
    Some((status, body))
}

#[test]
fn serve_answers_probes_for_an_etcd_store() {
    let table = ScratchTable::new("serve_etcd");
    let dir = tempfile::tempdir().unwrap();
    let port = spare_port();
    let path = dir.path().join("serve.toml");
    std::fs::write(
        &path,
        format!(
            "[storage]\nbackend = \"etcd\"\nurl = \"{}\"\ntable = \"{}\"\n\n[serve]\nlisten = \"127.0.0.1:{port}\"\n",
            table.url, table.table
        ),
    )
    .unwrap();
    let mut child = Command::new(pooledstore_bin())
        .arg("--config")
        .arg(&path)
        .arg("serve")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start pooledstore serve");
    let started = Instant::now();
    let ready = loop {
        if let Some(answer) = http_get(port, "/ready") {
            break answer;
        }
        if let Ok(Some(status)) = child.try_wait() {
            panic!("serve exited early: {status}");
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "serve never answered"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    let metrics = http_get(port, "/metrics").expect("/metrics answers");
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(
            started.elapsed() < Duration::from_secs(40),
            "serve did not stop on SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(ready.0, 200, "{}", ready.1);
    assert!(ready.1.contains("3/3 members answer"), "{}", ready.1);
    assert_eq!(metrics.0, 200);
    assert!(metrics.1.contains("engine=\"etcd\""), "{}", metrics.1);
    assert!(status.success(), "serve exited with {status}");
}
