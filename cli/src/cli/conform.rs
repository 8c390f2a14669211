//! `conform`: runs the conformance kit against the configured backend and settings,
//! on scratch databases beside the configured one, never on the user's data: SQLite
//! files in a private directory beside the configured file, or, for a PostgreSQL url,
//! tables in a scratch schema of the configured database (created for the run and
//! dropped after it; the role needs `CREATE` on the database), or, for an etcd url,
//! tables (key prefixes) of their own on the configured cluster, removed after the run.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use clap::Args;
use conformance::{Harness, RunOptions};
use pooledstore::{Engine, PooledStore, StorageConfig, StoreError, StoreOptions};
use sqlite_common::SqliteLocation;
use storage_api::async_trait;

/// Arguments of `conform`.
#[derive(Debug, Args)]
pub(super) struct ConformArgs {
    /// Print the report as JSON instead of a table.
    #[arg(long)]
    pub(super) json: bool,
    /// Run only cases whose name contains one of these (comma-separated).
    #[arg(long, value_delimiter = ',')]
    filter: Vec<String>,
    /// Fix the seed of every random choice (printed in the report).
    #[arg(long)]
    seed: Option<u64>,
    /// Generated cases per property test.
    #[arg(long, value_name = "N")]
    cases: Option<u32>,
}

/// Runs the kit; exit 1 when any case failed.
pub(super) async fn conform(
    storage: &StorageConfig,
    args: ConformArgs,
) -> Result<ExitCode, StoreError> {
    let mut options = RunOptions::from_env()?;
    if !args.filter.is_empty() {
        options = options.with_filter(args.filter);
    }
    check_filter(&options.filter, &conformance::case_names())?;
    let harness = Arc::new(ConfiguredHarness::new(storage).await?);
    if let Some(seed) = args.seed {
        options = options.with_seed(seed);
    }
    if let Some(cases) = args.cases {
        options.proptest_cases = cases;
    }
    let report = conformance::run(Arc::clone(&harness) as Arc<dyn Harness>, &options).await;
    harness.remove_scratch().await;
    if args.json {
        println!("{}", report.to_json());
    } else {
        println!("{report}");
    }
    Ok(if report.is_success() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(super::EXIT_NEGATIVE)
    })
}

/// Fails (exit 2) when a filter matches no case, naming it and the closest case, and
/// listing them all: a typo must not pass as a run of zero cases.
fn check_filter(filter: &[String], cases: &[&str]) -> Result<(), StoreError> {
    let Some(unmatched) = filter
        .iter()
        .find(|f| !cases.iter().any(|case| case.contains(f.as_str())))
    else {
        return Ok(());
    };
    let closest = cases
        .iter()
        .min_by_key(|case| edit_distance(unmatched, case))
        .copied()
        .unwrap_or_default();
    Err(StoreError::invalid_input(format!(
        "--filter {unmatched:?} matches no case; did you mean {closest:?}? Cases: {}",
        cases.join(", ")
    )))
}

/// Levenshtein distance between `a` and `b`, by characters.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut current = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let substitute = previous[j] + usize::from(ca != *cb);
            current.push(substitute.min(previous[j + 1] + 1).min(current[j] + 1));
        }
        previous = current;
    }
    previous[b.len()]
}

/// Opens the configured backend with the configured settings, each store on a new
/// scratch database: a file in a private directory beside the configured database, a
/// private in-memory database, a new table in a scratch schema on the configured
/// PostgreSQL server (a scratch database on MySQL), or a new key prefix on etcd.
#[derive(Debug)]
struct ConfiguredHarness {
    config: StorageConfig,
    scratch: Scratch,
    next: AtomicU64,
}

/// Where the run's stores live.
#[derive(Debug)]
enum Scratch {
    /// Private in-memory SQLite databases.
    Memory,
    /// SQLite files in this directory.
    Directory(PathBuf),
    /// Tables in this schema (a database on MySQL).
    #[cfg(any(feature = "postgres", feature = "mysql"))]
    Schema(Box<pooledstore::ScratchSchema>),
    /// Tables (key prefixes) named after this one on the etcd cluster.
    #[cfg(feature = "etcd")]
    Prefixes(String),
}

impl Scratch {
    /// A scratch schema (a database on MySQL) on the configured server.
    #[cfg(any(feature = "postgres", feature = "mysql"))]
    async fn schema(config: &StorageConfig) -> Result<Self, StoreError> {
        let options = config.to_options()?;
        let schema = pooledstore::ScratchSchema::create(&options, "pooledstore_conform").await?;
        Ok(Self::Schema(Box::new(schema)))
    }
}

