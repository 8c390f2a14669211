//! TTL cases: expiry hides entries from every read, counts as absent for conditions,
//! and `purge_expired` removes and counts expired entries.

use std::time::Duration;

use storage_api::{Condition, ErrorKind, PutOptions, ScanOptions, TxOptions, WriteOp, WriteResult};

use super::support::{Need, read, show};
use crate::check::{CaseResult, Expect, Verdict};
use crate::context::Ctx;

fn ttl(ms: u64) -> PutOptions {
    PutOptions::default().with_ttl(Duration::from_millis(ms))
}

/// An entry past `expires_at` is invisible to `get`, scans (range, prefix, limit) and
/// transactions; one just before it is visible; a put without TTL clears the expiry.
pub(crate) async fn ttl_expiry(ctx: Ctx) -> CaseResult {
    let store = ctx.open_default().await?;
    require!(store, Need::Ttl);
    let clock = ctx.clock();
    let start = storage_api::Clock::now(clock);
    store
        .put(b"a", b"10s", ttl(10_000))
        .await
        .must("put a ttl 10s")?;
    store
        .put(b"b", b"20s", ttl(20_000))
        .await
        .must("put b ttl 20s")?;
    store
        .put(b"c", b"forever", PutOptions::default())
        .await
        .must("put c")?;
    let a = store.get(b"a").await.must("get a")?;
    ensure_eq!(
        a.and_then(|e| e.expires_at),
        Some(start + Duration::from_secs(10)),
        "expires_at of a put with ttl 10s"
    );

    clock.advance(Duration::from_millis(9_999));
    ensure!(
        read(&store, b"a").await?.is_some(),
        "a expired 1 ms before its TTL ran out"
    );

    clock.advance(Duration::from_millis(2));
    ensure!(
        read(&store, b"a").await?.is_none(),
        "get returned a after its TTL"
    );
    let all = store.scan(ScanOptions::default()).await.must("scan")?;
    let keys: Vec<String> = all.iter().map(|e| show(&e.key)).collect();
    ensure_eq!(keys, vec![show(b"b"), show(b"c")], "scan after a expired");
    let prefixed = store
        .scan(ScanOptions::prefix("a"))
        .await
        .must("scan prefix a")?;
    ensure!(prefixed.is_empty(), "prefix scan returned an expired entry");
    if store.capabilities().transactions {
        let mut tx = store
            .begin(TxOptions { read_only: true })
            .await
            .must("begin read-only")?;
        let seen = tx.get(b"a").await.must("tx get a")?;
        let scanned = tx.scan(ScanOptions::default()).await.must("tx scan")?;
        tx.commit().await.must("commit read-only")?;
        ensure!(seen.is_none(), "a transaction read an expired entry");
        ensure_eq!(
            scanned.len(),
            2,
            "entries a transaction scan returned after a expired"
        );
    }

    for (i, expiring) in [true, true, false, false, false].into_iter().enumerate() {
        let options = if expiring {
            ttl(1_000)
        } else {
            PutOptions::default()
        };
        let key = format!("e/{i}");
        store
            .put(key.as_bytes(), b"v", options)
            .await
            .must("put e/*")?;
    }
    store
        .put(b"o", b"short", ttl(1_000))
        .await
        .must("put o ttl 1s")?;
    store
        .put(b"o", b"kept", PutOptions::default())
        .await
        .must("overwrite o without ttl")?;
    let batch = vec![WriteOp::Put {
        key: b"bt".to_vec(),
        value: b"v".to_vec(),
        options: ttl(1_000),
    }];
    store.batch(batch).await.must("batch put with ttl")?;
    clock.advance(Duration::from_secs(2));
    let page = store
        .scan(ScanOptions::prefix("e/").with_limit(2))
        .await
        .must("scan e/ limit 2")?;
    let keys: Vec<String> = page.iter().map(|e| show(&e.key)).collect();
    ensure_eq!(
        keys,
        vec![show(b"e/2"), show(b"e/3")],
        "scan with limit 2 over two expired then three live keys"
    );
    let o = store.get(b"o").await.must("get o")?;
    ensure!(
        o.as_ref().is_some_and(|e| e.expires_at.is_none()),
        "a put without TTL did not clear the earlier TTL: {o:?}"
    );
    ensure!(
        read(&store, b"bt").await?.is_none(),
        "a batch put with TTL did not expire"
    );
    Ok(Verdict::Passed)
}

