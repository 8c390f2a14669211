//! One turn of the [`writer`](crate::writer)'s connection: the steps it takes
//! ([`Round::next_step`]: the groups it applies, and the checkpoints the schedule asks
//! of it) and how each group's callers are answered ([`Round::settle`], the failure
//! rule).
//!
//! # The failure rule
//!
//! One write's failure is never another's, nothing acknowledged is lost, and no write
//! is applied twice:
//!
//! - A write the contract refuses (a condition that does not hold, a batch failing at
//!   its n-th operation) writes nothing (a single write checks before it writes, a
//!   batch runs under a savepoint of its own) and gets its error; the rest of its
//!   group commits.
//! - If a statement fails (a full disk, a trigger, a damaged page), the group's
//!   transaction is rolled back as a whole ([`Fault::Statement`]) and each write of
//!   the group is retried alone, in a transaction of its own, so the failure reaches
//!   only the caller whose write causes it. Nothing of the rolled-back group was
//!   committed, so nothing is applied twice.
//! - If the group fails as a whole ([`Fault::Transaction`]: its transaction cannot
//!   start or commit), every write of the group fails with that error, and none is
//!   retried: retrying would only wait for the same lock (or meet the same fault)
//!   again, and a failed commit is not retried blind.
//!
//! This rather than a savepoint around every write: savepoints cost two statements per
//! write on every commit, cannot isolate writes that share a statement (multi-row
//! upserts), and do not survive the errors on which SQLite rolls back the whole
//! transaction itself (a full disk, an I/O error), which would fail every write of the
//! group; a retry costs only when something failed.

use std::sync::Arc;

use storage_api::{Result, StoreError};

use crate::queue::{Call, Lender, Reply, copy};
use crate::writes::{MAX_GROUP_OPS, Request, Writer, Written};

/// Why a group did not commit (see the failure rule in the [module](self) docs).
#[derive(Debug)]
pub enum Fault {
    /// A statement failed; the transaction is rolled back and nothing of the group
    /// was kept. Each write is retried alone.
    Statement(StoreError),
    /// The group as a whole failed (starting its transaction, preparing what its
    /// writes share, committing it): every write of the group fails.
    Transaction(StoreError),
}

/// What applying a group gave: one result per write, in order (an error being a
/// refusal that wrote nothing), or the group's fault.
pub type Outcome = std::result::Result<Vec<Result<Written>>, Fault>;

/// One group of writes: what a [`GroupWriter`](crate::writer::GroupWriter) applies in
/// one transaction.
#[derive(Debug)]
pub struct Group {
    requests: Vec<Request>,
    replies: Vec<Reply<Written>>,
}

impl Group {
    pub(crate) fn new(calls: Vec<Call<Request, Written>>) -> Self {
        let (requests, replies) = calls.into_iter().map(Call::into_parts).unzip();
        Self { requests, replies }
    }

    /// The writes to apply, in order.
    pub fn requests(&self) -> &[Request] {
        &self.requests
    }

    /// How many write operations it holds.
    fn ops(&self) -> usize {
        self.requests.iter().map(|r| r.write.ops()).sum()
    }

    /// Answers the callers by the failure rule; the groups of one write each to retry
    /// when a statement failed in a group of several.
    fn settle(self, outcome: Outcome) -> Vec<Group> {
        let Group { requests, replies } = self;
        match outcome {
            Ok(results) => {
                for (reply, result) in replies.into_iter().zip(results) {
                    reply.answer(result);
                }
                Vec::new()
            }
            Err(Fault::Statement(e)) if replies.len() > 1 => {
                tracing::debug!(error = %e, writes = replies.len(),
                    "a write failed inside a group; retrying each write alone");
                requests
                    .into_iter()
                    .zip(replies)
                    .map(|(request, reply)| Group {
                        requests: vec![request],
                        replies: vec![reply],
                    })
                    .collect()
            }
            Err(Fault::Statement(e) | Fault::Transaction(e)) => {
                let mut replies = replies.into_iter();
                let last = replies.next_back();
                replies.for_each(|reply| reply.answer(Err(copy(&e))));
                if let Some(reply) = last {
                    reply.answer(Err(e));
                }
                Vec::new()
            }
        }
    }
}

