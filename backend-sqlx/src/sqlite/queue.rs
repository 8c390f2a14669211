//! A queue of calls that one task answers group by group, on a connection lent from the
//! pool for as long as calls keep coming: what the single [`writer`](super::writer) and
//! the [`reader`](super::reader) share.
//!
//! A caller queues its call and waits for the answer; the first caller to find no task
//! draining the queue spawns one. That task takes every call waiting at that moment
//! (up to a limit), skips those whose callers gave up, serves the rest together and
//! repeats until the queue is empty. If it ends early (a panic, or its runtime shutting
//! down), the calls still queued fail and the next caller starts a new task.

use std::collections::VecDeque;
use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use sqlx::{Sqlite, SqliteConnection};
use storage_api::{ErrorKind, Result, StoreError};
use tokio::sync::oneshot;

use super::shared::Shared;
use crate::common::stash::Lent;

/// A queued call: the request, when it was queued, and the caller's answer slot.
pub(crate) struct Call<Q, A> {
    pub(crate) request: Q,
    pub(crate) queued: Instant,
    reply: oneshot::Sender<Result<A>>,
}

impl<Q, A> Call<Q, A> {
    /// Answers the caller (who may have stopped listening).
    pub(crate) fn answer(self, result: Result<A>) {
        let _ = self.reply.send(result);
    }

    /// Answers the caller with (a copy of) `error`.
    pub(crate) fn fail(self, error: &StoreError) {
        self.answer(Err(copy(error)));
    }
}

/// The same kind and message (a source cannot be shared).
pub(crate) fn copy(error: &StoreError) -> StoreError {
    StoreError::new(error.kind(), error.message())
}

/// What answers the calls of one queue.
pub(crate) trait Server: Send + Sync + 'static {
    type Request: Send + 'static;
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
    fn queue(shared: &Shared) -> &Queue<Self>;

    /// Answers every call of `calls` on `conn`; `false` if `conn` should go back
    /// through the pool's checks rather than serve the next group.
    fn serve<'a>(
        shared: &'a Arc<Shared>,
        conn: &'a mut SqliteConnection,
        calls: Vec<Call<Self::Request, Self::Answer>>,
    ) -> impl Future<Output = bool> + Send + 'a;
}

/// The calls waiting for one [`Server`], whether a task is draining them, and how
/// many callers are running alone beside the queue.
pub(crate) struct Queue<S: Server + ?Sized> {
    state: Mutex<State<S>>,
}

struct State<S: Server + ?Sized> {
    calls: VecDeque<Call<S::Request, S::Answer>>,
    draining: bool,
    alone: usize,
}

impl<S: Server + ?Sized> Default for Queue<S> {
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

impl<S: Server + ?Sized> std::fmt::Debug for Queue<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = self.lock();
        f.debug_struct("Queue")
            .field("calls", &state.calls.len())
            .field("draining", &state.draining)
            .field("alone", &state.alone)
            .finish()
    }
}

impl<S: Server + ?Sized> Queue<S> {
    fn lock(&self) -> std::sync::MutexGuard<'_, State<S>> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Calls queued and not yet taken by a drain: callers waiting for the connection
    /// this queue's task holds or is getting.
    pub(crate) fn queued(&self) -> usize {
        self.lock().calls.len()
    }

    /// Lets the caller run alone when nothing is queued, being drained or running
    /// alone; the returned guard counts it until dropped.
    pub(crate) fn alone(&self) -> Option<Alone<'_, S>> {
        let mut state = self.lock();
        if state.alone > 0 || state.draining || !state.calls.is_empty() {
            return None;
        }
        state.alone += 1;
        Some(Alone { queue: self })
    }

    /// The calls of the next group, oldest first, whose callers still wait; when none
    /// wait, marks the queue as no longer drained and returns none.
    fn next_group(&self) -> Vec<Call<S::Request, S::Answer>> {
        let mut state = self.lock();
        let mut calls = Vec::new();
        let mut weight = 0;
        while let Some(call) = state.calls.front() {
            let w = S::weight(&call.request);
            if !calls.is_empty() && weight + w > S::MAX_GROUP {
                break;
            }
            if let Some(call) = state.calls.pop_front()
                && !call.reply.is_closed()
            {
                weight += w;
                calls.push(call);
            }
        }
        if calls.is_empty() {
            state.draining = false;
        }
        calls
    }
}

/// A caller running alone beside the queue (see [`Queue::alone`]).
pub(crate) struct Alone<'a, S: Server + ?Sized> {
    queue: &'a Queue<S>,
}

impl<S: Server + ?Sized> Drop for Alone<'_, S> {
    fn drop(&mut self) {
        self.queue.lock().alone -= 1;
    }
}

