//! Helpers the ops tests share: opening real stores of both SQLite backends on a file.
#![allow(dead_code)]

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use storage_api::{PooledStore, PutOptions, Result, StoreOptions};

/// The SQLite backends under test.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Backend {
    Sqlx,
    Deadpool,
}

pub(crate) const BACKENDS: [Backend; 2] = [Backend::Sqlx, Backend::Deadpool];

/// Options for a store on the file at `path`, with short timeouts for tests.
pub(crate) fn options(path: &Path) -> StoreOptions {
    let mut options = StoreOptions::new(format!("sqlite://{}", path.display()));
    options.max_connections = 4;
    options.acquire_timeout = Duration::from_secs(10);
    options.busy_timeout = Duration::from_secs(5);
    options.close_grace = Duration::from_secs(5);
    options
}

/// Opens `backend` with `options`.
pub(crate) async fn open_with(
    backend: Backend,
    options: StoreOptions,
) -> Result<Arc<dyn PooledStore>> {
    let store: Arc<dyn PooledStore> = match backend {
        Backend::Sqlx => Arc::new(backend_sqlx::SqlxStore::open(options).await?),
        Backend::Deadpool => Arc::new(backend_deadpool::DeadpoolStore::open(options).await?),
    };
    Ok(storage_api::backend::Checked::wrap(store))
}

/// Opens `backend` on the file at `path`.
pub(crate) async fn open(backend: Backend, path: &Path) -> Result<Arc<dyn PooledStore>> {
    open_with(backend, options(path)).await
}

/// The key of entry `i` written by [`fill`].
pub(crate) fn key(prefix: &str, i: usize) -> Vec<u8> {
    format!("{prefix}{i:06}").into_bytes()
}

/// The value of entry `i` written by [`fill`]: some binary bytes.
pub(crate) fn value(i: usize) -> Vec<u8> {
    let mut v = vec![0u8, 0xFF, (i % 251) as u8];
    v.extend_from_slice(i.to_string().as_bytes());
    v
}

/// Writes entries `0..n` under `prefix`, in batches.
pub(crate) async fn fill(store: &dyn PooledStore, prefix: &str, n: usize) {
    let ids: Vec<usize> = (0..n).collect();
    for chunk in ids.chunks(200) {
        let ops = chunk
            .iter()
            .map(|&i| storage_api::WriteOp::put(key(prefix, i), value(i)))
            .collect();
        store.batch(ops).await.expect("fill");
    }
}

/// Checks that entries `0..n` under `prefix` hold their values.
pub(crate) async fn assert_filled(store: &dyn PooledStore, prefix: &str, n: usize) {
    for i in 0..n {
        let entry = store
            .get(&key(prefix, i))
            .await
            .expect("get")
            .unwrap_or_else(|| panic!("entry {prefix}{i} missing"));
        assert_eq!(entry.value, value(i), "entry {prefix}{i}");
    }
}

/// Writes one entry.
pub(crate) async fn put(store: &dyn PooledStore, key: &[u8], value: &[u8]) {
    store
        .put(key, value, PutOptions::default())
        .await
        .expect("put");
}

/// Asserts that `backend` does `right` in `case` (an error kind, a file mode…).
pub(crate) fn expect(backend: &str, case: &str, found: &str, right: &str, detail: &str) {
    assert_eq!(found, right, "{backend}: {case}: {detail}");
}
