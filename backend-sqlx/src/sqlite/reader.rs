//! Point reads, coalesced under concurrency. A `get` that finds no other read under
//! way runs alone on a lent connection. One that arrives while others are running
//! joins a queue instead; one task takes every queued read at that moment and answers
//! them all with one multi-key `SELECT … WHERE key IN (…)`, so sixteen concurrent reads
//! cost one round trip to a connection's worker thread rather than sixteen.
//!
//! Each read still sees committed data as of a moment between its call and its
//! answer (the statement runs then, on the store's clock read then), so coalescing
//! changes no result a caller could observe.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use sqlite_common::queue::{self, Call, Queue, Server};
use sqlx::{Sqlite, SqliteConnection};
use storage_api::backend::to_unix_millis;
use storage_api::{Entry, Result};

use super::ops;
use super::shared::Shared;
use crate::common::stash::Lent;

/// The most reads one statement group answers; later ones wait for the next.
const MAX_GROUP: usize = 128;

/// A queued read and the caller waiting for it.
type Job = Call<Vec<u8>, Option<Entry>>;

/// The reader: serves the queue of point reads (see [`sqlite_common::queue`]).
#[derive(Debug)]
pub(crate) struct Reads;

impl Server for Reads {
    type Store = Shared;
    type Request = Vec<u8>;
    type Answer = Option<Entry>;
    const OPERATION: &'static str = "get";
    const MAX_GROUP: usize = MAX_GROUP;

    fn queue(shared: &Shared) -> &Queue<Vec<u8>, Option<Entry>> {
        &shared.reader
    }

    async fn serve(shared: &Arc<Shared>, conn: &mut Lent<Sqlite>, calls: Vec<Job>) -> bool {
        answer(shared, conn, calls).await
    }
}

/// Reads the live entry under `key`: alone when no other read is under way, else
/// with the reads queued beside it. The caller keeps its own in-flight guard.
pub(crate) async fn get(s: &Arc<Shared>, key: &[u8]) -> Result<Option<Entry>> {
    if let Some(_alone) = s.reader.alone() {
        let mut conn = s.acquire("get").await?;
        let entry = ops::get(s, &mut conn, key, s.now()).await?;
        s.release(conn);
        return Ok(entry);
    }
    // Boxed for the same reason as the pool's checkout (see `Shared::acquire`): a
    // lone read's future stays small.
    Box::pin(queue::call::<Reads>(s, key.to_vec())).await
}

/// Reads every key of `jobs` and answers each job; `false` if the reads failed.
async fn answer(s: &Shared, conn: &mut SqliteConnection, jobs: Vec<Job>) -> bool {
    // Each distinct key is read once; its last reader takes the entry, earlier
    // ones get copies.
    let mut seen: HashSet<&[u8]> = HashSet::with_capacity(jobs.len());
    let mut last: Vec<bool> = jobs
        .iter()
        .rev()
        .map(|job| seen.insert(job.request().as_slice()))
        .collect();
    last.reverse();
    let keys: Vec<&[u8]> = seen.into_iter().collect();
    let found = read(s, conn, &keys).await;
    drop(keys);
    let mut found = match found {
        Ok(found) => found,
        Err(e) => {
            jobs.into_iter().for_each(|job| job.fail(&e));
            return false;
        }
    };
    for (job, last) in jobs.into_iter().zip(last) {
        let entry = if last {
            found.remove(job.request())
        } else {
            found.get(job.request()).cloned()
        };
        job.answer(Ok(entry));
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
        let mut query = sqlx::query(sql).bind(now);
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
        // Each row is freed as soon as it is an entry (see `ops::scan`).
        for row in rows {
            let entry = ops::scanned(s, "get", &row)?;
            found.insert(entry.key.clone(), entry);
        }
        rest = tail;
    }
    Ok(found)
}
