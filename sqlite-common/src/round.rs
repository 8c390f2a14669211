//! One turn of the [`writer`](crate::writer)'s connection: the steps it takes
//! ([`Round::next_step`]: the groups it applies, and the checkpoints the schedule asks
//! of it) and how each group's callers are answered ([`Round::settle`], the failure
//! rule).
//!
//! The failure rule itself is engine-neutral: see [`group_commit::rule`].

use std::sync::Arc;

pub use group_commit::rule::{Fault, Group, Outcome};

use crate::queue::Lender;
use crate::wal::WriterCheckpoint;
use crate::writes::{MAX_GROUP_OPS, Request, Writer};

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
    /// The next group goes ahead whatever the schedule: the last step was a
    /// checkpoint, or the group was given back ([`put_back`](Self::put_back)).
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

    /// Gives back a step the backend did not take where it was (a write it keeps off
    /// the async thread, say): the next [`next_step`](Self::next_step) returns it
    /// again, a group as it was decided, whatever the schedule says by then.
    pub fn put_back(&mut self, step: Step) {
        match step {
            Step::Checkpoint => self.checkpointed = false,
            Step::Apply(group) => {
                self.first = Some(group);
                self.checkpointed = true;
            }
        }
    }

    /// Records how the checkpoint a [`Step::Checkpoint`] asked for went.
    pub fn checkpointed(&mut self, ran: WriterCheckpoint) {
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
