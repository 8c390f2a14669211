//! The whole kit against the sqlx backend on PostgreSQL, on the scratch database
//! `POOLEDSTORE_TEST_POSTGRES_URL` names (`.ci/run` sets it); each test fails, saying
//! how to set it, otherwise.
//!
//! Each case gets its own harness, and each harness its own schema
//! (`conformance_<pid>_<n>_<nanos>`), reached through `search_path`; every store the
//! case opens gets a fresh table in it. The harness drops the schema, tables and
//! sequences included, when the case ends. Faults are real: `validate_evicts_broken`
//! has the server terminate the store's idle sessions with `pg_terminate_backend`.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use backend_sqlx::SqlxStore;
use conformance::{Faults, Harness};
use server_tests::{postgres_unreachable, postgres_url};
use sqlx::{AssertSqlSafe, Connection, PgConnection};
use storage_api::{ErrorKind, PooledStore, StoreError, StoreOptions, async_trait};
use tokio::sync::OnceCell;

/// Opens sqlx stores on PostgreSQL, each on a fresh table in the harness's own schema.
struct PostgresHarness {
    base_url: String,
    schema: String,
    created: OnceCell<()>,
    next: AtomicU64,
    opened: Mutex<HashMap<String, SqlxStore>>,
}

impl PostgresHarness {
    fn new(base_url: String) -> Self {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let schema = format!(
            "conformance_{}_{}_{nanos}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        Self {
            base_url,
            schema,
            created: OnceCell::new(),
            next: AtomicU64::new(0),
            opened: Mutex::new(HashMap::new()),
        }
    }

    /// The base URL with `search_path` set to the harness's schema.
    fn store_url(&self) -> String {
        let separator = if self.base_url.contains('?') {
            '&'
        } else {
            '?'
        };
        format!(
            "{}{separator}options=-c%20search_path%3D{}",
            self.base_url, self.schema
        )
    }

    /// Creates the schema, once.
    async fn ensure_schema(&self) -> Result<(), StoreError> {
        self.created
            .get_or_try_init(|| async {
                let mut conn = admin(&self.base_url).await?;
                let sql = format!("CREATE SCHEMA IF NOT EXISTS \"{}\"", self.schema);
                sqlx::query(AssertSqlSafe(sql))
                    .execute(&mut conn)
                    .await
                    .map_err(|e| admin_error("creating the test schema", e))?;
                let _ = conn.close().await;
                Ok(())
            })
            .await
            .map(|_| ())
    }
}

/// A plain connection for setting up and breaking things; fails the test, saying how
/// to start the server, when the scratch database cannot be reached.
async fn admin(url: &str) -> Result<PgConnection, StoreError> {
    match PgConnection::connect(url).await {
        Ok(conn) => Ok(conn),
        Err(e) => postgres_unreachable("connecting to the scratch database", e),
    }
}

fn admin_error(what: &str, error: sqlx::Error) -> StoreError {
    StoreError::new(ErrorKind::Backend, format!("{what}: {error}"))
}

#[async_trait]
impl Harness for PostgresHarness {
    fn name(&self) -> String {
        "sqlx-postgres".into()
    }

    fn isolate(&self, mut options: StoreOptions) -> StoreOptions {
        options.url = self.store_url();
        options.table = format!("kv_{}", self.next.fetch_add(1, Ordering::Relaxed));
        options
    }

    async fn open(&self, options: StoreOptions) -> Result<Arc<dyn PooledStore>, StoreError> {
        self.ensure_schema().await?;
        let table = options.table.clone();
        let store = SqlxStore::open(options).await?;
        self.opened
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(table, store.clone());
        Ok(Arc::new(store))
    }

    fn faults(&self) -> Option<&dyn Faults> {
        Some(self)
    }
}

#[async_trait]
impl Faults for PostgresHarness {
    /// Has the server terminate the store's idle sessions (found by the store's
    /// `application_name`), waiting for each to end.
    async fn break_idle_connections(&self, options: &StoreOptions) -> Result<u32, StoreError> {
        let application_name = {
            let opened = self.opened.lock().unwrap_or_else(|p| p.into_inner());
            let store = opened
                .get(&options.table)
                .ok_or_else(|| StoreError::config("no store was opened with these options"))?;
            store
                .application_name()
                .ok_or_else(|| StoreError::config("the store is not a PostgreSQL store"))?
                .to_owned()
        };
        let mut conn = admin(&self.base_url).await?;
        let terminated: i64 = sqlx::query_scalar(
            // Materialized first, so only the store's sessions are ever terminated
            // (the planner may evaluate a plain WHERE in any order).
            "WITH targets AS MATERIALIZED (SELECT pid FROM pg_stat_activity \
             WHERE application_name = $1 AND state = 'idle' AND pid <> pg_backend_pid()) \
             SELECT count(*) FROM targets WHERE pg_terminate_backend(pid, 5000)",
        )
        .bind(application_name)
        .fetch_one(&mut conn)
        .await
        .map_err(|e| admin_error("terminating sessions", e))?;
        let _ = conn.close().await;
        u32::try_from(terminated).map_err(|_| StoreError::config("too many sessions"))
    }
}

impl Drop for PostgresHarness {
    /// Drops the schema with everything the case created in it. Runs on its own
    /// thread and runtime: the case's runtime may be busy or gone.
    fn drop(&mut self) {
        if self.created.get().is_none() {
            return;
        }
        let url = self.base_url.clone();
        let schema = self.schema.clone();
        let cleanup = std::thread::spawn(move || -> Result<(), String> {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| e.to_string())?;
            runtime.block_on(async {
                let mut conn = admin(&url).await.map_err(|e| e.to_string())?;
                for sql in [
                    "SET lock_timeout = '10s'".to_owned(),
                    format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE"),
                ] {
                    sqlx::query(AssertSqlSafe(sql))
                        .execute(&mut conn)
                        .await
                        .map_err(|e| e.to_string())?;
                }
                let _ = tokio::time::timeout(Duration::from_secs(5), conn.close()).await;
                Ok(())
            })
        });
        match cleanup.join() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => eprintln!("could not drop test schema {}: {e}", self.schema),
            Err(_) => eprintln!("dropping test schema {} panicked", self.schema),
        }
    }
}

/// One `#[test]` per case of the kit (the list `suite!` uses), each failing when no
/// database is configured.
macro_rules! postgres_suite {
    (; $($case:ident),* $(,)?) => {
        $(
            #[test]
            fn $case() {
                let url = postgres_url();
                conformance::__private::run_test(stringify!($case), || PostgresHarness::new(url));
            }
        )*
    };
}

conformance::__cases!([postgres_suite]);
