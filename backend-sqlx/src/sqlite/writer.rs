//! The single writer with group commit. Writes outside transactions (put, delete,
//! batch, purge) queue here; one task takes every write waiting at that moment and
//! applies them on one pooled connection in ONE `BEGIN IMMEDIATE` transaction, commits
//! once and only then answers each caller. Writers of one store therefore never fight
//! over SQLite's write lock, and a commit is shared by everyone who was waiting.
//!
//! Inside a group the statements are few: one `UPDATE … RETURNING` reserves every
//! version the group needs, unconditional puts are sent as multi-row upserts, and a
//! batch runs under a savepoint so a failed condition undoes only that batch. A write
//! whose condition fails writes nothing and the others stay. If a statement fails
//! (a full disk, say), the group is rolled back and each write is retried alone, so
//! one caller's failure is never another's.

use std::sync::Arc;
use std::time::SystemTime;

use sqlx::{SqlSafeStr, Sqlite, SqliteConnection};
use storage_api::{
    Condition, ErrorKind, PutOptions, Result, StoreError, Version, WriteOp, WriteResult,
    expiry_millis,
};

use super::ops;
use super::queue::{self, Call, Queue, Server, copy};
use super::shared::Shared;
use crate::common::rows::version_from;

/// The most write operations (a batch counts each of its operations) one commit
/// takes; later writes wait for the next commit.
const MAX_GROUP_OPS: usize = 1024;

/// Buffered rows are sent once they hold this many bytes of keys and values.
const FLUSH_BYTES: usize = 1 << 20;

/// One write, as a caller hands it to the writer.
#[derive(Debug)]
pub(crate) enum Write {
    /// A single put or delete.
    Op(WriteOp),
    Batch(Vec<WriteOp>),
    Purge,
}

/// What a [`Write`] returned.
#[derive(Debug)]
pub(crate) enum Written {
    Op(WriteResult),
    Batch(Vec<WriteResult>),
    Purged(u64),
}

impl Write {
    /// How many versions applying it may take.
    fn versions_needed(&self) -> i64 {
        let is_put = |op: &WriteOp| matches!(op, WriteOp::Put { .. });
        let puts = match self {
            Write::Op(op) => usize::from(is_put(op)),
            Write::Batch(ops) => ops.iter().filter(|op| is_put(op)).count(),
            Write::Purge => 0,
        };
        i64::try_from(puts).unwrap_or(i64::MAX)
    }

    /// How many operations it counts as towards [`MAX_GROUP_OPS`].
    fn ops(&self) -> usize {
        match self {
            Write::Batch(ops) => ops.len().max(1),
            _ => 1,
        }
    }

    /// The operation name errors carry.
    fn operation(&self) -> &'static str {
        match self {
            Write::Op(WriteOp::Put { .. }) => "put",
            Write::Op(WriteOp::Delete { .. }) => "delete",
            Write::Batch(_) => "batch",
            Write::Purge => "purge_expired",
        }
    }
}

/// A queued write and the store's clock when its caller asked.
#[derive(Debug)]
pub(crate) struct Request {
    write: Write,
    now: SystemTime,
}

/// A queued write and the caller waiting for it.
type Job = Call<Request, Written>;

/// The single writer: serves the queue of writes (see [`queue`](super::queue)).
#[derive(Debug)]
pub(crate) struct Writes;

impl Server for Writes {
    type Request = Request;
    type Answer = Written;
    const OPERATION: &'static str = "write";
    const MAX_GROUP: usize = MAX_GROUP_OPS;

    fn weight(request: &Request) -> usize {
        request.write.ops()
    }

    fn queue(shared: &Shared) -> &Queue<Self> {
        &shared.writer
    }

    async fn serve(shared: &Arc<Shared>, conn: &mut SqliteConnection, calls: Vec<Job>) -> bool {
        shared.finish_checkpoint(conn).await;
        commit(shared, conn, calls).await
    }
}

/// Queues `write` for the next commit and returns its result once that commit is
/// done. The caller keeps its own in-flight guard.
///
/// A write that finds the writer idle is applied on the caller's own task (see
/// [`queue::call_or_lead`]).
///
/// If the returned future is dropped before the writer starts the write's group, the
/// write is skipped; dropped later, it may or may not be applied. It is never applied
/// in part.
pub(crate) async fn submit(shared: &Arc<Shared>, write: Write) -> Result<Written> {
    let now = shared.now();
    queue::call_or_lead::<Writes>(shared, Request { write, now }).await
}

