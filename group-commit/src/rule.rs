//! One group of writes ([`Group`]) and the failure rule that answers its callers
//! ([`Group::settle`]), the same for every engine.
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
//! upserts), and do not survive the errors on which a database rolls back the whole
//! transaction itself (SQLite on a full disk or an I/O error, PostgreSQL on any failed
//! statement), which would fail every write of the
//! group; a retry costs only when something failed.

use storage_api::{Result, StoreError};

use crate::queue::{Call, Reply, copy};
use crate::writes::{Request, Written};

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

/// One group of writes: what a writer applies in one transaction.
#[derive(Debug)]
pub struct Group {
    requests: Vec<Request>,
    replies: Vec<Reply<Written>>,
}

impl Group {
    /// The group of `calls`, in order.
    pub fn new(calls: Vec<Call<Request, Written>>) -> Self {
        let (requests, replies) = calls.into_iter().map(Call::into_parts).unzip();
        Self { requests, replies }
    }

    /// The writes to apply, in order.
    pub fn requests(&self) -> &[Request] {
        &self.requests
    }

    /// How many write operations it holds.
    pub fn ops(&self) -> usize {
        self.requests.iter().map(|r| r.write.ops()).sum()
    }

    /// Answers the callers by the failure rule; the groups of one write each to retry
    /// when a statement failed in a group of several.
    pub fn settle(self, outcome: Outcome) -> Vec<Group> {
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
