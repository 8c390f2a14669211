//! Helpers the MySQL and MariaDB tests share: a scratch database per test (or per
//! store) beside the one `POOLEDSTORE_TEST_MYSQL_URL` names, dropped when the test
//! ends, pass or fail, and a way to kill a store's sessions as a server would.

use std::time::Duration;

use backend_sqlx::SqlxStore;
use sqlx::{AssertSqlSafe, Connection, MySqlConnection};
use storage_api::StoreOptions;

use crate::postgres::unique;
use crate::{mysql_unreachable, mysql_url};

/// A scratch database on the server [`mysql_url`] names.
#[derive(Debug)]
pub struct ScratchDatabase {
    /// The URL of the configured database (this one's sibling).
    pub base_url: String,
    /// This database's name.
    pub name: String,
}

impl ScratchDatabase {
    /// Creates a fresh database named `<prefix>_<pid>_<n>_<nanos>`.
    ///
    /// # Panics
    /// When no server is configured or it cannot be reached, saying how to fix that.
    pub async fn new(prefix: &str) -> Self {
        let scratch = Self {
            base_url: mysql_url(),
            name: unique(prefix),
        };
        let mut admin = admin(&scratch.base_url).await;
        execute(&mut admin, &format!("CREATE DATABASE `{}`", scratch.name)).await;
        let _ = admin.close().await;
        scratch
    }

    /// The URL of this database.
    pub fn url(&self) -> String {
        with_database(&self.base_url, &self.name)
    }

    /// Store options for `table` in this database.
    pub fn options(&self, table: &str) -> StoreOptions {
        let mut options = StoreOptions::new(self.url());
        options.table = table.to_owned();
        options.acquire_timeout = Duration::from_secs(10);
        options
    }

    /// A plain connection to this database.
    pub async fn admin(&self) -> MySqlConnection {
        admin(&self.url()).await
    }
}

impl Drop for ScratchDatabase {
    /// Drops the database, on its own thread and runtime (the test's may be gone).
    fn drop(&mut self) {
        drop_databases(&self.base_url, std::slice::from_ref(&self.name));
    }
}

/// Drops `names` on the server `base_url` names, blocking; reports failures on stderr.
pub fn drop_databases(base_url: &str, names: &[String]) {
    if names.is_empty() {
        return;
    }
    let (url, names) = (base_url.to_owned(), names.to_vec());
    let cleanup = std::thread::spawn(move || -> Result<(), String> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| e.to_string())?;
        runtime.block_on(async {
            let mut conn = MySqlConnection::connect(&url)
                .await
                .map_err(|e| e.to_string())?;
            sqlx::raw_sql("SET SESSION lock_wait_timeout = 10")
                .execute(&mut conn)
                .await
                .map_err(|e| e.to_string())?;
            for name in names {
                let sql = format!("DROP DATABASE IF EXISTS `{name}`");
                sqlx::raw_sql(AssertSqlSafe(sql))
                    .execute(&mut conn)
                    .await
                    .map_err(|e| format!("{name}: {e}"))?;
            }
            let _ = tokio::time::timeout(Duration::from_secs(5), conn.close()).await;
            Ok(())
        })
    });
    match cleanup.join() {
        Ok(Ok(())) => {}
        Ok(Err(e)) => eprintln!("could not drop scratch database: {e}"),
        Err(_) => eprintln!("dropping scratch databases panicked"),
    }
}

/// A plain connection for setting up and breaking things; fails the test, saying how
/// to start the server, when it cannot be reached.
pub async fn admin(url: &str) -> MySqlConnection {
    match MySqlConnection::connect(url).await {
        Ok(conn) => conn,
        Err(e) => mysql_unreachable("connecting to the scratch database", e),
    }
}

/// Runs one statement built by the test (names it generated), panicking on failure.
pub async fn execute(conn: &mut MySqlConnection, sql: &str) {
    if let Err(e) = sqlx::raw_sql(AssertSqlSafe(sql.to_owned()))
        .execute(&mut *conn)
        .await
    {
        panic!("{sql}: {e}");
    }
}

/// `url` with its database replaced by `database` (query kept).
pub fn with_database(url: &str, database: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, format!("?{query}")),
        None => (url, String::new()),
    };
    let (scheme, rest) = base.split_once("://").expect("a URL");
    let authority = rest
        .split_once('/')
        .map_or(rest, |(authority, _)| authority);
    format!("{scheme}://{authority}/{database}{query}")
}

/// Kills every idle (`Sleep`) session on `database` but the caller's, waiting until
/// each is gone; returns how many it killed.
pub async fn kill_idle_sessions(conn: &mut MySqlConnection, database: &str) -> u32 {
    let ids: Vec<u64> = sqlx::query_scalar(
        "SELECT CAST(ID AS UNSIGNED) FROM information_schema.PROCESSLIST \
         WHERE DB = ? AND COMMAND = 'Sleep' AND ID <> CONNECTION_ID()",
    )
    .bind(database)
    .fetch_all(&mut *conn)
    .await
    .unwrap_or_else(|e| panic!("listing sessions: {e}"));
    let mut killed = 0;
    for id in &ids {
        // A session that ended meanwhile is not an error (1094: unknown thread).
        if sqlx::raw_sql(AssertSqlSafe(format!("KILL CONNECTION {id}")))
            .execute(&mut *conn)
            .await
            .is_ok()
        {
            killed += 1;
        }
    }
    for _ in 0..250 {
        let left: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE DB = ? \
             AND ID <> CONNECTION_ID() AND COMMAND IN ('Sleep', 'Killed')",
        )
        .bind(database)
        .fetch_one(&mut *conn)
        .await
        .unwrap_or_else(|e| panic!("counting sessions: {e}"));
        if left == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    killed
}

/// Opens a store, failing the test with the error.
pub async fn open(options: StoreOptions) -> SqlxStore {
    match SqlxStore::open(options).await {
        Ok(store) => store,
        Err(e) => panic!("open failed: {e:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_database_is_replaced_and_the_query_kept() {
        assert_eq!(
            with_database("mysql://root@127.0.0.1:3306/test", "x"),
            "mysql://root@127.0.0.1:3306/x"
        );
        assert_eq!(
            with_database("mysql://u:p@h/test?charset=utf8mb4", "x"),
            "mysql://u:p@h/x?charset=utf8mb4"
        );
        assert_eq!(with_database("mysql://u@h", "x"), "mysql://u@h/x");
    }
}
