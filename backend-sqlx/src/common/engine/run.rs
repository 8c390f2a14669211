//! Running store-level operations to completion with the shared retry decisions
//! ([`Retry`]): conflicts (serialization failures, deadlocks: the server rolled the
//! whole transaction back) are retried within a budget, and a connection found dead on
//! its first statement is evicted and the operation moves to another one. A lock wait
//! that ran out (`Busy`, or on MySQL `Conflict`) is reported, not retried: the caller
//! has waited the busy timeout.

use storage_api::Result;

use super::Engine;
use super::lease::Lease;
use super::shared::Shared;
use super::work::Work;
use crate::common::retry::{Next, Retry};

impl<E: Engine> Shared<E> {
    /// Runs `work` to completion: writes in a serializable read-write transaction,
    /// reads as one statement (or in a read-only transaction where the engine says so),
    /// retrying as the module docs describe.
    pub(crate) async fn run<W: Work>(&self, work: &W) -> Result<W::Output> {
        let mut retry = Retry::new(self.options.max_connections);
        loop {
            let mut lease = self.lease(W::NAME).await?;
            loop {
                let error = match self.attempt(&mut lease, work).await {
                    Ok(output) => return Ok(output),
                    Err(error) => error,
                };
                match retry.next(&error, lease.failure()) {
                    Next::GiveUp => return Err(error),
                    Next::OtherConnection => break,
                    Next::After(delay) => {
                        self.check_not_forced()?;
                        lease.rollback(W::NAME).await?;
                        tokio::time::sleep(delay).await;
                    }
                }
            }
        }
    }

    /// One attempt of `work` on `lease`.
    async fn attempt<W: Work>(&self, lease: &mut Lease<E>, work: &W) -> Result<W::Output> {
        let now = self.now();
        if !W::WRITES && !self.engine.reads_in_transaction() {
            return work.run(self, lease, now).await;
        }
        let begin = self.engine.begin_statement(!W::WRITES);
        lease.begin(W::NAME, begin).await?;
        let output = work.run(self, lease, now).await?;
        lease.commit(W::NAME).await?;
        Ok(output)
    }

    /// A lease with a transaction begun on it, for [`Transaction`]s: moves past
    /// connections found dead, like [`run`](Self::run).
    ///
    /// [`Transaction`]: storage_api::Transaction
    pub(crate) async fn begin_lease(&self, read_only: bool) -> Result<Lease<E>> {
        let mut retry = Retry::new(self.options.max_connections);
        loop {
            let mut lease = self.lease("begin").await?;
            let begin = self.engine.begin_statement(read_only);
            match lease.begin("begin", begin).await {
                Ok(()) => return Ok(lease),
                Err(error) => match retry.next(&error, lease.failure()) {
                    Next::OtherConnection => continue,
                    _ => return Err(error),
                },
            }
        }
    }
}
