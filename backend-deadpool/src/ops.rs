//! The key-value operations as plain blocking functions on a `rusqlite::Connection`,
//! using `SqliteSql`'s shared layout. The same functions serve single operations
//! (run by the writer inside its group transaction when they write) and open
//! transactions.

use std::ops::Bound;
use std::sync::Arc;
use std::time::SystemTime;

use rusqlite::types::ValueRef;
use rusqlite::{Connection, OptionalExtension, Row, TransactionBehavior, params};
use sqlite_common::schema::SqliteSql;
use storage_api::backend::{expiry_millis, from_unix_millis, to_unix_millis};
use storage_api::{
    Clock, Condition, Entry, ErrorKind, PutOptions, ScanOptions, StoreError, Version, WriteOp,
    WriteResult,
};

use crate::errors::{DbError, map_error};

/// What every operation needs besides the connection: statements, table and clock.
#[derive(Debug)]
pub(crate) struct Ctx {
    sql: SqliteSql,
    table: String,
    clock: Arc<dyn Clock>,
    /// `SqliteSql::scan` for each bound shape, built once:
    /// `[lower: included, excluded, unbounded][upper: excluded, unbounded]`.
    scans: [[String; 2]; 3],
}

impl Ctx {
    /// The context of a store using `table` (a validated identifier).
    pub(crate) fn new(table: &str, clock: Arc<dyn Clock>) -> Self {
        let sql = SqliteSql::new(table);
        let key: &[u8] = &[];
        let lowers = [Bound::Included(key), Bound::Excluded(key), Bound::Unbounded];
        let uppers = [Bound::Excluded(key), Bound::Unbounded];
        let scans = lowers.map(|lower| uppers.map(|upper| sql.scan(lower, upper)));
        Self {
            sql,
            table: table.to_owned(),
            clock,
            scans,
        }
    }

    /// The shared statements.
    pub(crate) fn sql(&self) -> &SqliteSql {
        &self.sql
    }

    /// The store's table name.
    pub(crate) fn table(&self) -> &str {
        &self.table
    }

    /// The current time from the store's clock.
    pub(crate) fn now(&self) -> SystemTime {
        self.clock.now()
    }
}

/// Runs `f` in a `BEGIN IMMEDIATE` transaction, committing on success; on error
/// nothing `f` wrote is kept.
pub(crate) fn write_tx<R>(
    conn: &mut Connection,
    f: impl FnOnce(&Connection) -> Result<R, DbError>,
) -> Result<R, DbError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let out = f(&tx)?;
    tx.commit()?;
    Ok(out)
}

/// The live entry under `key`, if any.
pub(crate) fn get(
    conn: &Connection,
    ctx: &Ctx,
    key: &[u8],
    now: SystemTime,
) -> Result<Option<Entry>, DbError> {
    let mut stmt = conn.prepare_cached(&ctx.sql.get)?;
    let found = stmt
        .query_row(params![key, to_unix_millis(now)], |row| {
            Ok(Entry {
                key: key.to_vec(),
                value: bytes(row, 0)?,
                version: version(row, 1)?,
                expires_at: expiry(row, 2)?,
            })
        })
        .optional()?;
    Ok(found)
}

/// The versions a write transaction's puts take, in order: drawn from the table's
/// counter one at a time, or from a range reserved ahead, with one statement, for
/// the puts of a writer's group. A refused put leaves its reserved version unused (a
/// gap, as a rolled-back draw leaves); a put past the range draws.
#[derive(Debug)]
pub(crate) struct Versions {
    next: i64,
    last: i64,
}

impl Versions {
    /// Nothing reserved: every put draws its own version.
    pub(crate) fn drawn() -> Self {
        Self { next: 1, last: 0 }
    }

    /// Reserves `n` versions in the caller's write transaction; a single one is
    /// drawn when its put comes (the same statements, none if the put is refused).
    pub(crate) fn reserve(conn: &Connection, ctx: &Ctx, n: usize) -> Result<Self, DbError> {
        if n < 2 {
            return Ok(Self::drawn());
        }
        let n = i64::try_from(n).map_err(|_| version_overflow())?;
        let last: Option<i64> = conn
            .prepare_cached(&ctx.sql.reserve_versions)?
            .query_row(params![ctx.table, n], |row| row.get(0))
            .optional()?;
        let last = last.ok_or_else(no_version_counter)?;
        Ok(Self {
            next: last - n + 1,
            last,
        })
    }