/// Puts through the writer; see [`submit`].
pub(crate) async fn put(
    shared: &Arc<Shared>,
    key: &[u8],
    value: &[u8],
    options: PutOptions,
) -> Result<Version> {
    let op = WriteOp::Put {
        key: key.to_vec(),
        value: value.to_vec(),
        options,
    };
    match submit(shared, Write::Op(op)).await? {
        Written::Op(WriteResult::Put(version)) => Ok(version),
        other => Err(mismatch("put", &other)),
    }
}

/// Deletes through the writer; see [`submit`].
pub(crate) async fn delete(shared: &Arc<Shared>, key: &[u8], condition: Condition) -> Result<bool> {
    let op = WriteOp::Delete {
        key: key.to_vec(),
        condition,
    };
    match submit(shared, Write::Op(op)).await? {
        Written::Op(WriteResult::Delete(removed)) => Ok(removed),
        other => Err(mismatch("delete", &other)),
    }
}

/// Applies a batch through the writer; see [`submit`].
pub(crate) async fn batch(shared: &Arc<Shared>, ops: Vec<WriteOp>) -> Result<Vec<WriteResult>> {
    match submit(shared, Write::Batch(ops)).await? {
        Written::Batch(results) => Ok(results),
        other => Err(mismatch("batch", &other)),
    }
}

/// Purges expired entries through the writer; see [`submit`].
pub(crate) async fn purge_expired(shared: &Arc<Shared>) -> Result<u64> {
    match submit(shared, Write::Purge).await? {
        Written::Purged(purged) => Ok(purged),
        other => Err(mismatch("purge_expired", &other)),
    }
}

/// The error for an answer of the wrong shape (a bug in this module).
fn mismatch(operation: &str, written: &Written) -> StoreError {
    StoreError::new(
        ErrorKind::Backend,
        format!("{operation}: the writer answered with {written:?}"),
    )
}

/// Applies `jobs` in one transaction and answers them; if a statement failed, retries
/// each job alone so its error reaches only its own caller. `false` when anything
/// failed beyond a refused write.
async fn commit(s: &Arc<Shared>, conn: &mut SqliteConnection, jobs: Vec<Job>) -> bool {
    let writes: Vec<(&Write, SystemTime)> = jobs
        .iter()
        .map(|j| (&j.request.write, j.request.now))
        .collect();
    let outcome = run_group(s, conn, &writes).await;
    drop(writes);
    match outcome {
        Ok(results) => {
            s.committed(jobs.iter().map(|job| job.request.write.ops()).sum());
            for (job, result) in jobs.into_iter().zip(results) {
                job.answer(result);
            }
            true
        }
        Err(Fault::Failed(e)) if jobs.len() > 1 => {
            tracing::debug!(backend = "sqlx", error = %e, jobs = jobs.len(),
                "a write failed inside a group; retrying each write alone");
            for job in jobs {
                let single = [(&job.request.write, job.request.now)];
                let result = match run_group(s, conn, &single).await {
                    Ok(mut results) => results.pop().unwrap_or_else(|| Err(copy(&e))),
                    Err(Fault::Failed(e) | Fault::Whole(e) | Fault::Refused(e)) => Err(e),
                };
                job.answer(result);
            }
            false
        }
        Err(Fault::Failed(e) | Fault::Whole(e) | Fault::Refused(e)) => {
            jobs.into_iter().for_each(|job| job.fail(&e));
            false
        }
    }
}

/// Why a write or a group did not complete.
enum Fault {
    /// The write was refused (a failed condition, a bad input) and wrote nothing;
    /// the rest of the group goes on.
    Refused(StoreError),
    /// A statement of the write failed: the transaction is suspect.
    Failed(StoreError),
    /// Starting or committing the transaction failed: every write of the group fails
    /// (retrying them one by one would only wait for the same lock again).
    Whole(StoreError),
}

