//! [`SqliteHarness`]: the harness any SQLite backend runs the kit with, on a fresh file
//! per store in a temporary directory, or on `sqlite::memory:`. A backend crate gives it
//! its `open` function and calls `suite!` once per kind.

use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;
use storage_api::{PooledStore, StoreError, StoreOptions};

use crate::harness::Harness;

/// What a [`SqliteHarness`] calls to open a store: the backend's own `open`.
pub type OpenFn =
    fn(
        StoreOptions,
    ) -> Pin<Box<dyn Future<Output = Result<Arc<dyn PooledStore>, StoreError>> + Send>>;

/// Opens a SQLite backend on a fresh file per store in a private temporary directory
/// (removed with the harness), or on `sqlite::memory:`.
///
/// ```no_run
/// use std::sync::Arc;
/// use conformance::SqliteHarness;
/// # #[derive(Debug)] struct MyStore;
/// # impl MyStore { async fn open(_: storage_api::StoreOptions) -> storage_api::Result<Arc<dyn storage_api::PooledStore>> { unimplemented!() } }
///
/// fn harness_file() -> SqliteHarness {
///     SqliteHarness::file("mine", |options| Box::pin(MyStore::open(options)))
/// }
/// ```
#[derive(Debug)]
pub struct SqliteHarness {
    name: &'static str,
    open: OpenFn,
    dir: Option<TempDir>,
    next: AtomicU64,
}

/// A directory removed when dropped.
#[derive(Debug)]
struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

impl SqliteHarness {
    /// File-backed stores of backend `name`, one file per isolated location.
    ///
    /// # Panics
    ///
    /// When no temporary directory can be created (the kit cannot run at all then).
    pub fn file(name: &'static str, open: OpenFn) -> Self {
        static RUN: AtomicU64 = AtomicU64::new(0);
        let dir = std::env::temp_dir().join(format!(
            "conformance-{name}-{}-{}",
            std::process::id(),
            RUN.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| {
            panic!(
                "cannot create {} for the conformance databases: {e}",
                dir.display()
            )
        });
        Self {
            name,
            open,
            dir: Some(TempDir(dir)),
            next: AtomicU64::new(0),
        }
    }

    /// In-memory stores (`sqlite::memory:`) of backend `name`, each open a new database.
    pub fn memory(name: &'static str, open: OpenFn) -> Self {
        Self {
            name,
            open,
            dir: None,
            next: AtomicU64::new(0),
        }
    }
}

#[async_trait]
impl Harness for SqliteHarness {
    fn name(&self) -> String {
        let kind = if self.dir.is_some() { "file" } else { "memory" };
        format!("{}-sqlite-{kind}", self.name)
    }

    fn isolate(&self, mut options: StoreOptions) -> StoreOptions {
        options.url = match &self.dir {
            Some(dir) => {
                let n = self.next.fetch_add(1, Ordering::Relaxed);
                format!("sqlite://{}", dir.0.join(format!("store-{n}.db")).display())
            }
            None => "sqlite::memory:".into(),
        };
        options
    }

    async fn open(&self, options: StoreOptions) -> Result<Arc<dyn PooledStore>, StoreError> {
        (self.open)(options).await
    }
}
