//! Differential runs between the sqlx backend on MySQL/MariaDB and on SQLite: the same
//! seeded sequences of operations give the same results on both. Needs
//! `POOLEDSTORE_TEST_MYSQL_URL` and fails, saying how to set it, otherwise.
//!
//! The MySQL stores live in one scratch database of their own, dropped when the test
//! ends.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use backend_sqlx::SqlxStore;
use conformance::{DifferentialOptions, Harness, differential};
use server_tests::mysql::ScratchDatabase;
use storage_api::{PooledStore, StoreError, StoreOptions, async_trait};
use tempfile::TempDir;

/// Sequences compared per run: the seed from `CONFORMANCE_SEED`, else fresh ones.
const RUNS: usize = 3;

/// Opens sqlx stores on MySQL, each on a fresh table in one scratch database.
struct MysqlHarness {
    database: ScratchDatabase,
    next: AtomicU64,
}

#[async_trait]
impl Harness for MysqlHarness {
    fn name(&self) -> String {
        "sqlx-mysql".into()
    }

    fn isolate(&self, mut options: StoreOptions) -> StoreOptions {
        options.url = self.database.url();
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
async fn mysql_vs_sqlite() {
    let mysql = Arc::new(MysqlHarness {
        database: ScratchDatabase::new("differential").await,
        next: AtomicU64::new(0),
    });
    let sqlite = Arc::new(SqliteHarness {
        dir: tempfile::tempdir().expect("a temporary directory"),
        next: AtomicU64::new(0),
    });
    for run in 0..RUNS {
        let options = DifferentialOptions::from_env();
        if options.seed.is_some() && run > 0 {
            break;
        }
        let left: Arc<dyn Harness> = mysql.clone();
        match differential(left, sqlite.clone(), &options).await {
            Ok(report) => println!(
                "mysql vs sqlite: seed {} agreed on {} steps ({} failed alike)",
                report.seed, report.steps, report.errors
            ),
            Err(mismatch) => panic!("{mismatch}"),
        }
    }
}
