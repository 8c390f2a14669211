//! The operations commands end to end, through the `pooledstore` binary: backup,
//! restore, export, import and copy.
#![cfg(any(feature = "sqlx", feature = "deadpool"))]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// A backend this build includes.
const BACKEND: &str = if cfg!(feature = "sqlx") {
    "sqlx"
} else {
    "deadpool"
};

/// The other SQLite backend when both are compiled in, else the same one.
const OTHER_BACKEND: &str = if cfg!(all(feature = "sqlx", feature = "deadpool")) {
    "deadpool"
} else {
    BACKEND
};

fn write_config(dir: &Path, name: &str, backend: &str, url: &str) -> PathBuf {
    let path = dir.join(name);
    let text = format!(
        "[storage]\nbackend = \"{backend}\"\nurl = \"{url}\"\ndb_connection_timeout_secs = 5\n"
    );
    std::fs::write(&path, text).unwrap();
    path
}

fn sqlite_config(dir: &Path, name: &str, backend: &str, db: &str) -> PathBuf {
    let url = format!("sqlite://{}", dir.join(db).display());
    write_config(dir, name, backend, &url)
}

fn run(config: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_pooledstore"))
        .arg("--config")
        .arg(config)
        .args(args)
        .output()
        .unwrap()
}

fn ok(config: &Path, args: &[&str]) -> String {
    let out = run(config, args);
    assert!(
        out.status.success(),
        "{args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn fails(config: &Path, args: &[&str]) -> String {
    let out = run(config, args);
    assert_eq!(out.status.code(), Some(2), "{args:?} should fail");
    String::from_utf8(out.stderr).unwrap()
}

#[test]
fn backup_and_restore_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let config = sqlite_config(dir.path(), "c.toml", BACKEND, "live.db");
    ok(&config, &["put", "a", "1"]);
    ok(&config, &["put", "b", "2"]);
    let backup = dir.path().join("b.db");
    let backup_arg = backup.to_str().unwrap();

    let out = ok(&config, &["backup", "--output", backup_arg]);
    assert!(out.contains("2 entries"), "{out}");
    let err = fails(&config, &["backup", "--output", backup_arg]);
    assert!(err.contains("--force"), "{err}");
    ok(&config, &["backup", "--output", backup_arg, "--force"]);

    ok(&config, &["put", "c", "3"]);
    let out = ok(&config, &["restore", "--input", backup_arg]);
    assert!(out.contains("2 entries"), "{out}");
    assert_eq!(run(&config, &["get", "c"]).status.code(), Some(1));
    assert_eq!(ok(&config, &["get", "a"]), "1\n");

    std::fs::write(dir.path().join("junk.db"), "not a backup").unwrap();
    let junk = dir.path().join("junk.db");
    let err = fails(&config, &["restore", "--input", junk.to_str().unwrap()]);
    assert!(err.contains("corrupt"), "{err}");
    assert_eq!(ok(&config, &["get", "b"]), "2\n");
}

#[tokio::test]
async fn restore_refuses_while_the_store_is_open_elsewhere() {
    let dir = tempfile::tempdir().unwrap();
    let config = sqlite_config(dir.path(), "c.toml", BACKEND, "live.db");
    ok(&config, &["put", "a", "1"]);
    let backup = dir.path().join("b.db");
    ok(&config, &["backup", "--output", backup.to_str().unwrap()]);

    let loaded = pooledstore::Config::load(Some(&config)).unwrap();
    let store = pooledstore::open(&loaded.storage).await.unwrap();
    store.get(b"a").await.unwrap();
    let err = fails(&config, &["restore", "--input", backup.to_str().unwrap()]);
    assert!(err.contains("in use"), "{err}");
    store.close().await;
    ok(&config, &["restore", "--input", backup.to_str().unwrap()]);
}

