//! The key-value operations as SQL on one leased connection. Callers choose the
//! transaction around them; every value is a bound parameter.
//!
//! Every write first reads the key's row (live or expired) and only then takes a
//! version from the sequence. Inside a serializable transaction that read is what makes
//! versions only ever grow: two transactions that both read and write a key cannot both
//! commit unless one began after the other committed, and the later one draws its
//! version after that commit. Sequences ignore transactions, so without the read a put
//! that drew its version just before another writer's put and delete of the same key
//! committed could still insert the key afterwards, with the older version.

use std::time::SystemTime;

use storage_api::backend::{expiry_millis, to_unix_millis};
use storage_api::{
    Condition, Entry, PutOptions, Result, ScanOptions, Version, WriteOp, WriteResult,
};

use super::lease::Lease;
use super::shared::Shared;
use crate::common::rows::{bound_key, entry, require_condition, scan_bounds, version_from};

/// A row as `get` reads it: value, version, expires_at (ms).
type StoredRow = (Vec<u8>, i64, Option<i64>);

/// A row as `scan` reads it: key, value, version, expires_at (ms).
type ScannedRow = (Vec<u8>, Vec<u8>, i64, Option<i64>);

/// A key's row as a write sees it: version, expires_at (ms).
type CurrentRow = (i64, Option<i64>);

/// Reads the live entry under `key` at `now`.
pub(crate) async fn get(
    s: &Shared,
    lease: &mut Lease,
    key: &[u8],
    now: SystemTime,
) -> Result<Option<Entry>> {
    let row = sqlx::query_as::<_, StoredRow>(s.sql.get.clone())
        .bind(key)
        .bind(to_unix_millis(now))
        .fetch_optional(lease.start())
        .await;
    let row = lease.finish("get", row)?;
    row.map(|(value, version, expires_at)| entry(key.to_vec(), value, version, expires_at))
        .transpose()
}

/// Live entries selected by `options`, at most `limit`, ascending bytewise.
pub(crate) async fn scan(
    s: &Shared,
    lease: &mut Lease,
    options: &ScanOptions,
    limit: usize,
    now: SystemTime,
) -> Result<Vec<Entry>> {
    let (lower, upper) = scan_bounds(options);
    let mut query =
        sqlx::query_as::<_, ScannedRow>(s.sql.scan(lower, upper)).bind(to_unix_millis(now));
    for key in [bound_key(lower), bound_key(upper)].into_iter().flatten() {
        query = query.bind(key);
    }
    let rows = query
        .bind(i64::try_from(limit).unwrap_or(i64::MAX))
        .fetch_all(lease.start())
        .await;
    lease
        .finish("scan", rows)?
        .into_iter()
        .map(|(key, value, version, expires_at)| entry(key, value, version, expires_at))
        .collect()
}

/// Writes `value` under `key` if the condition holds, returning the new version.
/// Must run inside a read-write serializable transaction.
pub(crate) async fn put(
    s: &Shared,
    lease: &mut Lease,
    key: &[u8],
    value: &[u8],
    options: PutOptions,
    now: SystemTime,
) -> Result<Version> {
    let current = current(s, lease, key, "put").await?;
    check_condition(current, options.condition, now, "put")?;
    let written = sqlx::query_scalar::<_, i64>(s.sql.upsert.clone())
        .bind(key)
        .bind(value)
        .bind(expiry_millis(now, options.ttl))
        .fetch_one(lease.start())
        .await;
    version_from(lease.finish("put", written)?)
}

/// Removes `key` if the condition holds; `true` when a live entry was removed.
/// Must run inside a read-write serializable transaction.
pub(crate) async fn delete(
    s: &Shared,
    lease: &mut Lease,
    key: &[u8],
    condition: Condition,
    now: SystemTime,
) -> Result<bool> {
    let current = current(s, lease, key, "delete").await?;
    check_condition(current, condition, now, "delete")?;
    let Some((_, expires_at)) = current else {
        return Ok(false);
    };
    let done = sqlx::query(s.sql.delete.clone())
        .bind(key)
        .execute(lease.start())
        .await;
    lease.finish("delete", done)?;
    Ok(is_live(expires_at, now))
}

/// Applies `ops` in order; the first failure carries its index and stops the batch
/// (the caller rolls back). Must run inside a read-write serializable transaction.
pub(crate) async fn batch(
    s: &Shared,
    lease: &mut Lease,
    ops: &[WriteOp],
    now: SystemTime,
) -> Result<Vec<WriteResult>> {
    let mut results = Vec::with_capacity(ops.len());
    for (index, op) in ops.iter().enumerate() {
        let result = match op {
            WriteOp::Put {
                key,
                value,
                options,
            } => put(s, lease, key, value, *options, now)
                .await
                .map(WriteResult::Put),
            WriteOp::Delete { key, condition } => delete(s, lease, key, *condition, now)
                .await
                .map(WriteResult::Delete),
        };
        results.push(result.map_err(|e| e.with_batch_index(index))?);
    }
    Ok(results)
}

/// Deletes every entry expired at `now`, returning how many.
pub(crate) async fn purge_expired(s: &Shared, lease: &mut Lease, now: SystemTime) -> Result<u64> {
    let done = sqlx::query(s.sql.purge.clone())
        .bind(to_unix_millis(now))
        .execute(lease.start())
        .await;
    Ok(lease.finish("purge_expired", done)?.rows_affected())
}

/// The key's row, live or expired.
async fn current(
    s: &Shared,
    lease: &mut Lease,
    key: &[u8],
    operation: &str,
) -> Result<Option<CurrentRow>> {
    let row = sqlx::query_as::<_, CurrentRow>(s.sql.current.clone())
        .bind(key)
        .fetch_optional(lease.start())
        .await;
    lease.finish(operation, row)
}

/// `ConditionFailed` unless `condition` holds for `current` at `now` (an expired row
/// counts as absent).
fn check_condition(
    current: Option<CurrentRow>,
    condition: Condition,
    now: SystemTime,
    operation: &str,
) -> Result<()> {
    let live = current
        .filter(|(_, expires_at)| is_live(*expires_at, now))
        .map(|(version, _)| version_from(version))
        .transpose()?;
    require_condition(condition.holds(live), operation)
}

/// Whether a row with this expiry is visible at `now`.
fn is_live(expires_at: Option<i64>, now: SystemTime) -> bool {
    expires_at.is_none_or(|at| at > to_unix_millis(now))
}