    /// The next version: reserved, or drawn from the counter.
    fn take(&mut self, conn: &Connection, ctx: &Ctx) -> Result<Version, DbError> {
        if self.next > self.last {
            return next_version(conn, ctx);
        }
        self.next += 1;
        u64::try_from(self.next - 1)
            .ok()
            .and_then(Version::new)
            .ok_or_else(version_overflow)
    }
}

/// Writes `key` if `options.condition` holds, returning the new version, taken from
/// `versions`. Call inside a write transaction.
pub(crate) fn put(
    conn: &Connection,
    ctx: &Ctx,
    versions: &mut Versions,
    key: &[u8],
    value: &[u8],
    options: PutOptions,
    now: SystemTime,
) -> Result<Version, DbError> {
    check_condition(conn, ctx, key, options.condition, now, "put")?;
    let version = versions.take(conn, ctx)?;
    let raw = i64::try_from(version.get()).map_err(|_| version_overflow())?;
    let expires_at = expiry_millis(now, options.ttl);
    conn.prepare_cached(&ctx.sql.upsert)?
        .execute(params![key, value, raw, expires_at])?;
    Ok(version)
}

/// Removes `key` if `condition` holds; `true` when a live entry was removed.
/// Call inside a write transaction.
pub(crate) fn delete(
    conn: &Connection,
    ctx: &Ctx,
    key: &[u8],
    condition: Condition,
    now: SystemTime,
) -> Result<bool, DbError> {
    check_condition(conn, ctx, key, condition, now, "delete")?;
    let removed: Option<Option<i64>> = conn
        .prepare_cached(&ctx.sql.delete)?
        .query_row(params![key], |row| row.get(0))
        .optional()?;
    let now_ms = to_unix_millis(now);
    Ok(match removed {
        None => false,
        Some(expires_at) => expires_at.is_none_or(|at| at > now_ms),
    })
}

/// Live entries selected by `options`, ascending, at most `limit` of them.
pub(crate) fn scan(
    conn: &Connection,
    ctx: &Ctx,
    options: &ScanOptions,
    limit: usize,
    now: SystemTime,
) -> Result<Vec<Entry>, DbError> {
    let (lower_shape, lower_key) = match options.lower_bound() {
        Bound::Included(k) => (0, Some(k)),
        Bound::Excluded(k) => (1, Some(k)),
        Bound::Unbounded => (2, None),
    };
    let upper_key = options.range.end.as_deref();
    let upper_shape = if upper_key.is_some() { 0 } else { 1 };
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let mut stmt = conn.prepare_cached(&ctx.scans[lower_shape][upper_shape])?;
    let rows = stmt.query_map(
        params![to_unix_millis(now), lower_key, upper_key, limit],
        |row| {
            Ok(Entry {
                key: bytes(row, 0)?,
                value: bytes(row, 1)?,
                version: version(row, 2)?,
                expires_at: expiry(row, 3)?,
            })
        },
    )?;
    Ok(rows.collect::<Result<Vec<_>, _>>()?)
}

/// Physically removes expired entries, returning how many.
pub(crate) fn purge(conn: &Connection, ctx: &Ctx, now: SystemTime) -> Result<u64, DbError> {
    let removed = conn
        .prepare_cached(&ctx.sql.purge)?
        .execute(params![to_unix_millis(now)])?;
    Ok(u64::try_from(removed).unwrap_or(u64::MAX))
}

/// Applies `ops` in order; the first failure carries its index. Call inside a write
/// transaction (or a savepoint of one), which the caller rolls back on error.
pub(crate) fn batch(
    conn: &Connection,
    ctx: &Ctx,
    versions: &mut Versions,
    ops: &[WriteOp],
    now: SystemTime,
) -> Result<Vec<WriteResult>, DbError> {
    let mut apply = |op: &WriteOp| match op {
        WriteOp::Put {
            key,
            value,
            options,
        } => put(conn, ctx, versions, key, value, *options, now).map(WriteResult::Put),
        WriteOp::Delete { key, condition } => {
            delete(conn, ctx, key, *condition, now).map(WriteResult::Delete)
        }
    };
    ops.iter()
        .enumerate()
        .map(|(index, op)| {
            apply(op).map_err(|e| DbError::from(map_error("batch", e).with_batch_index(index)))
        })
        .collect()
}

