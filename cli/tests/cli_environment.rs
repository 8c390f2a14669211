//! `POOLEDSTORE_*` variables are never silently ignored: one that is not UTF-8 is a
//! configuration error naming it, and a misspelled one an error naming the closest
//! valid variable; the variables the project's tests use stay allowed.
#![cfg(any(feature = "sqlx", feature = "deadpool"))]

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::process::{Command, Output};

fn health(vars: &[(&OsStr, &OsStr)]) -> (tempfile::TempDir, Output) {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("c.toml");
    let url = format!("sqlite://{}/x.db", dir.path().display());
    // The backend this build has (the deadpool-only build has no sqlx).
    let backend = if cfg!(feature = "sqlx") {
        "sqlx"
    } else {
        "deadpool"
    };
    std::fs::write(
        &config,
        format!("[storage]\nbackend = \"{backend}\"\nurl = \"{url}\"\n"),
    )
    .unwrap();
    let mut command = Command::new(env!("CARGO_BIN_EXE_pooledstore"));
    command.arg("--config").arg(&config).arg("health");
    for (name, value) in vars {
        command.env(name, value);
    }
    let out = command.output().unwrap();
    (dir, out)
}

fn os(text: &str) -> &OsStr {
    OsStr::new(text)
}

#[test]
fn a_variable_that_is_not_utf8_is_an_error_naming_it() {
    for name in ["POOLEDSTORE_URL", "POOLEDSTORE_DB_SYNCHRONOUS"] {
        let (_dir, out) = health(&[(os(name), OsStr::from_bytes(b"full\xff"))]);
        assert_eq!(out.status.code(), Some(2), "{name}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains(name) && stderr.contains("UTF-8"),
            "{stderr}"
        );
    }
}

#[test]
fn a_misspelled_variable_names_the_closest_valid_one() {
    let (_dir, out) = health(&[(os("POOLEDSTORE_DB_POOL_SIZ"), os("4"))]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("POOLEDSTORE_DB_POOL_SIZ "), "{stderr}");
    assert!(stderr.contains("POOLEDSTORE_DB_POOL_SIZE?"), "{stderr}");
}

#[test]
fn settings_and_the_projects_own_variables_are_accepted() {
    let (_dir, out) = health(&[
        (os("POOLEDSTORE_DB_POOL_SIZE"), os("3")),
        (os("POOLEDSTORE_SHUTDOWN_GRACE_SECS"), os("2")),
        (os("POOLEDSTORE_TEST_POSTGRES_URL"), os("postgres://x")),
        (os("POOLEDSTORE_CRASH_SEED"), os("7")),
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
