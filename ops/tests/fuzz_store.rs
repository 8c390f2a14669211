//! Property tests over arbitrary keys, values and options sent to real stores (both
//! SQLite backends, in memory): never a panic, and every answer is `Ok` or exactly the
//! error the contract names (`InvalidInput` for input the limits reject, and
//! `ConditionFailed` only for conditional writes).
//!
//! Runs 32 sequences per backend; `PROPTEST_CASES` raises it. Failures are saved next
//! to this file (`fuzz_store.proptest-regressions`) and replayed first.

mod common;

use std::sync::{Arc, LazyLock};
use std::time::Duration;

use common::{BACKENDS, Backend};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use storage_api::backend::Rules;
use storage_api::{
    Capabilities, Condition, ErrorKind, KeyRange, Limits, PooledStore, PutOptions, ScanOptions,
    StoreOptions, Version, WriteOp,
};

const LIMITS: Limits = Limits {
    max_value_bytes: 64,
    max_scan_limit: 10,
};

/// The contract's rules for a store with [`LIMITS`]: the oracle for what is rejected.
static RULES: LazyLock<Rules> = LazyLock::new(|| {
    Rules::new(Capabilities::full(
        LIMITS.max_value_bytes,
        LIMITS.max_scan_limit,
    ))
});

#[derive(Debug, Clone)]
enum Op {
    Get(Vec<u8>),
    Put(Vec<u8>, Vec<u8>, PutOptions),
    Delete(Vec<u8>, Condition),
    Scan(ScanOptions),
    Batch(Vec<WriteOp>),
}

fn key() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        1 => Just(Vec::new()),
        6 => prop::collection::vec(prop_oneof![Just(0u8), Just(b'a'), Just(0xFF), any::<u8>()], 1..4),
        1 => prop::collection::vec(any::<u8>(), 1020..1030),
    ]
}

fn value() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(any::<u8>(), 0..80)
}

fn condition() -> impl Strategy<Value = Condition> {
    prop_oneof![
        Just(Condition::Any),
        Just(Condition::Absent),
        (1u64..40).prop_map(|v| Condition::Version(Version::new(v).expect("non-zero"))),
    ]
}

fn put_options() -> impl Strategy<Value = PutOptions> {
    (condition(), prop::option::of(0u64..3)).prop_map(|(condition, ttl)| PutOptions {
        condition,
        ttl: ttl.map(Duration::from_millis),
    })
}

fn scan_options() -> impl Strategy<Value = ScanOptions> {
    (
        prop::option::of(key()),
        prop::option::of(key()),
        prop::option::of(key()),
        prop::option::of(0usize..14),
    )
        .prop_map(|(start, end, after, limit)| ScanOptions {
            range: KeyRange { start, end },
            limit,
            after,
        })
}

fn write_op() -> impl Strategy<Value = WriteOp> {
    prop_oneof![
        (key(), value(), put_options()).prop_map(|(key, value, options)| WriteOp::Put {
            key,
            value,
            options
        }),
        (key(), condition()).prop_map(|(key, condition)| WriteOp::Delete { key, condition }),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        key().prop_map(Op::Get),
        (key(), value(), put_options()).prop_map(|(k, v, o)| Op::Put(k, v, o)),
        (key(), condition()).prop_map(|(k, c)| Op::Delete(k, c)),
        scan_options().prop_map(Op::Scan),
        prop::collection::vec(write_op(), 0..5).prop_map(Op::Batch),
    ]
}

/// Fails unless `result` is `Ok`, or an error of a kind in `allowed`.
fn check<T: std::fmt::Debug>(
    op: &Op,
    result: &storage_api::Result<T>,
    allowed: &[ErrorKind],
) -> Result<(), TestCaseError> {
    if let Err(e) = result {
        prop_assert!(allowed.contains(&e.kind()), "{op:?} gave {e}");
    }
    Ok(())
}

/// The only kind an invalid input may give: `InvalidInput`.
fn rejected<T: std::fmt::Debug>(
    op: &Op,
    result: &storage_api::Result<T>,
) -> Result<(), TestCaseError> {
    match result {
        Err(e) if e.kind() == ErrorKind::InvalidInput => Ok(()),
        other => Err(TestCaseError::fail(format!(
            "{op:?} should be InvalidInput, got {other:?}"
        ))),
    }
}

