//! The store behind a real PgBouncer (Debian's `pgbouncer`), started by each test on a
//! spare port in front of a private server:
//! - session mode: the whole kit passes with default settings;
//! - transaction mode: the whole kit passes with `db_transaction_pooler = true` (no
//!   session settings, no server-side prepared statements, every statement in a
//!   transaction); without it, the statement clashes such a pooler causes are reported
//!   as `Config` errors that name the setting.
//!
//! PgBouncer passes no `options` startup parameter, so each store gets a table of its
//! own (`kv_<pid>_<n>`) in the private server's `public` schema instead of a schema.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use backend_sqlx::SqlxStore;
use conformance::{Harness, Outcome, RunOptions};
use server_tests::pgbouncer::PgBouncer;
use server_tests::private_pg::{PgConfig, PrivatePg};
use storage_api::{ErrorKind, PooledStore, PutOptions, StoreError, StoreOptions, async_trait};

/// Opens sqlx stores through a PgBouncer, each on a fresh table.
#[derive(Debug)]
struct BouncedHarness {
    url: String,
    transaction_pooler: bool,
}

#[async_trait]
impl Harness for BouncedHarness {
    fn name(&self) -> String {
        format!(
            "sqlx-postgres-pgbouncer-{}",
            if self.transaction_pooler {
                "transaction"
            } else {
                "session"
            }
        )
    }

    fn isolate(&self, mut options: StoreOptions) -> StoreOptions {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        options.url = self.url.clone();
        options.table = format!(
            "kv_{}_{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        options.postgres.transaction_pooler = self.transaction_pooler;
        options
    }

    async fn open(&self, options: StoreOptions) -> Result<Arc<dyn PooledStore>, StoreError> {
        Ok(Arc::new(SqlxStore::open(options).await?))
    }
}

/// Runs the whole kit through PgBouncer in `pool_mode`; fails listing failed cases.
async fn kit_through(pool_mode: &str, transaction_pooler: bool) {
    let server = PrivatePg::start(&PgConfig {
        max_connections: 100,
        ..PgConfig::default()
    });
    let bouncer = PgBouncer::start(server.port(), pool_mode, 40);
    let harness = Arc::new(BouncedHarness {
        url: bouncer.url("postgres"),
        transaction_pooler,
    });
    let mut options = RunOptions::from_env().expect("kit options");
    options.proptest_cases = options.proptest_cases.min(32);
    let report = conformance::run(harness, &options).await;
    println!("{pool_mode} mode:\n{report}");
    let failed: Vec<_> = report.failures().map(|c| c.name.clone()).collect();
    assert!(
        report.is_success(),
        "{pool_mode} mode: failed {failed:?}\n{report}\npgbouncer log:\n{}",
        bouncer.log_text()
    );
    assert!(report.count(Outcome::Passed) > 30, "{report}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_kit_passes_through_pgbouncer_in_session_mode() {
    kit_through("session", false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_kit_passes_through_pgbouncer_in_transaction_mode_with_db_transaction_pooler() {
    kit_through("transaction", true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transaction_mode_without_the_setting_is_refused_at_open_saying_why() {
    let server = PrivatePg::start(&PgConfig::default());
    let bouncer = PgBouncer::start(server.port(), "transaction", 4);
    let mut options = StoreOptions::new(bouncer.url("postgres"));
    options.table = "misconfigured_kv".into();
    options.acquire_timeout = Duration::from_secs(5);
    let opened = tokio::time::timeout(Duration::from_secs(20), SqlxStore::open(options.clone()))
        .await
        .expect("open hung");
    let e = opened.expect_err("transaction mode without db_transaction_pooler opened");
    assert_eq!(e.kind(), ErrorKind::Config, "{e}");
    assert!(e.message().contains("transaction-mode pooler"), "{e}");
    assert!(e.message().contains("db_transaction_pooler = true"), "{e}");
    // The probe leaves nothing behind on the shared server session.
    options.postgres.transaction_pooler = true;
    let store = SqlxStore::open(options)
        .await
        .expect("open with the setting");
    store.put(b"k", b"v", PutOptions::default()).await.unwrap();
    store.close().await;
    let leftover = server.psql(
        "postgres",
        "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend' \
         AND query LIKE 'SET pooledstore.session_probe%' AND state = 'idle in transaction'",
    );
    assert_eq!(leftover, "0");
    // A direct connection and a session-mode pooler are not mistaken for one.
    let session = PgBouncer::start(server.port(), "session", 4);
    for url in [server.url(), session.url("postgres")] {
        let mut options = StoreOptions::new(url.clone());
        options.table = "probe_kv".into();
        let store = SqlxStore::open(options)
            .await
            .unwrap_or_else(|e| panic!("{url}: {e}"));
        store.close().await;
    }
}
