//! The key-value operations as SQL on one connection. Callers choose the connection
//! and the transaction around it; every value is a bound parameter.

use std::time::SystemTime;

use sqlx::sqlite::SqliteRow;
use sqlx::{Row, SqliteConnection};
use storage_api::backend::{expiry_millis, to_unix_millis};
use storage_api::{
    Condition, Entry, ErrorKind, PutOptions, Result, ScanOptions, StoreError, Version,
};

use super::packed;
use super::shared::Shared;
use crate::common::rows::{bound_key, entry, require_condition, scan_bounds, version_from};

/// The entry in a row of key, value, version and expires_at (ms), as `scan` and the
/// multi-key read select them.
///
/// Rows are read with `sqlx::query` and `try_get` rather than `query_as` into a tuple:
/// measured on 100-row scans, the `query_as` stream cost about 1 µs more per row.
pub(crate) fn scanned(s: &Shared, operation: &str, row: &SqliteRow) -> Result<Entry> {
    let fail = |e| s.fail(operation, e);
    entry(
        row.try_get(0).map_err(fail)?,
        row.try_get(1).map_err(fail)?,
        row.try_get(2).map_err(fail)?,
        row.try_get(3).map_err(fail)?,
    )
}

/// Reads the live entry under `key` at `now`.
pub(crate) async fn get(
    s: &Shared,
    conn: &mut SqliteConnection,
    key: &[u8],
    now: SystemTime,
) -> Result<Option<Entry>> {
    let row = sqlx::query(s.sql.get.clone())
        .bind(key)
        .bind(to_unix_millis(now))
        .fetch_optional(conn)
        .await
        .map_err(|e| s.fail("get", e))?;
    let Some(row) = row else {
        return Ok(None);
    };
    let fail = |e| s.fail("get", e);
    entry(
        key.to_vec(),
        row.try_get(0).map_err(fail)?,
        row.try_get(1).map_err(fail)?,
        row.try_get(2).map_err(fail)?,
    )
    .map(Some)
}

/// Writes `value` under `key` if the condition holds, returning the new version.
/// Must run inside a write transaction.
pub(crate) async fn put(
    s: &Shared,
    conn: &mut SqliteConnection,
    key: &[u8],
    value: &[u8],
    options: PutOptions,
    now: SystemTime,
) -> Result<Version> {
    check_condition(s, conn, key, options.condition, now, "put").await?;
    let raw_version = next_version(s, conn).await?;
    let version = version_from(raw_version)?;
    sqlx::query(s.sql.upsert.clone())
        .bind(key)
        .bind(value)
        .bind(raw_version)
        .bind(expiry_millis(now, options.ttl))
        .execute(conn)
        .await
        .map_err(|e| s.fail("put", e))?;
    Ok(version)
}

/// Removes `key` if the condition holds; `true` when a live entry was removed.
/// Must run inside a write transaction.
pub(crate) async fn delete(
    s: &Shared,
    conn: &mut SqliteConnection,
    key: &[u8],
    condition: Condition,
    now: SystemTime,
) -> Result<bool> {
    check_condition(s, conn, key, condition, now, "delete").await?;
    let removed: Option<Option<i64>> = sqlx::query_scalar(s.sql.delete.clone())
        .bind(key)
        .fetch_optional(conn)
        .await
        .map_err(|e| s.fail("delete", e))?;
    let now_ms = to_unix_millis(now);
    Ok(match removed {
        None => false,
        Some(expires_at) => expires_at.is_none_or(|at| at > now_ms),
    })
}

/// Live entries selected by `options`, at most `limit`, ascending bytewise: a short
/// scan in one packed row when the store allows it (see [`packed`]), polled while
/// alone in the store like any single answer; a longer one row by row.
pub(crate) async fn scan(
    s: &Shared,
    conn: &mut SqliteConnection,
    options: &ScanOptions,
    limit: usize,
    now: SystemTime,
) -> Result<Vec<Entry>> {
    let (lower, upper) = scan_bounds(options);
    let short = s.packed_scans && limit <= packed::PACKED_ROWS;
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let bind = |sql| {
        sqlx::query(sql)
            .bind(to_unix_millis(now))
            .bind(bound_key(lower))
            .bind(bound_key(upper))
            .bind(limit)
    };
    if short {
        let answer = s
            .spin(bind(s.sql.packed_scan(lower, upper)).fetch_one(&mut *conn))
            .await;
        match answer {
            Ok(row) => {
                let rows: Option<Vec<u8>> = row.try_get(0).map_err(|e| s.fail("scan", e))?;
                return rows.map_or(Ok(Vec::new()), |rows| packed::unpack(&rows));
            }
            Err(e) if packed::is_too_big(&e) => {}
            Err(e) => return Err(s.fail("scan", e)),
        }
    }
    // Not spun: rows stream from the worker thread one by one, and a caller polling
    // for each slows the worker down (see `spin`).
    let rows = bind(s.sql.scan(lower, upper))
        .fetch_all(conn)
        .await
        .map_err(|e| s.fail("scan", e))?;
    // Each row is freed as soon as it is an entry, so the allocator reuses its memory
    // for the next entry. The rows are collected first all the same: taken one at a
    // time from sqlx's stream, converting each on arrival, a 100-row scan at 16 tasks
    // woke its task about twice as often and ran slower, in fewer instructions.
    rows.into_iter()
        .map(|row| scanned(s, "scan", &row))
        .collect()
}

/// Deletes every entry expired at `now`, returning how many.
pub(crate) async fn purge_expired(
    s: &Shared,
    conn: &mut SqliteConnection,
    now: SystemTime,
) -> Result<u64> {
    let done = sqlx::query(s.sql.purge.clone())
        .bind(to_unix_millis(now))
        .execute(conn)
        .await
        .map_err(|e| s.fail("purge_expired", e))?;
    Ok(done.rows_affected())
}

/// `ConditionFailed` unless `condition` holds for the live entry under `key`.
pub(crate) async fn check_condition(
    s: &Shared,
    conn: &mut SqliteConnection,
    key: &[u8],
    condition: Condition,
    now: SystemTime,
    operation: &str,
) -> Result<()> {
    if condition == Condition::Any {
        return Ok(());
    }
    let current: Option<i64> = sqlx::query_scalar(s.sql.live_version.clone())
        .bind(key)
        .bind(to_unix_millis(now))
        .fetch_optional(&mut *conn)
        .await
        .map_err(|e| s.fail(operation, e))?;
    let current = current.map(version_from).transpose()?;
    require_condition(condition.holds(current), operation)
}

/// Takes the next version from the table's counter in `pooledstore_meta`.
async fn next_version(s: &Shared, conn: &mut SqliteConnection) -> Result<i64> {
    let raw: Option<i64> = sqlx::query_scalar(s.sql.next_version.clone())
        .bind(&s.options.table)
        .fetch_optional(&mut *conn)
        .await
        .map_err(|e| s.fail("put", e))?;
    raw.ok_or_else(no_version_counter)
}

/// The error for a table with no version counter in `pooledstore_meta`.
pub(crate) fn no_version_counter() -> StoreError {
    StoreError::new(
        ErrorKind::Corrupt,
        "put: the table has no version counter in pooledstore_meta",
    )
}
