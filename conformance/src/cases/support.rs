//! Helpers the cases share: capability gating, waiting for a quiet pool, a seeded
//! generator, and small readers.

use std::sync::Arc;
use std::time::{Duration, Instant};

use storage_api::{ErrorKind, PoolMetrics, PooledStore, PutOptions, TxOptions, Version, WriteOp};

use crate::check::{Expect, Failure, Verdict};

/// A capability a case needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Need {
    /// Puts with a TTL and `purge_expired`.
    Ttl,
    /// `begin` and transactions.
    Transactions,
    /// Data surviving close and reopen.
    Persistent,
}

/// `None` when `store` offers `need`; otherwise checks that the excluded operations
/// return `Unsupported` (and write nothing) and returns the skip verdict.
pub(crate) async fn require(
    store: &Arc<dyn PooledStore>,
    need: Need,
) -> Result<Option<Verdict>, Failure> {
    let caps = store.capabilities();
    match need {
        Need::Ttl if caps.ttl => Ok(None),
        Need::Transactions if caps.transactions => Ok(None),
        Need::Persistent if caps.persistent => Ok(None),
        Need::Ttl => {
            let ttl = PutOptions::default().with_ttl(Duration::from_secs(60));
            store.put(b"unsupported/ttl", b"v", ttl).await.must_fail(
                ErrorKind::Unsupported,
                "put with a TTL on a backend without ttl",
            )?;
            let op = WriteOp::Put {
                key: b"unsupported/ttl".to_vec(),
                value: b"v".to_vec(),
                options: ttl,
            };
            store.batch(vec![op]).await.must_fail(
                ErrorKind::Unsupported,
                "batch with a TTL on a backend without ttl",
            )?;
            store.purge_expired().await.must_fail(
                ErrorKind::Unsupported,
                "purge_expired on a backend without ttl",
            )?;
            let written = store.get(b"unsupported/ttl").await.must("get")?;
            ensure!(
                written.is_none(),
                "an unsupported put with a TTL still wrote the entry"
            );
            Ok(Some(Verdict::Skipped(
                "the backend reports ttl = false; put and batch with a TTL and purge_expired \
                 return Unsupported"
                    .into(),
            )))
        }
        Need::Transactions => {
            for read_only in [false, true] {
                store.begin(TxOptions { read_only }).await.must_fail(
                    ErrorKind::Unsupported,
                    format_args!(
                        "begin(read_only = {read_only}) on a backend without transactions"
                    ),
                )?;
            }
            Ok(Some(Verdict::Skipped(
                "the backend reports transactions = false; begin returns Unsupported".into(),
            )))
        }
        Need::Persistent => Ok(Some(Verdict::Skipped(
            "the backend reports persistent = false".into(),
        ))),
    }
}

/// Returns early with the skip verdict when `store` lacks `need`.
macro_rules! require {
    ($store:expr, $need:expr) => {
        if let Some(verdict) = $crate::cases::support::require(&$store, $need).await? {
            return Ok(verdict);
        }
    };
}

/// Waits up to `limit` for the pool to have nothing in use and nobody waiting —
/// connections released by dropped futures come back asynchronously — and returns
/// the quiet metrics.
pub(crate) async fn wait_quiet(
    store: &Arc<dyn PooledStore>,
    limit: Duration,
    what: &str,
) -> Result<PoolMetrics, Failure> {
    wait_metrics(store, limit, what, |m| m.in_use == 0 && m.pending == 0).await
}

/// Waits up to `limit` for exactly `in_use` connections in use, nobody waiting and
/// every other open connection back in the pool as idle (`idle + in_use == size`), and
/// returns those metrics: a snapshot to compare against while connections are held.
pub(crate) async fn wait_settled(
    store: &Arc<dyn PooledStore>,
    in_use: u32,
    limit: Duration,
    what: &str,
) -> Result<PoolMetrics, Failure> {
    wait_metrics(store, limit, what, |m| {
        m.in_use == in_use && m.pending == 0 && m.idle + m.in_use == m.size
    })
    .await
}

/// Polls the pool's metrics until `settled` holds, or fails after `limit` naming what
/// was waited for and the last metrics.
async fn wait_metrics(
    store: &Arc<dyn PooledStore>,
    limit: Duration,
    what: &str,
    settled: impl Fn(&PoolMetrics) -> bool,
) -> Result<PoolMetrics, Failure> {
    let started = Instant::now();
    loop {
        let m = store.pool_metrics();
        if settled(&m) {
            return Ok(m);
        }
        if started.elapsed() > limit {
            fail!(
                "{what}: the pool did not settle within {limit:?} \
                 (size {}, idle {}, in_use {}, pending {}): a connection leaked",
                m.size,
                m.idle,
                m.in_use,
                m.pending
            );
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Checks `idle + in_use == size <= max` on a quiet pool.
pub(crate) fn check_reconciles(m: &PoolMetrics, what: &str) -> Result<(), Failure> {
    ensure!(
        m.idle + m.in_use == m.size,
        "{what}: idle ({}) + in_use ({}) != size ({})",
        m.idle,
        m.in_use,
        m.size
    );
    ensure!(
        m.size <= m.max,
        "{what}: size ({}) is over max ({})",
        m.size,
        m.max
    );
    Ok(())
}

/// The value and version under `key`, if live.
pub(crate) async fn read(
    store: &Arc<dyn PooledStore>,
    key: &[u8],
) -> Result<Option<(Vec<u8>, Version)>, Failure> {
    let entry = store
        .get(key)
        .await
        .must(format_args!("get {}", show(key)))?;
    Ok(entry.map(|e| (e.value, e.version)))
}

/// A key as readable text for failure messages (`b"a\x00"` style).
pub(crate) fn show(key: &[u8]) -> String {
    format!("b\"{}\"", key.escape_ascii())
}

/// SplitMix64: a small seeded generator for the cases that need random choices
/// outside proptest.
#[derive(Debug, Clone)]
pub(crate) struct SplitMix(u64);

impl SplitMix {
    /// A generator seeded with `seed`.
    pub(crate) fn new(seed: u64) -> Self {
        Self(seed)
    }

    /// The next 64 random bits.
    pub(crate) fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (`n > 0`).
    pub(crate) fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n.max(1) as u64) as usize
    }

    /// Shuffles `items` in place.
    pub(crate) fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            let j = self.below(i + 1);
            items.swap(i, j);
        }
    }
}
