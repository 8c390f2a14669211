//! Runs the `pooledstore` binary against a fresh SQLite store in a temporary directory.
#![allow(dead_code, missing_docs, unreachable_pub)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// A temporary directory holding a config file and its SQLite database.
pub struct Cli {
    pub dir: tempfile::TempDir,
    pub config: PathBuf,
}

impl Cli {
    /// A store with the default settings plus `extra` lines of `[storage]`.
    pub fn new(extra: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("c.toml");
        let backend = if cfg!(feature = "sqlx") {
            "sqlx"
        } else {
            "deadpool"
        };
        std::fs::write(
            &config,
            format!(
                "[storage]\nbackend = \"{backend}\"\nurl = \"sqlite://{}\"\n{extra}\n",
                dir.path().join("kv.db").display()
            ),
        )
        .unwrap();
        Self { dir, config }
    }

    pub fn db(&self) -> PathBuf {
        self.dir.path().join("kv.db")
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_pooledstore"));
        command.arg("--config").arg(&self.config).args(args);
        command
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().unwrap()
    }

    /// Runs with `input` on standard input.
    pub fn run_with_input(&self, args: &[&str], input: &[u8]) -> Output {
        let mut child = self
            .command(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(input).unwrap();
        child.wait_with_output().unwrap()
    }

    /// Runs and asserts exit 0; returns standard output.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert_eq!(out.status.code(), Some(0), "{args:?}: {}", stderr(&out));
        String::from_utf8(out.stdout).unwrap()
    }

    /// Runs and asserts exit `code`; returns standard error.
    pub fn fails(&self, code: i32, args: &[&str]) -> String {
        let out = self.run(args);
        assert_eq!(out.status.code(), Some(code), "{args:?}: {}", stderr(&out));
        stderr(&out)
    }

    /// Writes a file in the directory and returns its path as a string.
    pub fn file(&self, name: &str, contents: &[u8]) -> String {
        let path = self.path(name);
        std::fs::write(&path, contents).unwrap();
        path_str(&path)
    }
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

pub fn path_str(path: &Path) -> String {
    path.to_str().unwrap().to_owned()
}

/// Each line of `text` parsed as JSON.
pub fn json_lines(text: &str) -> Vec<serde_json::Value> {
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}
