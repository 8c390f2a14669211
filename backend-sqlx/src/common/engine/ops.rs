//! The key-value operations as SQL on one leased connection. Callers choose the
//! transaction around them; every value is a bound parameter.
//!
//! Every write first reads the key's row (live or expired) and only then draws a
//! version ([`Engine::write`]); each engine's statements say how that read keeps the
//! versions of a key growing, across deletes too.

use std::time::SystemTime;

use storage_api::backend::to_unix_millis;
use storage_api::{
    Condition, Entry, PutOptions, Result, ScanOptions, Version, WriteOp, WriteResult,
};

use super::Engine;
use super::conditions::{check_condition, is_live, new_row};
use super::lease::Lease;
use super::queries::{CurrentRow, Param, Queries};
use super::runs::{self, RunPut};
use super::shared::Shared;
use crate::common::rows::{bound_key, entry, scan_bounds, version_from};

/// Reads the live entry under `key` at `now`; `in_transaction` for a read inside an
/// application's transaction.
pub(crate) async fn get<E: Engine>(
    s: &Shared<E>,
    lease: &mut Lease<E>,
    key: &[u8],
    now: SystemTime,
    in_transaction: bool,
) -> Result<Option<Entry>> {
    let sql = s.engine.statements();
    let statement = if in_transaction {
        &sql.get_in_transaction
    } else {
        &sql.get
    };
    let params = [Param::Bytes(key), Param::Int(to_unix_millis(now))];
    let row = E::Db::fetch_stored(lease.start(), statement.clone(), &params).await;
    let row = lease.finish("get", row)?;
    row.map(|(value, version, expires_at)| entry(key.to_vec(), value, version, expires_at))
        .transpose()
}

/// Live entries selected by `options`, at most `limit`, ascending bytewise.
pub(crate) async fn scan<E: Engine>(
    s: &Shared<E>,
    lease: &mut Lease<E>,
    options: &ScanOptions,
    limit: usize,
    now: SystemTime,
) -> Result<Vec<Entry>> {
    let (lower, upper) = scan_bounds(options);
    let mut params = vec![Param::Int(to_unix_millis(now))];
    params.extend(
        [bound_key(lower), bound_key(upper)]
            .into_iter()
            .flatten()
            .map(Param::Bytes),
    );
    params.push(Param::Int(i64::try_from(limit).unwrap_or(i64::MAX)));
    let statement = s.engine.scan_statement(lower, upper);
    let rows = E::Db::fetch_scanned(lease.start(), statement, &params).await;
    lease
        .finish("scan", rows)?
        .into_iter()
        .map(|(key, value, version, expires_at)| entry(key, value, version, expires_at))
        .collect()
}

/// Writes `value` under `key` if the condition holds, returning the new version.
/// Must run inside a read-write serializable transaction.
pub(crate) async fn put<E: Engine>(
    s: &Shared<E>,
    lease: &mut Lease<E>,
    key: &[u8],
    value: &[u8],
    options: PutOptions,
    now: SystemTime,
) -> Result<Version> {
    let current = current(s, lease, key, "put").await?;
    let row = new_row(current, key, value, options, now)?;
    version_from(s.engine.write(lease, row).await?)
}

/// Removes `key` if the condition holds; `true` when a live entry was removed.
/// Must run inside a read-write serializable transaction.
pub(crate) async fn delete<E: Engine>(
    s: &Shared<E>,
    lease: &mut Lease<E>,
    key: &[u8],
    condition: Condition,
    now: SystemTime,
) -> Result<bool> {
    let current = current(s, lease, key, "delete").await?;
    check_condition(current, condition, now, "delete")?;
    let Some((_, expires_at)) = current else {
        return Ok(false);
    };
    let statement = s.engine.statements().delete.clone();
    let done = E::Db::execute(lease.start(), statement, &[Param::Bytes(key)]).await;
    lease.finish("delete", done)?;
    Ok(is_live(expires_at, now))
}

/// Applies `ops` in order; the first failure carries its index and stops the batch
/// (the caller rolls back). Consecutive puts of distinct keys are applied together
/// ([`runs::put_many`]). Must run inside a read-write serializable transaction.
pub(crate) async fn batch<E: Engine>(
    s: &Shared<E>,
    lease: &mut Lease<E>,
    ops: &[WriteOp],
    now: SystemTime,
) -> Result<Vec<WriteResult>> {
    let mut results = Vec::with_capacity(ops.len());
    while results.len() < ops.len() {
        let start = results.len();
        let rest = &ops[start..];
        let run = runs::run_length(rest.iter().map(Some));
        if run > 1 {
            let puts: Vec<RunPut<'_>> = rest[..run]
                .iter()
                .filter_map(|op| RunPut::of(op, now))
                .collect();
            let written = runs::put_many(s, lease, &puts)
                .await
                .map_err(|e| e.with_batch_index(start))?;
            for (offset, put) in written.into_iter().enumerate() {
                let version = put.map_err(|e| e.with_batch_index(start + offset))?;
                results.push(WriteResult::Put(version));
            }
            continue;
        }
        let result = match &rest[0] {
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
        results.push(result.map_err(|e| e.with_batch_index(start))?);
    }
    Ok(results)
}

/// Deletes every entry expired at `now`, returning how many.
pub(crate) async fn purge_expired<E: Engine>(
    s: &Shared<E>,
    lease: &mut Lease<E>,
    now: SystemTime,
) -> Result<u64> {
    let statement = s.engine.statements().purge.clone();
    let params = [Param::Int(to_unix_millis(now))];
    let done = E::Db::execute(lease.start(), statement, &params).await;
    Ok(E::rows_affected(&lease.finish("purge_expired", done)?))
}

/// The key's row, live or expired (locked until the transaction ends, where the engine
/// locks).
async fn current<E: Engine>(
    s: &Shared<E>,
    lease: &mut Lease<E>,
    key: &[u8],
    operation: &str,
) -> Result<Option<CurrentRow>> {
    let statement = s.engine.statements().current.clone();
    let row = E::Db::fetch_current(lease.start(), statement, &[Param::Bytes(key)]).await;
    lease.finish(operation, row)
}
