//! The single writer with group commit. Writes (put, delete, batch, purge) queue here;
//! one pooled connection applies every write waiting at that moment in ONE
//! `BEGIN IMMEDIATE` transaction, each under its own savepoint (a write that fails,
//! such as a failed condition, is rolled back alone and the others stay), commits once
//! and only then answers each caller. Writers of one store therefore never fight over
//! SQLite's write lock, and a commit is shared by everyone who was waiting.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use rusqlite::Connection;
use sqlite_common::wal::{CHECKPOINT_EVERY_OPS, CheckpointSchedule};
use storage_api::backend::Lifecycle;
use storage_api::{ErrorKind, StoreError};
use tokio::sync::oneshot;

use crate::errors::DbError;
use crate::ops::Ctx;
use crate::pool::ConnPool;

/// The most write operations (a batch counts each of its operations) one commit
/// takes; later writes wait for the next commit.
const MAX_GROUP_OPS: usize = 1024;
/// Past this many times [`CHECKPOINT_EVERY_OPS`] without a checkpoint, the writer
/// checkpoints on its own connection.
const OVERDUE_FACTOR: usize = 8;
/// SQLite's default `wal_autocheckpoint`, restored when the writer is done.
const DEFAULT_AUTOCHECKPOINT: &str = "PRAGMA wal_autocheckpoint = 1000";

/// The writer of one store.
#[derive(Debug)]
pub(crate) struct Writer {
    queue: Mutex<Queue>,
    pool: Arc<ConnPool>,
    ctx: Arc<Ctx>,
    lifecycle: Arc<Lifecycle>,
    acquire_timeout: Duration,
    /// When the next checkpoint of the write-ahead log is due.
    checkpoints: Arc<CheckpointSchedule>,
}

/// Writes waiting for the next commit, and whether a drain is under way.
#[derive(Default)]
struct Queue {
    jobs: VecDeque<Box<dyn Pending>>,
    draining: bool,
}

impl std::fmt::Debug for Queue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Queue")
            .field("jobs", &self.jobs.len())
            .field("draining", &self.draining)
            .finish()
    }
}

impl Writer {
    /// A writer taking its connection from `pool` within `acquire_timeout`.
    pub(crate) fn new(
        pool: Arc<ConnPool>,
        ctx: Arc<Ctx>,
        lifecycle: Arc<Lifecycle>,
        acquire_timeout: Duration,
    ) -> Arc<Self> {
        Arc::new(Self {
            queue: Mutex::new(Queue::default()),
            pool,
            ctx,
            lifecycle,
            acquire_timeout,
            checkpoints: Arc::new(CheckpointSchedule::default()),
        })
    }

