//! Differential runs between the sqlx backend on PostgreSQL and on SQLite: the same
//! seeded sequences of operations give the same results on both. Needs the scratch
//! database `POOLEDSTORE_TEST_POSTGRES_URL` names and fails, saying how to set it,
//! otherwise.
//!
//! The PostgreSQL stores live in a schema of their own (reached through
//! `search_path`), dropped when the test ends.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use backend_sqlx::SqlxStore;
use conformance::{DifferentialOptions, Harness, differential};
use server_tests::{postgres_unreachable, postgres_url};
use sqlx::{AssertSqlSafe, Connection, PgConnection};
use storage_api::{PooledStore, StoreError, StoreOptions, async_trait};
use tempfile::TempDir;

/// Sequences compared per run: the seed from `CONFORMANCE_SEED`, else fresh ones.
const RUNS: usize = 3;

/// Opens sqlx stores on PostgreSQL, each on a fresh table in one scratch schema.
struct PostgresHarness {
    base_url: String,
    schema: String,
    next: AtomicU64,
}

impl PostgresHarness {
    async fn new(base_url: String) -> Self {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let schema = format!("differential_{}_{nanos}", std::process::id());
        execute(&base_url, &format!("CREATE SCHEMA \"{schema}\"")).await;
        Self {
            base_url,
            schema,
            next: AtomicU64::new(0),
        }
    }

    async fn drop_schema(&self) {
        let sql = format!("DROP SCHEMA IF EXISTS \"{}\" CASCADE", self.schema);
        execute(&self.base_url, &sql).await;
    }
}

/// Runs one administrative statement; fails the test, saying how to start the
/// server, when the scratch database cannot be used.
async fn execute(url: &str, sql: &str) {
    let mut conn = match PgConnection::connect(url).await {
        Ok(conn) => conn,
        Err(e) => postgres_unreachable("connecting to the scratch database", e),
    };
    if let Err(e) = sqlx::query(AssertSqlSafe(sql.to_owned()))
        .execute(&mut conn)
        .await
    {
        postgres_unreachable("setting up the differential schema", e);
    }
    let _ = tokio::time::timeout(Duration::from_secs(5), conn.close()).await;
}

#[async_trait]
impl Harness for PostgresHarness {
    fn name(&self) -> String {
        "sqlx-postgres".into()
    }

    fn isolate(&self, mut options: StoreOptions) -> StoreOptions {
        let separator = if self.base_url.contains('?') {
            '&'
        } else {
            '?'
        };
        options.url = format!(
            "{}{separator}options=-c%20search_path%3D{}",
            self.base_url, self.schema
        );
        options.table = format!("kv_{}", self.next.fetch_add(1, Ordering::Relaxed));
        options
    }

    async fn open(&self, options: StoreOptions) -> Result<Arc<dyn PooledStore>, StoreError> {
        Ok(Arc::new(SqlxStore::open(options).await?))
    }
}

/// Opens sqlx stores on fresh SQLite files.
struct SqliteHarness {
    dir: TempDir,
    next: AtomicU64,
}

#[async_trait]
impl Harness for SqliteHarness {
    fn name(&self) -> String {
        "sqlx-sqlite-file".into()
    }

    fn isolate(&self, mut options: StoreOptions) -> StoreOptions {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        let path = self.dir.path().join(format!("store-{n}.db"));
        options.url = format!("sqlite://{}", path.display());
        options
    }

    async fn open(&self, options: StoreOptions) -> Result<Arc<dyn PooledStore>, StoreError> {
        Ok(Arc::new(SqlxStore::open(options).await?))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_vs_sqlite() {
    let url = postgres_url();
    let postgres = Arc::new(PostgresHarness::new(url).await);
    let sqlite = Arc::new(SqliteHarness {
        dir: tempfile::tempdir().expect("a temporary directory"),
        next: AtomicU64::new(0),
    });
    let mut outcome = Ok(());
    for run in 0..RUNS {
        let options = DifferentialOptions::from_env();
        if options.seed.is_some() && run > 0 {
            break;
        }
        let left: Arc<dyn Harness> = postgres.clone();
        match differential(left, sqlite.clone(), &options).await {
            Ok(report) => println!(
                "postgres vs sqlite: seed {} agreed on {} steps ({} failed alike)",
                report.seed, report.steps, report.errors
            ),
            Err(mismatch) => {
                outcome = Err(mismatch);
                break;
            }
        }
    }
    postgres.drop_schema().await;
    if let Err(mismatch) = outcome {
        panic!("{mismatch}");
    }
}
