//! The group-commit writer on a fake backend: the failure rule (a refused write fails
//! alone, a failed statement retries each write alone and applies none twice, a failed
//! commit fails the group), rounds that go on on a connection's own thread, and the
//! WAL checkpoint policy.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use sqlite_common::queue::Lender;
use sqlite_common::round::{Fault, Outcome, Round, Settled, Step};
use sqlite_common::wal::{
    CHECKPOINT_EVERY_OPS, Checkpoint, OVERDUE_FACTOR, RESTART_FRAMES, WriterCheckpoint,
};
use sqlite_common::writer::{self, GroupWriter, Request, Write, Writer, Written};
use storage_api::backend::PoolInstruments;
use storage_api::{ErrorKind, PutOptions, Result, StoreError, Version, WriteOp, WriteResult};
use tokio::sync::RwLock;
use tokio::task::JoinHandle;

/// A key whose write the fake refuses (as a failed condition).
const REFUSED: &[u8] = b"refused";
/// A key whose statement fails (as a full disk would).
const BAD: &[u8] = b"bad";
/// A key that makes the group's commit fail.
const NO_COMMIT: &[u8] = b"no-commit";
/// A key whose group is lost unanswered (as if the code applying it panicked).
const LOST: &[u8] = b"lost";

/// A store kept in a map, committed a group at a time.
struct Store {
    writer: Writer,
    instruments: PoolInstruments,
    data: Mutex<BTreeMap<Vec<u8>, Vec<u8>>>,
    /// How many times each key was committed.
    commits: Mutex<HashMap<Vec<u8>, usize>>,
    /// Size of each group applied, in order.
    groups: Mutex<Vec<usize>>,
    /// Calls of `GroupWriter::apply`.
    rounds: AtomicUsize,
    /// Read by every group before it runs: a test holding it lets writes pile up.
    gate: RwLock<()>,
    version: AtomicUsize,
    closing: AtomicBool,
    /// Checkpoints run beside the writer, by kind.
    beside: Mutex<Vec<Checkpoint>>,
    /// Frames a checkpoint beside reports left in the log; negative: no connection free.
    log_frames: AtomicI64,
    /// Checkpoints the writer ran on its own connection.
    writer_checkpoints: AtomicUsize,
}

impl Store {
    fn new(manual_checkpoints: bool) -> Arc<Self> {
        Arc::new(Self {
            writer: Writer::new(manual_checkpoints),
            instruments: PoolInstruments::new(),
            data: Mutex::default(),
            commits: Mutex::default(),
            groups: Mutex::default(),
            rounds: AtomicUsize::new(0),
            gate: RwLock::new(()),
            version: AtomicUsize::new(0),
            closing: AtomicBool::new(false),
            beside: Mutex::default(),
            log_frames: AtomicI64::new(10),
            writer_checkpoints: AtomicUsize::new(0),
        })
    }

    /// Applies `requests` all or nothing, as one transaction would.
    fn run(&self, requests: &[Request]) -> Outcome {
        self.groups.lock().unwrap().push(requests.len());
        let mut staged = self.data.lock().unwrap().clone();
        let mut written = Vec::new();
        let mut results = Vec::new();
        for request in requests {
            let ops = match &request.write {
                Write::Op(op) => std::slice::from_ref(op),
                Write::Batch(ops) => ops.as_slice(),
                Write::Purge => &[],
            };
            let mut done = Vec::new();
            let mut refused = None;
            for op in ops {
                let WriteOp::Put { key, value, .. } = op else {
                    panic!("the fake only puts");
                };
                match key.as_slice() {
                    LOST => panic!("a lost group is never run"),
                    REFUSED => refused = Some(StoreError::new(ErrorKind::ConditionFailed, "no")),
                    BAD => {
                        let e = StoreError::new(ErrorKind::Backend, "rejected by the disk");
                        return Err(Fault::Statement(e));
                    }
                    _ => {}
                }
                if refused.is_some() {
                    break;
                }
                staged.insert(key.clone(), value.clone());
                written.push(key.clone());
                let version = self.version.fetch_add(1, SeqCst) as u64 + 1;
                done.push(WriteResult::Put(Version::new(version).unwrap()));
            }
            results.push(match (refused, &request.write) {
                (Some(e), _) => Err(e),
                (None, Write::Batch(_)) => Ok(Written::Batch(done)),
                (None, Write::Op(_)) => Ok(Written::Op(done.remove(0))),
                (None, Write::Purge) => Ok(Written::Purged(0)),
            });
        }
        if written.iter().any(|key| key == NO_COMMIT) {
            let e = StoreError::new(ErrorKind::Busy, "the commit failed");
            return Err(Fault::Transaction(e));
        }
        *self.data.lock().unwrap() = staged;
        let mut commits = self.commits.lock().unwrap();
        for key in written {
            *commits.entry(key).or_default() += 1;
        }
        Ok(results)
    }

