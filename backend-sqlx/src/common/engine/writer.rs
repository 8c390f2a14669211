//! Group commit for the server engines: puts, deletes and batches outside transactions
//! queue on the store's writer ([`group_commit::queue`]); a task takes the writes
//! waiting, applies them in order in ONE serializable transaction on one connection,
//! commits once and only then answers each caller. One such task runs at a time: two
//! groups in flight, which overlapped one's commit with the next one's statements,
//! measured slower, as groups of hundreds of random keys met each other's rows
//! (serialization failures, gap locks) and were retried. A write that finds the
//! writer idle is applied on its caller's own task, with no hand-off.
//!
//! Consecutive single puts of distinct keys are applied together: one statement reads
//! every key's row, and the puts whose condition holds are written in as few
//! statements as the engine allows (PostgreSQL: one upsert over arrays; MySQL: a
//! version drawn per row, then one statement forgets them and one upserts every row).
//!
//! Inside a group, a write the contract refuses (a failed condition) writes nothing and
//! gets its error while the others commit; a batch in a group of several runs under a
//! savepoint, so one refused at its n-th operation undoes only itself. Conflicts with
//! other transactions (serialization failures, deadlocks: the server rolled the whole
//! group back, nothing of it committed) retry the whole group within the conflict
//! budget of [`retry`](crate::common::retry), as a single write's transaction would; a
//! connection found dead on `BEGIN` moves the group to another. Any other failed
//! statement follows [`group_commit::rule`]: the group is rolled back and each write
//! retried alone. A failed commit, a lost connection or a conflict past its budget
//! fails the whole group with that (retryable) error: an outcome that is unknown is
//! never reported as success.

use std::marker::PhantomData;
use std::sync::Arc;
use std::time::SystemTime;

use group_commit::queue::{Call, Lender, Queue, Server};
use group_commit::rule::{Fault, Group, Outcome};
use group_commit::writes::{MAX_GROUP_OPS, Request, Write, Written};
use storage_api::backend::PoolInstruments;
use storage_api::{Condition, ErrorKind, Result, StoreError, WriteOp, WriteResult};

use super::Engine;
use super::lease::Lease;
use super::ops;
use super::queries::Queries;
use super::runs::{self, RunPut};
use super::shared::Shared;
use crate::common::retry::{Failure, Next, Retry};

/// Marks where a batch in a group of several starts.
const SAVEPOINT: &str = "SAVEPOINT pooledstore_batch";
/// Undoes a refused batch, and only it.
const ROLLBACK_TO_SAVEPOINT: &str = "ROLLBACK TO SAVEPOINT pooledstore_batch";
/// Forgets the savepoint of a batch that was applied.
const RELEASE_SAVEPOINT: &str = "RELEASE SAVEPOINT pooledstore_batch";

/// The store as the writer's queue sees it: leases come from the pool through the
/// store's gate.
impl<E: Engine> Lender for Shared<E> {
    type Conn = Lease<E>;

    async fn acquire(&self, operation: &'static str) -> Result<Lease<E>> {
        self.lease(operation).await
    }

    fn release(&self, lease: Lease<E>) {
        drop(lease);
    }

    /// Back to the pool now and then, which enforces `max_lifetime`.
    fn is_due(&self, lease: &Lease<E>) -> bool {
        lease.is_due()
    }

    fn instruments(&self) -> &PoolInstruments {
        &self.instruments
    }

    fn is_closing(&self) -> bool {
        self.gate.is_closing()
    }
}

/// The [`Server`] of an engine store's writer.
#[derive(Debug)]
pub(crate) struct GroupCommit<E>(PhantomData<E>);

impl<E: Engine> Server for GroupCommit<E> {
    type Store = Shared<E>;
    type Request = Request;
    type Answer = Written;
    const OPERATION: &'static str = "write";
    const MAX_GROUP: usize = MAX_GROUP_OPS;

    fn weight(request: &Request) -> usize {
        request.write.ops()
    }

    fn queue(s: &Shared<E>) -> &Queue<Request, Written> {
        &s.writes
    }

