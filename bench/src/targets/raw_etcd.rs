//! etcd: an `etcd-client` `Client` used directly (one client over every endpoint, its
//! requests multiplexed on the balanced gRPC channel), and pooledstore's etcd backend on
//! the same cluster. Each child works under a key prefix of its own (named after its
//! process id), preloaded through its own write path and removed at the end, its history
//! compacted away.

use std::sync::Arc;

use etcd_client::{
    Client, CompactionOptions, Compare, CompareOp, DeleteOptions, GetOptions, KvClient, Txn, TxnOp,
};
use storage_api::WriteOp;

use crate::drive::{Measured, Target, Window, drive_tasks};
use crate::ops::{MAX_CAS_ATTEMPTS, Op, OpGen, OpResult, key, modified, value};
use crate::parent::ETCD_URL_VAR;
use crate::plan::{Config, SCAN_ROWS};
use crate::rng::SplitMix64;
#[cfg(feature = "pooledstore")]
use crate::targets::pooled::{Pooled, options};

/// Keys per preload transaction (under etcd's default `--max-txn-ops` of 128).
const PRELOAD_CHUNK: u64 = 100;

/// The `host:port` endpoints of an `etcd://` URL.
fn endpoints(url: &str) -> Vec<String> {
    let rest = url.strip_prefix("etcd://").unwrap_or(url);
    let hosts = rest.rsplit_once('@').map_or(rest, |(_, hosts)| hosts);
    hosts.split(',').map(str::to_owned).collect()
}

/// Runs the measurement for `config` on the cluster named by the environment.
pub(crate) async fn measure(
    config: Config,
    keys: u64,
    generators: Vec<OpGen>,
    window: Window,
) -> Result<Measured, String> {
    let url = std::env::var(ETCD_URL_VAR).map_err(|_| format!("{ETCD_URL_VAR} is not set"))?;
    let table = format!("bench_kv_{}", std::process::id());
    let prefix = format!("{table}/").into_bytes();
    let admin = Client::connect(endpoints(&url), None)
        .await
        .map_err(|e| format!("connecting to etcd: {e}"))?;
    let measured = match config {
        Config::EtcdClient => {
            let raw = Arc::new(RawEtcd {
                kv: admin.kv_client(),
                prefix: prefix.clone(),
            });
            match raw.preload(keys).await {
                Ok(()) => Ok(drive_tasks(raw, generators, window).await),
                Err(e) => Err(format!("preloading: {e}")),
            }
        }
        #[cfg(feature = "pooledstore")]
        Config::PooledEtcd => {
            let mut opts = options(url.clone());
            opts.table = table.clone();
            let store = Arc::new(Pooled::open("etcd", opts).await?);
            let result = match store.preload(keys).await {
                Ok(()) => Ok(drive_tasks(store.clone(), generators, window).await),
                Err(e) => Err(format!("preloading: {e}")),
            };
            store.close().await;
            result
        }
        other => Err(format!("{other} is not compiled into this build")),
    };
    forget(&admin, prefix).await;
    measured
}

/// Removes a child's keys and then the cluster's history up to that removal, so every
/// child meets a cluster of the same size: without the compaction each child's keys
/// and writes stay in the members' index and database, the members slow down with
/// every child, and a configuration measured after another always meets the larger
/// cluster. The compaction is cluster-wide: the bench wants a scratch cluster.
async fn forget(admin: &Client, prefix: Vec<u8>) {
    let mut kv = admin.kv_client();
    let deleted = kv
        .delete(prefix, Some(DeleteOptions::new().with_prefix()))
        .await;
    let revision = deleted.ok().and_then(|d| d.header().map(|h| h.revision()));
    if let Some(revision) = revision {
        let _ = kv
            .compact(revision, Some(CompactionOptions::new().with_physical()))
            .await;
    }
}

/// An etcd-client `KvClient` used directly, on plain values under `prefix`.
struct RawEtcd {
    kv: KvClient,
    prefix: Vec<u8>,
}

impl std::fmt::Debug for RawEtcd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RawEtcd")
            .field("prefix", &String::from_utf8_lossy(&self.prefix))
            .finish_non_exhaustive()
    }
}

