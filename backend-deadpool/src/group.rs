//! One group of the single writer, applied on a rusqlite connection (on its blocking
//! thread): its writes in ONE `BEGIN IMMEDIATE` transaction, each through the same
//! functions transactions use ([`ops`]). A single write checks its condition before
//! it writes, and a batch runs under a savepoint (unless alone in its group), so a
//! refused write leaves nothing behind and the rest of the group goes on. A failed statement rolls the group back
//! and ends it with [`Fault::Statement`]; the failure rule of
//! [`sqlite_common::round`] takes it from there.

use std::time::SystemTime;

use rusqlite::Connection;
use sqlite_common::queue::Lender;
use sqlite_common::round::{Fault, Group, Outcome, Round, Settled, Step};
use sqlite_common::wal::{Checkpoint, WriterCheckpoint};
use sqlite_common::writer::{Request, Write, Written};
use storage_api::{ErrorKind, WriteOp, WriteResult};

use crate::errors::DbError;
use crate::ops::{self, Ctx, Versions};
use crate::pool::ConnPool;

/// Takes the steps of `round`: checkpoints on this connection, and groups, each in
/// one transaction, settled (and so answered) from this thread.
///
/// In WAL mode the connection comes with SQLite's automatic checkpoint off (the
/// writer follows [`sqlite_common::wal`] instead; see
/// [`Autocheckpoint`](crate::connection::Autocheckpoint)).
pub(crate) fn apply_round<S: Lender>(
    conn: &Connection,
    ctx: &Ctx,
    pool: &ConnPool,
    mut round: Round<S>,
) -> Settled {
    while let Some(step) = round.next_step() {
        match step {
            Step::Checkpoint => {
                let busy = conn.query_row(Checkpoint::Passive.pragma(), [], |r| r.get::<_, i64>(0));
                round.checkpointed(match busy {
                    Ok(0) => WriterCheckpoint::Done,
                    Ok(_) => WriterCheckpoint::Busy,
                    Err(error) => {
                        tracing::debug!(backend = "deadpool", %error, "the writer's WAL checkpoint failed");
                        WriterCheckpoint::Failed
                    }
                });
            }
            Step::Apply(group) => {
                let outcome = run(conn, ctx, pool, group.requests());
                round.settle(group, outcome);
            }
        }
    }
    round.finish()
}

/// Whether `group` is one single put or delete: what the writer may apply on the
/// async thread (see [`try_here`]).
pub(crate) fn is_single_write(group: &Group) -> bool {
    matches!(
        group.requests(),
        [Request {
            write: Write::Op(_),
            ..
        }]
    )
}

/// Applies `requests` like a group of a round if the write lock is free at once (the
/// busy handler being off, as on an async thread); `None`, with nothing done, when
/// another connection holds it.
pub(crate) fn try_here(
    conn: &Connection,
    ctx: &Ctx,
    pool: &ConnPool,
    requests: &[Request],
) -> Option<Outcome> {
    match begin(conn) {
        Ok(()) => Some(run_begun(conn, ctx, pool, requests)),
        Err(e) if e.is_busy() => None,
        Err(e) => Some(Err(Fault::Transaction(pool.fail(operation(requests), e)))),
    }
}

/// Applies `requests` in one transaction and commits it: one result per write.
fn run(conn: &Connection, ctx: &Ctx, pool: &ConnPool, requests: &[Request]) -> Outcome {
    begin(conn).map_err(|e| Fault::Transaction(pool.fail(operation(requests), e)))?;
    run_begun(conn, ctx, pool, requests)
}

/// Starts the group's `BEGIN IMMEDIATE` transaction.
fn begin(conn: &Connection) -> std::result::Result<(), DbError> {
    // A rollback below failed earlier: try again before starting afresh.
    roll_back(conn);
    statement(conn, "BEGIN IMMEDIATE")
}

/// The operation a group's errors name: its first write's.
fn operation(requests: &[Request]) -> &'static str {
    requests.first().map_or("write", |r| r.write.operation())
}

