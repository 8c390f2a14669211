//! Helpers the PostgreSQL tests share: a scratch schema per test on the database
//! `POOLEDSTORE_TEST_POSTGRES_URL` names, dropped (tables, sequences and roles the
//! test created included) when the test ends, pass or fail.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use backend_sqlx::SqlxStore;
use sqlx::{AssertSqlSafe, Connection, PgConnection};
use storage_api::{PoolMetrics, PooledStore, StoreOptions};

use crate::{postgres_unreachable, postgres_url};

/// A unique suffix for names this process creates: `<pid>_<n>_<nanos>`.
pub fn unique(prefix: &str) -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!(
        "{prefix}_{}_{}_{nanos}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// One test's schema on the scratch database.
#[derive(Debug)]
pub struct Scratch {
    /// The scratch database, as `POOLEDSTORE_TEST_POSTGRES_URL` names it.
    pub base_url: String,
    /// This test's schema on it.
    pub schema: String,
    roles: Mutex<Vec<String>>,
}

impl Scratch {
    /// A fresh schema on the database [`postgres_url`] names.
    ///
    /// # Panics
    /// When no database is configured or it cannot be reached, saying how to fix that.
    pub async fn new() -> Self {
        let scratch = Self {
            base_url: postgres_url(),
            schema: unique("sqlx_test"),
            roles: Mutex::new(Vec::new()),
        };
        let mut admin = scratch.admin_plain().await;
        execute(&mut admin, &format!("CREATE SCHEMA \"{}\"", scratch.schema)).await;
        let _ = admin.close().await;
        scratch
    }

    /// The scratch database's URL with `search_path` set to this schema.
    pub fn url(&self) -> String {
        with_search_path(&self.base_url, &self.schema)
    }

    /// Store options for `table` in this schema.
    pub fn options(&self, table: &str) -> StoreOptions {
        let mut options = StoreOptions::new(self.url());
        options.table = table.to_owned();
        options.acquire_timeout = Duration::from_secs(10);
        options
    }

    /// A plain connection whose `search_path` is this schema.
    pub async fn admin(&self) -> PgConnection {
        match PgConnection::connect(&self.url()).await {
            Ok(conn) => conn,
            Err(e) => panic!("admin connection: {e}"),
        }
    }

    async fn admin_plain(&self) -> PgConnection {
        match PgConnection::connect(&self.base_url).await {
            Ok(conn) => conn,
            Err(e) => postgres_unreachable("connecting to the scratch database", e),
        }
    }

    /// Creates a login role with `password` that may use this schema; dropped with it.
    pub async fn create_role(&self, password: &str) -> String {
        let role = unique("sqlx_role");
        let mut admin = self.admin().await;
        execute(
            &mut admin,
            &format!("CREATE ROLE \"{role}\" LOGIN PASSWORD '{password}'"),
        )
        .await;
        execute(
            &mut admin,
            &format!("GRANT ALL ON SCHEMA \"{}\" TO \"{role}\"", self.schema),
        )
        .await;
        let _ = admin.close().await;
        self.roles
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(role.clone());
        role
    }

    /// The scratch database's URL as `role` with `password`, `search_path` this schema.
    pub fn role_url(&self, role: &str, password: &str) -> String {
        with_search_path(&url_as(&self.base_url, role, password), &self.schema)
    }

    /// The server sessions whose `application_name` is `name`, with their state.
    pub async fn sessions(&self, name: &str) -> Vec<(i32, String)> {
        let mut admin = self.admin().await;
        let rows: Vec<(i32, Option<String>)> =
            sqlx::query_as("SELECT pid, state FROM pg_stat_activity WHERE application_name = $1")
                .bind(name)
                .fetch_all(&mut admin)
                .await
                .unwrap_or_else(|e| panic!("pg_stat_activity: {e}"));
        let _ = admin.close().await;
        rows.into_iter()
            .map(|(pid, state)| (pid, state.unwrap_or_default()))
            .collect()
    }

    /// Terminates the store's sessions in `state` (waiting for each to end) and
    /// returns how many.
    pub async fn terminate(&self, store: &SqlxStore, state: &str) -> i64 {
        let name = store.application_name().expect("a PostgreSQL store");
        let mut admin = self.admin().await;
        let terminated: i64 = sqlx::query_scalar(
            "WITH targets AS MATERIALIZED (SELECT pid FROM pg_stat_activity \
             WHERE application_name = $1 AND state = $2 AND pid <> pg_backend_pid()) \
             SELECT count(*) FROM targets WHERE pg_terminate_backend(pid, 5000)",
        )
        .bind(name)
        .bind(state)
        .fetch_one(&mut admin)
        .await
        .unwrap_or_else(|e| panic!("pg_terminate_backend: {e}"));
        let _ = admin.close().await;
        terminated
    }
}

impl Drop for Scratch {
    /// Drops the schema and the roles. On its own thread and runtime: the test's
    /// runtime may be shutting down.
    fn drop(&mut self) {
        let url = self.base_url.clone();
        let schema = self.schema.clone();
        let roles = std::mem::take(&mut *self.roles.lock().unwrap_or_else(|p| p.into_inner()));
        let cleanup = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime for cleanup");
            runtime.block_on(async {
                let mut admin = PgConnection::connect(&url).await.expect("admin connection");
                execute(&mut admin, "SET lock_timeout = '10s'").await;
                execute(&mut admin, &format!("DROP SCHEMA \"{schema}\" CASCADE")).await;
                for role in roles {
                    execute(&mut admin, &format!("DROP ROLE \"{role}\"")).await;
                }
                let _ = admin.close().await;
            });
        });
        if cleanup.join().is_err() {
            eprintln!("could not drop test schema {}", self.schema);
        }
    }
}

/// Runs one statement built by the test (names it generated), panicking on failure.
pub async fn execute(conn: &mut PgConnection, sql: &str) {
    if let Err(e) = sqlx::query(AssertSqlSafe(sql.to_owned()))
        .execute(&mut *conn)
        .await
    {
        panic!("{sql}: {e}");
    }
}

/// `url` with `user:password@` in place of its user.
pub fn url_as(url: &str, user: &str, password: &str) -> String {
    let (scheme, rest) = url.split_once("://").expect("a URL");
    let host = rest.rsplit_once('@').map_or(rest, |(_, host)| host);
    format!("{scheme}://{user}:{password}@{host}")
}

/// `url` with `search_path` set to `schema`.
pub fn with_search_path(url: &str, schema: &str) -> String {
    let separator = if url.contains('?') { '&' } else { '?' };
    format!("{url}{separator}options=-c%20search_path%3D{schema}")
}

/// Opens a store, failing the test with the error.
pub async fn open(options: StoreOptions) -> SqlxStore {
    match SqlxStore::open(options).await {
        Ok(store) => store,
        Err(e) => panic!("open failed: {e:?}"),
    }
}

/// Waits (up to 5 s) until no connection is in use and nobody waits for one.
pub async fn settle(store: &dyn PooledStore) -> PoolMetrics {
    wait_for_metrics(store, Duration::from_secs(5), |m| {
        m.in_use == 0 && m.pending == 0
    })
    .await
}

/// Waits (up to `limit`) until `check` holds for the pool's metrics; returns the
/// last metrics seen.
pub async fn wait_for_metrics(
    store: &dyn PooledStore,
    limit: Duration,
    check: impl Fn(&PoolMetrics) -> bool,
) -> PoolMetrics {
    let deadline = Instant::now() + limit;
    loop {
        let m = store.pool_metrics();
        if check(&m) || Instant::now() > deadline {
            return m;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
