//! Harnesses the kit's own tests run: the in-memory example backend, and the two
//! in-tree SQLite backends on a temporary file or in memory.

#![allow(dead_code)]

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use backend_deadpool::DeadpoolStore;
use backend_sqlx::SqlxStore;
use conformance::{Faults, Harness, SqliteHarness};
use memory_backend::MemoryStore;
use storage_api::{PooledStore, StoreError, StoreOptions, async_trait};

/// Opens `MemoryStore`s under fresh `memory:` names; can break their idle connections.
#[derive(Default)]
pub(crate) struct MemoryHarness {
    next: AtomicU64,
    opened: Mutex<HashMap<String, MemoryStore>>,
}

#[async_trait]
impl Harness for MemoryHarness {
    fn name(&self) -> String {
        "memory".into()
    }

    fn isolate(&self, mut options: StoreOptions) -> StoreOptions {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        options.url = format!("{}store-{n}", memory_backend::SCHEME);
        options
    }

    async fn open(&self, options: StoreOptions) -> Result<Arc<dyn PooledStore>, StoreError> {
        let url = options.url.clone();
        let store = MemoryStore::open(options)?;
        self.opened
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(url, store.clone());
        Ok(Arc::new(store))
    }

    fn faults(&self) -> Option<&dyn Faults> {
        Some(self)
    }
}

#[async_trait]
impl Faults for MemoryHarness {
    async fn break_idle_connections(&self, options: &StoreOptions) -> Result<u32, StoreError> {
        let opened = self.opened.lock().unwrap_or_else(|p| p.into_inner());
        let store = opened
            .get(&options.url)
            .ok_or_else(|| StoreError::config("no store was opened with these options"))?;
        Ok(store.break_idle_connections())
    }
}

/// Which in-tree SQLite backend a [`SqliteHarness`] opens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Backend {
    Sqlx,
    Deadpool,
}

impl Backend {
    /// Opens `options` with this backend.
    pub(crate) async fn open(
        self,
        options: StoreOptions,
    ) -> Result<Arc<dyn PooledStore>, StoreError> {
        Ok(match self {
            Self::Sqlx => Arc::new(SqlxStore::open(options).await?),
            Self::Deadpool => Arc::new(DeadpoolStore::open(options).await?),
        })
    }

    fn name(self) -> &'static str {
        match self {
            Self::Sqlx => "sqlx",
            Self::Deadpool => "deadpool",
        }
    }

    /// The kit's SQLite harness for this backend on a fresh file per store.
    pub(crate) fn file(self) -> SqliteHarness {
        SqliteHarness::file(self.name(), self.opener())
    }

    /// The kit's SQLite harness for this backend on `sqlite::memory:`.
    pub(crate) fn memory(self) -> SqliteHarness {
        SqliteHarness::memory(self.name(), self.opener())
    }

    fn opener(self) -> conformance::OpenFn {
        match self {
            Self::Sqlx => |o| Box::pin(Backend::Sqlx.open(o)),
            Self::Deadpool => |o| Box::pin(Backend::Deadpool.open(o)),
        }
    }
}