/// An expired entry counts as absent for every condition, in puts, deletes and batches.
pub(crate) async fn ttl_conditions(ctx: Ctx) -> CaseResult {
    let store = ctx.open_default().await?;
    require!(store, Need::Ttl);
    let v1 = store
        .put(b"x", b"v", ttl(1_000))
        .await
        .must("put x ttl 1s")?;
    let vy = store
        .put(b"y", b"v", ttl(1_000))
        .await
        .must("put y ttl 1s")?;
    ctx.clock().advance(Duration::from_secs(2));
    store
        .put(b"x", b"again", PutOptions::if_version(v1))
        .await
        .must_fail(
            ErrorKind::ConditionFailed,
            "put if_version(expired version)",
        )?;
    store.delete(b"x", Condition::Version(v1)).await.must_fail(
        ErrorKind::ConditionFailed,
        "delete if_version(expired version)",
    )?;
    let removed = store
        .delete(b"x", Condition::Absent)
        .await
        .must("delete if absent of an expired key")?;
    ensure!(!removed, "delete of an expired key reported a removal");
    let v2 = store
        .put(b"x", b"new", PutOptions::if_absent())
        .await
        .must("put if_absent over an expired key")?;
    ensure!(v2 > v1, "version {v2} after expiry is not above {v1}");
    let stale = store
        .batch(vec![WriteOp::Put {
            key: b"y".to_vec(),
            value: b"v".to_vec(),
            options: PutOptions::if_version(vy),
        }])
        .await
        .must_fail(
            ErrorKind::ConditionFailed,
            "batch put if_version(expired version)",
        )?;
    ensure_eq!(stale.batch_index(), Some(0), "batch_index");
    let fresh = store
        .batch(vec![WriteOp::Put {
            key: b"y".to_vec(),
            value: b"w".to_vec(),
            options: PutOptions::if_absent(),
        }])
        .await
        .must("batch put if_absent over an expired key")?;
    ensure!(
        matches!(fresh[..], [WriteResult::Put(v)] if v > vy),
        "batch put over an expired key returned {fresh:?}, not a version above {vy}"
    );
    Ok(Verdict::Passed)
}

/// `purge_expired` removes expired entries, counts them, leaves live ones, and finds
/// nothing the second time.
pub(crate) async fn ttl_purge(ctx: Ctx) -> CaseResult {
    let store = ctx.open_default().await?;
    require!(store, Need::Ttl);
    for key in ["p1", "p2", "p3"] {
        store
            .put(key.as_bytes(), b"v", ttl(1_000))
            .await
            .must("put with ttl 1s")?;
    }
    store
        .put(b"live", b"v", ttl(3_600_000))
        .await
        .must("put live ttl 1h")?;
    store
        .put(b"keep", b"v", PutOptions::default())
        .await
        .must("put keep")?;
    let before = store
        .purge_expired()
        .await
        .must("purge before anything expired")?;
    ensure_eq!(before, 0, "entries purged before any expired");
    ctx.clock().advance(Duration::from_secs(2));
    let purged = store.purge_expired().await.must("purge")?;
    ensure_eq!(purged, 3, "entries purged after three expired");
    let again = store.purge_expired().await.must("purge again")?;
    ensure_eq!(again, 0, "entries purged by a second purge");
    let left = store.scan(ScanOptions::default()).await.must("scan")?;
    let keys: Vec<String> = left.iter().map(|e| show(&e.key)).collect();
    ensure_eq!(
        keys,
        vec![show(b"keep"), show(b"live")],
        "live entries after purge"
    );
    store
        .put(b"q", b"v", ttl(1_000))
        .await
        .must("put q ttl 1s")?;
    ctx.clock().advance(Duration::from_secs(2));
    ensure_eq!(
        store.purge_expired().await.must("purge q")?,
        1,
        "entries purged after q expired"
    );
    Ok(Verdict::Passed)
}
