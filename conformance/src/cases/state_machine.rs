//! The state-machine case: random sequences of puts, gets, deletes, scans, batches,
//! TTLs with a manual clock, purges and transactions, checked step by step against the
//! [`Model`], and shrunk by proptest to a minimal failing sequence.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::time::{Duration, SystemTime};

use proptest::collection::vec;
use proptest::prelude::*;
use proptest::strategy::Union;
use proptest::test_runner::{TestCaseError, TestError, TestRunner};
use proptest_state_machine::strategy::Sequential;
use storage_api::{
    Clock, Condition, Entry, ErrorKind, KeyRange, ManualClock, PooledStore, PutOptions,
    ScanOptions, StoreError, Transaction, TxOptions, Version, WriteOp, WriteResult,
};

use super::model::{BatchStep, Cond, KEYS, Model, Row, ScanSpec, Step};
use super::property::{config, run_blocking};
use crate::check::{CaseResult, Expect, Failure, Verdict, within};
use crate::context::Ctx;

/// Longest generated sequence.
const MAX_STEPS: usize = 40;
/// A version no store hands out in a test: stands for "a version the key never had".
const NEVER_ISSUED: u64 = 1 << 60;
/// Longest a single step may take before the kit calls it hung.
const STEP_LIMIT: Duration = Duration::from_secs(15);

/// Which optional operations sequences may use.
#[derive(Debug, Clone, Copy)]
struct Flags {
    ttl: bool,
    transactions: bool,
}

/// Random operation sequences behave exactly like the `BTreeMap` model.
pub(crate) async fn model_state_machine(ctx: Ctx) -> CaseResult {
    let caps = ctx.open_default().await?.capabilities();
    let flags = Flags {
        ttl: caps.ttl,
        transactions: caps.transactions,
    };
    let config = config(&ctx);
    let runner_ctx = ctx.clone();
    run_blocking(move |handle| {
        let mut runner = TestRunner::new(config);
        let strategy = Sequential::new(
            (1..MAX_STEPS).into(),
            || Just(Model::default()).boxed(),
            |model: &Model, step: &Step| model.allows(step),
            move |model: &Model| steps(model, flags),
            |model: Model, step: &Step| model.apply(step),
        );
        let result = runner.run(&strategy, |(_, steps, seen)| {
            handle
                .block_on(run_sequence(&runner_ctx, &steps, seen))
                .map_err(|f| TestCaseError::fail(f.message))
        });
        match result {
            Ok(()) => Ok(()),
            Err(TestError::Fail(reason, (_, steps, _))) => Err(Failure::new(format!(
                "{reason}\nminimal failing sequence ({} steps):\n{}",
                steps.len(),
                steps
                    .iter()
                    .enumerate()
                    .map(|(i, s)| format!("  {i}: {s:?}"))
                    .collect::<Vec<_>>()
                    .join("\n")
            ))),
            Err(TestError::Abort(reason)) => {
                Err(Failure::new(format!("the state machine aborted: {reason}")))
            }
        }
    })
    .await?;
    Ok(Verdict::Passed)
}

fn key() -> impl Strategy<Value = usize> {
    0..KEYS.len()
}

fn value() -> impl Strategy<Value = Vec<u8>> {
    vec(any::<u8>(), 0..4)
}

fn cond() -> impl Strategy<Value = Cond> {
    prop_oneof![
        3 => Just(Cond::Any),
        2 => Just(Cond::Absent),
        3 => Just(Cond::Current),
        1 => Just(Cond::Stale),
    ]
}

/// TTLs end at 5 ms past a multiple of 10 and the clock moves in tens, so no step ever
/// lands exactly on an expiry instant.
fn ttl(flags: Flags) -> BoxedStrategy<Option<u64>> {
    if flags.ttl {
        proptest::option::weighted(0.3, (1..=30u64).prop_map(|k| k * 10 + 5)).boxed()
    } else {
        Just(None).boxed()
    }
}

