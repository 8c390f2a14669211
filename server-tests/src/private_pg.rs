//! A private PostgreSQL server for tests that break or reconfigure their server
//! (stopping it, demanding TLS, few connection slots): its own data directory in a
//! temporary directory, a spare loopback port, started with `pg_ctl` from the
//! PostgreSQL 15 binaries (`/usr/lib/postgresql/15/bin`, or `POOLEDSTORE_TEST_PG_BIN`)
//! and torn down when dropped (`pg_ctl stop -m immediate`, directory removed). The
//! shared server is never touched.
//!
//! PostgreSQL refuses to run as root: when the tests run as root, every server command
//! runs as the `postgres` user (`runuser`), which then owns the directory.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use tempfile::TempDir;

/// Where the server binaries are looked for, unless `POOLEDSTORE_TEST_PG_BIN` says.
pub const DEFAULT_PG_BIN: &str = "/usr/lib/postgresql/15/bin";

/// How to get what a private server needs.
pub const PRIVATE_HOW_TO: &str = "install the PostgreSQL 15 server binaries (Debian: \
     `apt-get install postgresql-15`) or point POOLEDSTORE_TEST_PG_BIN at a bin directory \
     holding initdb and pg_ctl";

/// How a private server is set up.
#[derive(Debug, Clone)]
pub struct PgConfig {
    /// `max_connections`.
    pub max_connections: u32,
    /// `superuser_reserved_connections`.
    pub superuser_reserved: u32,
    /// Lines appended to `postgresql.conf`.
    pub extra_conf: Vec<String>,
    /// The whole of `pg_hba.conf`.
    pub hba: Vec<String>,
    /// Addresses the server listens on.
    pub listen: Vec<String>,
}

impl Default for PgConfig {
    fn default() -> Self {
        Self {
            max_connections: 40,
            superuser_reserved: 3,
            extra_conf: Vec::new(),
            hba: vec![
                "local all all trust".into(),
                "host all all 127.0.0.1/32 trust".into(),
            ],
            listen: vec!["127.0.0.1".into()],
        }
    }
}

/// A running private server; stopped and removed when dropped.
#[derive(Debug)]
pub struct PrivatePg {
    dir: TempDir,
    bin: PathBuf,
    port: u16,
    as_postgres: bool,
}