/// Applies `requests` in the transaction [`begin`] started and commits it.
fn run_begun(conn: &Connection, ctx: &Ctx, pool: &ConnPool, requests: &[Request]) -> Outcome {
    let operation = operation(requests);
    // Alone in its group, a write needs no savepoint: the transaction is its own.
    let alone = requests.len() == 1;
    let needed = requests
        .iter()
        .map(|r| r.write.versions_needed())
        .sum::<i64>();
    let reserved = Versions::reserve(conn, ctx, usize::try_from(needed).unwrap_or(0));
    let mut versions = match reserved {
        Ok(versions) => versions,
        Err(e) => {
            roll_back(conn);
            return Err(Fault::Statement(pool.fail(operation, e)));
        }
    };
    let mut results = Vec::with_capacity(requests.len());
    for request in requests {
        let operation = request.write.operation();
        match write(conn, ctx, &mut versions, &request.write, request.now, alone) {
            Ok(written) => results.push(Ok(written)),
            Err(e) if refused(&e) && alone => {
                roll_back(conn);
                return Ok(vec![Err(pool.fail(operation, e))]);
            }
            Err(e) if refused(&e) => results.push(Err(pool.fail(operation, e))),
            Err(e) => {
                roll_back(conn);
                return Err(Fault::Statement(pool.fail(operation, e)));
            }
        }
    }
    statement(conn, "COMMIT").map_err(|e| {
        roll_back(conn);
        Fault::Transaction(pool.fail(operation, e))
    })?;
    Ok(results)
}

/// Whether a write's error is the contract's refusal (it wrote nothing).
fn refused(error: &DbError) -> bool {
    matches!(error, DbError::Store(e) if e.kind() == ErrorKind::ConditionFailed)
}

/// Applies one write inside the group's transaction (`alone` in it: a refusal rolls
/// the transaction back).
fn write(
    conn: &Connection,
    ctx: &Ctx,
    versions: &mut Versions,
    write: &Write,
    now: SystemTime,
    alone: bool,
) -> std::result::Result<Written, DbError> {
    match write {
        Write::Op(WriteOp::Put {
            key,
            value,
            options,
        }) => ops::put(conn, ctx, versions, key, value, *options, now)
            .map(|version| Written::Op(WriteResult::Put(version))),
        Write::Op(WriteOp::Delete { key, condition }) => {
            ops::delete(conn, ctx, key, *condition, now)
                .map(|removed| Written::Op(WriteResult::Delete(removed)))
        }
        Write::Batch(batch) if alone => {
            ops::batch(conn, ctx, versions, batch, now).map(Written::Batch)
        }
        Write::Batch(batch) => self::batch(conn, ctx, versions, batch, now).map(Written::Batch),
        Write::Purge => ops::purge(conn, ctx, now).map(Written::Purged),
    }
}

/// Applies a batch under a savepoint: a refused operation undoes the batch and
/// nothing else of the group.
fn batch(
    conn: &Connection,
    ctx: &Ctx,
    versions: &mut Versions,
    batch: &[WriteOp],
    now: SystemTime,
) -> std::result::Result<Vec<WriteResult>, DbError> {
    statement(conn, "SAVEPOINT pooledstore_batch")?;
    match ops::batch(conn, ctx, versions, batch, now) {
        Ok(results) => {
            statement(conn, "RELEASE pooledstore_batch")?;
            Ok(results)
        }
        Err(e) if refused(&e) => {
            statement(conn, "ROLLBACK TO pooledstore_batch")?;
            statement(conn, "RELEASE pooledstore_batch")?;
            Err(e)
        }
        Err(e) => Err(e),
    }
}

/// Runs `sql`, prepared once per connection: the writer's transaction statements
/// and savepoints run on every group, and parsing them costs more than running them.
fn statement(conn: &Connection, sql: &str) -> std::result::Result<(), DbError> {
    conn.prepare_cached(sql)?.execute([])?;
    Ok(())
}

/// Rolls back the open transaction, if any (SQLite may have rolled it back itself).
fn roll_back(conn: &Connection) {
    if !conn.is_autocommit() {
        let _ = conn.execute_batch("ROLLBACK");
    }
}
