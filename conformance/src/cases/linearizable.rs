//! Concurrent histories: a few tasks run generated operations on a shared pool at the
//! same moment, every invoke and return is timed, and the history must be
//! linearizable against the key-value specification (see [`wing_gong`](super::wing_gong)).
//! proptest generates the programs and shrinks a failing one.

use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::time::{Duration, Instant};

use proptest::collection::vec;
use proptest::prelude::*;
use proptest::test_runner::{TestCaseError, TestError, TestRunner};
use storage_api::{
    Condition, Entry, ErrorKind, PooledStore, PutOptions, ScanOptions, StoreError, Version,
    WriteOp, WriteResult,
};
use tokio::sync::Barrier;

use super::property::{config, run_blocking};
use super::wing_gong::{Call, Event, Ret, is_linearizable};
use crate::check::{CaseResult, Failure, Verdict, within};
use crate::context::Ctx;

/// A version no store hands out in a test.
const NEVER_ISSUED: u64 = 1 << 60;

/// A generated operation; `Seen` conditions use the version the task last observed.
#[derive(Debug, Clone)]
enum Op {
    Get(usize),
    Put(usize, Cond),
    Delete(usize, Cond),
    Scan,
    Batch(usize, usize),
}

#[derive(Debug, Clone, Copy)]
enum Cond {
    Any,
    Absent,
    Seen,
}

/// A program: how many keys, and each task's operations.
type Program = (usize, Vec<Vec<Op>>);

fn program() -> impl Strategy<Value = Program> {
    (2..=3usize).prop_flat_map(|keys| {
        let key = 0..keys;
        let cond =
            prop_oneof![1 => Just(Cond::Any), 1 => Just(Cond::Absent), 2 => Just(Cond::Seen)];
        let op = prop_oneof![
            3 => key.clone().prop_map(Op::Get),
            4 => (key.clone(), cond.clone()).prop_map(|(k, c)| Op::Put(k, c)),
            2 => (key.clone(), cond).prop_map(|(k, c)| Op::Delete(k, c)),
            1 => Just(Op::Scan),
            1 => (key.clone(), key).prop_map(|(a, b)| Op::Batch(a, b)),
        ];
        (Just(keys), vec(vec(op, 4..=6), 3..=4))
    })
}

/// Concurrent operations on one pool form a linearizable history.
pub(crate) async fn linearizable_histories(ctx: Ctx) -> CaseResult {
    let store = ctx.open(|o| o.max_connections = 4).await?;
    let config = config(&ctx);
    let rounds = Arc::new(AtomicUsize::new(0));
    run_blocking(move |handle| {
        let mut runner = TestRunner::new(config);
        let result = runner.run(&program(), |(keys, tasks)| {
            let round = rounds.fetch_add(1, SeqCst);
            handle
                .block_on(check_round(&store, round, keys, tasks))
                .map_err(|f| TestCaseError::fail(f.message))
        });
        match result {
            Ok(()) => Ok(()),
            Err(TestError::Fail(reason, (keys, tasks))) => Err(Failure::new(format!(
                "{reason}\nsmallest failing program ({keys} keys): {tasks:?}"
            ))),
            Err(TestError::Abort(reason)) => Err(Failure::new(format!("aborted: {reason}"))),
        }
    })
    .await?;
    Ok(Verdict::Passed)
}

async fn check_round(
    store: &Arc<dyn PooledStore>,
    round: usize,
    keys: usize,
    tasks: Vec<Vec<Op>>,
) -> Result<(), Failure> {
    let prefix = format!("lin/{round}/");
    let barrier = Arc::new(Barrier::new(tasks.len()));
    let handles: Vec<_> = tasks
        .into_iter()
        .enumerate()
        .map(|(task, ops)| {
            let store = Arc::clone(store);
            let barrier = Arc::clone(&barrier);
            let prefix = prefix.clone();
            tokio::spawn(async move { run_task(store, barrier, prefix, keys, task, ops).await })
        })
        .collect();
    let mut events = Vec::new();
    for handle in handles {
        let task_events = within(Duration::from_secs(30), "a history task", handle)
            .await?
            .map_err(|e| Failure::new(format!("a history task panicked: {e}")))??;
        events.extend(task_events);
    }
    if is_linearizable(&events, keys) {
        Ok(())
    } else {
        Err(Failure::new(format!(
            "this history is not linearizable:\n{}",
            describe(&prefix, &events)
        )))
    }
}

struct Task {
    store: Arc<dyn PooledStore>,
    prefix: String,
    id: usize,
    seen: Vec<Option<Version>>,
}

impl Task {
    fn key(&self, k: usize) -> Vec<u8> {
        format!("{}{k}", self.prefix).into_bytes()
    }

    fn condition(&self, key: usize, cond: Cond) -> Condition {
        match cond {
            Cond::Any => Condition::Any,
            Cond::Absent => Condition::Absent,
            Cond::Seen => self.seen[key]
                .or(Version::new(NEVER_ISSUED))
                .map_or(Condition::Absent, Condition::Version),
        }
    }

