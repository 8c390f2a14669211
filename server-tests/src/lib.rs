//! Tests that need a running server (PostgreSQL, MariaDB, an etcd cluster), kept out of
//! the embedded suite.
//!
//! `cargo test --workspace --all-features --exclude pooledstore-server-tests` runs
//! everything that needs no server; `cargo test -p pooledstore-server-tests` runs what
//! is here. Every test here fails, never passes, when its server is not configured or
//! cannot be reached, and the failure names the variable to set and how to start the
//! server.

pub mod certs;
pub mod cli;
pub mod copied;
pub mod etcd;
pub mod etcd_cluster;
pub mod mysql;
pub mod pgbouncer;
pub mod postgres;
pub mod private_mysql;
pub mod private_pg;
pub mod proxy;

/// The variable naming a scratch PostgreSQL database.
pub const POSTGRES_URL_VAR: &str = "POOLEDSTORE_TEST_POSTGRES_URL";

/// How to get a PostgreSQL server these tests can use.
pub const POSTGRES_HOW_TO: &str = "start PostgreSQL (on Debian: `pg_ctlcluster --skip-systemctl-redirect \
     $(ls /etc/postgresql) main start`), create a scratch database (`createdb -h 127.0.0.1 -U \
     postgres pooledstore_test`) and set \
     POOLEDSTORE_TEST_POSTGRES_URL=postgres://postgres@127.0.0.1:5432/pooledstore_test \
     (`.ci/run` does all three)";

/// The scratch database's URL from [`POSTGRES_URL_VAR`].
///
/// # Panics
/// When the variable is unset, empty or not UTF-8: a test that needs the server must
/// fail without it, saying what to do.
pub fn postgres_url() -> String {
    match std::env::var(POSTGRES_URL_VAR) {
        Ok(url) if !url.trim().is_empty() => url,
        Ok(_) | Err(std::env::VarError::NotPresent) => {
            panic!(
                "{POSTGRES_URL_VAR} is not set, so this PostgreSQL test cannot run: {POSTGRES_HOW_TO}"
            )
        }
        Err(std::env::VarError::NotUnicode(_)) => {
            panic!("{POSTGRES_URL_VAR} is not valid UTF-8: {POSTGRES_HOW_TO}")
        }
    }
}

/// Fails the test because the server named by [`POSTGRES_URL_VAR`] could not be
/// reached or used for `what`, quoting the driver's `error` (which never carries the
/// password).
///
/// # Panics
/// Always.
pub fn postgres_unreachable(what: &str, error: impl std::fmt::Display) -> ! {
    panic!(
        "{what}: the PostgreSQL server named by {POSTGRES_URL_VAR} could not be used ({error}); \
         {POSTGRES_HOW_TO}"
    )
}

/// The variable naming a scratch MySQL or MariaDB database.
pub const MYSQL_URL_VAR: &str = "POOLEDSTORE_TEST_MYSQL_URL";

/// How to get a MariaDB server these tests can use.
pub const MYSQL_HOW_TO: &str = "start MariaDB (on Debian, as root: `start-stop-daemon --start \
     --oknodo --background --exec /usr/sbin/mariadbd`; `mysqladmin -uroot ping` answers when \
     it is up), create a scratch database (`mysql -uroot -e 'CREATE DATABASE pooledstore_test'`) \
     and set POOLEDSTORE_TEST_MYSQL_URL=mysql://root@127.0.0.1:3306/pooledstore_test \
     (`.ci/run` does all three); the user must be allowed to create and drop databases";

/// The scratch database's URL from [`MYSQL_URL_VAR`].
///
/// # Panics
/// When the variable is unset, empty or not UTF-8: a test that needs the server must
/// fail without it, saying what to do.
pub fn mysql_url() -> String {
    match std::env::var(MYSQL_URL_VAR) {
        Ok(url) if !url.trim().is_empty() => url,
        Ok(_) | Err(std::env::VarError::NotPresent) => {
            panic!("{MYSQL_URL_VAR} is not set, so this MySQL test cannot run: {MYSQL_HOW_TO}")
        }
        Err(std::env::VarError::NotUnicode(_)) => {
            panic!("{MYSQL_URL_VAR} is not valid UTF-8: {MYSQL_HOW_TO}")
        }
    }
}

/// Fails the test because the server named by [`MYSQL_URL_VAR`] could not be reached
/// or used for `what`, quoting the driver's `error` (which never carries the password).
///
/// # Panics
/// Always.
pub fn mysql_unreachable(what: &str, error: impl std::fmt::Display) -> ! {
    panic!(
        "{what}: the MySQL server named by {MYSQL_URL_VAR} could not be used ({error}); \
         {MYSQL_HOW_TO}"
    )
}

/// The variable naming the etcd cluster the tests use.
pub const ETCD_URL_VAR: &str = "POOLEDSTORE_TEST_ETCD_URL";

/// How to get an etcd cluster these tests can use.
pub const ETCD_HOW_TO: &str = "install etcd (on Debian: `apt-get install etcd-server etcd-client`), \
     start a 3-member cluster on loopback ports with `.ci/etcd-cluster start /tmp/etcd-test` \
     and set POOLEDSTORE_TEST_ETCD_URL=etcd://127.0.0.1:23791,127.0.0.1:23792,127.0.0.1:23793 \
     (`.ci/run` does all three; `.ci/etcd-cluster stop /tmp/etcd-test` stops it)";

/// The shared cluster's URL from [`ETCD_URL_VAR`].
///
/// # Panics
/// When the variable is unset, empty or not UTF-8: a test that needs the cluster must
/// fail without it, saying what to do.
pub fn etcd_url() -> String {
    match std::env::var(ETCD_URL_VAR) {
        Ok(url) if !url.trim().is_empty() => url,
        Ok(_) | Err(std::env::VarError::NotPresent) => {
            panic!("{ETCD_URL_VAR} is not set, so this etcd test cannot run: {ETCD_HOW_TO}")
        }
        Err(std::env::VarError::NotUnicode(_)) => {
            panic!("{ETCD_URL_VAR} is not valid UTF-8: {ETCD_HOW_TO}")
        }
    }
}

/// Fails the test because the cluster named by [`ETCD_URL_VAR`] could not be used for
/// `what`, quoting the `error` (which never carries a password).
///
/// # Panics
/// Always.
pub fn etcd_unreachable(what: &str, error: impl std::fmt::Display) -> ! {
    panic!(
        "{what}: the etcd cluster named by {ETCD_URL_VAR} could not be used ({error}); \
         {ETCD_HOW_TO}"
    )
}
