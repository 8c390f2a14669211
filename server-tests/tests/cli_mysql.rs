//! The `pooledstore` binary on a MySQL/MariaDB URL, end to end, in a scratch database
//! beside the one `POOLEDSTORE_TEST_MYSQL_URL` names: `health`, `validate`, `metrics`,
//! data commands, `export`/`import` and `copy` both ways between SQLite and MariaDB.
//! The binary is built on first use (see `server_tests::cli`).

use std::path::{Path, PathBuf};

use server_tests::cli::{config_file, conform_outcomes, json, ok, pooledstore};
use server_tests::mysql::ScratchDatabase;

/// Writes a config file for the sqlx backend at `url`, table `table`.
fn config(dir: &Path, name: &str, url: &str, table: &str) -> PathBuf {
    config_file(dir, name, "sqlx", url, table, "")
}

#[tokio::test]
async fn health_validate_metrics_and_data_commands_work_on_a_mysql_url() {
    let scratch = ScratchDatabase::new("cli_mysql").await;
    let dir = tempfile::tempdir().unwrap();
    let my = config(dir.path(), "my.toml", &scratch.url(), "cli_kv");

    let health = json(&pooledstore(&my, &["health", "--json"]));
    assert_eq!(health["healthy"], true, "{health}");
    assert_eq!(health["engine"], "MySQL/MariaDB", "{health}");
    assert!(
        health["detail"]
            .as_str()
            .unwrap()
            .contains("STRICT_ALL_TABLES"),
        "{health}"
    );
    let validate = json(&pooledstore(&my, &["validate", "--json"]));
    assert_eq!(validate["passed"], true, "{validate}");
    let metrics = ok(&pooledstore(&my, &["metrics"]));
    assert!(metrics.contains("pooledstore_"), "{metrics}");

    ok(&pooledstore(&my, &["put", "greeting", "hello"]));
    ok(&pooledstore(&my, &["put", "Greeting", "case apart"]));
    assert_eq!(ok(&pooledstore(&my, &["get", "greeting"])), "hello\n");
    assert_eq!(
        ok(&pooledstore(&my, &["scan"])),
        "Greeting\tcase apart\ngreeting\thello\n"
    );
}

#[tokio::test]
async fn export_import_and_copy_move_data_between_mysql_and_sqlite() {
    let scratch = ScratchDatabase::new("cli_mysql").await;
    let dir = tempfile::tempdir().unwrap();
    let source = config(dir.path(), "source.toml", &scratch.url(), "cli_source");
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
    let imported = config(dir.path(), "imported.toml", &scratch.url(), "cli_imported");
    ok(&pooledstore(
        &imported,
        &["import", "--input", export.to_str().unwrap()],
    ));
    assert_eq!(ok(&pooledstore(&imported, &["scan"])), expected);

    let sqlite_url = format!("sqlite://{}", dir.path().join("copy.db").display());
    let sqlite = config(dir.path(), "sqlite.toml", &sqlite_url, "kv");
    ok(&pooledstore(
        &source,
        &["copy", "--to", sqlite.to_str().unwrap()],
    ));
    assert_eq!(ok(&pooledstore(&sqlite, &["scan"])), expected);
    let back = config(dir.path(), "back.toml", &scratch.url(), "cli_back");
    ok(&pooledstore(
        &sqlite,
        &["copy", "--to", back.to_str().unwrap()],
    ));
    assert_eq!(ok(&pooledstore(&back, &["scan"])), expected);
}

#[tokio::test]
async fn conform_runs_in_a_scratch_database_and_leaves_the_data_alone() {
    let scratch = ScratchDatabase::new("cli_mysql").await;
    let dir = tempfile::tempdir().unwrap();
    let my = config(dir.path(), "my.toml", &scratch.url(), "app_kv");
    ok(&pooledstore(&my, &["put", "mine", "keep me"]));
    let cases = "get_absent,put_get_roundtrip,scan_order,batch_atomic,cas_counter,tx_rollback,busy_timeout_honoured";
    let report = json(&pooledstore(
        &my,
        &["conform", "--json", "--filter", cases, "--cases", "16"],
    ));
    let outcomes = conform_outcomes(&report);
    assert_eq!(outcomes.len(), 7, "{report}");
    for (name, outcome) in &outcomes {
        assert!(outcome.contains("passed"), "{name}: {outcome}\n{report}");
    }
    assert_eq!(ok(&pooledstore(&my, &["scan"])), "mine\tkeep me\n");

    let mut admin = scratch.admin().await;
    let left: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM information_schema.SCHEMATA \
         WHERE SCHEMA_NAME LIKE 'pooledstore\\_conform%'",
    )
    .fetch_one(&mut admin)
    .await
    .unwrap();
    assert_eq!(left, 0, "the scratch database was left behind");
}