fn check_condition(
    conn: &Connection,
    ctx: &Ctx,
    key: &[u8],
    condition: Condition,
    now: SystemTime,
    op: &str,
) -> Result<(), DbError> {
    if condition == Condition::Any {
        return Ok(());
    }
    let current = conn
        .prepare_cached(&ctx.sql.live_version)?
        .query_row(params![key, to_unix_millis(now)], |row| version(row, 0))
        .optional()?;
    if condition.holds(current) {
        Ok(())
    } else {
        Err(StoreError::new(
            ErrorKind::ConditionFailed,
            format!("{op}: the condition did not hold; nothing was changed"),
        )
        .into())
    }
}

fn next_version(conn: &Connection, ctx: &Ctx) -> Result<Version, DbError> {
    // Two prepared statements rather than one with `RETURNING` (see `bump_version`);
    // the write transaction around them keeps the pair atomic.
    let bumped = conn
        .prepare_cached(&ctx.sql.bump_version)?
        .execute(params![ctx.table])?;
    let raw: Option<i64> = if bumped == 0 {
        None
    } else {
        conn.prepare_cached(&ctx.sql.last_version)?
            .query_row(params![ctx.table], |row| row.get(0))
            .optional()?
    };
    let raw = raw.ok_or_else(no_version_counter)?;
    u64::try_from(raw)
        .ok()
        .and_then(Version::new)
        .ok_or_else(version_overflow)
}

fn no_version_counter() -> DbError {
    StoreError::new(
        ErrorKind::Corrupt,
        "the table has no version counter in pooledstore_meta",
    )
    .into()
}

fn version_overflow() -> DbError {
    StoreError::new(
        ErrorKind::Corrupt,
        "the version counter in pooledstore_meta is out of range",
    )
    .into()
}

fn bytes(row: &Row<'_>, index: usize) -> rusqlite::Result<Vec<u8>> {
    match row.get_ref(index)? {
        ValueRef::Blob(b) | ValueRef::Text(b) => Ok(b.to_vec()),
        other => Err(rusqlite::Error::InvalidColumnType(
            index,
            "blob".into(),
            other.data_type(),
        )),
    }
}

fn version(row: &Row<'_>, index: usize) -> rusqlite::Result<Version> {
    let raw: i64 = row.get(index)?;
    u64::try_from(raw)
        .ok()
        .and_then(Version::new)
        .ok_or(rusqlite::Error::IntegralValueOutOfRange(index, raw))
}

fn expiry(row: &Row<'_>, index: usize) -> rusqlite::Result<Option<SystemTime>> {
    Ok(row.get::<_, Option<i64>>(index)?.map(from_unix_millis))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rusqlite::StatementStatus;
    use storage_api::SystemClock;

    /// A scan's statement is prepared once: binding another limit does not make
    /// SQLite prepare it again (as it does for a bare `LIMIT ?`, which it plans for the
    /// value bound).
    #[test]
    fn scans_with_different_limits_reuse_the_prepared_statement() {
        let conn = Connection::open_in_memory().unwrap();
        let ctx = Ctx::new("kv", Arc::new(SystemClock));
        for create in &ctx.sql().create {
            conn.execute_batch(create).unwrap();
        }
        for (i, key) in [b"a", b"b", b"c"].iter().enumerate() {
            let version = i64::try_from(i + 1).unwrap();
            let none: Option<i64> = None;
            conn.execute(&ctx.sql().upsert, params![&key[..], b"v", version, none])
                .unwrap();
        }
        let now = SystemTime::now();
        let all = ScanOptions::default();
        for limit in [1, 3, 2, 3] {
            let found = scan(&conn, &ctx, &all, limit, now).unwrap();
            assert_eq!(found.len(), limit.min(3));
        }
        let stmt = conn.prepare_cached(&ctx.scans[2][1]).unwrap();
        assert_eq!(stmt.get_status(StatementStatus::RePrepare), 0);
    }
}
