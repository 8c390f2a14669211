//! The call queue, on a fake store: groups take what waits, oldest first, up to the
//! weight limit; callers that gave up are skipped; a drain that dies fails what is
//! queued; a failed acquire fails only the group taken; a lone caller serves itself.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use group_commit::queue::{self, Call, Lender, Queue, Server};
use storage_api::backend::PoolInstruments;
use storage_api::{ErrorKind, Result, StoreError};
use tokio::sync::RwLock;
use tokio::task::JoinHandle;

/// A request that makes the fake server panic.
const PANIC: u32 = 999;

/// A store whose "connections" are numbers and whose server answers `request * 10`.
#[derive(Default)]
struct Store {
    queue: Queue<u32, u32>,
    instruments: PoolInstruments,
    /// Each group served: its requests, and the task that served it.
    groups: Mutex<Vec<(Vec<u32>, Option<tokio::task::Id>)>>,
    /// Read by every group before it is answered: a test holding it lets calls pile up.
    gate: RwLock<()>,
    /// Acquires still to fail.
    failing_acquires: AtomicUsize,
    closing: AtomicBool,
    lent: AtomicUsize,
}

impl Lender for Store {
    type Conn = usize;

    async fn acquire(&self, _operation: &'static str) -> Result<usize> {
        let failing = self.failing_acquires.load(SeqCst);
        if failing > 0 {
            self.failing_acquires.store(failing - 1, SeqCst);
            return Err(StoreError::new(ErrorKind::Timeout, "no connection"));
        }
        self.instruments.record_acquired(Duration::ZERO);
        Ok(self.lent.fetch_add(1, SeqCst))
    }

    fn release(&self, _conn: usize) {}

    fn instruments(&self) -> &PoolInstruments {
        &self.instruments
    }

    fn is_closing(&self) -> bool {
        self.closing.load(SeqCst)
    }
}

/// Answers `request * 10`.
struct Echo;

impl Server for Echo {
    type Store = Store;
    type Request = u32;
    type Answer = u32;
    const OPERATION: &'static str = "echo";
    const MAX_GROUP: usize = 10;

    fn weight(request: &u32) -> usize {
        *request as usize
    }

    fn queue(store: &Store) -> &Queue<u32, u32> {
        &store.queue
    }

    async fn serve(store: &Arc<Store>, _conn: &mut usize, calls: Vec<Call<u32, u32>>) -> bool {
        let requests: Vec<u32> = calls.iter().map(|c| *c.request()).collect();
        let task = tokio::task::try_id();
        store.groups.lock().unwrap().push((requests.clone(), task));
        let _open = store.gate.read().await;
        assert!(!requests.contains(&PANIC), "the server died");
        for call in calls {
            let answer = *call.request() * 10;
            call.answer(Ok(answer));
        }
        true
    }
}

fn served(store: &Store) -> Vec<Vec<u32>> {
    let groups = store.groups.lock().unwrap();
    groups
        .iter()
        .map(|(requests, _)| requests.clone())
        .collect()
}