fn conditional(condition: Condition) -> &'static [ErrorKind] {
    match condition {
        Condition::Any => &[],
        _ => &[ErrorKind::ConditionFailed],
    }
}

async fn apply(store: &dyn PooledStore, op: &Op) -> Result<(), TestCaseError> {
    match op {
        Op::Get(key) => {
            let result = store.get(key).await;
            match RULES.check_key(key) {
                Err(_) => rejected(op, &result),
                Ok(()) => check(op, &result, &[]),
            }
        }
        Op::Put(key, value, options) => {
            let result = store.put(key, value, *options).await;
            match RULES.check_put(key, value, options) {
                Err(_) => rejected(op, &result),
                Ok(()) => {
                    check(op, &result, conditional(options.condition))?;
                    if result.is_ok() && options.ttl.is_none() {
                        let entry = store
                            .get(key)
                            .await
                            .map_err(|e| TestCaseError::fail(e.to_string()))?;
                        prop_assert_eq!(entry.map(|e| e.value), Some(value.clone()));
                    }
                    Ok(())
                }
            }
        }
        Op::Delete(key, condition) => {
            let result = store.delete(key, *condition).await;
            match RULES.check_key(key) {
                Err(_) => rejected(op, &result),
                Ok(()) => check(op, &result, conditional(*condition)),
            }
        }
        Op::Scan(options) => {
            let result = store.scan(options.clone()).await;
            match RULES.scan_limit(options) {
                Err(_) => rejected(op, &result),
                Ok(limit) => {
                    check(op, &result, &[])?;
                    let entries = result.unwrap_or_default();
                    prop_assert!(entries.len() <= limit, "{op:?}: {} entries", entries.len());
                    prop_assert!(
                        entries.windows(2).all(|w| w[0].key < w[1].key),
                        "{op:?}: unordered"
                    );
                    prop_assert!(
                        entries.iter().all(|e| options.selects(&e.key)),
                        "{op:?}: outside"
                    );
                    Ok(())
                }
            }
        }
        Op::Batch(ops) => {
            let result = store.batch(ops.clone()).await;
            match RULES.check_batch(ops) {
                Err(expected) => {
                    rejected(op, &result)?;
                    let index = result.err().and_then(|e| e.batch_index());
                    prop_assert_eq!(index, expected.batch_index(), "{:?}", op);
                    Ok(())
                }
                Ok(()) => {
                    let conditional = ops.iter().any(|o| match o {
                        WriteOp::Put { options, .. } => options.condition != Condition::Any,
                        WriteOp::Delete { condition, .. } => *condition != Condition::Any,
                    });
                    let allowed: &[ErrorKind] = if conditional {
                        &[ErrorKind::ConditionFailed]
                    } else {
                        &[]
                    };
                    check(op, &result, allowed)?;
                    if let Ok(results) = &result {
                        prop_assert_eq!(results.len(), ops.len());
                    }
                    Ok(())
                }
            }
        }
    }
}

fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(32)
}

fn fuzz(backend: Backend) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let mut options = StoreOptions::new("sqlite::memory:");
    options.limits = LIMITS;
    options.max_connections = 2;
    let store: Arc<dyn PooledStore> = rt
        .block_on(common::open_with(backend, options))
        .expect("open");
    let config = Config {
        cases: cases(),
        ..Config::with_source_file(file!())
    };
    let mut runner = TestRunner::new(config);
    let outcome = runner.run(&prop::collection::vec(op(), 1..12), |ops| {
        rt.block_on(async {
            for op in &ops {
                apply(&*store, op).await?;
            }
            Ok(())
        })
    });
    rt.block_on(store.close());
    if let Err(e) = outcome {
        panic!("{backend:?}: {e}");
    }
}

#[test]
fn arbitrary_inputs_to_every_backend_get_contract_answers() {
    for backend in BACKENDS {
        fuzz(backend);
    }
}