    fn value_id(&self, op: usize) -> u32 {
        ((self.id + 1) * 100 + op) as u32
    }

    fn read(
        &mut self,
        key: usize,
        entry: Option<Entry>,
    ) -> Result<Option<(u32, Version)>, Failure> {
        let Some(entry) = entry else {
            return Ok(None);
        };
        let id = std::str::from_utf8(&entry.value)
            .ok()
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| Failure::new("a read returned a value no write in this round wrote"))?;
        self.seen[key] = Some(entry.version);
        Ok(Some((id, entry.version)))
    }

    /// Runs `op`, returning what was asked and answered.
    async fn run(&mut self, index: usize, op: &Op) -> Result<(Call, Ret), Failure> {
        let value = self.value_id(index);
        match *op {
            Op::Get(k) => {
                let entry = self.store.get(&self.key(k)).await.map_err(unexpected)?;
                Ok((Call::Get(k), Ret::Get(self.read(k, entry)?)))
            }
            Op::Put(k, cond) => {
                let cond = self.condition(k, cond);
                let options = PutOptions {
                    condition: cond,
                    ttl: None,
                };
                let result = self
                    .store
                    .put(&self.key(k), value.to_string().as_bytes(), options)
                    .await;
                let got = failed_condition(result)?;
                if let Some(v) = got {
                    self.seen[k] = Some(v);
                }
                Ok((
                    Call::Put {
                        key: k,
                        value,
                        cond,
                    },
                    Ret::Put(got),
                ))
            }
            Op::Delete(k, cond) => {
                let cond = self.condition(k, cond);
                let got = failed_condition(self.store.delete(&self.key(k), cond).await)?;
                Ok((Call::Delete { key: k, cond }, Ret::Delete(got)))
            }
            Op::Scan => {
                let entries = self
                    .store
                    .scan(ScanOptions::prefix(self.prefix.clone()))
                    .await
                    .map_err(unexpected)?;
                let mut got = Vec::new();
                for entry in entries {
                    let Some(k) = (0..self.seen.len()).find(|k| self.key(*k) == entry.key) else {
                        fail!("a scan returned a key outside the round");
                    };
                    if let Some((id, v)) = self.read(k, Some(entry))? {
                        got.push((k, id, v));
                    }
                }
                Ok((Call::Scan, Ret::Scan(got)))
            }
            Op::Batch(a, b) => {
                let puts = vec![(a, value), (b, value + 50)];
                let ops = puts
                    .iter()
                    .map(|(k, v)| WriteOp::put(self.key(*k), v.to_string()))
                    .collect();
                let results = self.store.batch(ops).await.map_err(unexpected)?;
                let mut versions = Vec::new();
                for (result, (k, _)) in results.iter().zip(&puts) {
                    let WriteResult::Put(v) = result else {
                        fail!("a batch of puts returned {result:?}");
                    };
                    self.seen[*k] = Some(*v);
                    versions.push(*v);
                }
                Ok((Call::Batch(puts), Ret::Batch(versions)))
            }
        }
    }
}

fn unexpected(e: StoreError) -> Failure {
    Failure::new(format!("unexpected error under concurrency: {e}"))
}

/// `Some` on success, `None` on `ConditionFailed`; any other error fails the case.
fn failed_condition<T>(result: Result<T, StoreError>) -> Result<Option<T>, Failure> {
    match result {
        Ok(v) => Ok(Some(v)),
        Err(e) if e.kind() == ErrorKind::ConditionFailed => Ok(None),
        Err(e) => Err(unexpected(e)),
    }
}

async fn run_task(
    store: Arc<dyn PooledStore>,
    barrier: Arc<Barrier>,
    prefix: String,
    keys: usize,
    id: usize,
    ops: Vec<Op>,
) -> Result<Vec<Event>, Failure> {
    let mut task = Task {
        store,
        prefix,
        id,
        seen: vec![None; keys],
    };
    barrier.wait().await;
    let mut events = Vec::new();
    for (index, op) in ops.iter().enumerate() {
        let invoke = Instant::now();
        let (call, result) = task.run(index, op).await?;
        events.push(Event {
            task: id,
            invoke,
            ret: Instant::now(),
            call,
            result,
        });
    }
    Ok(events)
}

/// The history as lines ordered by invocation, times in µs from the first.
fn describe(prefix: &str, events: &[Event]) -> String {
    let mut sorted: Vec<&Event> = events.iter().collect();
    sorted.sort_by_key(|e| e.invoke);
    let origin = sorted.first().map(|e| e.invoke);
    let mut text = format!("keys are {prefix}<n>; values are ids\n");
    for e in sorted {
        let at = |t: Instant| origin.map_or(0, |o| t.duration_since(o).as_micros());
        let _ = writeln!(
            text,
            "  task {} [{:>7}µs ..{:>7}µs] {:?} -> {:?}",
            e.task,
            at(e.invoke),
            at(e.ret),
            e.call,
            e.result
        );
    }
    text
}
