//! The whole kit against the sqlx backend on MySQL or MariaDB, on the server
//! `POOLEDSTORE_TEST_MYSQL_URL` names (`.ci/run` sets it); each test fails, saying how
//! to set it, otherwise.
//!
//! Each store a case opens gets its own scratch database beside the configured one
//! (`conformance_<pid>_<n>_<nanos>_<store>`), created when the store opens and dropped,
//! tables included, when the case ends. Faults are real: `validate_evicts_broken` has
//! the server kill the store's idle sessions with `KILL CONNECTION`.

use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use backend_sqlx::SqlxStore;
use conformance::{Faults, Harness};
use server_tests::mysql::{admin, drop_databases, execute, kill_idle_sessions, with_database};
use server_tests::mysql_url;
use server_tests::postgres::unique;
use sqlx::Connection;
use storage_api::{PooledStore, StoreError, StoreOptions, async_trait};

/// Opens sqlx stores on MySQL, each in a fresh database of its own.
struct MysqlHarness {
    base_url: String,
    prefix: String,
    next: AtomicU64,
    created: Mutex<Vec<String>>,
}

impl MysqlHarness {
    fn new(base_url: String) -> Self {
        Self {
            base_url,
            prefix: unique("conformance"),
            next: AtomicU64::new(0),
            created: Mutex::new(Vec::new()),
        }
    }
}

/// The database a store URL names.
fn database_of(url: &str) -> &str {
    let base = url.split_once('?').map_or(url, |(base, _)| base);
    base.rsplit_once('/').map_or("", |(_, database)| database)
}

#[async_trait]
impl Harness for MysqlHarness {
    fn name(&self) -> String {
        "sqlx-mysql".into()
    }

    fn isolate(&self, mut options: StoreOptions) -> StoreOptions {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        options.url = with_database(&self.base_url, &format!("{}_{n}", self.prefix));
        options.table = "kv".into();
        options
    }

    async fn open(&self, options: StoreOptions) -> Result<Arc<dyn PooledStore>, StoreError> {
        let database = database_of(&options.url).to_owned();
        let first = {
            let mut created = self.created.lock().unwrap_or_else(|p| p.into_inner());
            let first = !created.contains(&database);
            if first {
                created.push(database.clone());
            }
            first
        };
        if first {
            let mut conn = admin(&self.base_url).await;
            execute(
                &mut conn,
                &format!("CREATE DATABASE IF NOT EXISTS `{database}`"),
            )
            .await;
            let _ = conn.close().await;
        }
        Ok(Arc::new(SqlxStore::open(options).await?))
    }

    fn faults(&self) -> Option<&dyn Faults> {
        Some(self)
    }
}

#[async_trait]
impl Faults for MysqlHarness {
    /// Has the server kill the store's idle sessions (those on its own database),
    /// waiting for each to end.
    async fn break_idle_connections(&self, options: &StoreOptions) -> Result<u32, StoreError> {
        let mut conn = admin(&self.base_url).await;
        let killed = kill_idle_sessions(&mut conn, database_of(&options.url)).await;
        let _ = conn.close().await;
        Ok(killed)
    }
}

impl Drop for MysqlHarness {
    /// Drops every database the case created.
    fn drop(&mut self) {
        let created = self.created.lock().unwrap_or_else(|p| p.into_inner());
        drop_databases(&self.base_url, &created);
    }
}

/// One `#[test]` per case of the kit (the list `suite!` uses), each failing when no
/// database is configured.
macro_rules! mysql_suite {
    (; $($case:ident),* $(,)?) => {
        $(
            #[test]
            fn $case() {
                let url = mysql_url();
                conformance::__private::run_test(stringify!($case), || MysqlHarness::new(url));
            }
        )*
    };
}

conformance::__cases!([mysql_suite]);