fn scan_spec() -> impl Strategy<Value = ScanSpec> {
    (
        proptest::bool::weighted(0.25),
        proptest::option::of(key()),
        proptest::option::of(key()),
        proptest::option::weighted(0.5, 0..4usize),
        proptest::option::weighted(0.3, key()),
    )
        .prop_map(|(prefix_a, start, end, limit, after)| ScanSpec {
            prefix_a,
            start,
            end,
            limit,
            after,
        })
}

fn batch_step() -> impl Strategy<Value = BatchStep> {
    prop_oneof![
        3 => (key(), value(), cond()).prop_map(|(key, value, cond)| BatchStep::Put { key, value, cond }),
        1 => (key(), cond()).prop_map(|(key, cond)| BatchStep::Delete { key, cond }),
    ]
}

/// The steps allowed from `model`, weighted.
fn steps(model: &Model, flags: Flags) -> BoxedStrategy<Step> {
    let mut arms: Vec<(u32, BoxedStrategy<Step>)> = vec![
        (3, key().prop_map(Step::Get).boxed()),
        (2, scan_spec().prop_map(Step::Scan).boxed()),
    ];
    if flags.ttl {
        arms.push((2, (1..=20u64).prop_map(|k| Step::Advance(k * 10)).boxed()));
    }
    if model.tx.is_none() {
        arms.push((
            6,
            (key(), value(), cond(), ttl(flags))
                .prop_map(|(key, value, cond, ttl)| Step::Put {
                    key,
                    value,
                    cond,
                    ttl,
                })
                .boxed(),
        ));
        arms.push((
            2,
            (key(), cond())
                .prop_map(|(key, cond)| Step::Delete { key, cond })
                .boxed(),
        ));
        arms.push((1, vec(batch_step(), 1..4).prop_map(Step::Batch).boxed()));
        if flags.ttl {
            arms.push((1, Just(Step::Purge).boxed()));
        }
        if flags.transactions {
            arms.push((
                2,
                proptest::bool::weighted(0.3)
                    .prop_map(|read_only| Step::Begin { read_only })
                    .boxed(),
            ));
        }
    } else {
        arms.extend([
            (3, key().prop_map(Step::TxGet).boxed()),
            (
                4,
                (key(), value(), cond())
                    .prop_map(|(key, value, cond)| Step::TxPut { key, value, cond })
                    .boxed(),
            ),
            (
                1,
                (key(), cond())
                    .prop_map(|(key, cond)| Step::TxDelete { key, cond })
                    .boxed(),
            ),
            (1, scan_spec().prop_map(Step::TxScan).boxed()),
            (2, Just(Step::Commit).boxed()),
            (1, Just(Step::Rollback).boxed()),
            (1, Just(Step::DropTx).boxed()),
        ]);
    }
    Union::new_weighted(arms).boxed()
}

/// The versions one view (committed, or a transaction's) has handed each key.
#[derive(Debug, Clone, Default)]
struct Versions {
    current: [Option<Version>; KEYS.len()],
    history: [Vec<Version>; KEYS.len()],
}

impl Versions {
    fn condition(&self, key: usize, cond: Cond) -> Condition {
        let never = Version::new(NEVER_ISSUED).map_or(Condition::Absent, Condition::Version);
        match cond {
            Cond::Any => Condition::Any,
            Cond::Absent => Condition::Absent,
            Cond::Current => self.current[key].map_or(never, Condition::Version),
            Cond::Stale => self.history[key]
                .iter()
                .rev()
                .find(|v| Some(**v) != self.current[key])
                .map_or(never, |v| Condition::Version(*v)),
        }
    }

    fn record(&mut self, key: usize, version: Version) -> Result<(), Failure> {
        if let Some(max) = self.history[key].iter().max() {
            ensure!(
                version > *max,
                "key {:?} got version {version}, not above its earlier {max}",
                KEYS[key].escape_ascii().to_string()
            );
        }
        self.history[key].push(version);
        self.current[key] = Some(version);
        Ok(())
    }
}

