//! [`PrivateMariadb`]: a MariaDB server of a test's own, in a temporary directory on a
//! spare loopback port, optionally serving TLS with a test run's certificates; killed and
//! removed when dropped. For tests that need server settings the shared server must not
//! be given (TLS, users that require it).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use tempfile::TempDir;

use crate::certs::Certs;
use crate::private_pg::spare_port;

/// How to get the MariaDB binaries these tests start.
const HOW_TO: &str = "install MariaDB's server binaries (on Debian: `apt-get install \
     mariadb-server`, which provides mariadbd and mariadb-install-db)";

/// Held while a data directory is being installed.
static INSTALLING: Mutex<()> = Mutex::new(());

/// A private MariaDB server; the `root` user has no password and may connect over TCP.
#[derive(Debug)]
pub struct PrivateMariadb {
    dir: TempDir,
    port: u16,
    server: Child,
}

impl PrivateMariadb {
    /// Creates a data directory and starts a server on a spare loopback port; with
    /// `certs`, it serves TLS with their server certificate, trusting their CA.
    ///
    /// # Panics
    /// When the binaries are missing or the server does not answer within 30 s,
    /// quoting its log.
    pub fn start(certs: Option<&Certs>) -> Self {
        let dir = tempfile::Builder::new()
            .prefix("pooledstore-mariadb-")
            .tempdir()
            .expect("a temporary directory");
        let data = dir.path().join("data");
        // One install at a time: installs touch shared files (the PAM plugin's
        // directory) and have failed when run side by side.
        let one_at_a_time = INSTALLING.lock().unwrap_or_else(PoisonError::into_inner);
        let installed = Command::new("mariadb-install-db")
            .arg("--no-defaults")
            .arg(format!("--datadir={}", data.display()))
            .args([
                "--auth-root-authentication-method=normal",
                "--skip-test-db",
                "--user=root",
            ])
            .output()
            .unwrap_or_else(|e| panic!("mariadb-install-db: {e}: {HOW_TO}"));
        assert!(
            installed.status.success(),
            "mariadb-install-db failed: {}{}",
            String::from_utf8_lossy(&installed.stdout),
            String::from_utf8_lossy(&installed.stderr)
        );
        drop(one_at_a_time);
        let port = spare_port();
        let mut command = Command::new("mariadbd");
        command
            .arg("--no-defaults")
            .arg(format!("--datadir={}", data.display()))
            .arg(format!("--port={port}"))
            .arg("--bind-address=127.0.0.1")
            .arg(format!("--socket={}", dir.path().join("sock").display()))
            .arg(format!("--pid-file={}", dir.path().join("pid").display()))
            .arg(format!("--log-error={}", log_path(dir.path()).display()))
            .args(["--user=root", "--skip-name-resolve"]);
        if let Some(certs) = certs {
            command
                .arg(format!("--ssl-ca={}", certs.ca.display()))
                .arg(format!("--ssl-cert={}", certs.server_cert.display()))
                .arg(format!("--ssl-key={}", certs.server_key.display()));
        }
        let server = command
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("mariadbd: {e}: {HOW_TO}"));
        let mariadb = Self { dir, port, server };
        mariadb.wait_until_it_answers();
        mariadb
    }

    /// The port the server listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `mysql://USER@127.0.0.1:PORT/DATABASE` with `parameters` (`key=value&…`) when
    /// any.
    pub fn url(&self, user: &str, database: &str, parameters: &str) -> String {
        let query = if parameters.is_empty() {
            String::new()
        } else {
            format!("?{parameters}")
        };
        format!("mysql://{user}@127.0.0.1:{}/{database}{query}", self.port)
    }

    /// Runs `sql` as `root` over the server's socket with the `mariadb` client.
    ///
    /// # Panics
    /// When the client fails.
    pub fn sql(&self, sql: &str) {
        let output = Command::new("mariadb")
            .arg(format!(
                "--socket={}",
                self.dir.path().join("sock").display()
            ))
            .args(["-uroot", "-e", sql])
            .output()
            .unwrap_or_else(|e| panic!("mariadb client: {e}: {HOW_TO}"));
        assert!(
            output.status.success(),
            "{sql}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }

    /// The server's error log.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(log_path(self.dir.path())).unwrap_or_default()
    }

    fn wait_until_it_answers(&self) {
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(30) {
            if std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!(
            "the private MariaDB on port {} did not answer within 30 s:\n{}",
            self.port,
            self.log_text()
        );
    }
}

impl Drop for PrivateMariadb {
    /// Kills the server and waits for it, so the directory can go.
    fn drop(&mut self) {
        let _ = self.server.kill();
        let _ = self.server.wait();
    }
}

fn log_path(dir: &Path) -> PathBuf {
    dir.join("error.log")
}
