//! The [`Harness`] a backend author implements so the kit can open stores, and the
//! optional [`Faults`] it can inject.

use std::sync::Arc;

use async_trait::async_trait;
use storage_api::backend::Checked;
use storage_api::{PooledStore, StoreError, StoreOptions};

/// Opens stores of one backend for the kit.
///
/// The kit builds every store's [`StoreOptions`] itself (pool size, acquire timeout,
/// close grace, value and scan limits, a [`ManualClock`](storage_api::ManualClock)),
/// asks [`isolate`](Harness::isolate) to point them at a location no other store
/// uses, and passes the result to [`open`](Harness::open). Persistence cases close a
/// store and call `open` again with the very same options, so `open` must open what is
/// at that location rather than clear it.
#[async_trait]
pub trait Harness: Send + Sync + 'static {
    /// A short name for reports and regression file names (`"memory"`, `"sqlx-file"`).
    fn name(&self) -> String;

    /// Returns `options` pointed at a fresh, empty, isolated location: set `url` (a new
    /// temporary file, a `memory:` name…) and, where a server is shared, `table`.
    /// Leave every other field as the kit set it.
    fn isolate(&self, options: StoreOptions) -> StoreOptions;

    /// Opens a store with exactly `options`.
    async fn open(&self, options: StoreOptions) -> Result<Arc<dyn PooledStore>, StoreError>;

    /// Faults this backend can really suffer and the harness can cause. `None` (the
    /// default) reports the fault cases as skipped.
    fn faults(&self) -> Option<&dyn Faults> {
        None
    }
}

/// Faults a harness can inject into a store it opened.
#[async_trait]
pub trait Faults: Send + Sync {
    /// Breaks every idle connection of the store opened with `options`, as a database
    /// server terminating its sessions would, and returns how many it broke.
    async fn break_idle_connections(&self, options: &StoreOptions) -> Result<u32, StoreError>;
}

/// Opens a store through `harness` behind the checking layer, as `pooledstore::open`
/// does: the kit tests what applications get, and a backend implements storage only.
pub(crate) async fn open_checked(
    harness: &dyn Harness,
    options: StoreOptions,
) -> Result<Arc<dyn PooledStore>, StoreError> {
    Ok(Checked::wrap(harness.open(options).await?))
}