/// Runs `writes` in one transaction and commits it: one result per write.
async fn run_group(
    s: &Shared,
    conn: &mut SqliteConnection,
    writes: &[(&Write, SystemTime)],
) -> std::result::Result<Vec<Result<Written>>, Fault> {
    let operation = writes.first().map_or("write", |(w, _)| w.operation());
    let mut tx: sqlx::Transaction<'_, Sqlite> =
        sqlx::Transaction::begin(&mut *conn, Some("BEGIN IMMEDIATE".into_sql_str()))
            .await
            .map_err(|e| Fault::Whole(s.fail(operation, e)))?;
    let needed: i64 = writes.iter().map(|(w, _)| w.versions_needed()).sum();
    let mut g = Group {
        s,
        versions: reserve(s, &mut tx, needed).await.map_err(Fault::Whole)?,
        rows: Rows::default(),
    };
    let mut results = Vec::with_capacity(writes.len());
    for &(write, now) in writes {
        match g.apply(&mut tx, write, now).await {
            Ok(written) => results.push(Ok(written)),
            Err(Fault::Refused(e)) => results.push(Err(e)),
            Err(fault) => return Err(fault),
        }
    }
    g.rows.flush(s, &mut tx).await?;
    tx.commit()
        .await
        .map_err(|e| Fault::Whole(s.fail(operation, e)))?;
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
    let last = last.ok_or_else(|| {
        StoreError::new(
            ErrorKind::Corrupt,
            "put: the table has no version counter in pooledstore_meta",
        )
    })?;
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
    fn take(&mut self) -> std::result::Result<i64, Fault> {
        if self.next > self.last || self.next <= 0 {
            return Err(Fault::Failed(StoreError::new(
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
                .map_err(|e| Fault::Failed(s.fail("put", e)))?;
            rest = tail;
        }
        self.pending.clear();
        self.bytes = 0;
        Ok(())
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
    ) -> std::result::Result<Written, Fault> {
        match write {
            Write::Op(op) => self.op(conn, op, now).await.map(Written::Op),
            Write::Batch(ops) => self.batch(conn, ops, now).await.map(Written::Batch),
            Write::Purge => {
                self.rows.flush(self.s, conn).await?;
                ops::purge_expired(self.s, conn, now)
                    .await
                    .map(Written::Purged)
                    .map_err(Fault::Failed)
            }
        }
    }

    /// Applies one put or delete.
    async fn op(
        &mut self,
        conn: &mut SqliteConnection,
        op: &'w WriteOp,
        now: SystemTime,
    ) -> std::result::Result<WriteResult, Fault> {
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
    ) -> std::result::Result<Version, Fault> {
        if options.condition != Condition::Any {
            self.rows.flush(self.s, conn).await?;
            check_condition(self.s, conn, key, options.condition, now, "put").await?;
        }
        let raw = self.versions.take()?;
        let version = version_from(raw).map_err(Fault::Failed)?;
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
    ) -> std::result::Result<bool, Fault> {
        self.rows.flush(self.s, conn).await?;
        check_condition(self.s, conn, key, condition, now, "delete").await?;
        ops::delete(self.s, conn, key, Condition::Any, now)
            .await
            .map_err(Fault::Failed)
    }

    /// Applies a batch under a savepoint: a refused operation undoes the batch alone
    /// and names its index.
    async fn batch(
        &mut self,
        conn: &mut SqliteConnection,
        ops: &'w [WriteOp],
        now: SystemTime,
    ) -> std::result::Result<Vec<WriteResult>, Fault> {
        self.rows.flush(self.s, conn).await?;
        self.statement(conn, "SAVEPOINT pooledstore_batch").await?;
        let mut results = Vec::with_capacity(ops.len());
        for (index, op) in ops.iter().enumerate() {
            let result = self.op(conn, op, now).await;
            match result {
                Ok(r) => results.push(r),
                Err(Fault::Refused(e)) => {
                    self.rows.pending.clear();
                    self.rows.bytes = 0;
                    self.statement(conn, "ROLLBACK TO pooledstore_batch")
                        .await?;
                    self.statement(conn, "RELEASE pooledstore_batch").await?;
                    return Err(Fault::Refused(e.with_batch_index(index)));
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
    ) -> std::result::Result<(), Fault> {
        sqlx::raw_sql(sql)
            .execute(&mut *conn)
            .await
            .map(drop)
            .map_err(|e| Fault::Failed(self.s.fail("batch", e)))
    }
}

/// `Refused(ConditionFailed)` unless `condition` holds for the live entry under `key`;
/// `Failed` if the check itself failed.
async fn check_condition(
    s: &Shared,
    conn: &mut SqliteConnection,
    key: &[u8],
    condition: Condition,
    now: SystemTime,
    operation: &str,
) -> std::result::Result<(), Fault> {
    ops::check_condition(s, conn, key, condition, now, operation)
        .await
        .map_err(|e| match e.kind() {
            ErrorKind::ConditionFailed => Fault::Refused(e),
            _ => Fault::Failed(e),
        })
}
