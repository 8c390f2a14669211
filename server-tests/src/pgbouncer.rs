//! A private PgBouncer (Debian package `pgbouncer`) in front of a server, for tests of
//! the store behind a pooler: its own configuration in a temporary directory, a spare
//! loopback port, trust authentication for `postgres`, `pool_mode` session or
//! transaction. Killed and removed when dropped. PgBouncer refuses to run as root, so
//! as root it runs as the `postgres` user (`setpriv`, which execs it in place).

use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tempfile::TempDir;

use crate::private_pg::spare_port;

/// Where the binary is looked for.
pub const PGBOUNCER: &str = "/usr/sbin/pgbouncer";

/// How to get it.
pub const PGBOUNCER_HOW_TO: &str = "install PgBouncer (Debian: `apt-get install pgbouncer`; \
     `.ci/run` does)";

/// A running PgBouncer.
#[derive(Debug)]
pub struct PgBouncer {
    dir: TempDir,
    port: u16,
    child: Child,
}

impl PgBouncer {
    /// Starts PgBouncer on a spare port, pooling `pool_mode` connections to the
    /// server on `127.0.0.1:server_port`, at most `pool_size` per database and user.
    ///
    /// # Panics
    /// When PgBouncer is missing or does not start listening within 10 s.
    pub fn start(server_port: u16, pool_mode: &str, pool_size: u32) -> Self {
        assert!(
            std::path::Path::new(PGBOUNCER).is_file(),
            "no {PGBOUNCER}: {PGBOUNCER_HOW_TO}"
        );
        let dir = tempfile::Builder::new()
            .prefix("pooledstore-pgbouncer-")
            .tempdir()
            .expect("a temporary directory");
        let port = spare_port();
        let path = |name: &str| dir.path().join(name).display().to_string();
        let ini = format!(
            "[databases]\n* = host=127.0.0.1 port={server_port}\n\n[pgbouncer]\n\
             listen_addr = 127.0.0.1\nlisten_port = {port}\nunix_socket_dir =\n\
             auth_type = trust\nauth_file = {}\npool_mode = {pool_mode}\n\
             default_pool_size = {pool_size}\nmax_client_conn = 500\n\
             logfile = {}\npidfile = {}\nadmin_users = postgres\n",
            path("userlist.txt"),
            path("pgbouncer.log"),
            path("pgbouncer.pid"),
        );
        std::fs::write(dir.path().join("pgbouncer.ini"), ini).expect("write pgbouncer.ini");
        std::fs::write(dir.path().join("userlist.txt"), "\"postgres\" \"\"\n")
            .expect("write userlist.txt");
        let as_root = Command::new("id")
            .arg("-u")
            .output()
            .map(|out| String::from_utf8_lossy(&out.stdout).trim() == "0")
            .unwrap_or(false);
        let mut command = if as_root {
            let _ = Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(dir.path())
                .status();
            let mut command = Command::new("setpriv");
            command.args([
                "--reuid=postgres",
                "--regid=postgres",
                "--init-groups",
                PGBOUNCER,
            ]);
            command
        } else {
            Command::new(PGBOUNCER)
        };
        let child = command
            .arg(dir.path().join("pgbouncer.ini"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {PGBOUNCER}: {e}; {PGBOUNCER_HOW_TO}"));
        let bouncer = Self { dir, port, child };
        let started = Instant::now();
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "PgBouncer did not listen on {port}: {}",
                bouncer.log_text()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        bouncer
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `postgres://postgres@127.0.0.1:PORT/DATABASE` through the pooler.
    pub fn url(&self, database: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{database}", self.port)
    }

    /// Its log so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(self.log()).unwrap_or_default()
    }

    fn log(&self) -> PathBuf {
        self.dir.path().join("pgbouncer.log")
    }
}

impl Drop for PgBouncer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
