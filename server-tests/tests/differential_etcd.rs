//! Differential runs between the etcd backend and the sqlx backend on SQLite: the same
//! seeded sequences of operations give the same results on both. Needs
//! `POOLEDSTORE_TEST_ETCD_URL` and fails, saying how to start a cluster, otherwise.
//!
//! The etcd stores each get a table (key prefix) of their own, removed when the test
//! ends.

use std::sync::Arc;
use std::sync::Mutex;

use backend_etcd::EtcdStore;
use backend_sqlx::SqlxStore;
use conformance::{DifferentialOptions, Harness, differential};
use server_tests::etcd::remove_tables;
use server_tests::etcd_url;
use server_tests::postgres::unique;
use storage_api::{PooledStore, StoreError, StoreOptions, async_trait};
use tempfile::TempDir;

/// Sequences compared per run: the seed from `CONFORMANCE_SEED`, else fresh ones.
const RUNS: usize = 3;

/// Opens etcd stores, each under a fresh table.
struct EtcdHarness {
    url: String,
    tables: Mutex<Vec<String>>,
}

#[async_trait]
impl Harness for EtcdHarness {
    fn name(&self) -> String {
        "etcd".into()
    }

    fn isolate(&self, mut options: StoreOptions) -> StoreOptions {
        let table = unique("diff");
        self.tables.lock().unwrap().push(table.clone());
        options.url = self.url.clone();
        options.table = table;
        options
    }

    async fn open(&self, options: StoreOptions) -> Result<Arc<dyn PooledStore>, StoreError> {
        Ok(Arc::new(EtcdStore::open(options).await?))
    }
}

impl Drop for EtcdHarness {
    fn drop(&mut self) {
        remove_tables(&self.url, &self.tables.lock().unwrap());
    }
}

/// Opens sqlx stores on fresh SQLite files.
struct SqliteHarness {
    dir: TempDir,
    next: std::sync::atomic::AtomicU64,
}

#[async_trait]
impl Harness for SqliteHarness {
    fn name(&self) -> String {
        "sqlx-sqlite-file".into()
    }

    fn isolate(&self, mut options: StoreOptions) -> StoreOptions {
        let n = self.next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let path = self.dir.path().join(format!("store-{n}.db"));
        options.url = format!("sqlite://{}", path.display());
        options
    }

    async fn open(&self, options: StoreOptions) -> Result<Arc<dyn PooledStore>, StoreError> {
        Ok(Arc::new(SqlxStore::open(options).await?))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn etcd_vs_sqlite() {
    let etcd = Arc::new(EtcdHarness {
        url: etcd_url(),
        tables: Mutex::new(Vec::new()),
    });
    let sqlite = Arc::new(SqliteHarness {
        dir: tempfile::tempdir().expect("a temporary directory"),
        next: std::sync::atomic::AtomicU64::new(0),
    });
    for run in 0..RUNS {
        let options = DifferentialOptions::from_env();
        if options.seed.is_some() && run > 0 {
            break;
        }
        let left: Arc<dyn Harness> = etcd.clone();
        match differential(left, sqlite.clone(), &options).await {
            Ok(report) => println!(
                "etcd vs sqlite: seed {} agreed on {} steps ({} failed alike)",
                report.seed, report.steps, report.errors
            ),
            Err(mismatch) => panic!("{mismatch}"),
        }
    }
}
