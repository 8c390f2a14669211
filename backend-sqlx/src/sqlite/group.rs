//! One group of the single writer, applied on sqlx: its writes in ONE
//! `BEGIN IMMEDIATE` transaction with as few statements as they allow. One
//! `UPDATE … RETURNING` reserves every version the group needs, unconditional puts are
//! buffered and sent as multi-row upserts, a condition is checked (after sending what
//! is buffered) before its write, and a batch runs under a savepoint so a refused
//! operation undoes only that batch. A failed statement ends the group with
//! [`Fault::Statement`]; the failure rule of [`sqlite_common::round`] takes it from
//! there.

use std::time::SystemTime;

use sqlite_common::round::{Fault, Outcome};
use sqlite_common::writer::{Request, Write, Written};
use sqlx::{SqlSafeStr, Sqlite, SqliteConnection};
use storage_api::backend::expiry_millis;
use storage_api::{
    Condition, ErrorKind, PutOptions, Result, StoreError, Version, WriteOp, WriteResult,
};

use super::ops;
use super::shared::Shared;
use crate::common::rows::version_from;

/// Buffered rows are sent once they hold this many bytes of keys and values.
const FLUSH_BYTES: usize = 1 << 20;

/// Why one write of a group did not complete.
enum Stop {
    /// The write was refused (a failed condition) and wrote nothing; the rest of the
    /// group goes on.
    Refused(StoreError),
    /// A statement failed: the group is over.
    Group(Fault),
}

impl Stop {
    /// A failed statement.
    fn failed(error: StoreError) -> Self {
        Stop::Group(Fault::Statement(error))
    }
}

impl From<Fault> for Stop {
    fn from(fault: Fault) -> Self {
        Stop::Group(fault)
    }
}

/// Runs `requests` in one transaction and commits it: one result per write.
pub(crate) async fn run_group(
    s: &Shared,
    conn: &mut SqliteConnection,
    requests: &[Request],
) -> Outcome {
    let operation = requests.first().map_or("write", |r| r.write.operation());
    let mut tx: sqlx::Transaction<'_, Sqlite> =
        sqlx::Transaction::begin(&mut *conn, Some("BEGIN IMMEDIATE".into_sql_str()))
            .await
            .map_err(|e| Fault::Transaction(s.fail(operation, e)))?;
    let needed: i64 = requests.iter().map(|r| r.write.versions_needed()).sum();
    let mut g = Group {
        s,
        versions: reserve(s, &mut tx, needed)
            .await
            .map_err(Fault::Transaction)?,
        rows: Rows::default(),
    };
    let mut results = Vec::with_capacity(requests.len());
    for request in requests {
        match g.apply(&mut tx, &request.write, request.now).await {
            Ok(written) => results.push(Ok(written)),
            Err(Stop::Refused(e)) => results.push(Err(e)),
            Err(Stop::Group(fault)) => return Err(fault),
        }
    }
    g.rows.flush(s, &mut tx).await?;
    tx.commit()
        .await
        .map_err(|e| Fault::Transaction(s.fail(operation, e)))?;
    Ok(results)
}

/// Takes `n` versions from the table's counter: the range `(first, end]` as `Versions`.
async fn reserve(s: &Shared, conn: &mut SqliteConnection, n: i64) -> Result<Versions> {
    if n == 0 {
        return Ok(Versions { next: 0, last: 0 });
    }
    let last: Option<i64> = sqlx::query_scalar(s.sql.reserve_versions.clone())
        .bind(&s.options.table)
        .bind(n)
        .fetch_optional(&mut *conn)
        .await
        .map_err(|e| s.fail("put", e))?;
    let last = last.ok_or_else(ops::no_version_counter)?;
    Ok(Versions {
        next: last - n + 1,
        last,
    })
}

/// Versions reserved for a group and not yet used.
struct Versions {
    next: i64,
    last: i64,
}

impl Versions {
    fn take(&mut self) -> std::result::Result<i64, Stop> {
        if self.next > self.last || self.next <= 0 {
            return Err(Stop::failed(StoreError::new(
                ErrorKind::Backend,
                "put: the writer ran out of reserved versions",
            )));
        }
        self.next += 1;
        Ok(self.next - 1)
    }
}

/// A row to upsert: key, value, version, expires_at (ms).
type Row<'w> = (&'w [u8], &'w [u8], i64, Option<i64>);

/// Unconditional puts not yet sent.
#[derive(Default)]
struct Rows<'w> {
    pending: Vec<Row<'w>>,
    bytes: usize,
}

impl<'w> Rows<'w> {
    /// Sends every pending row, in order, as few multi-row upserts as the chunk
    /// sizes allow.
    async fn flush(
        &mut self,
        s: &Shared,
        conn: &mut SqliteConnection,
    ) -> std::result::Result<(), Fault> {
        let mut rest = &self.pending[..];
        while !rest.is_empty() {
            let (sql, size) = s.sql.upsert_chunk(rest.len());
            let (chunk, tail) = rest.split_at(size);
            let mut query = sqlx::query(sql);
            for &(key, value, version, expires_at) in chunk {
                query = query.bind(key).bind(value).bind(version).bind(expires_at);
            }
            query
                .execute(&mut *conn)
                .await
                .map_err(|e| Fault::Statement(s.fail("put", e)))?;
            rest = tail;
        }
        self.discard();
        Ok(())
    }