#[test]
fn export_import_and_copy_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let source = sqlite_config(dir.path(), "a.toml", BACKEND, "a.db");
    for (k, v) in [("k1", "v1"), ("k2", "v2"), ("k3", "v3")] {
        ok(&source, &["put", k, v]);
    }
    ok(&source, &["put", "session", "s", "--ttl", "600"]);
    let dump = dir.path().join("dump.jsonl");
    let out = ok(&source, &["export", "--output", dump.to_str().unwrap()]);
    assert!(out.contains("exported 4 entries"), "{out}");

    let imported = sqlite_config(dir.path(), "b.toml", OTHER_BACKEND, "b.db");
    let out = ok(&imported, &["import", "--input", dump.to_str().unwrap()]);
    assert!(out.contains("imported 4 of 4"), "{out}");
    assert_eq!(ok(&imported, &["get", "k2"]), "v2\n");
    let out = ok(
        &imported,
        &["import", "--input", dump.to_str().unwrap(), "--resume"],
    );
    assert!(out.contains("4 skipped as present"), "{out}");

    let copied = sqlite_config(dir.path(), "c.toml", OTHER_BACKEND, "c.db");
    let out = ok(&source, &["copy", "--to", copied.to_str().unwrap()]);
    assert!(
        out.contains("copied 4 entries (source 4, target 4)"),
        "{out}"
    );
    assert_eq!(ok(&copied, &["get", "k3"]), "v3\n");
    let err = fails(&source, &["copy", "--to", copied.to_str().unwrap()]);
    assert!(err.contains("empty"), "{err}");
}

#[test]
fn backup_of_a_postgres_store_points_to_export() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(
        dir.path(),
        "pg.toml",
        BACKEND,
        "postgres://app:s3cret@127.0.0.1:1/app",
    );
    let out = dir.path().join("b.db");
    let err = fails(&config, &["backup", "--output", out.to_str().unwrap()]);
    assert!(
        err.contains("unsupported") && err.contains("export"),
        "{err}"
    );
    assert!(!err.contains("s3cret"), "{err}");
    assert!(!out.exists());
}

/// `import` checks the whole file before it writes: a bad last line or a missing end
/// line names its line and leaves the store untouched; duplicates are reported.
#[test]
fn import_checks_the_whole_file_before_writing_and_reports_duplicates() {
    let dir = tempfile::tempdir().unwrap();
    let config = sqlite_config(dir.path(), "c.toml", BACKEND, "live.db");
    let header = r#"{"format":"pooledstore-export","format_version":1}"#;
    let entry = |k: &str, v: &str| {
        format!(r#"{{"key":"{k}","value":"{v}","version":1,"expires_at":null}}"#)
    };
    // Keys a (YQ==), b (Yg==); values 1 (MQ==), 2 (Mg==).
    let good = [
        header.to_owned(),
        entry("YQ==", "MQ=="),
        entry("Yg==", "MQ=="),
        entry("YQ==", "Mg=="),
    ];
    let file = dir.path().join("dump.jsonl");
    let file_arg = file.to_str().unwrap();
    let mut bad = good.to_vec();
    bad.push("{not json".into());
    std::fs::write(&file, bad.join("\n")).unwrap();
    let err = fails(&config, &["import", "--input", file_arg]);
    assert!(err.contains("line 5"), "{err}");
    assert_eq!(ok(&config, &["scan", "--count"]), "0\n");

    std::fs::write(&file, good.join("\n")).unwrap();
    let err = fails(&config, &["import", "--input", file_arg]);
    assert!(err.contains("line 5") && err.contains("end line"), "{err}");
    assert_eq!(ok(&config, &["scan", "--count"]), "0\n");

    let mut complete = good.to_vec();
    complete.push(r#"{"end":true,"entries":3}"#.into());
    std::fs::write(&file, complete.join("\n")).unwrap();
    let out = ok(&config, &["import", "--input", file_arg]);
    assert!(out.contains("2 distinct keys, 1 duplicates"), "{out}");
    assert_eq!(ok(&config, &["get", "a"]), "2\n");
}
