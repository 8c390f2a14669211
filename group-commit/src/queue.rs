//! A queue of calls that a task answers group by group, on a connection it borrows
//! from the store for as long as calls keep coming: what the group-commit writers (of
//! both SQLite backends and of the server engines), and the sqlx SQLite backend's
//! coalesced point reads, are built on.
//!
//! A caller queues its call and waits for the answer; a caller that finds no task
//! draining the queue spawns one ([`call`]), or, finding nothing queued or served at
//! all, serves its own call on its own task ([`call_or_lead`]). One task at a time
//! drains a queue (groups in flight side by side met each other's rows on the server
//! engines and measured slower). A draining task takes
//! the calls waiting at that moment, oldest first, up to [`Server::MAX_GROUP`] of
//! weight (a lone call weighing more still goes alone), skips those whose callers gave
//! up, serves the rest together and repeats until the queue is empty. If it ends early
//! (a panic, or its runtime shutting down), the calls still queued fail and the next
//! caller starts a new task.
//!
//! The queue knows no driver: the store says where connections come from
//! ([`Lender`]) and a [`Server`] says how one group is answered.

use std::collections::VecDeque;
use std::future::Future;
use std::marker::PhantomData;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Instant;

use storage_api::backend::PoolInstruments;
use storage_api::{ErrorKind, Result, StoreError};
use tokio::sync::oneshot;

/// The store a queue belongs to, as its task sees it: where connections come from.
pub trait Lender: Send + Sync + 'static {
    /// A connection lent to the queue's task.
    type Conn: Send + 'static;

    /// Lends a connection for `operation`, within the store's acquire timeout, counting
    /// it as one acquisition. Fails with `Closed` once the store is closing.
    fn acquire(&self, operation: &'static str) -> impl Future<Output = Result<Self::Conn>> + Send;

    /// Takes back a connection whose last group ended cleanly.
    fn release(&self, conn: Self::Conn);

    /// Whether `conn` should go back to the pool before the next group (so the pool
    /// can retire it at `max_lifetime`). Never, unless the store says so.
    fn is_due(&self, _conn: &Self::Conn) -> bool {
        false
    }

    /// The instruments each queued call counts in, as one acquisition that waited as
    /// long as the call queued.
    fn instruments(&self) -> &PoolInstruments;

    /// Whether the store is closing (calls the queue can no longer answer then fail
    /// with `Closed`).
    fn is_closing(&self) -> bool;
}

/// The connection a [`Server`]'s store lends.
pub type Conn<S> = <<S as Server>::Store as Lender>::Conn;

/// What answers the calls of one queue.
pub trait Server: Sized + Send + Sync + 'static {
    /// The store that owns the queue and lends the connections.
    type Store: Lender;
    /// What a caller asks.
    type Request: Send + 'static;
    /// What a caller gets back.
    type Answer: Send + 'static;

    /// The operation named in errors and acquisitions.
    const OPERATION: &'static str;

    /// The most weight one group takes (a lone call weighing more still goes alone).
    const MAX_GROUP: usize;

    /// How much `request` weighs towards [`MAX_GROUP`](Self::MAX_GROUP).
    fn weight(_request: &Self::Request) -> usize {
        1
    }

    /// The store's queue of this kind.
    fn queue(store: &Self::Store) -> &Queue<Self::Request, Self::Answer>;

    /// Answers every call of `calls` on `conn`; `false` if `conn` should go back
    /// through the pool's checks (dropped) rather than serve the next group.
    fn serve<'a>(
        store: &'a Arc<Self::Store>,
        conn: &'a mut Conn<Self>,
        calls: Vec<Call<Self::Request, Self::Answer>>,
    ) -> impl Future<Output = bool> + Send + 'a;
}

/// A queued call: the request, when it was queued, and the caller's answer slot.
#[derive(Debug)]
pub struct Call<Q, A> {
    request: Q,
    queued: Instant,
    reply: oneshot::Sender<Result<A>>,
}

impl<Q, A> Call<Q, A> {
    /// What the caller asked.
    pub fn request(&self) -> &Q {
        &self.request
    }

    /// Answers the caller (who may have stopped listening).
    pub fn answer(self, result: Result<A>) {
        let _ = self.reply.send(result);
    }

    /// Answers the caller with (a copy of) `error`.
    pub fn fail(self, error: &StoreError) {
        self.answer(Err(copy(error)));
    }

    /// The request and the caller's answer slot, apart.
    pub fn into_parts(self) -> (Q, Reply<A>) {
        (self.request, Reply(self.reply))
    }

    /// Whether the caller gave up waiting.
    fn abandoned(&self) -> bool {
        self.reply.is_closed()
    }

    /// How long it has been queued.
    pub fn waited(&self) -> std::time::Duration {
        self.queued.elapsed()
    }
}

/// A caller's answer slot, apart from its request (see [`Call::into_parts`]).
#[derive(Debug)]
pub struct Reply<A>(oneshot::Sender<Result<A>>);

