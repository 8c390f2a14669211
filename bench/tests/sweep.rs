//! Smoke test of `--sweep`: a tiny sweep (two data sizes, two pool sizes, one
//! workload, two configurations, a few seconds) writes its JSON and one picture per
//! axis, and leaves no preloaded data behind.

use std::process::Command;

use serde_json::Value;

#[test]
fn a_tiny_sweep_writes_its_json_and_pictures() {
    let dir = tempfile::tempdir().unwrap();
    let temp = tempfile::tempdir().unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_pooledstore-bench"))
        .env_remove("POOLEDSTORE_TEST_POSTGRES_URL")
        .env_remove("POOLEDSTORE_TEST_MYSQL_URL")
        .env_remove("POOLEDSTORE_TEST_ETCD_URL")
        .env("TMPDIR", temp.path())
        .args(["--sweep", "--sweep-keys", "300,200", "--sweep-pools", "1,2"])
        .args(["--duration", "0.05", "--reps", "1", "--filter", "put"])
        .args(["--config", "rusqlite", "--sweep-dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    let table = String::from_utf8(output.stdout).unwrap();
    assert!(
        table.contains("put x16 tasks: ops/s by keys, pools of 8"),
        "{table}"
    );
    assert!(
        table.contains("put x16 tasks: ops/s by pool size, 200 keys"),
        "{table}"
    );

    let mut files: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    files.sort();
    assert_eq!(files.len(), 3, "{files:?}");
    let json = files.iter().find(|f| f.ends_with(".json")).unwrap();
    let report: Value =
        serde_json::from_slice(&std::fs::read(dir.path().join(json)).unwrap()).unwrap();
    // (200, 1), (200, 2), (200, 8) and (300, 8): one row each.
    let points: Vec<(u64, u64)> = report["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["keys"].as_u64().unwrap(),
                r["connections"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(points, [(200, 1), (200, 2), (200, 8), (300, 8)]);
    assert_eq!(report["sizes"].as_array().unwrap().len(), 2);
    assert!(report["sizes"][1]["sqlite"]["bytes"].as_u64().unwrap() > 0);
    let pictures: Vec<&str> = report["pictures"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_str().unwrap())
        .collect();
    assert_eq!(pictures.len(), 2, "{pictures:?}");
    for picture in pictures {
        assert!(
            files.iter().any(|f| f == picture),
            "{picture} not in {files:?}"
        );
        let svg = std::fs::read_to_string(dir.path().join(picture)).unwrap();
        assert!(svg.contains("rusqlite"), "{svg}");
    }
    // The preloaded templates went with the sweep.
    assert_eq!(std::fs::read_dir(temp.path()).unwrap().count(), 0);
}
