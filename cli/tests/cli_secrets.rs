//! No configuration or URL error shows a password, whatever the shape of the mistake:
//! every bad `--config` file and `copy --to` file, and every bad URL, is run through
//! the binary with a distinctive password that must appear in neither stdout nor
//! stderr (and the error must still be a configuration error, exit 2).
#![cfg(any(feature = "sqlx", feature = "deadpool"))]

use std::path::Path;
use std::process::{Command, Output};

use pooledstore::{Config, StorageConfig};

const PASSWORD: &str = "Zq9xSecretPw";

/// Configuration texts that must be refused without showing the password.
fn bad_configs() -> Vec<(&'static str, String)> {
    let pw = PASSWORD;
    vec![
        (
            "misspelled key on the url line",
            format!("[storage]\nurll = \"postgres://app:{pw}@db/app\"\n"),
        ),
        (
            "unterminated string",
            format!("[storage]\nurl = \"postgres://app:{pw}@db/app\ndb_pool_size = 4\n"),
        ),
        (
            "unterminated one-slash url",
            format!("[storage]\nurl = \"postgres:/app:{pw}@db/app\n"),
        ),
        (
            "url where a number belongs",
            format!("[storage]\ndb_pool_size = \"postgres://app:{pw}@db/app\"\n"),
        ),
        (
            "url as an array",
            format!("[storage]\nurl = [\"postgres://app:{pw}@db/app\"]\n"),
        ),
        (
            "garbage after the url",
            format!("[storage]\nurl = \"postgres://app:{pw}@db/app\" trailing\n"),
        ),
        (
            "one-slash url",
            format!("[storage]\nurl = \"postgres:/app:{pw}@db/app\"\n"),
        ),
        (
            "no-slash url",
            format!("[storage]\nurl = \"postgres:app:{pw}@db/app\"\n"),
        ),
        (
            "unknown scheme",
            format!("[storage]\nurl = \"redis://app:{pw}@db/app\"\n"),
        ),
        (
            "mysql url",
            format!("[storage]\nurl = \"mysql://app:{pw}@db/app\"\n"),
        ),
        (
            "no scheme",
            format!("[storage]\nurl = \"app:{pw}@db/app\"\n"),
        ),
        (
            "space in the password",
            format!("[storage]\nurl = \"pg://app:x {pw}@db/app\"\n"),
        ),
        (
            "query password on sqlite",
            format!("[storage]\nurl = \"sqlite://x.db?password={pw}\"\n"),
        ),
        (
            "url in the serve section",
            format!("[serve]\nlisten = \"postgres://app:{pw}@db/app\"\n"),
        ),
        (
            "url as a section name",
            format!("[\"postgres://app:{pw}@db\"]\nx = 1\n"),
        ),
        (
            "unknown section",
            format!("[storag]\nurl = \"postgres://app:{pw}@db/app\"\n"),
        ),
    ]
}

fn run(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_pooledstore"))
        .current_dir(dir)
        .args(args)
        .env_remove("POOLEDSTORE_URL")
        .output()
        .unwrap()
}

fn assert_hidden(what: &str, out: &Output) {
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !stdout.contains(PASSWORD) && !stderr.contains(PASSWORD),
        "{what}: the password leaked:\n{stdout}\n{stderr}"
    );
    assert_eq!(out.status.code(), Some(2), "{what}: {stderr}");
    assert!(!stderr.trim().is_empty(), "{what}: no error was printed");
}

#[test]
fn config_files_never_show_the_password_in_errors() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("bad.toml");
    for (what, text) in bad_configs() {
        std::fs::write(&config, &text).unwrap();
        let out = run(
            dir.path(),
            &["--config", config.to_str().unwrap(), "health"],
        );
        assert_hidden(what, &out);
    }
}

#[test]
fn copy_targets_never_show_the_password_in_errors() {
    let dir = tempfile::tempdir().unwrap();
    let source = dir.path().join("source.toml");
    let url = format!("sqlite://{}", dir.path().join("source.db").display());
    std::fs::write(&source, format!("[storage]\nurl = \"{url}\"\n")).unwrap();
    let target = dir.path().join("target.toml");
    for (what, text) in bad_configs() {
        std::fs::write(&target, &text).unwrap();
        let args = [
            "--config",
            source.to_str().unwrap(),
            "copy",
            "--to",
            target.to_str().unwrap(),
        ];
        assert_hidden(what, &run(dir.path(), &args));
    }
}

#[test]
fn url_overrides_from_the_environment_never_show_the_password() {
    let dir = tempfile::tempdir().unwrap();
    for url in [
        format!("postgres:/app:{PASSWORD}@db/app"),
        format!("mysql://app:{PASSWORD}@db/app"),
        format!("app:{PASSWORD}@db"),
        format!("sqlite://x.db?password={PASSWORD}"),
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_pooledstore"))
            .current_dir(dir.path())
            .arg("health")
            .env("POOLEDSTORE_URL", &url)
            .output()
            .unwrap();
        assert_hidden(&url, &out);
    }
}

#[test]
fn library_config_errors_never_show_the_password() {
    for (what, text) in bad_configs() {
        let errors = [
            Config::from_toml(&text).err(),
            StorageConfig::from_toml(&text).err(),
            StorageConfig::from_toml(&text)
                .ok()
                .and_then(|c| c.validate().err()),
        ];
        for e in errors.into_iter().flatten() {
            assert!(!e.to_string().contains(PASSWORD), "{what}: {e}");
            assert!(!format!("{e:?}").contains(PASSWORD), "{what}: {e:?}");
        }
    }
}
