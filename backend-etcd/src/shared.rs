//! What the store, its operations and its transactions share, and the reads and
//! write pieces they all use.

use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use etcd_client::{GetOptions, KeyValue, PutOptions, TxnOp};
use storage_api::backend::to_unix_millis;
use storage_api::{Clock, Limits, Result, Version};

use crate::layout::{Envelope, Layout, Stored, TOMBSTONE, decode};
use crate::leases::Leases;
use crate::locks::Locks;
use crate::pool::{Lease, Pool};
use crate::seen::Seen;
use crate::timing::{LEASE_SLACK, RETENTION};

/// The state of one store.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) pool: Arc<Pool>,
    pub(crate) layout: Layout,
    pub(crate) limits: Limits,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) leases: Leases,
    pub(crate) locks: Locks,
    pub(crate) busy_timeout: Duration,
    pub(crate) leak_detection_threshold: Option<Duration>,
    /// The server's `--max-txn-ops`, found at open.
    pub(crate) max_txn_ops: usize,
    /// Numbers transactions, for the write locks.
    pub(crate) next_transaction: AtomicU64,
    /// What `get` last found under recently read keys, for the conditional writes
    /// that follow.
    pub(crate) seen: Seen,
}

/// What a key holds now, as conditions see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Current {
    /// The live version; `None` when absent, deleted or expired.
    pub(crate) live: Option<Version>,
    /// The etcd `mod_revision` of whatever is stored (0 when nothing is).
    pub(crate) mod_revision: i64,
    /// Whether something other than a tombstone is stored (an expired entry counts).
    pub(crate) stored: bool,
}

impl Current {
    /// Nothing stored.
    pub(crate) const MISSING: Self = Self {
        live: None,
        mod_revision: 0,
        stored: false,
    };
}

impl Shared {
    /// The store clock's time in Unix milliseconds.
    pub(crate) fn now_ms(&self) -> i64 {
        to_unix_millis(self.clock.now())
    }

    /// What `kv` (or its absence) means at `now_ms`.
    pub(crate) fn current(kv: Option<&KeyValue>, now_ms: i64) -> Result<Current> {
        let Some(kv) = kv else {
            return Ok(Current::MISSING);
        };
        let (live, stored) = match decode(kv.value())? {
            Stored::Tombstone => (None, false),
            Stored::Value(envelope) => {
                let live = if envelope.is_live(now_ms) {
                    Some(envelope.version(kv.mod_revision())?)
                } else {
                    None
                };
                (live, true)
            }
        };
        Ok(Current {
            live,
            mod_revision: kv.mod_revision(),
            stored,
        })
    }

    /// Reads the etcd key `etcd_key` (at `revision`, or the latest when 0), returning it
    /// with the revision the read saw.
    pub(crate) async fn read(
        &self,
        lease: &mut Lease,
        etcd_key: &[u8],
        revision: i64,
    ) -> Result<(Option<KeyValue>, i64)> {
        let mut response = lease
            .request("get", true, |channel| {
                let mut kv = channel.kv();
                let key = etcd_key.to_vec();
                async move {
                    kv.get(key, Some(GetOptions::new().with_revision(revision)))
                        .await
                }
            })
            .await?;
        let seen = response.header().map_or(0, |h| h.revision());
        Ok((response.take_kvs().into_iter().next(), seen))
    }

    /// The put of a value with its envelope, with a lease when it expires.
    pub(crate) async fn value_op(
        &self,
        lease: &mut Lease,
        etcd_key: Vec<u8>,
        envelope: &Envelope,
    ) -> Result<TxnOp> {
        let options = self.value_put_options(lease, envelope.expires_ms).await?;
        Ok(TxnOp::put(etcd_key, envelope.encode(), Some(options)))
    }

    /// Put options for a value expiring at `expires_ms`: a lease that outlives the expiry
    /// by [`LEASE_SLACK`].
    pub(crate) async fn value_put_options(
        &self,
        lease: &mut Lease,
        expires_ms: Option<i64>,
    ) -> Result<PutOptions> {
        let Some(expires_ms) = expires_ms else {
            return Ok(PutOptions::new());
        };
        let left = u64::try_from(expires_ms.saturating_sub(self.now_ms())).unwrap_or(0);
        let min_life = Duration::from_millis(left).saturating_add(LEASE_SLACK);
        Ok(match self.leases.lasting(lease, min_life).await? {
            Some(id) => PutOptions::new().with_lease(id),
            None => PutOptions::new(),
        })
    }

    /// The put of a tombstone, with a lease that removes it after [`RETENTION`].
    pub(crate) async fn tombstone_op(&self, lease: &mut Lease, etcd_key: Vec<u8>) -> Result<TxnOp> {
        let options = self.tombstone_put_options(lease).await?;
        Ok(TxnOp::put(etcd_key, TOMBSTONE, Some(options)))
    }

    /// Put options for a tombstone.
    pub(crate) async fn tombstone_put_options(&self, lease: &mut Lease) -> Result<PutOptions> {
        Ok(match self.leases.lasting(lease, RETENTION).await? {
            Some(id) => PutOptions::new().with_lease(id),
            None => PutOptions::new(),
        })
    }

    /// Waits until no transaction of this store holds any of `keys`; `Busy` (counted)
    /// after `db_busy_timeout_ms`.
    pub(crate) async fn wait_unlocked(&self, keys: &[&[u8]]) -> Result<()> {
        let waited = self.locks.wait_free(keys, self.busy_timeout).await;
        if waited.is_err() {
            self.pool.instruments().record_busy();
        }
        waited
    }
}