/// The system under test for one sequence, with what the runner knows about it.
struct Sut {
    store: Arc<dyn PooledStore>,
    clock: ManualClock,
    start: SystemTime,
    model: Model,
    versions: Versions,
    tx: Option<(Box<dyn Transaction>, Versions)>,
}

async fn run_sequence(
    ctx: &Ctx,
    steps: &[Step],
    seen: Option<Arc<AtomicUsize>>,
) -> Result<(), Failure> {
    let clock = ManualClock::default();
    let start = clock.now();
    let options = ctx.options(|o| {
        o.clock = Arc::new(clock.clone());
        o.max_connections = 2;
        o.acquire_timeout = Duration::from_secs(5);
        o.busy_timeout = Duration::from_secs(2);
    });
    let store = ctx.open_transient(&options).await?;
    let mut sut = Sut {
        store: Arc::clone(&store),
        clock,
        start,
        model: Model::default(),
        versions: Versions::default(),
        tx: None,
    };
    let mut outcome = Ok(());
    for (i, step) in steps.iter().enumerate() {
        if let Some(seen) = &seen {
            seen.fetch_add(1, SeqCst);
        }
        let checked = within(STEP_LIMIT, format!("step {i} {step:?}"), sut.step(step))
            .await
            .and_then(|r| r);
        if let Err(f) = checked {
            outcome = Err(Failure::new(format!("step {i} {step:?}: {}", f.message)));
            break;
        }
        sut.model = std::mem::take(&mut sut.model).apply(step);
    }
    drop(sut);
    let _ = tokio::time::timeout(Duration::from_secs(10), store.close()).await;
    outcome
}

impl Sut {
    fn entry_matches(
        &self,
        entry: &Entry,
        key: usize,
        row: &Row,
        versions: &Versions,
    ) -> Result<(), Failure> {
        ensure!(
            entry.key == KEYS[key],
            "entry key {:?} where {:?} was expected",
            entry.key.escape_ascii().to_string(),
            KEYS[key].escape_ascii().to_string()
        );
        ensure_eq!(
            entry.value,
            row.value,
            "value of {:?}",
            KEYS[key].escape_ascii().to_string()
        );
        ensure_eq!(
            Some(entry.version),
            versions.current[key],
            "version of {:?}",
            KEYS[key].escape_ascii().to_string()
        );
        let expires = row.expires.map(|ms| self.start + Duration::from_millis(ms));
        ensure_eq!(
            entry.expires_at,
            expires,
            "expires_at of {:?}",
            KEYS[key].escape_ascii().to_string()
        );
        Ok(())
    }

    fn check_scan(
        &self,
        entries: &[Entry],
        expected: &[(usize, Row)],
        versions: &Versions,
    ) -> Result<(), Failure> {
        let got: Vec<String> = entries
            .iter()
            .map(|e| e.key.escape_ascii().to_string())
            .collect();
        let want: Vec<String> = expected
            .iter()
            .map(|(k, _)| KEYS[*k].escape_ascii().to_string())
            .collect();
        ensure_eq!(got, want, "scanned keys");
        for (entry, (key, row)) in entries.iter().zip(expected) {
            self.entry_matches(entry, *key, row, versions)?;
        }
        Ok(())
    }

