//! pooledstore through one of its backends, opened with `pooledstore::open_with`.

use std::path::Path;

use pooledstore::{
    ErrorKind, KeyRange, PutOptions, ScanOptions, Store, StoreError, StoreOptions, Synchronous,
    WriteOp,
};

use crate::drive::Target;
use crate::ops::{MAX_CAS_ATTEMPTS, Op, OpResult, modified};
use crate::plan::{Config, SCAN_ROWS, pool_size};
use crate::sql::TABLE;
use crate::targets::{ACQUIRE_TIMEOUT, BUSY_TIMEOUT};

/// An open pooledstore.
#[derive(Debug)]
pub(crate) struct Pooled {
    store: Store,
}

/// The options every pooledstore configuration opens with: the bench's pool size,
/// timeouts and SQLite settings, otherwise pooledstore's defaults.
pub(crate) fn options(url: String) -> StoreOptions {
    let mut options = StoreOptions::new(url);
    options.max_connections = pool_size();
    options.acquire_timeout = ACQUIRE_TIMEOUT;
    options.busy_timeout = BUSY_TIMEOUT;
    options.sqlite.enable_wal = true;
    options.sqlite.synchronous = Synchronous::Normal;
    options.table = TABLE.into();
    options
}

fn kind(e: StoreError) -> &'static str {
    e.kind().as_str()
}

impl Pooled {
    /// Opens backend `backend` ("sqlx" or "deadpool") on the SQLite file at `path`.
    pub(crate) async fn open_sqlite(backend: &str, path: &Path) -> Result<Self, String> {
        let url = format!("sqlite://{}", path.display());
        Self::open(backend, options(url)).await
    }

    /// Opens the SQLite configuration `config` (`pooledstore-sqlx` or
    /// `pooledstore-deadpool`) on the file at `path`.
    pub(crate) async fn open_sqlite_config(config: Config, path: &Path) -> Result<Self, String> {
        let backend = if config == Config::PooledSqlx {
            "sqlx"
        } else {
            "deadpool"
        };
        Self::open_sqlite(backend, path).await
    }

    /// Opens backend `backend` with `options`.
    pub(crate) async fn open(backend: &str, options: StoreOptions) -> Result<Self, String> {
        let store = pooledstore::open_with(backend, options)
            .await
            .map_err(|e| format!("opening pooledstore ({backend}): {e}"))?;
        Ok(Self { store })
    }

    /// The store.
    #[cfg_attr(not(feature = "etcd"), allow(dead_code))]
    pub(crate) fn store(&self) -> &Store {
        &self.store
    }

    /// Closes the store.
    pub(crate) async fn close(&self) {
        self.store.close().await;
    }

    async fn read_modify_write(&self, key: &[u8]) -> OpResult {
        for attempt in 0..MAX_CAS_ATTEMPTS {
            let entry = self.store.get(key).await.map_err(kind)?.ok_or("missing")?;
            let options = PutOptions::if_version(entry.version);
            match self.store.put(key, &modified(&entry.value), options).await {
                Ok(_) => return Ok(attempt),
                Err(e) if e.kind() == ErrorKind::ConditionFailed => {}
                Err(e) => return Err(kind(e)),
            }
        }
        Err("cas_exhausted")
    }
}

impl Target for Pooled {
    async fn run(&self, op: Op) -> OpResult {
        match op {
            Op::Get(key) => match self.store.get(&key).await {
                Ok(Some(_)) => Ok(0),
                Ok(None) => Err("missing"),
                Err(e) => Err(kind(e)),
            },
            Op::Put(key, value) => {
                let options = PutOptions::default();
                self.store.put(&key, &value, options).await.map_err(kind)?;
                Ok(0)
            }
            Op::Batch(pairs) => {
                let ops = pairs.into_iter().map(|(k, v)| WriteOp::put(k, v)).collect();
                self.store.batch(ops).await.map_err(kind)?;
                Ok(0)
            }
            Op::Scan(start) => {
                let range = KeyRange {
                    start: Some(start),
                    end: None,
                };
                let scan = ScanOptions::range(range).with_limit(SCAN_ROWS);
                self.store.scan(scan).await.map_err(kind)?;
                Ok(0)
            }
            Op::ReadModifyWrite(key) => self.read_modify_write(&key).await,
            Op::Acquire => {
                if self.store.health_check().await.healthy {
                    Ok(0)
                } else {
                    Err("unhealthy")
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dataset::build_template;
    use crate::ops::key;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn both_backends_read_the_preloaded_file_and_run_every_operation() {
        for backend in ["sqlx", "deadpool"] {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("t.db");
            build_template(&path, 200, 1).unwrap();
            let store = Pooled::open_sqlite(backend, &path).await.unwrap();
            assert_eq!(store.run(Op::Get(key(3))).await, Ok(0), "{backend}");
            assert_eq!(store.run(Op::Get(key(200))).await, Err("missing"));
            assert_eq!(store.run(Op::Put(key(3), vec![0; 64])).await, Ok(0));
            assert_eq!(store.run(Op::ReadModifyWrite(key(3))).await, Ok(0));
            let entry = store.store.get(&key(3)).await.unwrap().unwrap();
            assert_eq!(&entry.value[..8], &1u64.to_le_bytes());
            // The preload's version counter carries on: 200 rows, then two writes.
            assert_eq!(entry.version.get(), 202, "{backend}");
            let pairs = vec![(key(1), vec![1; 64]), (key(2), vec![2; 64])];
            assert_eq!(store.run(Op::Batch(pairs)).await, Ok(0));
            let scanned = store
                .store
                .scan(
                    ScanOptions::range(KeyRange::all())
                        .with_after(key(149))
                        .with_limit(100),
                )
                .await
                .unwrap();
            assert_eq!(scanned.len(), 50);
            assert_eq!(store.run(Op::Scan(key(0))).await, Ok(0));
            assert_eq!(store.run(Op::Acquire).await, Ok(0));
            store.close().await;
            assert_eq!(store.run(Op::Acquire).await, Err("unhealthy"));
        }
    }
}
