//! Point reads, coalesced under concurrency. A `get` that finds no other read under
//! way runs alone on a lent connection. One that arrives while others are running
//! joins a queue instead; one task takes every queued read at that moment and answers
//! them all with one multi-key `SELECT … WHERE key IN (…)`, so sixteen concurrent reads
//! cost one round trip to a connection's worker thread rather than sixteen.
//!
//! Each read still sees committed data as of a moment between its call and its
//! answer (the statement runs then, on the store's clock read then), so coalescing
//! changes no result a caller could observe.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use sqlx::SqliteConnection;
use storage_api::{Entry, ErrorKind, Result, StoreError, to_unix_millis};
use tokio::sync::oneshot;

use super::ops;
use super::shared::Shared;
use crate::common::rows::entry;
use crate::common::stash::Lent;

/// The most reads one statement group answers; later ones wait for the next.
const MAX_GROUP: usize = 128;

/// A row as the multi-key read returns it: key, value, version, expires_at (ms).
type Row = (Vec<u8>, Vec<u8>, i64, Option<i64>);

/// The reads of one store: how many run alone, and the queue of the others.
#[derive(Debug, Default)]
pub(crate) struct Reader {
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    /// Reads running alone right now.
    alone: usize,
    jobs: VecDeque<Job>,
    draining: bool,
}

impl std::fmt::Debug for State {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("State")
            .field("alone", &self.alone)
            .field("jobs", &self.jobs.len())
            .field("draining", &self.draining)
            .finish()
    }
}

/// A queued read and the caller waiting for it.
struct Job {
    key: Vec<u8>,
    queued: Instant,
    reply: oneshot::Sender<Result<Option<Entry>>>,
}

impl Reader {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The reads of the next group whose callers still wait; when none wait, marks
    /// the queue as no longer drained and returns none.
    fn next_group(&self) -> Vec<Job> {
        let mut state = self.lock();
        let mut jobs = Vec::new();
        while jobs.len() < MAX_GROUP {
            match state.jobs.pop_front() {
                Some(job) if job.reply.is_closed() => {}
                Some(job) => jobs.push(job),
                None => break,
            }
        }
        if jobs.is_empty() {
            state.draining = false;
        }
        jobs
    }
}

/// Reads the live entry under `key`: alone when no other read is under way, else
/// with the reads queued beside it. The caller keeps its own in-flight guard.
pub(crate) async fn get(s: &Arc<Shared>, key: &[u8]) -> Result<Option<Entry>> {
    let alone = {
        let mut state = s.reader.lock();
        let alone = state.alone == 0 && !state.draining;
        if alone {
            state.alone += 1;
        }
        alone
    };
    if alone {
        let _alone = Alone { s };
        let mut conn = s.acquire("get").await?;
        let entry = ops::get(s, &mut conn, key, s.now()).await?;
        s.release(conn);
        return Ok(entry);
    }
    let (reply, answer) = oneshot::channel();
    let job = Job {
        key: key.to_vec(),
        queued: Instant::now(),
        reply,
    };
    let start = {
        let mut state = s.reader.lock();
        state.jobs.push_back(job);
        !std::mem::replace(&mut state.draining, true)
    };
    if start {
        tokio::spawn(drain(Arc::clone(s)));
    }
    answer.await.unwrap_or_else(|_| {
        Err(StoreError::new(
            ErrorKind::Backend,
            "get: the reader stopped before answering",
        ))
    })
}

/// Counts a read running alone until it ends, however it ends.
struct Alone<'a> {
    s: &'a Shared,
}

impl Drop for Alone<'_> {
    fn drop(&mut self) {
        self.s.reader.lock().alone -= 1;
    }
}