    async fn step(&mut self, step: &Step) -> Result<(), Failure> {
        let now = self.model.now;
        match step {
            Step::Get(key) => {
                let entry = self.store.get(KEYS[*key]).await.must("get")?;
                let row = self.model.committed.get(*key, now).cloned();
                self.check_get(entry, *key, row.as_ref(), false)
            }
            Step::Put {
                key,
                value,
                cond,
                ttl,
            } => {
                let options = PutOptions {
                    condition: self.versions.condition(*key, *cond),
                    ttl: ttl.map(Duration::from_millis),
                };
                let result = self.store.put(KEYS[*key], value, options).await;
                let holds = self.model.committed.holds(*key, *cond, now);
                check_put(result, holds, *key, &mut self.versions)
            }
            Step::Delete { key, cond } => {
                let condition = self.versions.condition(*key, *cond);
                let result = self.store.delete(KEYS[*key], condition).await;
                let expected = self.model.committed.clone().delete(*key, *cond, now);
                check_delete(result, expected)
            }
            Step::Scan(spec) => {
                let entries = self.store.scan(scan_options(spec)).await.must("scan")?;
                let expected = self.model.committed.scan(spec, now);
                self.check_scan(&entries, &expected, &self.versions)
            }
            Step::Batch(ops) => self.batch(ops).await,
            Step::Purge => {
                let purged = self.store.purge_expired().await.must("purge_expired")?;
                let bound = self.model.committed.expired(now) as u64;
                ensure!(
                    purged <= bound,
                    "purge_expired removed {purged} entries; at most {bound} had expired"
                );
                Ok(())
            }
            Step::Advance(ms) => {
                self.clock.advance(Duration::from_millis(*ms));
                Ok(())
            }
            Step::Begin { read_only } => {
                let tx = self
                    .store
                    .begin(TxOptions {
                        read_only: *read_only,
                    })
                    .await
                    .must("begin")?;
                self.tx = Some((tx, self.versions.clone()));
                Ok(())
            }
            Step::Commit => {
                let Some((tx, versions)) = self.tx.take() else {
                    fail!("no transaction is open");
                };
                tx.commit().await.must("commit")?;
                if self.model.tx.as_ref().is_some_and(|t| !t.read_only) {
                    self.versions = versions;
                }
                Ok(())
            }
            Step::Rollback => {
                let Some((tx, _)) = self.tx.take() else {
                    fail!("no transaction is open");
                };
                tx.rollback().await.must("rollback")
            }
            Step::DropTx => {
                self.tx = None;
                Ok(())
            }
            Step::TxGet(_) | Step::TxPut { .. } | Step::TxDelete { .. } | Step::TxScan(_) => {
                self.tx_step(step).await
            }
        }
    }

    fn check_get(
        &self,
        entry: Option<Entry>,
        key: usize,
        row: Option<&Row>,
        in_tx: bool,
    ) -> Result<(), Failure> {
        let versions = match (&self.tx, in_tx) {
            (Some((_, v)), true) => v,
            _ => &self.versions,
        };
        match (entry, row) {
            (None, None) => Ok(()),
            (Some(entry), Some(row)) => self.entry_matches(&entry, key, row, versions),
            (Some(entry), None) => fail!(
                "get returned version {} where the model has no live entry",
                entry.version
            ),
            (None, Some(_)) => fail!("get returned nothing where the model has a live entry"),
        }
    }

    async fn batch(&mut self, ops: &[BatchStep]) -> Result<(), Failure> {
        let now = self.model.now;
        let write_ops: Vec<WriteOp> = ops
            .iter()
            .map(|op| match op {
                BatchStep::Put { key, value, cond } => WriteOp::Put {
                    key: KEYS[*key].to_vec(),
                    value: value.clone(),
                    options: PutOptions {
                        condition: self.versions.condition(*key, *cond),
                        ttl: None,
                    },
                },
                BatchStep::Delete { key, cond } => WriteOp::Delete {
                    key: KEYS[*key].to_vec(),
                    condition: self.versions.condition(*key, *cond),
                },
            })
            .collect();
        let result = self.store.batch(write_ops).await;
        // Conditions were resolved from the versions before the batch; the model judges
        // `Current` on a key the batch already wrote accordingly.
        match (result, self.model.committed.clone().batch(ops, now)) {
            (Ok(results), Ok(expected)) => {
                ensure_eq!(results.len(), ops.len(), "batch result count");
                for ((result, expected), op) in results.iter().zip(expected).zip(ops) {
                    match (result, expected, op) {
                        (WriteResult::Put(v), None, BatchStep::Put { key, .. }) => {
                            self.versions.record(*key, *v)?;
                        }
                        (WriteResult::Delete(removed), Some(want), _) => {
                            ensure_eq!(*removed, want, "batch delete result");
                        }
                        (got, _, op) => fail!("batch result {got:?} for {op:?}"),
                    }
                }
                Ok(())
            }
            (Err(e), Err(index)) => {
                ensure_eq!(
                    e.kind(),
                    ErrorKind::ConditionFailed,
                    "kind of the batch error"
                );
                ensure_eq!(
                    e.batch_index(),
                    Some(index),
                    "batch_index of the failing operation"
                );
                Ok(())
            }
            (Ok(results), Err(index)) => fail!(
                "the batch succeeded with {results:?}; operation {index}'s condition fails in the model"
            ),
            (Err(e), Ok(_)) => fail!("the batch failed with {e}; the model applies it"),
        }
    }