impl PrivatePg {
    /// Creates a cluster with `config` on a spare loopback port and starts it.
    ///
    /// # Panics
    /// When the binaries are missing or the server does not start, quoting its log.
    pub fn start(config: &PgConfig) -> Self {
        let bin = std::env::var_os("POOLEDSTORE_TEST_PG_BIN")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(DEFAULT_PG_BIN));
        assert!(
            bin.join("initdb").is_file() && bin.join("pg_ctl").is_file(),
            "no initdb/pg_ctl in {}: {PRIVATE_HOW_TO}",
            bin.display()
        );
        let dir = tempfile::Builder::new()
            .prefix("pooledstore-pg-")
            .tempdir()
            .expect("a temporary directory");
        let server = Self {
            dir,
            bin,
            port: spare_port(),
            as_postgres: running_as_root(),
        };
        server.hand_over(server.dir.path());
        server.run(
            "initdb",
            &[
                "-D",
                &server.data().display().to_string(),
                "-U",
                "postgres",
                "-A",
                "trust",
                "-E",
                "UTF8",
                "--no-sync",
                "--no-instructions",
            ],
        );
        server.write_config(config);
        server.start_again();
        server
    }

    /// The port the server listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// A directory the server may read (owned by its user), for certificates.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// `postgres://USER@HOST:PORT/DB`.
    pub fn url_for(&self, user: &str, host: &str, database: &str) -> String {
        format!("postgres://{user}@{host}:{}/{database}", self.port)
    }

    /// `postgres://postgres@127.0.0.1:PORT/postgres`.
    pub fn url(&self) -> String {
        self.url_for("postgres", "127.0.0.1", "postgres")
    }

    /// Runs SQL through `psql` over the Unix socket (so `pg_hba.conf` host rules and
    /// TLS do not apply), as the superuser; the output, trimmed.
    ///
    /// # Panics
    /// When `psql` fails.
    pub fn psql(&self, database: &str, sql: &str) -> String {
        let output = self.run(
            "psql",
            &[
                "-X",
                "-q",
                "-A",
                "-t",
                "-v",
                "ON_ERROR_STOP=1",
                "-h",
                &self.dir().display().to_string(),
                "-p",
                &self.port.to_string(),
                "-U",
                "postgres",
                "-d",
                database,
                "-c",
                sql,
            ],
        );
        String::from_utf8_lossy(&output.stdout).trim().to_owned()
    }

    /// Stops the server: `mode` is `fast` (sessions are ended, a clean shutdown) or
    /// `immediate` (the processes quit at once, as in a crash; restart recovers).
    pub fn stop(&self, mode: &str) {
        self.run(
            "pg_ctl",
            &[
                "-D",
                &self.data().display().to_string(),
                "-m",
                mode,
                "-w",
                "-t",
                "30",
                "stop",
            ],
        );
    }

    /// Starts the (stopped) server and waits until it accepts connections.
    pub fn start_again(&self) {
        self.run(
            "pg_ctl",
            &[
                "-D",
                &self.data().display().to_string(),
                "-l",
                &self.log().display().to_string(),
                "-w",
                "-t",
                "30",
                "start",
            ],
        );
    }

    /// The server's log so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(self.log()).unwrap_or_default()
    }

    /// Makes `path` (and what is under it) the server user's, when the server runs
    /// as `postgres`.
    pub fn hand_over(&self, path: &Path) {
        if self.as_postgres {
            let status = Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(path)
                .status()
                .expect("chown");
            assert!(status.success(), "chown {} failed", path.display());
        }
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn log(&self) -> PathBuf {
        self.dir.path().join("server.log")
    }

    fn write_config(&self, config: &PgConfig) {
        let mut conf = vec![
            format!("listen_addresses = '{}'", config.listen.join(",")),
            format!("port = {}", self.port),
            format!("unix_socket_directories = '{}'", self.dir().display()),
            format!("max_connections = {}", config.max_connections),
            format!(
                "superuser_reserved_connections = {}",
                config.superuser_reserved
            ),
            "fsync = off".into(),
            "shared_buffers = 16MB".into(),
            "logging_collector = off".into(),
        ];
        conf.extend(config.extra_conf.iter().cloned());
        let data = self.data();
        let mut text = std::fs::read_to_string(data.join("postgresql.conf")).unwrap_or_default();
        text.push('\n');
        text.push_str(&conf.join("\n"));
        text.push('\n');
        std::fs::write(data.join("postgresql.conf"), text).expect("write postgresql.conf");
        let hba = config.hba.join("\n") + "\n";
        std::fs::write(data.join("pg_hba.conf"), hba).expect("write pg_hba.conf");
        self.hand_over(&data);
    }

    /// Runs `program` from the server binaries (as `postgres` when needed).
    fn run(&self, program: &str, args: &[&str]) -> Output {
        let path = self.bin.join(program);
        let path = if path.is_file() {
            path
        } else {
            PathBuf::from(program)
        };
        let mut command = if self.as_postgres {
            let mut command = Command::new("runuser");
            command.args(["-u", "postgres", "--"]).arg(&path);
            command
        } else {
            Command::new(&path)
        };
        let output = command
            .args(args)
            .current_dir(self.dir.path())
            .output()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}; {PRIVATE_HOW_TO}", path.display()));
        assert!(
            output.status.success(),
            "{program} {args:?} failed: {}{}\nserver log:\n{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr),
            self.log_text()
        );
        output
    }
}

impl Drop for PrivatePg {
    /// Stops the server at once (if it runs) and removes its directory.
    fn drop(&mut self) {
        let data = self.data().display().to_string();
        let pg_ctl = self.bin.join("pg_ctl");
        let mut command = if self.as_postgres {
            let mut command = Command::new("runuser");
            command.args(["-u", "postgres", "--"]).arg(&pg_ctl);
            command
        } else {
            Command::new(&pg_ctl)
        };
        let _ = command
            .args(["-D", &data, "-m", "immediate", "-w", "-t", "30", "stop"])
            .output();
    }
}

/// A loopback port nothing listens on right now.
pub fn spare_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .expect("a spare loopback port")
}

fn running_as_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|out| String::from_utf8_lossy(&out.stdout).trim() == "0")
        .unwrap_or(false)
}
