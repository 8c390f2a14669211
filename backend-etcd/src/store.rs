//! `EtcdStore`: opening a store on a cluster, and the [`PooledStore`] implementation.

use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use etcd_client::{Compare, CompareOp, Txn};
use storage_api::{
    Capabilities, CloseReport, Condition, ConnectionValidation, Entry, ErrorKind, PoolHealth,
    PoolMetrics, PooledStore, PutOptions, Result, ScanOptions, StoreOptions, Transaction,
    TxOptions, Version, WriteOp, WriteResult, async_trait,
};

use crate::health::{Probes, check, follow_leader};
use crate::layout::TX_SEQUENCE_BASE;
use crate::leases::Leases;
use crate::locks::Locks;
use crate::pool::{Lease, Pool};
use crate::rounds::Rounds;
use crate::seen::Seen;
use crate::settings::Settings;
use crate::shared::Shared;
use crate::timing::PROBE_TIMEOUT;
use crate::tx::EtcdTransaction;
use crate::{batch, ops, scan};

/// A store on an etcd cluster: `table` is its key prefix, so many stores share one
/// cluster without seeing each other's keys.
///
/// Cloning is cheap and shares the store.
#[derive(Debug, Clone)]
pub struct EtcdStore {
    shared: Arc<Shared>,
    probes: Arc<Probes>,
    /// Concurrent health checks share their rounds of requests.
    health: Arc<Rounds<PoolHealth>>,
}

impl EtcdStore {
    /// Opens a store on the cluster `options.url` names
    /// (`etcd://[user:password@]host1:2379,host2:2379,…`): checks the settings, finds the
    /// member that leads (where channels go), reaches a member (authenticating when the
    /// URL names a user) and learns the server's operations-per-transaction limit.
    ///
    /// Errors: `Config` for settings the backend cannot honour or credentials the
    /// cluster refuses; `Connection` when no member answers within the acquire timeout.
    pub async fn open(options: StoreOptions) -> Result<Self> {
        let settings = Settings::from_options(&options)?;
        let pool = Pool::new(
            settings.pool,
            settings.endpoints.clone(),
            settings.channel.clone(),
        );
        // The first channels, the probe's below included, open to the leader: they wait
        // (up to a probe's timeout, or the acquire timeout if shorter) for the first
        // sweep to find it.
        let probes = Arc::new(Probes::default());
        tokio::spawn(follow_leader(
            Arc::downgrade(&pool),
            Arc::downgrade(&probes),
        ));
        let wait = PROBE_TIMEOUT.min(settings.pool.acquire_timeout);
        pool.leader().first_word(wait).await;
        let max_txn_ops = match probe(&pool, settings.layout.prefix()).await {
            Ok(max) => max,
            Err(e) => {
                pool.close().await;
                return Err(e);
            }
        };
        let shared = Shared {
            pool,
            layout: settings.layout,
            limits: settings.limits,
            clock: settings.clock,
            leases: Leases::default(),
            locks: Locks::default(),
            busy_timeout: settings.busy_timeout,
            leak_detection_threshold: settings.leak_detection_threshold,
            max_txn_ops,
            next_transaction: AtomicU64::new(1),
            seen: Seen::default(),
        };
        Ok(Self {
            shared: Arc::new(shared),
            probes,
            health: Arc::default(),
        })
    }

    /// The key prefix of this store's entries (`table/`).
    pub fn key_prefix(&self) -> &[u8] {
        self.shared.layout.prefix()
    }

    /// Removes every key under the table's prefix at once (entries, tombstones, expired
    /// entries), returning how many: for scratch tables. Transactions of this table that
    /// are still open may then give versions lower than ones handed out before.
    pub async fn remove_table(&self) -> Result<u64> {
        let mut lease = self.shared.pool.acquire().await?;
        let (start, end) = (self.key_prefix().to_vec(), self.shared.layout.table_end());
        let response = lease
            .request("removing the table", false, |channel| {
                let mut kv = channel.kv();
                let (start, end) = (start.clone(), end.clone());
                async move {
                    kv.delete(
                        start,
                        Some(etcd_client::DeleteOptions::new().with_range(end)),
                    )
                    .await
                }
            })
            .await?;
        Ok(u64::try_from(response.deleted()).unwrap_or(0))
    }
}