impl RawEtcd {
    fn key(&self, key: &[u8]) -> Vec<u8> {
        let mut full = self.prefix.clone();
        full.extend_from_slice(key);
        full
    }

    async fn preload(&self, keys: u64) -> Result<(), etcd_client::Error> {
        let mut rng = SplitMix64::new(0x5EED);
        let mut next = 0;
        while next < keys {
            let end = (next + PRELOAD_CHUNK).min(keys);
            let puts: Vec<TxnOp> = (next..end)
                .map(|n| TxnOp::put(self.key(&key(n)), value(&mut rng), None))
                .collect();
            self.kv.clone().txn(Txn::new().and_then(puts)).await?;
            next = end;
        }
        Ok(())
    }

    async fn run_inner(&self, op: Op) -> Result<OpResult, etcd_client::Error> {
        let mut kv = self.kv.clone();
        Ok(match op {
            Op::Get(key) => {
                let response = kv.get(self.key(&key), None).await?;
                if response.kvs().is_empty() {
                    Err("missing")
                } else {
                    Ok(0)
                }
            }
            Op::Put(key, value) => {
                kv.put(self.key(&key), value, None).await?;
                Ok(0)
            }
            Op::Batch(pairs) => {
                // One etcd transaction may write a key once: the last write wins.
                let mut last: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
                for (key, value) in pairs {
                    last.retain(|(k, _)| *k != key);
                    last.push((key, value));
                }
                let puts: Vec<TxnOp> = last
                    .into_iter()
                    .map(|(k, v)| TxnOp::put(self.key(&k), v, None))
                    .collect();
                kv.txn(Txn::new().and_then(puts)).await?;
                Ok(0)
            }
            Op::Scan(key) => {
                let mut end = self.prefix.clone();
                *end.last_mut().expect("a prefix") += 1;
                let options = GetOptions::new()
                    .with_range(end)
                    .with_limit(SCAN_ROWS as i64);
                kv.get(self.key(&key), Some(options)).await?;
                Ok(0)
            }
            Op::ReadModifyWrite(key) => {
                let full = self.key(&key);
                for attempt in 0..MAX_CAS_ATTEMPTS {
                    let response = kv.get(full.clone(), None).await?;
                    let Some(current) = response.kvs().first() else {
                        return Ok(Err("missing"));
                    };
                    let txn = Txn::new()
                        .when([Compare::mod_revision(
                            full.clone(),
                            CompareOp::Equal,
                            current.mod_revision(),
                        )])
                        .and_then([TxnOp::put(full.clone(), modified(current.value()), None)]);
                    if kv.txn(txn).await?.succeeded() {
                        return Ok(Ok(attempt));
                    }
                }
                Err("cas_exhausted")
            }
            Op::Acquire => {
                kv.get(
                    self.prefix.clone(),
                    Some(GetOptions::new().with_count_only()),
                )
                .await?;
                Ok(0)
            }
        })
    }
}

impl Target for RawEtcd {
    async fn run(&self, op: Op) -> OpResult {
        self.run_inner(op).await.unwrap_or_else(|e| {
            Err(match e {
                etcd_client::Error::GRpcStatus(s) if s.code() == tonic::Code::DeadlineExceeded => {
                    "timeout"
                }
                etcd_client::Error::GRpcStatus(_) | etcd_client::Error::TransportError(_) => {
                    "connection"
                }
                _ => "backend",
            })
        })
    }
}

#[cfg(feature = "pooledstore")]
impl Pooled {
    /// Fills the store with `keys` entries of random values, in batches.
    async fn preload(&self, keys: u64) -> Result<(), String> {
        let mut rng = SplitMix64::new(0x5EED);
        let mut next = 0;
        while next < keys {
            let end = (next + PRELOAD_CHUNK).min(keys);
            let ops: Vec<WriteOp> = (next..end)
                .map(|n| WriteOp::put(key(n), value(&mut rng)))
                .collect();
            self.store().batch(ops).await.map_err(|e| e.to_string())?;
            next = end;
        }
        Ok(())
    }
}