impl<A> Reply<A> {
    /// Answers the caller (who may have stopped listening).
    pub fn answer(self, result: Result<A>) {
        let _ = self.0.send(result);
    }
}

/// The same kind, message and batch index (a source cannot be shared).
pub fn copy(error: &StoreError) -> StoreError {
    let copy = StoreError::new(error.kind(), error.message());
    match error.batch_index() {
        Some(index) => copy.with_batch_index(index),
        None => copy,
    }
}

/// The calls waiting for one [`Server`], whether a task is draining them, and how many
/// callers are running alone beside the queue.
pub struct Queue<Q, A> {
    state: Mutex<State<Q, A>>,
}

struct State<Q, A> {
    calls: VecDeque<Call<Q, A>>,
    /// A task drains the queue (a caller serving its own call counts as one).
    draining: bool,
    alone: usize,
}

impl<Q, A> Default for Queue<Q, A> {
    fn default() -> Self {
        Self {
            state: Mutex::new(State {
                calls: VecDeque::new(),
                draining: false,
                alone: 0,
            }),
        }
    }
}

impl<Q, A> std::fmt::Debug for Queue<Q, A> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = self.lock();
        f.debug_struct("Queue")
            .field("calls", &state.calls.len())
            .field("draining", &state.draining)
            .field("alone", &state.alone)
            .finish()
    }
}

impl<Q, A> Queue<Q, A> {
    fn lock(&self) -> MutexGuard<'_, State<Q, A>> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Calls queued and not yet taken by a drain: callers waiting for the connection
    /// this queue's task holds or is getting.
    pub fn queued(&self) -> usize {
        self.lock().calls.len()
    }

    /// Lets the caller run alone when nothing is queued, being drained or running
    /// alone; the returned guard counts it until dropped.
    pub fn alone(&self) -> Option<Alone<'_, Q, A>> {
        let mut state = self.lock();
        if state.alone > 0 || state.draining || !state.calls.is_empty() {
            return None;
        }
        state.alone += 1;
        Some(Alone { queue: self })
    }

    /// Queues `call`; `true` if no task drains the queue (the caller must start one).
    fn push(&self, call: Call<Q, A>) -> bool {
        let mut state = self.lock();
        state.calls.push_back(call);
        let start = !state.draining;
        state.draining = true;
        start
    }

    /// Marks the queue as served when nothing is queued, drained or running alone;
    /// `true` if it was free (the caller then serves its own call).
    fn lead(&self) -> bool {
        let mut state = self.lock();
        let free = !state.draining && state.alone == 0 && state.calls.is_empty();
        state.draining |= free;
        free
    }

    /// Ends a caller's turn at serving its own call: `true` if calls queued meanwhile
    /// (the caller must start a drain, which takes over its place).
    fn hand_over(&self) -> bool {
        let mut state = self.lock();
        let start = !state.calls.is_empty();
        state.draining = start;
        start
    }

    /// The calls of the next group, oldest first, up to `max` of weight, skipping
    /// callers that gave up; when none wait, counts the drain asking as ended and
    /// returns none.
    fn next_group(&self, max: usize, weight: impl Fn(&Q) -> usize) -> Vec<Call<Q, A>> {
        let mut state = self.lock();
        let calls = take(&mut state.calls, max, weight);
        if calls.is_empty() {
            state.draining = false;
        }
        calls
    }

    /// Like the next group a drain takes, but for the task already draining, to go on
    /// without a turn of its loop: the drain stays counted even if none wait.
    pub fn take_waiting(&self, max: usize, weight: impl Fn(&Q) -> usize) -> Vec<Call<Q, A>> {
        take(&mut self.lock().calls, max, weight)
    }

    /// Counts a drain that ended early as ended, and takes every queued call: no
    /// drain is left to serve them.
    fn abandon(&self) -> Vec<Call<Q, A>> {
        let mut state = self.lock();
        state.draining = false;
        state.calls.drain(..).collect()
    }
}

/// The calls at the front of `calls`, oldest first, up to `max` of weight (at least
/// one, however heavy), skipping callers that gave up.
fn take<Q, A>(
    calls: &mut VecDeque<Call<Q, A>>,
    max: usize,
    weight: impl Fn(&Q) -> usize,
) -> Vec<Call<Q, A>> {
    let mut taken = Vec::new();
    let mut total = 0;
    while let Some(call) = calls.front() {
        let w = weight(&call.request);
        if !taken.is_empty() && total + w > max {
            break;
        }
        if let Some(call) = calls.pop_front()
            && !call.abandoned()
        {
            total += w;
            taken.push(call);
        }
    }
    taken
}

/// A caller running alone beside the queue (see [`Queue::alone`]).
#[derive(Debug)]
pub struct Alone<'a, Q, A> {
    queue: &'a Queue<Q, A>,
}