/// Finds the server's `--max-txn-ops` by sending read-only transactions of growing
/// numbers of compares (two round trips at the default of 128).
async fn probe(pool: &Arc<Pool>, anchor: &[u8]) -> Result<usize> {
    let mut lease = pool.acquire().await?;
    let limit = usize::from(TX_SEQUENCE_BASE - 1);
    if accepts(&mut lease, anchor, 128).await? {
        if !accepts(&mut lease, anchor, 129).await? {
            return Ok(128);
        }
        let (mut low, mut high) = (129, 256);
        while high <= limit && accepts(&mut lease, anchor, high).await? {
            low = high;
            high *= 2;
        }
        return search(&mut lease, anchor, low, high.min(limit + 1)).await;
    }
    search(&mut lease, anchor, 0, 128).await
}

/// The largest count in `[low, high)` the server accepts, given it accepts `low`.
async fn search(
    lease: &mut Lease,
    anchor: &[u8],
    mut low: usize,
    mut high: usize,
) -> Result<usize> {
    while high - low > 1 {
        let middle = low + (high - low) / 2;
        if accepts(lease, anchor, middle).await? {
            low = middle;
        } else {
            high = middle;
        }
    }
    Ok(low.max(1))
}

async fn accepts(lease: &mut Lease, anchor: &[u8], count: usize) -> Result<bool> {
    let compares: Vec<Compare> = (0..count)
        .map(|_| Compare::version(anchor.to_vec(), CompareOp::Equal, 0))
        .collect();
    let result = lease
        .request("probing --max-txn-ops", true, |channel| {
            let mut kv = channel.kv();
            let txn = Txn::new().when(compares.clone());
            async move { kv.txn(txn).await }
        })
        .await;
    match result {
        Ok(_) => Ok(true),
        Err(e) if e.kind() == ErrorKind::InvalidInput => Ok(false),
        Err(e) => Err(e),
    }
}

#[async_trait]
impl PooledStore for EtcdStore {
    fn backend_name(&self) -> &'static str {
        "etcd"
    }

    fn engine_name(&self) -> &'static str {
        "etcd"
    }

    fn capabilities(&self) -> Capabilities {
        let limits = self.shared.limits;
        let mut capabilities = Capabilities::full(limits.max_value_bytes, limits.max_scan_limit)
            .with_max_batch_ops(
                self.shared
                    .max_txn_ops
                    .min(usize::from(TX_SEQUENCE_BASE - 1)),
            );
        capabilities.persistent = true;
        capabilities
    }

    async fn get(&self, key: &[u8]) -> Result<Option<Entry>> {
        ops::get(&self.shared, key).await
    }

    async fn put(&self, key: &[u8], value: &[u8], options: PutOptions) -> Result<Version> {
        ops::put(&self.shared, key, value, options).await
    }

    async fn delete(&self, key: &[u8], condition: Condition) -> Result<bool> {
        ops::delete(&self.shared, key, condition).await
    }

    async fn scan(&self, options: ScanOptions) -> Result<Vec<Entry>> {
        scan::scan(&self.shared, &options).await
    }

    async fn batch(&self, ops: Vec<WriteOp>) -> Result<Vec<WriteResult>> {
        batch::batch(&self.shared, &ops).await
    }

    async fn purge_expired(&self) -> Result<u64> {
        ops::purge_expired(&self.shared).await
    }

    async fn begin(&self, options: TxOptions) -> Result<Box<dyn Transaction>> {
        let lease = self.shared.pool.acquire().await?;
        Ok(Box::new(EtcdTransaction::new(
            Arc::clone(&self.shared),
            lease,
            options.read_only,
        )))
    }

    /// See [`check`]; callers asking at once share its round trips ([`Rounds`]).
    async fn health_check(&self) -> PoolHealth {
        let (shared, probes) = (Arc::clone(&self.shared), Arc::clone(&self.probes));
        self.health
            .join(move || {
                let (shared, probes) = (Arc::clone(&shared), Arc::clone(&probes));
                async move { check(&shared.pool, &probes).await }
            })
            .await
    }

    async fn validate_connections(&self) -> Result<ConnectionValidation> {
        let _work = self.shared.pool.enter()?;
        Ok(self.shared.pool.validate().await)
    }

    fn pool_metrics(&self) -> PoolMetrics {
        self.shared.pool.metrics()
    }

    async fn close(&self) -> CloseReport {
        let (drain, closed) = self.shared.pool.close().await;
        self.probes.clear();
        CloseReport::new(
            !drain.first,
            drain.in_flight,
            drain.remaining,
            drain.waited,
            closed,
        )
    }
}