    async fn tx_step(&mut self, step: &Step) -> Result<(), Failure> {
        let now = self.model.now;
        let Some(model_tx) = self.model.tx.clone() else {
            fail!("no transaction is open in the model");
        };
        let Some((tx, versions)) = self.tx.as_mut() else {
            fail!("no transaction is open");
        };
        match step {
            Step::TxGet(key) => {
                let entry = tx.get(KEYS[*key]).await.must("tx get")?;
                let row = model_tx.view.get(*key, now).cloned();
                self.check_get(entry, *key, row.as_ref(), true)
            }
            Step::TxPut { key, value, cond } => {
                let options = PutOptions {
                    condition: versions.condition(*key, *cond),
                    ttl: None,
                };
                let result = tx.put(KEYS[*key], value, options).await;
                if model_tx.read_only {
                    result.must_fail(ErrorKind::InvalidInput, "put in a read-only transaction")?;
                    return Ok(());
                }
                let holds = model_tx.view.holds(*key, *cond, now);
                check_put(result, holds, *key, versions)
            }
            Step::TxDelete { key, cond } => {
                let condition = versions.condition(*key, *cond);
                let result = tx.delete(KEYS[*key], condition).await;
                if model_tx.read_only {
                    result
                        .must_fail(ErrorKind::InvalidInput, "delete in a read-only transaction")?;
                    return Ok(());
                }
                check_delete(result, model_tx.view.clone().delete(*key, *cond, now))
            }
            Step::TxScan(spec) => {
                let entries = tx.scan(scan_options(spec)).await.must("tx scan")?;
                let expected = model_tx.view.scan(spec, now);
                let versions = versions.clone();
                self.check_scan(&entries, &expected, &versions)
            }
            other => fail!("{other:?} is not a transaction step"),
        }
    }
}

fn check_put(
    result: Result<Version, StoreError>,
    holds: bool,
    key: usize,
    versions: &mut Versions,
) -> Result<(), Failure> {
    if holds {
        let version = result.must("put whose condition holds in the model")?;
        versions.record(key, version)
    } else {
        result.must_fail(
            ErrorKind::ConditionFailed,
            "put whose condition fails in the model",
        )?;
        Ok(())
    }
}

fn check_delete(result: Result<bool, StoreError>, expected: Option<bool>) -> Result<(), Failure> {
    match expected {
        Some(removed) => {
            let got = result.must("delete whose condition holds in the model")?;
            ensure_eq!(
                got,
                removed,
                "delete result (whether a live entry was removed)"
            );
        }
        None => {
            result.must_fail(
                ErrorKind::ConditionFailed,
                "delete whose condition fails in the model",
            )?;
        }
    }
    Ok(())
}

fn scan_options(spec: &ScanSpec) -> ScanOptions {
    let range = if spec.prefix_a {
        KeyRange::prefix(b"a".to_vec())
    } else {
        KeyRange {
            start: spec.start.map(|s| KEYS[s].to_vec()),
            end: spec.end.map(|e| KEYS[e].to_vec()),
        }
    };
    ScanOptions {
        range,
        limit: spec.limit,
        after: spec.after.map(|a| KEYS[a].to_vec()),
    }
}
