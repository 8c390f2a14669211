//! The whole conformance kit against `MemoryStore`, with one macro call.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use conformance::{Faults, Harness};
use memory_backend::MemoryStore;
use storage_api::{PooledStore, StoreError, StoreOptions, async_trait};

/// Opens `MemoryStore`s under fresh `memory:` names and keeps a handle to each so it
/// can break their connections on request.
#[derive(Default)]
struct MemoryHarness {
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

conformance::suite!(MemoryHarness::default());