/// Queues `request` and waits for its answer. The caller keeps its own in-flight guard.
///
/// If the returned future is dropped before the call's group starts, the call is
/// skipped; dropped later, it may or may not have been served.
pub(crate) async fn call<S: Server>(
    shared: &Arc<Shared>,
    request: S::Request,
) -> Result<S::Answer> {
    let (reply, answer) = oneshot::channel();
    let call = Call {
        request,
        queued: Instant::now(),
        reply,
    };
    let start = {
        let mut state = S::queue(shared).lock();
        state.calls.push_back(call);
        !std::mem::replace(&mut state.draining, true)
    };
    if start {
        tokio::spawn(drain::<S>(Arc::clone(shared)));
    }
    answer.await.unwrap_or_else(|_| {
        Err(StoreError::new(
            ErrorKind::Backend,
            format!("{}: the store stopped before answering", S::OPERATION),
        ))
    })
}

/// Like [`call`], but a caller that finds nothing queued or being served serves its
/// own request on its own task, sparing a lone caller the hand-offs to and from a
/// drain task. Calls that arrive meanwhile queue behind it and go to a drain once it
/// is done, however it ends.
pub(crate) async fn call_or_lead<S: Server>(
    shared: &Arc<Shared>,
    request: S::Request,
) -> Result<S::Answer> {
    let lead = {
        let mut state = S::queue(shared).lock();
        let free = !state.draining && state.alone == 0 && state.calls.is_empty();
        if free {
            state.draining = true;
        }
        free
    };
    if !lead {
        return call::<S>(shared, request).await;
    }
    let _handover = Handover::<S> {
        s: shared,
        server: std::marker::PhantomData,
    };
    let (reply, answer) = oneshot::channel();
    let call = Call {
        request,
        queued: Instant::now(),
        reply,
    };
    let mut conn = shared.acquire(S::OPERATION).await?;
    if S::serve(shared, &mut conn, vec![call]).await {
        shared.release(conn);
    }
    answer.await.unwrap_or_else(|_| {
        Err(StoreError::new(
            ErrorKind::Backend,
            format!("{}: the store stopped before answering", S::OPERATION),
        ))
    })
}

/// Ends a caller's turn at serving its own call (see [`call_or_lead`]): hands the
/// calls queued meanwhile to a new drain, or marks the queue idle.
struct Handover<'a, S: Server> {
    s: &'a Arc<Shared>,
    server: std::marker::PhantomData<S>,
}

impl<S: Server> Drop for Handover<'_, S> {
    fn drop(&mut self) {
        let waiting = {
            let mut state = S::queue(self.s).lock();
            let waiting = !state.calls.is_empty();
            state.draining = waiting;
            waiting
        };
        if waiting {
            tokio::spawn(drain::<S>(Arc::clone(self.s)));
        }
    }
}

/// Serves groups until the queue is empty, on one lent connection.
///
/// Each call counts as one acquisition in the pool's instruments, waiting as long as
/// it queued (the checkout itself counts for the first call after it).
async fn drain<S: Server>(s: Arc<Shared>) {
    let mut duty = Duty::<S> {
        s: &s,
        armed: true,
        server: std::marker::PhantomData,
    };
    let mut conn: Option<Lent<Sqlite>> = None;
    loop {
        let mut calls = S::queue(&s).next_group();
        if calls.is_empty() {
            duty.armed = false;
            if let Some(conn) = conn {
                s.release(conn);
            }
            return;
        }
        if conn.as_ref().is_some_and(Lent::is_due) {
            // Back to the pool now and then, which enforces `max_lifetime`.
            conn = None;
        }
        let fresh = conn.is_none();
        if fresh {
            match s.acquire(S::OPERATION).await {
                Ok(c) => conn = Some(c),
                Err(e) => {
                    calls.into_iter().for_each(|call| call.fail(&e));
                    continue;
                }
            }
        }
        for call in calls.iter().skip(usize::from(fresh)) {
            s.instruments.record_acquired(call.queued.elapsed());
        }
        // Callers that gave up while the connection was on its way get nothing.
        calls.retain(|call| !call.reply.is_closed());
        if let Some(c) = conn.as_mut()
            && !calls.is_empty()
            && !S::serve(&s, c, calls).await
        {
            conn = None;
        }
    }
}

/// If a drain ends early, fails what is still queued and lets the next call start a
/// new drain.
struct Duty<'a, S: Server> {
    s: &'a Shared,
    armed: bool,
    server: std::marker::PhantomData<S>,
}

impl<S: Server> Drop for Duty<'_, S> {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        let calls: Vec<_> = {
            let mut state = S::queue(self.s).lock();
            state.draining = false;
            state.calls.drain(..).collect()
        };
        let error = StoreError::new(
            ErrorKind::Backend,
            format!("{}: the store's queue stopped", S::OPERATION),
        );
        calls.into_iter().for_each(|call| call.fail(&error));
    }
}