/// Answers queued reads, group after group, until none is queued.
async fn drain(s: Arc<Shared>) {
    let mut duty = Duty { s: &s, armed: true };
    let mut conn: Option<Lent<sqlx::Sqlite>> = None;
    loop {
        let jobs = s.reader.next_group();
        if jobs.is_empty() {
            duty.armed = false;
            if let Some(conn) = conn {
                s.release(conn);
            }
            return;
        }
        if conn.as_ref().is_some_and(Lent::is_due) {
            conn = None;
        }
        // The checkout itself counts as the first read's acquisition.
        let fresh = conn.is_none();
        if fresh {
            match s.acquire("get").await {
                Ok(c) => conn = Some(c),
                Err(e) => {
                    for job in jobs {
                        let _ = job.reply.send(Err(StoreError::new(e.kind(), e.message())));
                    }
                    continue;
                }
            }
        }
        if let Some(c) = conn.as_mut()
            && !answer(&s, c, jobs, fresh).await
        {
            conn = None;
        }
    }
}

/// If a drain ends early (its task panicked or was dropped with the runtime), fails
/// what is still queued and lets the next read start a new drain.
struct Duty<'a> {
    s: &'a Shared,
    armed: bool,
}

impl Drop for Duty<'_> {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        let jobs: Vec<Job> = {
            let mut state = self.s.reader.lock();
            state.draining = false;
            state.jobs.drain(..).collect()
        };
        for job in jobs {
            let _ = job.reply.send(Err(StoreError::new(
                ErrorKind::Backend,
                "get: the reader stopped",
            )));
        }
    }
}

/// Reads every key of `jobs` and answers each job; `false` if the reads failed.
///
/// Each read counts as one acquisition in the pool's instruments, waiting as long as
/// it queued (`fresh`: the first one's was counted by the checkout).
async fn answer(s: &Shared, conn: &mut SqliteConnection, jobs: Vec<Job>, fresh: bool) -> bool {
    for job in jobs.iter().skip(usize::from(fresh)) {
        s.instruments.record_acquired(job.queued.elapsed());
    }
    // Each distinct key is read once; its last reader takes the entry, earlier
    // ones get copies.
    let mut seen: HashSet<&[u8]> = HashSet::with_capacity(jobs.len());
    let mut last: Vec<bool> = jobs
        .iter()
        .rev()
        .map(|job| seen.insert(job.key.as_slice()))
        .collect();
    last.reverse();
    let keys: Vec<&[u8]> = seen.into_iter().collect();
    let found = read(s, conn, &keys).await;
    drop(keys);
    let mut found = match found {
        Ok(found) => found,
        Err(e) => {
            for job in jobs {
                let _ = job.reply.send(Err(StoreError::new(e.kind(), e.message())));
            }
            return false;
        }
    };
    for (job, last) in jobs.into_iter().zip(last) {
        let entry = if last {
            found.remove(&job.key)
        } else {
            found.get(&job.key).cloned()
        };
        let _ = job.reply.send(Ok(entry));
    }
    true
}

/// The live entries among `keys` (distinct), as of now on the store's clock.
async fn read(
    s: &Shared,
    conn: &mut SqliteConnection,
    keys: &[&[u8]],
) -> Result<HashMap<Vec<u8>, Entry>> {
    let now = to_unix_millis(s.now());
    let mut found = HashMap::with_capacity(keys.len());
    let mut rest = keys;
    while let Some(&pad) = rest.last() {
        let (sql, size) = s.sql.get_chunk(rest.len());
        let (chunk, tail) = rest.split_at(size.min(rest.len()));
        let mut query = sqlx::query_as::<_, Row>(sql).bind(now);
        // Short of the statement's size, the last key is repeated (read once).
        for key in chunk
            .iter()
            .chain(std::iter::repeat_n(&pad, size - chunk.len()))
        {
            query = query.bind(*key);
        }
        let rows = query
            .fetch_all(&mut *conn)
            .await
            .map_err(|e| s.fail("get", e))?;
        for (key, value, version, expires_at) in rows {
            found.insert(key.clone(), entry(key, value, version, expires_at)?);
        }
        rest = tail;
    }
    Ok(found)
}
