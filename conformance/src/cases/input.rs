//! Input checks: what every backend must reject as `InvalidInput` before writing.

use std::time::Duration;

use storage_api::{
    Condition, ErrorKind, MAX_KEY_BYTES, PutOptions, ScanOptions, TxOptions, WriteOp,
};

use crate::check::{CaseResult, Expect, Verdict};
use crate::context::{Ctx, SCAN_LIMIT, VALUE_LIMIT};

/// Empty keys, keys over 1024 bytes, values over `max_value_bytes`, a zero TTL and scan
/// limits over `max_scan_limit` are `InvalidInput`, nothing is written, and the
/// capabilities report the limits the store was opened with.
pub(crate) async fn invalid_input(ctx: Ctx) -> CaseResult {
    let store = ctx.open_default().await?;
    let caps = store.capabilities();
    ensure_eq!(
        caps.max_key_bytes,
        MAX_KEY_BYTES,
        "capabilities().max_key_bytes"
    );
    ensure_eq!(
        caps.max_value_bytes,
        VALUE_LIMIT,
        "capabilities().max_value_bytes"
    );
    ensure_eq!(
        caps.max_scan_limit,
        SCAN_LIMIT,
        "capabilities().max_scan_limit"
    );

    let long_key = vec![b'k'; MAX_KEY_BYTES + 1];
    let big_value = vec![0u8; VALUE_LIMIT + 1];
    let plain = PutOptions::default();
    let invalid = ErrorKind::InvalidInput;
    store
        .put(b"", b"v", plain)
        .await
        .must_fail(invalid, "put with an empty key")?;
    store
        .put(&long_key, b"v", plain)
        .await
        .must_fail(invalid, "put with a 1025-byte key")?;
    store
        .put(b"k", &big_value, plain)
        .await
        .must_fail(invalid, "put with a value over max_value_bytes")?;
    if caps.ttl {
        store
            .put(b"k", b"v", plain.with_ttl(Duration::ZERO))
            .await
            .must_fail(invalid, "put with a zero TTL")?;
    }
    store
        .get(b"")
        .await
        .must_fail(invalid, "get with an empty key")?;
    store
        .get(&long_key)
        .await
        .must_fail(invalid, "get with a 1025-byte key")?;
    store
        .delete(b"", Condition::Any)
        .await
        .must_fail(invalid, "delete with an empty key")?;
    store
        .delete(&long_key, Condition::Any)
        .await
        .must_fail(invalid, "delete with a 1025-byte key")?;
    store
        .scan(ScanOptions::default().with_limit(SCAN_LIMIT + 1))
        .await
        .must_fail(invalid, "scan with a limit over max_scan_limit")?;
    let err = store
        .batch(vec![
            WriteOp::put("fine", "v"),
            WriteOp::put("k", big_value.clone()),
        ])
        .await
        .must_fail(invalid, "batch with an oversized value")?;
    ensure_eq!(
        err.batch_index(),
        Some(1),
        "batch_index of the invalid operation"
    );
    let err = store
        .batch(vec![WriteOp::put("fine", "v"), WriteOp::delete("")])
        .await
        .must_fail(invalid, "batch deleting an empty key")?;
    ensure_eq!(
        err.batch_index(),
        Some(1),
        "batch_index of the invalid operation"
    );

    if caps.transactions {
        let mut tx = store.begin(TxOptions::default()).await.must("begin")?;
        tx.put(b"", b"v", plain)
            .await
            .must_fail(invalid, "transaction put with an empty key")?;
        tx.put(b"k", &big_value, plain)
            .await
            .must_fail(invalid, "transaction put with a value over max_value_bytes")?;
        tx.get(&long_key)
            .await
            .must_fail(invalid, "transaction get with a 1025-byte key")?;
        tx.scan(ScanOptions::default().with_limit(SCAN_LIMIT + 1))
            .await
            .must_fail(invalid, "transaction scan over max_scan_limit")?;
        tx.commit().await.must("commit after rejected writes")?;
    }

    let everything = store.scan(ScanOptions::default()).await.must("scan")?;
    ensure!(
        everything.is_empty(),
        "rejected operations wrote {} entries",
        everything.len()
    );
    store
        .put(b"k", &big_value[..VALUE_LIMIT], plain)
        .await
        .must("put with a value of exactly max_value_bytes")?;
    Ok(Verdict::Passed)
}
