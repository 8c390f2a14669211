//! The store-level operations the retry loop runs as [`Work`] (values it can run again
//! on the same or another connection): reads and the purge. Puts, deletes and batches
//! go through the group-commit [`writer`](super::writer).

use std::future::Future;
use std::time::SystemTime;

use storage_api::{Entry, Result, ScanOptions};

use super::Engine;
use super::lease::Lease;
use super::ops;
use super::shared::Shared;

/// One store-level operation, runnable any number of times.
pub(crate) trait Work: Sync {
    /// What the operation returns.
    type Output: Send;

    /// `true` for writes, which run in a read-write serializable transaction; reads
    /// run as one statement (see [`Engine::reads_in_transaction`]).
    const WRITES: bool;

    /// The operation's name in errors and traces.
    const NAME: &'static str;

    /// Runs the operation's statements on `lease` at `now`.
    fn run<'a, E: Engine>(
        &'a self,
        s: &'a Shared<E>,
        lease: &'a mut Lease<E>,
        now: SystemTime,
    ) -> impl Future<Output = Result<Self::Output>> + Send + 'a;
}

/// `get`.
pub(crate) struct Get<'k> {
    pub(crate) key: &'k [u8],
}

impl Work for Get<'_> {
    type Output = Option<Entry>;
    const WRITES: bool = false;
    const NAME: &'static str = "get";

    fn run<'a, E: Engine>(
        &'a self,
        s: &'a Shared<E>,
        lease: &'a mut Lease<E>,
        now: SystemTime,
    ) -> impl Future<Output = Result<Self::Output>> + Send + 'a {
        ops::get(s, lease, self.key, now, false)
    }
}

/// `scan`, with its checked limit.
pub(crate) struct Scan<'o> {
    pub(crate) options: &'o ScanOptions,
    pub(crate) limit: usize,
}

impl Work for Scan<'_> {
    type Output = Vec<Entry>;
    const WRITES: bool = false;
    const NAME: &'static str = "scan";

    fn run<'a, E: Engine>(
        &'a self,
        s: &'a Shared<E>,
        lease: &'a mut Lease<E>,
        now: SystemTime,
    ) -> impl Future<Output = Result<Self::Output>> + Send + 'a {
        ops::scan(s, lease, self.options, self.limit, now)
    }
}

/// `purge_expired`.
pub(crate) struct Purge;

impl Work for Purge {
    type Output = u64;
    const WRITES: bool = true;
    const NAME: &'static str = "purge_expired";

    fn run<'a, E: Engine>(
        &'a self,
        s: &'a Shared<E>,
        lease: &'a mut Lease<E>,
        now: SystemTime,
    ) -> impl Future<Output = Result<Self::Output>> + Send + 'a {
        ops::purge_expired(s, lease, now)
    }
}