    /// Queues `f` (a write of `ops` operations) for the next commit and returns its
    /// result once that commit is done. The caller keeps its own in-flight guard.
    ///
    /// If the returned future is dropped, the write may or may not be applied; it is
    /// never applied in part.
    pub(crate) async fn submit<R, F>(self: &Arc<Self>, ops: usize, f: F) -> Result<R, DbError>
    where
        F: FnOnce(&Connection, &Ctx) -> Result<R, DbError> + Send + 'static,
        R: Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        let job = Box::new(Job {
            f,
            ops,
            queued: Instant::now(),
            reply,
        });
        let start = {
            let mut queue = self.lock();
            queue.jobs.push_back(job);
            !std::mem::replace(&mut queue.draining, true)
        };
        if start {
            tokio::spawn(Arc::clone(self).drain());
        }
        answer.await.unwrap_or(Err(DbError::Lost))
    }

    /// Writes queued and not yet taken into a group: callers waiting for the writer's
    /// connection.
    pub(crate) fn queued(&self) -> usize {
        self.lock().jobs.len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Checks out the writer connection and commits groups until the queue is empty.
    async fn drain(self: Arc<Self>) {
        let duty = Duty {
            writer: Arc::clone(&self),
            armed: true,
        };
        let lease = match self.lifecycle.enter() {
            Ok(work) => self.pool.acquire(self.acquire_timeout, work).await,
            Err(e) => Err(e),
        };
        let mut lease = match lease {
            Ok(lease) => lease,
            Err(e) => return duty.fail_all(&e),
        };
        let writer = Arc::clone(&self);
        // `duty` moves into the closure: if it never runs or panics, dropping it
        // fails whatever is still queued and lets the next write start a new drain.
        let ran = lease
            .run(move |conn| {
                writer.commit_groups(conn, duty);
                Ok(())
            })
            .await;
        if let Err(e) = ran {
            tracing::debug!(
                backend = "deadpool",
                error = %crate::errors::map_error("write", e),
                "the writer connection failed"
            );
        }
    }

    /// Takes groups off the queue and commits each, until none is waiting.
    ///
    /// SQLite's automatic checkpoint would run inside a commit, with every queued
    /// writer waiting for it: the writer turns it off on its connection and follows
    /// the schedule of [`sqlite_common::wal`] instead (`PASSIVE` checkpoints on another
    /// connection, beside the writer, and now and then a rewind of the log).
    fn commit_groups(&self, conn: &mut Connection, mut duty: Duty) {
        let manual = conn.execute_batch("PRAGMA wal_autocheckpoint = 0").is_ok();
        loop {
            let group = {
                let mut queue = self.lock();
                if queue.jobs.is_empty() {
                    queue.draining = false;
                    duty.armed = false;
                    break;
                }
                take_group(&mut queue.jobs)
            };
            if manual && self.checkpoints.take_rewind() {
                let _ = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()));
            }
            let ops = group.iter().map(|job| job.ops()).sum::<usize>();
            self.commit_group(conn, group);
            if manual {
                self.count_for_checkpoint(conn, ops);
            }
        }
        if manual && conn.execute_batch(DEFAULT_AUTOCHECKPOINT).is_err() {
            tracing::debug!("could not restore wal_autocheckpoint on the writer connection");
        }
    }

    /// Counts `ops` committed operations; starts a checkpoint when enough have been
    /// and none is running.
    fn count_for_checkpoint(&self, conn: &Connection, ops: usize) {
        let start = self.checkpoints.committed(ops);
        if self.checkpoints.since_checkpoint() >= CHECKPOINT_EVERY_OPS * OVERDUE_FACTOR {
            // No connection was free for the background checkpoints: do it here
            // rather than let the log grow without bound.
            if conn
                .query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()))
                .is_ok()
            {
                self.checkpoints.checkpointed_inline();
            }
            if start {
                self.checkpoints.finished(false);
            }
            return;
        }
        if !start {
            return;
        }
        // The writer's blocking thread belongs to the runtime of the write that
        // started the drain.
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            self.checkpoints.finished(false);
            return;
        };
        let checkpoints = Arc::clone(&self.checkpoints);
        let pool = Arc::clone(&self.pool);
        let work = self.lifecycle.enter();
        runtime.spawn(async move {
            let mut ran = false;
            // No free connection, or closing: the next round tries again.
            if let Ok(work) = work
                && let Some(mut lease) = pool.try_acquire(work).await
            {
                let done = lease
                    .run(|conn| {
                        conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()))
                            .map_err(DbError::from)
                    })
                    .await;
                match done {
                    Ok(()) => ran = true,
                    Err(e) => tracing::debug!(
                        error = %crate::errors::map_error("checkpoint", e),
                        "a background WAL checkpoint failed"
                    ),
                }
            }
            checkpoints.finished(ran);
        });
    }

    /// Applies `group` in one transaction and answers every job in it.
    fn commit_group(&self, conn: &mut Connection, group: Vec<Box<dyn Pending>>) {
        let instruments = self.pool.instruments();
        let now = Instant::now();
        // Callers that gave up no longer need their write (dropping a future may or
        // may not apply its write).
        let group: Vec<_> = group.into_iter().filter(|job| !job.abandoned()).collect();
        if group.is_empty() {
            return;
        }
        for job in &group {
            instruments.record_acquired(now.saturating_duration_since(job.queued()));
        }
        if !conn.is_autocommit() {
            // A rollback below failed earlier: try again before starting afresh.
            let _ = conn.execute_batch("ROLLBACK");
        }
        if let Err(e) = conn.execute_batch("BEGIN IMMEDIATE") {
            return group.into_iter().for_each(|job| job.fail(duplicate(&e)));
        }
        let mut applied: Vec<Box<dyn Applied>> = Vec::with_capacity(group.len());
        let mut jobs = group.into_iter();
        let mut broken: Option<rusqlite::Error> = None;
        if jobs.len() == 1 {
            // Alone in its group: the transaction is its own, no savepoint needed.
            if let Some(job) = jobs.next() {
                let done = job.apply(conn, &self.ctx);
                if done.failed() {
                    if !conn.is_autocommit() {
                        let _ = conn.execute_batch("ROLLBACK");
                    }
                    return done.deliver(None);
                }
                applied.push(done);
            }
        }
        for job in jobs.by_ref() {
            if let Err(e) = savepoint(conn, "SAVEPOINT pooledstore_op") {
                job.fail(duplicate(&e));
                broken = Some(e);
                break;
            }
            let done = job.apply(conn, &self.ctx);
            let kept = if done.failed() {
                savepoint(conn, "ROLLBACK TO pooledstore_op")
                    .and_then(|()| savepoint(conn, "RELEASE pooledstore_op"))
            } else {
                savepoint(conn, "RELEASE pooledstore_op")
            };
            applied.push(done);
            if let Err(e) = kept {
                broken = Some(e);
                break;
            }
            if conn.is_autocommit() {
                // The database rolled the whole transaction back (an I/O error, an
                // interrupt): nothing of this group is kept.
                broken = Some(rolled_back());
                break;
            }
        }
        let outcome = match broken {
            Some(e) => Err(e),
            None => conn.execute_batch("COMMIT"),
        };
        match outcome {
            Ok(()) => applied.into_iter().for_each(|done| done.deliver(None)),
            Err(e) => {
                if !conn.is_autocommit() {
                    let _ = conn.execute_batch("ROLLBACK");
                }
                jobs.for_each(|job| job.fail(duplicate(&e)));
                applied
                    .into_iter()
                    .for_each(|done| done.deliver(Some(duplicate(&e))));
            }
        }
    }
}