/// The groups one turn of the writer's connection applies, one after the other: the
/// group the writer took, then, for a backend that applies them on a thread of the
/// connection's own
/// ([`GroupWriter::ON_OWN_THREAD`](crate::writer::GroupWriter::ON_OWN_THREAD)), the
/// groups queued meanwhile, so that thread goes on writing without a hand-off per
/// group.
///
/// A backend takes each [step](Self::next_step) in turn: a checkpoint on the writer's
/// connection, reported with [`checkpointed`](Self::checkpointed), or a group to
/// apply and [settle](Self::settle); then it hands back what is left
/// ([`finish`](Self::finish)).
pub struct Round<S: Lender> {
    store: Arc<S>,
    /// The store's writer.
    writer: fn(&S) -> &Writer,
    /// Counts committed operations towards the checkpoint schedule.
    committed: fn(&Arc<S>, usize),
    first: Option<Group>,
    goes_on: bool,
    /// The last step was a checkpoint (the next is a group, whatever the schedule).
    checkpointed: bool,
    left: Settled,
}

impl<S: Lender> std::fmt::Debug for Round<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Round")
            .field("first", &self.first)
            .field("goes_on", &self.goes_on)
            .field("checkpointed", &self.checkpointed)
            .field("left", &self.left)
            .finish_non_exhaustive()
    }
}

/// What a [`Round`] asks of the backend next.
#[derive(Debug)]
pub enum Step {
    /// Run a `PASSIVE` checkpoint on the writer's connection, then report it
    /// ([`Round::checkpointed`]).
    Checkpoint,
    /// Apply this group in one transaction, then settle it ([`Round::settle`]).
    Apply(Group),
}

/// What is left when a round ends.
#[derive(Debug)]
#[must_use]
pub struct Settled {
    /// Groups of one write each, to apply one after the other.
    pub(crate) retry: Vec<Group>,
    /// Whether nothing failed beyond a refused write (the connection may serve the
    /// next group).
    pub(crate) clean: bool,
}

impl Settled {
    /// A round lost as a whole (the code applying it panicked or never ran): the
    /// callers of its groups, never answered, hear that the writer stopped.
    pub fn failed() -> Self {
        Settled {
            retry: Vec::new(),
            clean: false,
        }
    }
}

impl<S: Lender> Round<S> {
    /// A round that applies `group`, then (if `goes_on`) the groups queued meanwhile
    /// in `writer(store)`'s queue, reporting what each commits to `committed`.
    pub(crate) fn new(
        store: &Arc<S>,
        writer: fn(&S) -> &Writer,
        committed: fn(&Arc<S>, usize),
        group: Group,
        goes_on: bool,
    ) -> Self {
        Self {
            store: Arc::clone(store),
            writer,
            committed,
            first: Some(group),
            goes_on,
            checkpointed: false,
            left: Settled {
                retry: Vec::new(),
                clean: true,
            },
        }
    }

    /// What to do next: a checkpoint on the writer's connection when the schedule
    /// asks for one before a group (see [`wal`](crate::wal)); the group the writer
    /// took; then (for a round that goes on) the calls queued since, as long as every
    /// group so far settled cleanly. Callers that gave up are skipped. `None` when
    /// the round is over.
    pub fn next_step(&mut self) -> Option<Step> {
        let writer = (self.writer)(&self.store);
        let checkpoint_due = writer
            .checkpoints()
            .is_some_and(|schedule| schedule.writer_checkpoint_due());
        let group = match self.first.take() {
            Some(first) => first,
            None if self.goes_on && self.left.clean => {
                let calls = writer
                    .queue()
                    .take_waiting(MAX_GROUP_OPS, |r: &Request| r.write.ops());
                if calls.is_empty() {
                    return None;
                }
                let instruments = self.store.instruments();
                for call in &calls {
                    instruments.record_acquired(call.waited());
                }
                Group::new(calls)
            }
            None => return None,
        };
        if checkpoint_due && !self.checkpointed {
            self.first = Some(group);
            self.checkpointed = true;
            return Some(Step::Checkpoint);
        }
        self.checkpointed = false;
        Some(Step::Apply(group))
    }

    /// Records the checkpoint a [`Step::Checkpoint`] asked for (`ran`: it did).
    pub fn checkpointed(&mut self, ran: bool) {
        if let Some(schedule) = (self.writer)(&self.store).checkpoints() {
            schedule.writer_checkpointed(ran);
        }
    }

    /// Answers `group`'s callers by the failure rule, given what applying it gave,
    /// and counts what it committed towards the checkpoint schedule. Called where the
    /// outcome is known (on the connection's own thread, say), so callers hear at once.
    pub fn settle(&mut self, group: Group, outcome: Outcome) {
        let committed = outcome.is_ok().then(|| group.ops());
        self.left.retry.extend(group.settle(outcome));
        match committed {
            Some(ops) => (self.committed)(&self.store, ops),
            None => self.left.clean = false,
        }
    }

    /// What is left once no group follows: the writes to retry alone, and whether
    /// the connection may serve the next group.
    pub fn finish(self) -> Settled {
        self.left
    }
}
