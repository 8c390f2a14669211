//! The `pooledstore` command-line binary, for end-to-end tests against a server.
//!
//! `env!("CARGO_BIN_EXE_pooledstore")` exists only in the `pooledstore-cli` package's own
//! tests, so the first test that needs the binary builds it once per test process with
//! `cargo build -p pooledstore-cli --all-features --bin pooledstore` (the same cargo and
//! target directory as the running tests; quick when the embedded suite has already
//! built it) and takes its path from cargo's JSON messages.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// The path of the `pooledstore` binary, built on first use.
///
/// # Panics
/// When cargo cannot build it, with cargo's output.
pub fn pooledstore_bin() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(build)
}

/// Runs `pooledstore --config CONFIG ARGS…` to completion.
pub fn pooledstore(config: &Path, args: &[&str]) -> Output {
    Command::new(pooledstore_bin())
        .arg("--config")
        .arg(config)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run pooledstore")
}

/// Writes the config file `dir/name`: a `[storage]` section for `backend` at `url`, table
/// `table`, followed by `extra` lines (another section, say).
pub fn config_file(
    dir: &Path,
    name: &str,
    backend: &str,
    url: &str,
    table: &str,
    extra: &str,
) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(
        &path,
        format!(
            "[storage]\nbackend = \"{backend}\"\nurl = \"{url}\"\ntable = \"{table}\"\n{extra}"
        ),
    )
    .unwrap();
    path
}

/// The standard output of a run that must have succeeded.
///
/// # Panics
/// When it did not, with its exit code and both outputs.
pub fn ok(output: &Output) -> String {
    assert!(
        output.status.success(),
        "exit {:?}: {}{}",
        output.status.code(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// The standard output of a run that must have succeeded, as JSON.
pub fn json(output: &Output) -> serde_json::Value {
    serde_json::from_str(&ok(output)).expect("JSON output")
}

/// `pooledstore --config CONFIG serve`, started with its standard error piped.
pub fn spawn_serve(config: &Path) -> Child {
    Command::new(pooledstore_bin())
        .arg("--config")
        .arg(config)
        .arg("serve")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start pooledstore serve")
}

/// The first answer to `GET path` on `port` from the server `child` runs, asked every
/// 100 ms.
///
/// # Panics
/// When `child` exits first, or nothing answers within 20 s of `started`.
pub fn wait_for_answer(
    child: &mut Child,
    port: u16,
    path: &str,
    started: Instant,
) -> (u16, String) {
    loop {
        if let Some(answer) = http_get(port, path) {
            return answer;
        }
        if let Ok(Some(status)) = child.try_wait() {
            panic!("serve exited early: {status}");
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "serve never answered"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Sends `child` SIGTERM and waits for it to exit.
///
/// # Panics
/// When it has not exited 40 s after `started`.
pub fn stop_with_sigterm(child: &mut Child, started: Instant) -> ExitStatus {
    let kill = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        assert!(
            started.elapsed() < Duration::from_secs(40),
            "serve did not stop on SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// `GET path` on the loopback `port`: the status code and the body, or `None` when
/// nothing answers (yet).
pub fn http_get(port: u16, path: &str) -> Option<(u16, String)> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
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

fn build() -> PathBuf {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the workspace root");
    let output = Command::new(cargo)
        .current_dir(workspace)
        .args([
            "build",
            "-p",
            "pooledstore-cli",
            "--all-features",
            "--bin",
            "pooledstore",
            "--message-format=json-render-diagnostics",
        ])
        .stderr(Stdio::inherit())
        .output()
        .expect("run cargo to build the pooledstore binary");
    assert!(
        output.status.success(),
        "cargo build of the pooledstore binary failed"
    );
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|message| {
            message["reason"] == "compiler-artifact" && message["target"]["name"] == "pooledstore"
        })
        .find_map(|message| message["executable"].as_str().map(PathBuf::from))
        .expect("cargo named the pooledstore executable")
}

/// The cases of a `conform --json` report, each as its name and its outcome (in JSON).
pub fn conform_outcomes(report: &serde_json::Value) -> Vec<(String, String)> {
    report["cases"]
        .as_array()
        .map(|cases| {
            cases
                .iter()
                .map(|case| {
                    (
                        case["name"].as_str().unwrap_or_default().to_owned(),
                        case["outcome"].to_string(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}