    async fn serve(
        s: &Arc<Shared<E>>,
        lease: &mut Lease<E>,
        calls: Vec<Call<Request, Written>>,
    ) -> bool {
        let group = Group::new(calls);
        let outcome = commit(s, lease, group.requests()).await;
        for single in group.settle(outcome) {
            let outcome = commit(s, lease, single.requests()).await;
            let _none_to_retry = single.settle(outcome);
        }
        !lease.evicted()
    }
}

/// Applies `requests` in one transaction and commits it, retrying the whole group on
/// conflicts within the budget and moving it off a connection found dead on `BEGIN`.
/// `lease` is replaced by a fresh one whenever it was evicted.
async fn commit<E: Engine>(s: &Shared<E>, lease: &mut Lease<E>, requests: &[Request]) -> Outcome {
    let operation = requests.first().map_or("write", |r| r.write.operation());
    let mut retry = Retry::new(s.options.max_connections);
    loop {
        if lease.evicted() {
            *lease = s.lease(operation).await.map_err(Fault::Transaction)?;
        }
        let outcome = if is_one_statement(s, requests) {
            put_many(s, lease, requests).await.map_err(Fault::Statement)
        } else {
            let began = s.engine.begin_statement(false);
            match lease.begin(operation, began).await {
                Ok(()) => apply_all(s, lease, requests, operation).await,
                // Nothing was done: a dead connection may be swapped for another.
                Err(error) if lease.evicted() => match retry.next(&error, STALE) {
                    Next::OtherConnection => continue,
                    _ => return Err(Fault::Transaction(error)),
                },
                Err(error) => Err(Fault::Transaction(error)),
            }
        };
        let error = match &outcome {
            Ok(_) => return outcome,
            Err(Fault::Statement(error) | Fault::Transaction(error)) => error,
        };
        let failure = Failure {
            stale: false,
            lock_wait: lease.failure().lock_wait,
        };
        match retry.next(error, failure) {
            Next::After(delay) => {
                // Rolled back first: the lease never leaves here inside a transaction.
                lease
                    .rollback(operation)
                    .await
                    .map_err(Fault::Transaction)?;
                s.check_not_forced().map_err(Fault::Transaction)?;
                tokio::time::sleep(delay).await;
            }
            Next::GiveUp | Next::OtherConnection => {
                // Rolled back before anything else runs; a failure evicts the lease.
                let _ = lease.rollback(operation).await;
                return outcome.map_err(|fault| settled(fault, failure));
            }
        }
    }
}

/// What a failed `BEGIN` on a connection that turned out dead is: nothing was done.
const STALE: Failure = Failure {
    stale: true,
    lock_wait: false,
};

/// Whether `requests` are puts without conditions that the engine writes in one
/// statement which reads their rows itself, on connections whose single statements are
/// serializable transactions of their own: then that statement is the whole group,
/// with no `BEGIN` and `COMMIT` around it (the server commits it before answering).
fn is_one_statement<E: Engine>(s: &Shared<E>, requests: &[Request]) -> bool {
    E::WRITE_READS_ROWS
        && !s.engine.reads_in_transaction()
        && put_run(requests) == requests.len()
        && requests.iter().all(|request| {
            matches!(&request.write, Write::Op(WriteOp::Put { options, .. })
                if options.condition == Condition::Any)
        })
}

/// A fault as the failure rule sees it once retries are over: a conflict past its
/// budget, a lost connection or a closing store fail the whole group (retrying each
/// write alone would meet the same); any other failed statement is the statement's,
/// and so is a lock wait that ran out, whatever its kind (the other writes of the
/// group, retried alone, may not meet that lock).
fn settled(fault: Fault, failure: Failure) -> Fault {
    match fault {
        Fault::Statement(e) if !failure.lock_wait && is_group_wide(&e) => Fault::Transaction(e),
        fault => fault,
    }
}

/// Whether `error` concerns the whole group rather than the statement that met it.
fn is_group_wide(error: &StoreError) -> bool {
    matches!(
        error.kind(),
        ErrorKind::Conflict | ErrorKind::Connection | ErrorKind::Closed | ErrorKind::Timeout
    )
}

