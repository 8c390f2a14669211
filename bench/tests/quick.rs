//! Smoke test for CI: the benchmark binary runs every configuration this build has on
//! one workload and reports real figures for each.

use std::process::Command;

use serde_json::Value;

/// The bench binary without the server URLs that add server configurations (CI sets
/// them for the server suite): this smoke test counts the embedded ones.
fn bench() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_pooledstore-bench"));
    for server in [
        "POOLEDSTORE_TEST_POSTGRES_URL",
        "POOLEDSTORE_TEST_MYSQL_URL",
        "POOLEDSTORE_TEST_ETCD_URL",
    ] {
        command.env_remove(server);
    }
    command
}

fn expected_configs() -> Vec<&'static str> {
    let mut configs = vec!["rusqlite", "deadpool", "sqlx"];
    if cfg!(feature = "pooledstore") {
        configs.extend(["pooledstore-deadpool", "pooledstore-sqlx"]);
    }
    configs
}

#[test]
fn quick_point_read_reports_a_figure_for_every_configuration() {
    let output = bench()
        .args(["--quick", "--json", "--filter", "point_read"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    let report: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(report["failures"].as_array().unwrap().len(), 0, "{report}");
    let rows = report["rows"].as_array().unwrap();
    for config in expected_configs() {
        for concurrency in [1, 16] {
            let row = rows
                .iter()
                .find(|r| r["config"] == config && r["concurrency"] == concurrency)
                .unwrap_or_else(|| panic!("no row for {config} x{concurrency}: {report}"));
            assert_eq!(row["workload"], "point_read");
            assert!(row["ops_per_sec"].as_f64().unwrap() > 0.0, "{row}");
            assert!(row["p50_us"].as_f64().unwrap() > 0.0, "{row}");
            assert!(row["p99_us"].as_f64().unwrap() >= row["p50_us"].as_f64().unwrap());
            assert!(row["errors"].as_object().unwrap().is_empty(), "{row}");
            assert!(row["peak_threads"].as_u64().unwrap() >= 1, "{row}");
            assert!(row["peak_rss_kib"].as_u64().unwrap() > 0, "{row}");
            assert!(row["vs_rusqlite"].as_f64().unwrap() > 0.0, "{row}");
            assert!(row["max_others_cpu"].as_f64().unwrap() >= 0.0, "{row}");
            if config.starts_with("pooledstore-") {
                assert!(row["vs_pool"].as_f64().unwrap() > 0.0, "{row}");
            }
        }
    }
    let raw = rows
        .iter()
        .find(|r| r["config"] == "rusqlite" && r["concurrency"] == 16)
        .unwrap();
    assert_eq!(raw["workers"], 2, "raw rusqlite runs 16 tasks as 2 threads");
    assert_eq!(raw["vs_rusqlite"], 1.0);
    // Every child ran on its own: one result per (configuration, concurrency).
    assert_eq!(
        report["runs"].as_array().unwrap().len(),
        expected_configs().len() * 2
    );
}

#[test]
fn the_table_names_every_configuration_and_the_json_is_saved() {
    let dir = tempfile::tempdir().unwrap();
    let saved = dir.path().join("report.json");
    let output = bench()
        .args(["--duration", "0.2", "--reps", "1", "--keys", "2000"])
        .args(["--filter", "ycsb_f", "--config", "sqlx", "--save"])
        .arg(&saved)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    let table = String::from_utf8(output.stdout).unwrap();
    assert!(table.contains("ycsb_f x 1 task"), "{table}");
    assert!(table.contains("ycsb_f x 16 tasks"), "{table}");
    assert!(table.contains("\n  sqlx "), "{table}");
    assert!(!table.contains("FAILED"), "{table}");
    let report: Value = serde_json::from_slice(&std::fs::read(&saved).unwrap()).unwrap();
    let rows = report["rows"].as_array().unwrap();
    assert!(
        rows.iter()
            .any(|r| r["config"] == "sqlx" && r["workload"] == "ycsb_f")
    );
}

#[test]
fn bad_arguments_fail_with_a_message() {
    let output = bench()
        .args(["--filter", "no_such_workload"])
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("no workload"));
    let output = bench()
        .args(["--child", "redis", "put", "--template", "/nonexistent"])
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("unknown config"));
}