impl<Q, A> Drop for Alone<'_, Q, A> {
    fn drop(&mut self) {
        self.queue.lock().alone -= 1;
    }
}

/// Queues `request` and waits for its answer. The caller keeps its own in-flight guard.
///
/// If the returned future is dropped before the call's group starts, the call is
/// skipped; dropped later, it may or may not have been served.
pub async fn call<S: Server>(store: &Arc<S::Store>, request: S::Request) -> Result<S::Answer> {
    let (call, answer) = new_call(request);
    if S::queue(store).push(call) {
        tokio::spawn(drain::<S>(Arc::clone(store)));
    }
    wait::<S>(store, answer).await
}

/// Like [`call`], but a caller that finds nothing queued or being served serves its
/// own request on its own task, sparing a lone caller the hand-offs to and from a
/// drain task. Calls that arrive meanwhile queue behind it and go to a drain once it
/// is done, however it ends.
pub async fn call_or_lead<S: Server>(
    store: &Arc<S::Store>,
    request: S::Request,
) -> Result<S::Answer> {
    if !S::queue(store).lead() {
        return call::<S>(store, request).await;
    }
    let _handover = Handover::<S> {
        store,
        server: PhantomData,
    };
    let (call, answer) = new_call(request);
    let mut conn = store.acquire(S::OPERATION).await?;
    if S::serve(store, &mut conn, vec![call]).await {
        store.release(conn);
    }
    wait::<S>(store, answer).await
}

fn new_call<Q, A>(request: Q) -> (Call<Q, A>, oneshot::Receiver<Result<A>>) {
    let (reply, answer) = oneshot::channel();
    let call = Call {
        request,
        queued: Instant::now(),
        reply,
    };
    (call, answer)
}

/// The answer, or the error for a call its queue dropped unanswered.
async fn wait<S: Server>(
    store: &S::Store,
    answer: oneshot::Receiver<Result<S::Answer>>,
) -> Result<S::Answer> {
    answer
        .await
        .unwrap_or_else(|_| Err(stopped(store, S::OPERATION)))
}

/// The error for calls a queue can no longer answer: `Closed` once the store is
/// closing, otherwise `Backend` (the task serving them panicked or lost its runtime).
fn stopped(store: &impl Lender, operation: &str) -> StoreError {
    if store.is_closing() {
        return StoreError::closed();
    }
    StoreError::new(
        ErrorKind::Backend,
        format!("{operation}: the store's queue stopped before answering"),
    )
}

/// Ends a caller's turn at serving its own call (see [`call_or_lead`]): hands the
/// calls queued meanwhile to a new drain, or marks the queue idle.
struct Handover<'a, S: Server> {
    store: &'a Arc<S::Store>,
    server: PhantomData<S>,
}

impl<S: Server> Drop for Handover<'_, S> {
    fn drop(&mut self) {
        if S::queue(self.store).hand_over() {
            tokio::spawn(drain::<S>(Arc::clone(self.store)));
        }
    }
}

/// Serves groups until the queue is empty, on one lent connection.
///
/// Each call counts as one acquisition in the store's instruments, waiting as long as
/// it queued (the checkout itself counts for the first call after it). If no
/// connection can be had, the group taken fails with that error and the next group
/// tries again.
async fn drain<S: Server>(store: Arc<S::Store>) {
    let mut duty = Duty::<S> {
        store: &store,
        armed: true,
    };
    let mut conn: Option<Conn<S>> = None;
    loop {
        let mut calls = S::queue(&store).next_group(S::MAX_GROUP, S::weight);
        if calls.is_empty() {
            duty.armed = false;
            if let Some(conn) = conn {
                store.release(conn);
            }
            return;
        }
        if conn.as_ref().is_some_and(|c| store.is_due(c)) {
            conn = None;
        }
        let fresh = conn.is_none();
        if fresh {
            match store.acquire(S::OPERATION).await {
                Ok(c) => conn = Some(c),
                Err(e) => {
                    calls.into_iter().for_each(|call| call.fail(&e));
                    continue;
                }
            }
        }
        let instruments = store.instruments();
        for call in calls.iter().skip(usize::from(fresh)) {
            instruments.record_acquired(call.queued.elapsed());
        }
        // Callers that gave up while the connection was on its way get nothing.
        calls.retain(|call| !call.abandoned());
        if let Some(c) = conn.as_mut()
            && !calls.is_empty()
            && !S::serve(&store, c, calls).await
        {
            conn = None;
        }
    }
}

/// If a drain ends early, fails what is still queued and lets the next call start a
/// new drain.
struct Duty<'a, S: Server> {
    store: &'a S::Store,
    armed: bool,
}

impl<S: Server> Drop for Duty<'_, S> {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        let calls = S::queue(self.store).abandon();
        let error = stopped(self.store, S::OPERATION);
        calls.into_iter().for_each(|call| call.fail(&error));
    }
}