/// Applies `requests` in order in the transaction begun on `lease`, then commits it (or
/// rolls it back when every write was refused): one result per write.
async fn apply_all<E: Engine>(
    s: &Shared<E>,
    lease: &mut Lease<E>,
    requests: &[Request],
    operation: &str,
) -> Outcome {
    let isolate = requests.len() > 1;
    let mut results = Vec::with_capacity(requests.len());
    let mut rest = requests;
    while let Some(request) = rest.first() {
        let run = put_run(rest);
        if run > 1 {
            let written = put_many(s, lease, &rest[..run]).await;
            results.extend(written.map_err(Fault::Statement)?);
            rest = &rest[run..];
            continue;
        }
        match apply(s, lease, &request.write, request.now, isolate).await {
            Ok(written) => results.push(Ok(written)),
            Err(refusal) if is_refusal(&refusal) => results.push(Err(refusal)),
            Err(error) => return Err(Fault::Statement(error)),
        }
        rest = &rest[1..];
    }
    if results.iter().all(Result::is_err) {
        // Nothing to keep (a lone batch refused part-way wrote some rows).
        let _ = lease.rollback(operation).await;
    } else {
        lease.commit(operation).await.map_err(Fault::Transaction)?;
    }
    Ok(results)
}

/// How many requests at the front of `requests` are single puts that
/// [`runs::put_many`] applies together.
fn put_run(requests: &[Request]) -> usize {
    runs::run_length(requests.iter().map(|request| match &request.write {
        Write::Op(op) => Some(op),
        _ => None,
    }))
}

/// Applies `requests`, single puts of distinct keys, together ([`runs::put_many`]).
async fn put_many<E: Engine>(
    s: &Shared<E>,
    lease: &mut Lease<E>,
    requests: &[Request],
) -> Result<Vec<Result<Written>>> {
    let puts: Vec<RunPut<'_>> = requests
        .iter()
        .filter_map(|request| match &request.write {
            Write::Op(op) => RunPut::of(op, request.now),
            _ => None,
        })
        .collect();
    let results = runs::put_many(s, lease, &puts).await?;
    Ok(results
        .into_iter()
        .map(|result| result.map(|version| Written::Op(WriteResult::Put(version))))
        .collect())
}

/// Whether `error` is the contract refusing a write that wrote nothing.
fn is_refusal(error: &StoreError) -> bool {
    error.kind() == ErrorKind::ConditionFailed
}

/// Applies one write at `now`; `isolate`: a batch runs under a savepoint of its own.
async fn apply<E: Engine>(
    s: &Shared<E>,
    lease: &mut Lease<E>,
    write: &Write,
    now: SystemTime,
    isolate: bool,
) -> Result<Written> {
    match write {
        Write::Op(WriteOp::Put {
            key,
            value,
            options,
        }) => ops::put(s, lease, key, value, *options, now)
            .await
            .map(|version| Written::Op(WriteResult::Put(version))),
        Write::Op(WriteOp::Delete { key, condition }) => {
            ops::delete(s, lease, key, *condition, now)
                .await
                .map(|removed| Written::Op(WriteResult::Delete(removed)))
        }
        Write::Batch(batch) if isolate => isolated_batch(s, lease, batch, now)
            .await
            .map(Written::Batch),
        Write::Batch(batch) => ops::batch(s, lease, batch, now).await.map(Written::Batch),
        Write::Purge => ops::purge_expired(s, lease, now).await.map(Written::Purged),
    }
}

/// A batch under a savepoint: refused, it undoes its own operations and nothing else.
async fn isolated_batch<E: Engine>(
    s: &Shared<E>,
    lease: &mut Lease<E>,
    batch: &[WriteOp],
    now: SystemTime,
) -> Result<Vec<WriteResult>> {
    savepoint(lease, SAVEPOINT).await?;
    match ops::batch(s, lease, batch, now).await {
        Ok(results) => {
            savepoint(lease, RELEASE_SAVEPOINT).await?;
            Ok(results)
        }
        Err(refusal) if is_refusal(&refusal) => {
            savepoint(lease, ROLLBACK_TO_SAVEPOINT).await?;
            Err(refusal)
        }
        Err(error) => Err(error),
    }
}

/// Runs one of the savepoint statements.
async fn savepoint<E: Engine>(lease: &mut Lease<E>, statement: &'static str) -> Result<()> {
    let done = E::Db::execute_raw(lease.start(), statement).await;
    lease.finish("batch", done).map(drop)
}