    /// Forgets every pending row (sent, or undone with their savepoint).
    fn discard(&mut self) {
        self.pending.clear();
        self.bytes = 0;
    }
}

/// One group's transaction state: reserved versions and unsent rows.
struct Group<'s, 'w> {
    s: &'s Shared,
    versions: Versions,
    rows: Rows<'w>,
}

impl<'w> Group<'_, 'w> {
    /// Applies one write, buffering unconditional puts.
    async fn apply(
        &mut self,
        conn: &mut SqliteConnection,
        write: &'w Write,
        now: SystemTime,
    ) -> std::result::Result<Written, Stop> {
        match write {
            Write::Op(op) => self.op(conn, op, now).await.map(Written::Op),
            Write::Batch(ops) => self.batch(conn, ops, now).await.map(Written::Batch),
            Write::Purge => {
                self.rows.flush(self.s, conn).await?;
                ops::purge_expired(self.s, conn, now)
                    .await
                    .map(Written::Purged)
                    .map_err(Stop::failed)
            }
        }
    }

    /// Applies one put or delete.
    async fn op(
        &mut self,
        conn: &mut SqliteConnection,
        op: &'w WriteOp,
        now: SystemTime,
    ) -> std::result::Result<WriteResult, Stop> {
        match op {
            WriteOp::Put {
                key,
                value,
                options,
            } => self
                .put(conn, key, value, *options, now)
                .await
                .map(WriteResult::Put),
            WriteOp::Delete { key, condition } => self
                .delete(conn, key, *condition, now)
                .await
                .map(WriteResult::Delete),
        }
    }

    async fn put(
        &mut self,
        conn: &mut SqliteConnection,
        key: &'w [u8],
        value: &'w [u8],
        options: PutOptions,
        now: SystemTime,
    ) -> std::result::Result<Version, Stop> {
        if options.condition != Condition::Any {
            self.rows.flush(self.s, conn).await?;
            check_condition(self.s, conn, key, options.condition, now, "put").await?;
        }
        let raw = self.versions.take()?;
        let version = version_from(raw).map_err(Stop::failed)?;
        self.rows
            .pending
            .push((key, value, raw, expiry_millis(now, options.ttl)));
        self.rows.bytes += key.len() + value.len();
        if self.rows.bytes >= FLUSH_BYTES {
            self.rows.flush(self.s, conn).await?;
        }
        Ok(version)
    }

    async fn delete(
        &mut self,
        conn: &mut SqliteConnection,
        key: &[u8],
        condition: Condition,
        now: SystemTime,
    ) -> std::result::Result<bool, Stop> {
        self.rows.flush(self.s, conn).await?;
        check_condition(self.s, conn, key, condition, now, "delete").await?;
        ops::delete(self.s, conn, key, Condition::Any, now)
            .await
            .map_err(Stop::failed)
    }

    /// Applies a batch under a savepoint: a refused operation undoes the batch alone
    /// and names its index.
    async fn batch(
        &mut self,
        conn: &mut SqliteConnection,
        ops: &'w [WriteOp],
        now: SystemTime,
    ) -> std::result::Result<Vec<WriteResult>, Stop> {
        self.rows.flush(self.s, conn).await?;
        self.statement(conn, "SAVEPOINT pooledstore_batch").await?;
        let mut results = Vec::with_capacity(ops.len());
        for (index, op) in ops.iter().enumerate() {
            let result = self.op(conn, op, now).await;
            match result {
                Ok(r) => results.push(r),
                Err(Stop::Refused(e)) => {
                    self.rows.discard();
                    self.statement(conn, "ROLLBACK TO pooledstore_batch")
                        .await?;
                    self.statement(conn, "RELEASE pooledstore_batch").await?;
                    return Err(Stop::Refused(e.with_batch_index(index)));
                }
                Err(fault) => return Err(fault),
            }
        }
        self.rows.flush(self.s, conn).await?;
        self.statement(conn, "RELEASE pooledstore_batch").await?;
        Ok(results)
    }

    async fn statement(
        &mut self,
        conn: &mut SqliteConnection,
        sql: &'static str,
    ) -> std::result::Result<(), Stop> {
        sqlx::raw_sql(sql)
            .execute(&mut *conn)
            .await
            .map(drop)
            .map_err(|e| Stop::failed(self.s.fail("batch", e)))
    }
}

/// `Refused(ConditionFailed)` unless `condition` holds for the live entry under `key`;
/// a failed statement if the check itself failed.
async fn check_condition(
    s: &Shared,
    conn: &mut SqliteConnection,
    key: &[u8],
    condition: Condition,
    now: SystemTime,
    operation: &str,
) -> std::result::Result<(), Stop> {
    ops::check_condition(s, conn, key, condition, now, operation)
        .await
        .map_err(|e| match e.kind() {
            ErrorKind::ConditionFailed => Stop::Refused(e),
            _ => Stop::failed(e),
        })
}
