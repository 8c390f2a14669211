//! The instruction-count guard's pieces without valgrind: the check script's self-test,
//! and the workload it runs, natively.

use std::path::Path;
use std::process::Command;

use serde_json::Value;

#[test]
fn the_check_script_passes_its_self_test() {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("callgrind/check");
    let output = Command::new("python3")
        .arg(&script)
        .arg("--self-test")
        .output()
        .unwrap_or_else(|e| {
            panic!("python3 runs the check script but cannot be started ({e}); install python3")
        });
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stdout}{stderr}");
    assert!(stdout.contains("self-test passed"), "{stdout}");
}

#[test]
fn the_workload_reports_its_phases_as_one_json_line() {
    let output = Command::new(env!("CARGO_BIN_EXE_pooledstore-bench"))
        .args(["--callgrind-workload", "rusqlite"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    let ran: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(ran["config"], "rusqlite");
    let phases: Vec<(&str, u64, u64)> = ran["phases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            let name = p["name"].as_str().unwrap();
            (
                name,
                p["ops"].as_u64().unwrap(),
                p["errors"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        phases,
        [
            ("get", 2000, 0),
            ("put", 500, 0),
            ("scan", 100, 0),
            ("batch", 100, 0),
            ("settle", 500, 0)
        ]
    );
    let unknown = Command::new(env!("CARGO_BIN_EXE_pooledstore-bench"))
        .args(["--callgrind-workload", "redis"])
        .output()
        .unwrap();
    assert!(!unknown.status.success());
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("unknown config"));
}
