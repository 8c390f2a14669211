//! An in-memory [`PooledStore`](storage_api::PooledStore) backend, written the way a
//! third party would write one: it depends only on `storage-api` (plus tokio and
//! async-trait) and proves itself with one `conformance::suite!` call in its tests.
//!
//! It keeps real pool semantics so the kit's pool cases mean something: a semaphore of
//! `max_connections` connections with an acquire timeout, the shared
//! [`PoolInstruments`](storage_api::backend::PoolInstruments), a
//! [`Lifecycle`](storage_api::backend::Lifecycle) for `close`, and one write lock that
//! serializes writers the way SQLite does.
//!
//! It implements storage only: argument limits, capability refusals, read-only
//! transactions and admission after `close` are the checking layer's
//! ([`Checked`](storage_api::backend::Checked)), which the kit and `pooledstore::open`
//! put in front of every store. Wrap the store yourself when you open it by hand:
//!
//! ```
//! use std::sync::Arc;
//!
//! use memory_backend::MemoryStore;
//! use storage_api::backend::Checked;
//! use storage_api::{ErrorKind, PooledStore, PutOptions, StoreOptions};
//!
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! let store = Checked::wrap(Arc::new(MemoryStore::open(StoreOptions::new("memory:example"))?));
//! assert_eq!(store.get(b"").await.unwrap_err().kind(), ErrorKind::InvalidInput);
//! let version = store.put(b"k", b"v", PutOptions::default()).await?;
//! assert_eq!(store.get(b"k").await?.map(|e| e.version), Some(version));
//! store.close().await;
//! # Ok::<(), storage_api::StoreError>(())
//! # }).unwrap();
//! ```

mod data;
mod pool;
mod settings;
mod store;
mod transaction;

pub use settings::SCHEME;
pub use store::MemoryStore;