    fn commits(&self, key: &str) -> usize {
        let commits = self.commits.lock().unwrap();
        commits.get(key.as_bytes()).copied().unwrap_or(0)
    }

    fn groups(&self) -> Vec<usize> {
        self.groups.lock().unwrap().clone()
    }
}

impl Lender for Store {
    type Conn = ();

    async fn acquire(&self, _operation: &'static str) -> Result<()> {
        self.instruments.record_acquired(Duration::ZERO);
        Ok(())
    }

    fn release(&self, _conn: ()) {}

    fn instruments(&self) -> &PoolInstruments {
        &self.instruments
    }

    fn is_closing(&self) -> bool {
        self.closing.load(SeqCst)
    }
}

/// The fake's writer: applies groups on the async task (`OWN_THREAD` false) or as a
/// backend with a thread of its own would (`true`).
struct Fake<const OWN_THREAD: bool>;

impl<const OWN_THREAD: bool> GroupWriter for Fake<OWN_THREAD> {
    type Store = Store;
    const ON_OWN_THREAD: bool = OWN_THREAD;

    fn writer(store: &Store) -> &Writer {
        &store.writer
    }

    async fn apply(store: &Arc<Store>, _conn: &mut (), mut round: Round<Store>) -> Settled {
        store.rounds.fetch_add(1, SeqCst);
        while let Some(step) = round.next_step() {
            let group = match step {
                Step::Checkpoint => {
                    store.writer_checkpoints.fetch_add(1, SeqCst);
                    round.checkpointed(WriterCheckpoint::Done);
                    continue;
                }
                Step::Apply(group) => group,
            };
            let _open = store.gate.read().await;
            if group.requests().iter().any(|r| is_put_of(r, LOST)) {
                return Settled::failed();
            }
            let outcome = store.run(group.requests());
            round.settle(group, outcome);
        }
        round.finish()
    }

    async fn checkpoint_beside(store: &Arc<Store>, kind: Checkpoint) -> Option<i64> {
        store.beside.lock().unwrap().push(kind);
        let frames = store.log_frames.load(SeqCst);
        (frames >= 0).then_some(frames)
    }
}

fn is_put_of(request: &Request, key: &[u8]) -> bool {
    matches!(&request.write, Write::Op(WriteOp::Put { key: k, .. }) if k == key)
}

type Own = Fake<true>;
type Led = Fake<false>;

