//! Batch cases: all or nothing, the failing index, and in-order application.

use storage_api::{Condition, ErrorKind, PutOptions, Version, WriteOp, WriteResult};

use super::support::read;
use crate::check::{CaseResult, Expect, Verdict};
use crate::context::Ctx;

fn put_if(key: &str, value: &str, condition: Condition) -> WriteOp {
    WriteOp::Put {
        key: key.into(),
        value: value.into(),
        options: PutOptions {
            condition,
            ttl: None,
        },
    }
}

/// `batch` applies every operation or none; a failed condition or bad input names the
/// index of the failing operation.
pub(crate) async fn batch_atomic(ctx: Ctx) -> CaseResult {
    let store = ctx.open_default().await?;
    store
        .put(b"c", b"old", PutOptions::default())
        .await
        .must("put c")?;
    let results = store
        .batch(vec![
            WriteOp::put("a", "1"),
            WriteOp::put("b", "2"),
            WriteOp::delete("c"),
        ])
        .await
        .must("batch put a, put b, delete c")?;
    let [
        WriteResult::Put(va),
        WriteResult::Put(vb),
        WriteResult::Delete(true),
    ] = results[..]
    else {
        fail!("batch results {results:?}: expected [Put, Put, Delete(true)]");
    };
    ensure_eq!(
        read(&store, b"a").await?,
        Some((b"1".to_vec(), va)),
        "a after batch"
    );
    ensure_eq!(
        read(&store, b"b").await?,
        Some((b"2".to_vec(), vb)),
        "b after batch"
    );
    ensure!(
        read(&store, b"c").await?.is_none(),
        "c still present after a batch deleted it"
    );

    let failed = store
        .batch(vec![
            WriteOp::put("x", "never"),
            put_if("a", "clobber", Condition::Absent),
            WriteOp::put("z", "never"),
        ])
        .await
        .must_fail(
            ErrorKind::ConditionFailed,
            "batch whose second op fails its condition",
        )?;
    ensure_eq!(
        failed.batch_index(),
        Some(1),
        "batch_index of the failing operation"
    );
    for key in [&b"x"[..], b"z"] {
        ensure!(
            read(&store, key).await?.is_none(),
            "a failed batch still applied the put of {}",
            String::from_utf8_lossy(key)
        );
    }
    ensure_eq!(
        read(&store, b"a").await?,
        Some((b"1".to_vec(), va)),
        "a after a failed batch"
    );

    let stale = Version::new(va.get().saturating_add(1_000)).unwrap_or(va);
    let failed_last = store
        .batch(vec![
            WriteOp::delete("a"),
            WriteOp::put("b", "changed"),
            WriteOp::Delete {
                key: b"b".to_vec(),
                condition: Condition::Version(stale),
            },
        ])
        .await
        .must_fail(ErrorKind::ConditionFailed, "batch whose last op fails")?;
    ensure_eq!(
        failed_last.batch_index(),
        Some(2),
        "batch_index of the failing operation"
    );
    ensure_eq!(
        read(&store, b"a").await?,
        Some((b"1".to_vec(), va)),
        "a after a failed batch that deleted it first"
    );
    ensure_eq!(
        read(&store, b"b").await?,
        Some((b"2".to_vec(), vb)),
        "b after a failed batch that rewrote it first"
    );

    let invalid = store
        .batch(vec![
            WriteOp::put("y", "never"),
            WriteOp::put("w", "never"),
            WriteOp::put("", "empty key"),
        ])
        .await
        .must_fail(ErrorKind::InvalidInput, "batch with an empty key")?;
    ensure_eq!(
        invalid.batch_index(),
        Some(2),
        "batch_index of the invalid operation"
    );
    ensure!(
        read(&store, b"y").await?.is_none(),
        "a batch rejected as invalid still applied an operation"
    );

    let empty = store.batch(Vec::new()).await.must("empty batch")?;
    ensure!(
        empty.is_empty(),
        "an empty batch returned results {empty:?}"
    );
    Ok(Verdict::Passed)
}

/// Operations of a batch apply in order: a later one sees an earlier one's write, and
/// versions rise within the batch.
pub(crate) async fn batch_in_order(ctx: Ctx) -> CaseResult {
    let store = ctx.open_default().await?;
    let results = store
        .batch(vec![
            WriteOp::put("k", "1"),
            WriteOp::delete("k"),
            put_if("k", "2", Condition::Absent),
            WriteOp::put("k", "3"),
            WriteOp::delete("missing"),
        ])
        .await
        .must("batch put k, delete k, put k if absent, put k, delete missing")?;
    let [
        WriteResult::Put(v1),
        WriteResult::Delete(true),
        WriteResult::Put(v2),
        WriteResult::Put(v3),
        WriteResult::Delete(false),
    ] = results[..]
    else {
        fail!("batch results {results:?}: expected [Put, Delete(true), Put, Put, Delete(false)]");
    };
    ensure!(
        v1 < v2 && v2 < v3,
        "versions within one batch do not rise: {v1}, {v2}, {v3}"
    );
    ensure_eq!(
        read(&store, b"k").await?,
        Some((b"3".to_vec(), v3)),
        "k after the batch"
    );

    let chained = store
        .batch(vec![
            put_if("c", "made", Condition::Absent),
            put_if("c", "again", Condition::Absent),
        ])
        .await
        .must_fail(
            ErrorKind::ConditionFailed,
            "batch whose second if_absent put sees the first one's write",
        )?;
    ensure_eq!(
        chained.batch_index(),
        Some(1),
        "batch_index of the second put"
    );
    ensure!(
        read(&store, b"c").await?.is_none(),
        "c written by a failed batch"
    );
    Ok(Verdict::Passed)
}