impl ConfiguredHarness {
    async fn new(config: &StorageConfig) -> Result<Self, StoreError> {
        let scratch = match Engine::of_url(&config.url)? {
            Engine::Sqlite => match SqliteLocation::parse(&config.url)? {
                SqliteLocation::Memory => Scratch::Memory,
                SqliteLocation::File(path) => {
                    let parent = path.parent().filter(|p| !p.as_os_str().is_empty());
                    let dir = parent
                        .map(PathBuf::from)
                        .unwrap_or_else(|| PathBuf::from("."))
                        .join(format!(".pooledstore-conform-{}", std::process::id()));
                    super::create_dir(&dir)?;
                    Scratch::Directory(dir)
                }
            },
            #[cfg(feature = "postgres")]
            Engine::Postgres => Scratch::schema(config).await?,
            #[cfg(feature = "mysql")]
            Engine::Mysql => Scratch::schema(config).await?,
            #[cfg(feature = "etcd")]
            Engine::Etcd => Scratch::Prefixes(format!("conform_{}", std::process::id())),
            #[cfg(not(feature = "postgres"))]
            engine @ Engine::Postgres => return Err(engine.not_compiled(&config.url)),
            #[cfg(not(feature = "mysql"))]
            engine @ Engine::Mysql => return Err(engine.not_compiled(&config.url)),
            #[cfg(not(feature = "etcd"))]
            engine @ Engine::Etcd => return Err(engine.not_compiled(&config.url)),
        };
        Ok(Self {
            config: config.clone(),
            scratch,
            next: AtomicU64::new(0),
        })
    }

    async fn remove_scratch(&self) {
        match &self.scratch {
            Scratch::Memory => {}
            Scratch::Directory(dir) => {
                if let Err(e) = std::fs::remove_dir_all(dir) {
                    tracing::warn!(dir = %dir.display(), error = %e, "cannot remove the scratch directory");
                }
            }
            #[cfg(feature = "etcd")]
            Scratch::Prefixes(base) => {
                let opened = self.next.load(Ordering::Relaxed);
                for n in 0..opened {
                    let mut options = self
                        .config
                        .to_options()
                        .unwrap_or_else(|_| StoreOptions::new(self.config.url.clone()));
                    options.table = format!("{base}_{n}");
                    let removed = match pooledstore::EtcdStore::open(options).await {
                        Ok(store) => {
                            let removed = store.remove_table().await;
                            store.close().await;
                            removed
                        }
                        Err(e) => Err(e),
                    };
                    if let Err(e) = removed {
                        tracing::warn!(table = %format!("{base}_{n}"), error = %e, "cannot remove a scratch table");
                    }
                }
            }
            #[cfg(any(feature = "postgres", feature = "mysql"))]
            Scratch::Schema(schema) => {
                if let Err(e) = (**schema).clone().remove().await {
                    tracing::warn!(schema = schema.name(), error = %e, "cannot drop the scratch schema");
                }
            }
        }
    }
}

#[async_trait]
impl Harness for ConfiguredHarness {
    fn name(&self) -> String {
        format!("configured-{}", self.config.backend)
    }

    fn isolate(&self, mut options: StoreOptions) -> StoreOptions {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        options.url = match &self.scratch {
            Scratch::Directory(dir) => {
                format!("sqlite://{}", dir.join(format!("case-{n}.db")).display())
            }
            Scratch::Memory => "sqlite::memory:".into(),
            #[cfg(any(feature = "postgres", feature = "mysql"))]
            Scratch::Schema(schema) => {
                // A fresh table per store, beside the others in the scratch schema; the
                // kit's own busy timeout is kept (it bounds the server's lock waits).
                options.url = schema
                    .options(StoreOptions::new(self.config.url.clone()))
                    .url;
                options.table = format!("kv_{n}");
                options.tls = self.config.tls_settings().unwrap_or_default();
                options.postgres.transaction_pooler = self.config.db_transaction_pooler;
                return options;
            }
            #[cfg(feature = "etcd")]
            Scratch::Prefixes(base) => {
                options.url = self.config.url.clone();
                options.table = format!("{base}_{n}");
                options.tls = self.config.tls_settings().unwrap_or_default();
                return options;
            }
        };
        options.table = self.config.table.clone();
        options.sqlite.enable_wal = self.config.db_enable_wal;
        options.busy_timeout = std::time::Duration::from_millis(self.config.db_busy_timeout_ms);
        options.sqlite.synchronous = self.config.db_synchronous;
        options
    }

    async fn open(&self, options: StoreOptions) -> Result<Arc<dyn PooledStore>, StoreError> {
        pooledstore::open_with(&self.config.backend, options).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_filter_matching_no_case_names_the_closest() {
        let cases = ["get_absent", "scan_order", "tx_isolation"];
        check_filter(&[], &cases).unwrap();
        check_filter(&["scan".into(), "tx_".into()], &cases).unwrap();
        let e = check_filter(&["scan".into(), "scan_ordr".into()], &cases).unwrap_err();
        assert!(e.message().contains("\"scan_ordr\""), "{e}");
        assert!(e.message().contains("did you mean \"scan_order\""), "{e}");
        assert!(
            e.message().contains("get_absent, scan_order, tx_isolation"),
            "{e}"
        );
        assert_eq!(edit_distance("kitten", "sitting"), 3);
    }
}