/// Waits until `done` holds (or fails the test after a few seconds).
async fn until(what: &str, done: impl Fn() -> bool) {
    for _ in 0..500 {
        if done() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("timed out waiting until {what}");
}

/// Starts one call per request, each queued before the next starts.
async fn queue_calls(store: &Arc<Store>, requests: &[u32]) -> Vec<JoinHandle<Result<u32>>> {
    let mut calls = Vec::new();
    for &request in requests {
        let before = store.queue.queued();
        let s = Arc::clone(store);
        calls.push(tokio::spawn(async move {
            queue::call::<Echo>(&s, request).await
        }));
        until("the call is queued", || store.queue.queued() > before).await;
    }
    calls
}

/// A first call of weight 1, held in the server behind the gate.
async fn first_call_held(store: &Arc<Store>) -> JoinHandle<Result<u32>> {
    let s = Arc::clone(store);
    let first = tokio::spawn(async move { queue::call::<Echo>(&s, 1).await });
    until("the first call is served", || !served(store).is_empty()).await;
    first
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn groups_take_what_waits_oldest_first_up_to_the_weight_limit() {
    let store = Arc::new(Store::default());
    let gate = store.gate.write().await;
    let first = first_call_held(&store).await;
    let calls = queue_calls(&store, &[4, 4, 4, 12, 1]).await;
    assert_eq!(store.queue.queued(), 5, "calls waiting behind the first");
    drop(gate);
    assert_eq!(first.await.unwrap().unwrap(), 10);
    let mut answers = Vec::new();
    for call in calls {
        answers.push(call.await.unwrap().unwrap());
    }
    assert_eq!(answers, [40, 40, 40, 120, 10]);
    // 4 + 4 fit in 10; a call of 12 goes alone.
    assert_eq!(
        served(&store),
        [vec![1], vec![4, 4], vec![4], vec![12], vec![1]]
    );
    assert_eq!(store.queue.queued(), 0);
    // One connection for the whole drain; each call counted as one acquisition.
    assert_eq!(store.lent.load(SeqCst), 1);
    assert_eq!(store.instruments.snapshot(Default::default()).acquired, 6);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn callers_that_gave_up_before_their_group_are_skipped() {
    let store = Arc::new(Store::default());
    let gate = store.gate.write().await;
    let first = first_call_held(&store).await;
    let mut calls = queue_calls(&store, &[2, 3, 5]).await;
    let gave_up = calls.remove(1);
    gave_up.abort();
    assert!(gave_up.await.unwrap_err().is_cancelled());
    drop(gate);
    first.await.unwrap().unwrap();
    for call in calls {
        call.await.unwrap().unwrap();
    }
    assert_eq!(served(&store), [vec![1], vec![2, 5]]);
    assert_eq!(store.instruments.snapshot(Default::default()).acquired, 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_drain_that_dies_fails_what_is_queued_and_the_next_call_starts_afresh() {
    for closing in [false, true] {
        let store = Arc::new(Store::default());
        let gate = store.gate.write().await;
        let s = Arc::clone(&store);
        let dying = tokio::spawn(async move { queue::call::<Echo>(&s, PANIC).await });
        until("the call is served", || !served(&store).is_empty()).await;
        let queued = queue_calls(&store, &[1, 2]).await;
        store.closing.store(closing, SeqCst);
        drop(gate);
        let expected = if closing {
            ErrorKind::Closed
        } else {
            ErrorKind::Backend
        };
        assert_eq!(dying.await.unwrap().unwrap_err().kind(), expected);
        for call in queued {
            assert_eq!(call.await.unwrap().unwrap_err().kind(), expected);
        }
        store.closing.store(false, SeqCst);
        assert_eq!(queue::call::<Echo>(&store, 3).await.unwrap(), 30);
    }
}

#[tokio::test]
async fn a_failed_acquire_fails_the_group_taken_and_the_next_group_tries_again() {
    let store = Arc::new(Store::default());
    store.failing_acquires.store(1, SeqCst);
    // On this single-threaded runtime both calls queue before the drain runs.
    let calls: Vec<_> = [10, 10]
        .into_iter()
        .map(|request| {
            let s = Arc::clone(&store);
            tokio::spawn(async move { queue::call::<Echo>(&s, request).await })
        })
        .collect();
    let mut results = Vec::new();
    for call in calls {
        results.push(call.await.unwrap());
    }
    assert_eq!(results[0].as_ref().unwrap_err().kind(), ErrorKind::Timeout);
    assert_eq!(*results[1].as_ref().unwrap(), 100);
    assert_eq!(served(&store), [vec![10]]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lone_caller_serves_its_own_call_and_hands_over_what_queued_meanwhile() {
    let store = Arc::new(Store::default());
    let gate = store.gate.write().await;
    let s = Arc::clone(&store);
    let leader = tokio::spawn(async move { queue::call_or_lead::<Echo>(&s, 1).await });
    until("the leader serves", || !served(&store).is_empty()).await;
    let s = Arc::clone(&store);
    let follower = tokio::spawn(async move { queue::call_or_lead::<Echo>(&s, 2).await });
    until("the follower queues", || store.queue.queued() == 1).await;
    let (leader_task, follower_task) = (leader.id(), follower.id());
    drop(gate);
    assert_eq!(leader.await.unwrap().unwrap(), 10);
    assert_eq!(follower.await.unwrap().unwrap(), 20);
    let groups = store.groups.lock().unwrap();
    assert_eq!(
        groups[0],
        (vec![1], Some(leader_task)),
        "served on its own task"
    );
    assert_eq!(groups[1].0, [2]);
    assert_ne!(groups[1].1, Some(follower_task), "served by a drain task");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_caller_runs_alone_only_while_nothing_else_is_queued_served_or_alone() {
    let store = Arc::new(Store::default());
    let alone = store.queue.alone().expect("an idle queue");
    assert!(store.queue.alone().is_none(), "one caller alone at a time");
    drop(alone);
    let gate = store.gate.write().await;
    let first = first_call_held(&store).await;
    assert!(store.queue.alone().is_none(), "a group is being served");
    drop(gate);
    first.await.unwrap().unwrap();
    until("the drain ends", || store.queue.alone().is_some()).await;
}