/// Up to [`MAX_GROUP_OPS`] operations off the front of the queue (always at least one
/// job, however large).
fn take_group(jobs: &mut VecDeque<Box<dyn Pending>>) -> Vec<Box<dyn Pending>> {
    let mut group = Vec::new();
    let mut ops = 0;
    while let Some(job) = jobs.front() {
        if !group.is_empty() && ops + job.ops() > MAX_GROUP_OPS {
            break;
        }
        ops += job.ops();
        group.extend(jobs.pop_front());
    }
    group
}

fn savepoint(conn: &Connection, sql: &str) -> rusqlite::Result<()> {
    conn.prepare_cached(sql)?.execute([]).map(drop)
}

fn rolled_back() -> rusqlite::Error {
    rusqlite::Error::SqliteFailure(
        rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_ABORT),
        Some("the database rolled the write transaction back".to_owned()),
    )
}

/// A copy of a group-wide failure for each job in the group.
fn duplicate(err: &rusqlite::Error) -> DbError {
    match err {
        rusqlite::Error::SqliteFailure(code, message) => {
            DbError::Sqlite(rusqlite::Error::SqliteFailure(*code, message.clone()))
        }
        other => DbError::Store(
            StoreError::new(ErrorKind::Backend, "the write transaction failed")
                .with_source(other.to_string()),
        ),
    }
}

/// The drain under way: until disarmed (the queue seen empty), dropping it ends the
/// drain and fails every write still queued, so no caller waits forever.
struct Duty {
    writer: Arc<Writer>,
    armed: bool,
}

impl Duty {
    fn fail_all(mut self, err: &StoreError) {
        self.armed = false;
        let jobs = {
            let mut queue = self.writer.lock();
            queue.draining = false;
            std::mem::take(&mut queue.jobs)
        };
        for job in jobs {
            job.fail(DbError::Store(StoreError::new(err.kind(), err.message())));
        }
    }
}

impl Drop for Duty {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        let jobs = {
            let mut queue = self.writer.lock();
            queue.draining = false;
            std::mem::take(&mut queue.jobs)
        };
        let closed = self.writer.lifecycle.is_closed();
        for job in jobs {
            job.fail(if closed {
                StoreError::closed().into()
            } else {
                DbError::Lost
            });
        }
    }
}

/// A queued write, type-erased.
trait Pending: Send {
    /// How many operations it holds.
    fn ops(&self) -> usize;
    /// When it was queued.
    fn queued(&self) -> Instant;
    /// Whether its caller has gone.
    fn abandoned(&self) -> bool;
    /// Runs it inside the open transaction; its answer waits for the commit.
    fn apply(self: Box<Self>, conn: &Connection, ctx: &Ctx) -> Box<dyn Applied>;
    /// Answers it with `err` without running it.
    fn fail(self: Box<Self>, err: DbError);
}

/// A write that has run, waiting for the commit to answer its caller.
trait Applied: Send {
    /// Whether it failed (and so must be rolled back to its savepoint).
    fn failed(&self) -> bool;
    /// Answers the caller: its own result if the commit succeeded (`None`) or it
    /// failed by itself, otherwise the commit's failure.
    fn deliver(self: Box<Self>, commit_failure: Option<DbError>);
}

struct Job<R, F> {
    f: F,
    ops: usize,
    queued: Instant,
    reply: oneshot::Sender<Result<R, DbError>>,
}

impl<R, F> Pending for Job<R, F>
where
    F: FnOnce(&Connection, &Ctx) -> Result<R, DbError> + Send + 'static,
    R: Send + 'static,
{
    fn ops(&self) -> usize {
        self.ops.max(1)
    }

    fn queued(&self) -> Instant {
        self.queued
    }

    fn abandoned(&self) -> bool {
        self.reply.is_closed()
    }

    fn apply(self: Box<Self>, conn: &Connection, ctx: &Ctx) -> Box<dyn Applied> {
        let Job { f, reply, .. } = *self;
        Box::new(Done {
            out: f(conn, ctx),
            reply,
        })
    }

    fn fail(self: Box<Self>, err: DbError) {
        let _ = self.reply.send(Err(err));
    }
}

struct Done<R> {
    out: Result<R, DbError>,
    reply: oneshot::Sender<Result<R, DbError>>,
}

impl<R: Send + 'static> Applied for Done<R> {
    fn failed(&self) -> bool {
        self.out.is_err()
    }

    fn deliver(self: Box<Self>, commit_failure: Option<DbError>) {
        let out = match (self.out, commit_failure) {
            (Ok(_), Some(e)) => Err(e),
            (out, _) => out,
        };
        let _ = self.reply.send(out);
    }
}
