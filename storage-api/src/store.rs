//! The `PooledStore` and `Transaction` traits: the contract every backend keeps.

use std::fmt::Debug;

use async_trait::async_trait;

use crate::error::Result;
use crate::reports::{CloseReport, ConnectionValidation, PoolHealth, PoolMetrics};
use crate::types::{
    Capabilities, Condition, Entry, PutOptions, ScanOptions, TxOptions, Version, WriteOp,
    WriteResult,
};

/// An async key-value store over a pool of connections.
///
/// Object-safe: applications hold an `Arc<dyn PooledStore>` and never name the backend.
///
/// # Checks
///
/// Applications reach a backend through the checking layer
/// ([`backend::Checked`](crate::backend::Checked), applied by `pooledstore::open` and
/// the conformance kit). In this order it refuses: any call once `close` has begun
/// (`Closed`); operations the [`Capabilities`] exclude (`Unsupported`); bad arguments
/// (`InvalidInput`, see [`backend::Rules`](crate::backend::Rules)), including writes in
/// a read-only transaction and batches over `max_batch_ops`. A backend therefore
/// implements storage only: it receives checked arguments and scans with their `limit`
/// set.
///
/// # Contract
///
/// Each bullet is one conformance case of the same name.
///
/// Data:
/// - `get_absent`: `get` of a key never written is `Ok(None)`.
/// - `put_get_roundtrip`: `get` returns exactly the bytes `put` stored (any bytes,
///   including NUL and non-UTF-8, keys of 1 and 1024 bytes, empty values).
/// - `versions_increase`: every put returns a version strictly greater than the key's
///   previous one, even across a delete.
/// - `condition_absent` / `condition_version`: a put or delete whose condition fails is
///   `ConditionFailed` and changes nothing; an expired entry counts as absent.
/// - `delete_reports_presence`: `delete` is `true` when something was removed.
/// - `scan_order`: `scan` returns live entries in ascending bytewise key order, honouring
///   range, prefix, `limit` and the exclusive `after` cursor.
/// - `batch_atomic`: `batch` applies every operation or none; a failed condition names
///   the index of the failing operation. Operations apply in order, so a later one sees
///   an earlier one's write.
/// - `ttl_expiry`: an entry past `expires_at` is invisible to every read and absent for
///   conditions; `purge_expired` removes it and counts it.
/// - `invalid_input`: empty keys, keys over 1024 bytes, values over `max_value_bytes`,
///   a zero TTL and scan limits over `max_scan_limit` are `InvalidInput`; nothing is written.
/// - `tx_isolation`: a transaction's writes are invisible to others until commit; dropping
///   or rolling back discards them and frees the connection promptly; committed
///   transactions are serializable or fail with a retryable `Conflict`/`Busy`.
///
/// Pool:
/// - `health_reports_timings`: `health_check` acquires and runs a round trip, reporting
///   sub-millisecond durations; it reports `Closed` after `close`.
/// - `validate_checks_idle`: `validate_connections` checks every idle connection once,
///   evicting broken ones.
/// - `metrics_reconcile`: when quiet, `idle + in_use == size <= max`.
/// - `acquire_timeout`: an operation that cannot get a connection within the acquire
///   timeout fails with `Timeout` after roughly that time.
/// - `close_semantics`: `close` is idempotent, refuses new work at once with `Closed`, lets
///   in-flight work finish within the grace period, then closes every connection.
#[async_trait]
pub trait PooledStore: Send + Sync + Debug + 'static {
    /// The backend's name as it appears in config and metric labels (`"sqlx"`, …).
    fn backend_name(&self) -> &'static str;

    /// The database engine behind the backend (`"sqlite"`, `"postgres"`, …), which
    /// health, metric labels and logs name beside the backend, since one backend can
    /// drive several engines. Defaults to [`backend_name`](Self::backend_name).
    fn engine_name(&self) -> &'static str {
        self.backend_name()
    }

    /// What this backend offers; operations it lacks return `Unsupported`.
    fn capabilities(&self) -> Capabilities;

    /// Reads a live entry; `Ok(None)` when absent or expired.
    async fn get(&self, key: &[u8]) -> Result<Option<Entry>>;

    /// Writes `value` under `key` if `options.condition` holds, returning the new version.
    async fn put(&self, key: &[u8], value: &[u8], options: PutOptions) -> Result<Version>;

    /// Removes `key` if `condition` holds; `true` when a live entry was removed.
    async fn delete(&self, key: &[u8], condition: Condition) -> Result<bool>;

    /// Live entries selected by `options`, ascending bytewise.
    async fn scan(&self, options: ScanOptions) -> Result<Vec<Entry>>;

    /// Applies every operation atomically, in order, or none of them.
    async fn batch(&self, ops: Vec<WriteOp>) -> Result<Vec<WriteResult>>;

    /// Physically removes expired entries, returning how many.
    async fn purge_expired(&self) -> Result<u64>;

    /// Starts a transaction on a pooled connection held until commit, rollback or drop.
    async fn begin(&self, options: TxOptions) -> Result<Box<dyn Transaction>>;

    /// Acquires a connection and runs a round trip within a bounded time.
    async fn health_check(&self) -> PoolHealth;

    /// Checks every idle connection once, evicting the broken ones.
    async fn validate_connections(&self) -> Result<ConnectionValidation>;

    /// A snapshot of the pool's gauges and counters.
    fn pool_metrics(&self) -> PoolMetrics;

    /// Closes the store: refuses new work, waits for in-flight work within the grace
    /// period, closes every connection. Idempotent.
    async fn close(&self) -> CloseReport;
}

/// A transaction holding one pooled connection.
///
/// Dropping it without `commit` rolls back and returns the connection to the pool.
#[async_trait]
pub trait Transaction: Send + Debug {
    /// Reads a live entry, seeing this transaction's own writes.
    async fn get(&mut self, key: &[u8]) -> Result<Option<Entry>>;

    /// Writes within the transaction; see [`PooledStore::put`].
    async fn put(&mut self, key: &[u8], value: &[u8], options: PutOptions) -> Result<Version>;

    /// Deletes within the transaction; see [`PooledStore::delete`].
    async fn delete(&mut self, key: &[u8], condition: Condition) -> Result<bool>;

    /// Scans within the transaction; see [`PooledStore::scan`].
    async fn scan(&mut self, options: ScanOptions) -> Result<Vec<Entry>>;

    /// Makes the writes durable and visible, or fails with nothing applied.
    async fn commit(self: Box<Self>) -> Result<()>;

    /// Discards the writes.
    async fn rollback(self: Box<Self>) -> Result<()>;
}