async fn put<W: GroupWriter<Store = Store>>(store: &Arc<Store>, key: &[u8]) -> Result<Version> {
    writer::put::<W>(store, SystemTime::now(), key, b"v", PutOptions::default()).await
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

/// Holds the writer in a first group, queues one put per key behind it, and returns
/// the first put and the queued ones.
async fn queued_behind_a_first_write<W: GroupWriter<Store = Store>>(
    store: &Arc<Store>,
    keys: &[&'static [u8]],
) -> (
    JoinHandle<Result<Version>>,
    Vec<JoinHandle<Result<Version>>>,
) {
    let s = Arc::clone(store);
    let first = tokio::spawn(async move { put::<W>(&s, b"first").await });
    until("the first write runs", || store.rounds.load(SeqCst) == 1).await;
    let mut puts = Vec::new();
    for &key in keys {
        let before = store.writer.queued();
        let s = Arc::clone(store);
        puts.push(tokio::spawn(async move { put::<W>(&s, key).await }));
        until("the write is queued", || store.writer.queued() > before).await;
    }
    (first, puts)
}

async fn results(puts: Vec<JoinHandle<Result<Version>>>) -> Vec<Result<Version>> {
    let mut results = Vec::new();
    for put in puts {
        results.push(put.await.unwrap());
    }
    results
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_write_fails_alone_and_the_rest_of_its_group_commits() {
    let store = Store::new(false);
    let gate = store.gate.write().await;
    let (first, puts) = queued_behind_a_first_write::<Led>(&store, &[b"k1", REFUSED, b"k2"]).await;
    drop(gate);
    first.await.unwrap().unwrap();
    let results = results(puts).await;
    assert!(results[0].is_ok() && results[2].is_ok(), "{results:?}");
    let refused = results[1].as_ref().unwrap_err();
    assert_eq!(refused.kind(), ErrorKind::ConditionFailed);
    assert_eq!(store.groups(), [1, 3], "one group, no retry");
    assert_eq!((store.commits("k1"), store.commits("k2")), (1, 1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_statement_retries_each_write_alone_and_applies_none_twice() {
    for own_thread in [false, true] {
        let store = Store::new(false);
        let gate = store.gate.write().await;
        let keys: [&[u8]; 3] = [b"x1", BAD, b"x2"];
        let (first, puts) = if own_thread {
            queued_behind_a_first_write::<Own>(&store, &keys).await
        } else {
            queued_behind_a_first_write::<Led>(&store, &keys).await
        };
        drop(gate);
        first.await.unwrap().unwrap();
        let results = results(puts).await;
        assert!(results[0].is_ok() && results[2].is_ok(), "{results:?}");
        assert_eq!(results[1].as_ref().unwrap_err().kind(), ErrorKind::Backend);
        // The group of three rolled back, then each write alone.
        assert_eq!(store.groups(), [1, 3, 1, 1, 1]);
        assert_eq!((store.commits("x1"), store.commits("x2")), (1, 1));
        assert_eq!(store.commits("bad"), 0);
        let data = store.data.lock().unwrap();
        assert_eq!(data.len(), 3, "first, x1 and x2: {data:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_commit_fails_every_write_of_its_group_and_retries_none() {
    let store = Store::new(false);
    let gate = store.gate.write().await;
    let (first, puts) =
        queued_behind_a_first_write::<Led>(&store, &[b"y1", NO_COMMIT, b"y2"]).await;
    drop(gate);
    first.await.unwrap().unwrap();
    for result in results(puts).await {
        assert_eq!(result.unwrap_err().kind(), ErrorKind::Busy);
    }
    assert_eq!(store.groups(), [1, 3]);
    assert_eq!(store.commits("y1") + store.commits("y2"), 0);
    // The writer goes on.
    put::<Led>(&store, b"after").await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_group_fails_its_callers_as_stopped_or_closed() {
    for closing in [false, true] {
        let store = Store::new(false);
        let gate = store.gate.write().await;
        let (first, puts) = queued_behind_a_first_write::<Own>(&store, &[LOST, b"z"]).await;
        store.closing.store(closing, SeqCst);
        drop(gate);
        first.await.unwrap().unwrap();
        let expected = if closing {
            ErrorKind::Closed
        } else {
            ErrorKind::Backend
        };
        for result in results(puts).await {
            assert_eq!(result.unwrap_err().kind(), expected);
        }
        store.closing.store(false, SeqCst);
        put::<Own>(&store, b"after").await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_round_on_its_own_thread_goes_on_with_the_groups_queued_meanwhile() {
    for own_thread in [false, true] {
        let store = Store::new(false);
        let gate = store.gate.write().await;
        let keys: [&[u8]; 3] = [b"a", b"b", b"c"];
        let (first, puts) = if own_thread {
            queued_behind_a_first_write::<Own>(&store, &keys).await
        } else {
            queued_behind_a_first_write::<Led>(&store, &keys).await
        };
        drop(gate);
        first.await.unwrap().unwrap();
        for result in results(puts).await {
            result.unwrap();
        }
        assert_eq!(store.groups(), [1, 3]);
        let rounds = if own_thread { 1 } else { 2 };
        assert_eq!(
            store.rounds.load(SeqCst),
            rounds,
            "own thread: {own_thread}"
        );
        // Each write counted once as an acquisition.
        let acquired = store.instruments.snapshot(Default::default()).acquired;
        assert_eq!(acquired, 4);
    }
}

/// Commits `ops` operations in one batch.
async fn commit_ops<W: GroupWriter<Store = Store>>(store: &Arc<Store>, ops: usize) {
    let batch = (0..ops)
        .map(|i| WriteOp::put(format!("k{i}"), "v"))
        .collect();
    writer::batch::<W>(store, SystemTime::now(), batch)
        .await
        .unwrap();
}

fn beside(store: &Store) -> Vec<Checkpoint> {
    store.beside.lock().unwrap().clone()
}

/// Waits until `n` checkpoints beside the writer have run and been recorded.
async fn checkpoints_beside(store: &Store, n: usize) {
    until("a checkpoint beside the writer", || {
        beside(store).len() == n
    })
    .await;
    // It records its end in the schedule just after.
    tokio::time::sleep(Duration::from_millis(20)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checkpoints_beside_the_writer_escalate_to_restart_and_the_writer_rewinds_every_fourth_and_after_a_long_log()
 {
    let store = Store::new(true);
    commit_ops::<Led>(&store, CHECKPOINT_EVERY_OPS - 1).await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(beside(&store).is_empty(), "too early");
    commit_ops::<Led>(&store, 1).await;
    checkpoints_beside(&store, 1).await;
    // The second reports a long log: the writer rewinds it before its next group, and
    // the third restarts it.
    store.log_frames.store(RESTART_FRAMES + 1, SeqCst);
    commit_ops::<Led>(&store, CHECKPOINT_EVERY_OPS).await;
    checkpoints_beside(&store, 2).await;
    assert_eq!(store.writer_checkpoints.load(SeqCst), 0);
    store.log_frames.store(10, SeqCst);
    commit_ops::<Led>(&store, CHECKPOINT_EVERY_OPS).await;
    assert_eq!(store.writer_checkpoints.load(SeqCst), 1);
    checkpoints_beside(&store, 3).await;
    commit_ops::<Led>(&store, CHECKPOINT_EVERY_OPS).await;
    checkpoints_beside(&store, 4).await;
    assert_eq!(
        beside(&store),
        [
            Checkpoint::Passive,
            Checkpoint::Passive,
            Checkpoint::Restart,
            Checkpoint::Passive
        ]
    );
    // After the fourth, the writer checkpoints before its next group, once.
    assert_eq!(store.writer_checkpoints.load(SeqCst), 1);
    put::<Led>(&store, b"next").await.unwrap();
    put::<Led>(&store, b"next").await.unwrap();
    assert_eq!(store.writer_checkpoints.load(SeqCst), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_writer_checkpoints_itself_when_no_connection_is_free_beside_it() {
    let store = Store::new(true);
    store.log_frames.store(-1, SeqCst);
    for round in 1..=OVERDUE_FACTOR {
        commit_ops::<Led>(&store, CHECKPOINT_EVERY_OPS).await;
        // Each round tries a checkpoint beside the writer; none finds a connection.
        checkpoints_beside(&store, round).await;
    }
    assert_eq!(store.writer_checkpoints.load(SeqCst), 0);
    put::<Led>(&store, b"next").await.unwrap();
    assert_eq!(store.writer_checkpoints.load(SeqCst), 1);
    // Once done, not before every group.
    put::<Led>(&store, b"next").await.unwrap();
    assert_eq!(store.writer_checkpoints.load(SeqCst), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_without_manual_checkpoints_never_checkpoints() {
    let store = Store::new(false);
    for _ in 0..OVERDUE_FACTOR + 1 {
        commit_ops::<Led>(&store, CHECKPOINT_EVERY_OPS).await;
    }
    put::<Led>(&store, b"next").await.unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(beside(&store).is_empty());
    assert_eq!(store.writer_checkpoints.load(SeqCst), 0);
}
