//! Persistence: what a persistent store holds survives close and reopen, versions
//! included.

use std::time::Duration;

use storage_api::{Condition, PutOptions, ScanOptions, WriteOp, WriteResult};

use super::support::{Need, read, show};
use crate::check::{CaseResult, Expect, Verdict, within};
use crate::context::Ctx;

/// Entries, versions and expiry survive close and reopen of the same location, and
/// later versions keep rising (also for keys deleted before the close).
pub(crate) async fn persistence_reopen(ctx: Ctx) -> CaseResult {
    let options = ctx.options(|_| {});
    let store = ctx.open_options(&options).await?;
    require!(store, Need::Persistent);
    let ttl = store.capabilities().ttl;
    let start = storage_api::Clock::now(ctx.clock());
    store
        .put(b"a", b"1", PutOptions::default())
        .await
        .must("put a")?;
    let va = store
        .put(b"a", b"2", PutOptions::default())
        .await
        .must("put a again")?;
    let vc = store
        .put(b"c", b"gone", PutOptions::default())
        .await
        .must("put c")?;
    store.delete(b"c", Condition::Any).await.must("delete c")?;
    let results = store
        .batch(vec![
            WriteOp::put("d", "4"),
            WriteOp::put(vec![0u8, 0xFF], vec![0u8; 3]),
        ])
        .await
        .must("batch")?;
    let [WriteResult::Put(vd), WriteResult::Put(vbin)] = results[..] else {
        fail!("batch results {results:?}");
    };
    let vb = if ttl {
        let options = PutOptions::default().with_ttl(Duration::from_secs(60));
        Some(
            store
                .put(b"b", b"expiring", options)
                .await
                .must("put b ttl 60s")?,
        )
    } else {
        None
    };
    within(Duration::from_secs(10), "close", store.close()).await?;

    let store = ctx.open_options(&options).await?;
    ensure_eq!(
        read(&store, b"a").await?,
        Some((b"2".to_vec(), va)),
        "a after reopen"
    );
    ensure!(
        read(&store, b"c").await?.is_none(),
        "a deleted key came back after reopen"
    );
    ensure_eq!(
        read(&store, b"d").await?,
        Some((b"4".to_vec(), vd)),
        "d after reopen"
    );
    ensure_eq!(
        read(&store, &[0, 0xFF]).await?,
        Some((vec![0u8; 3], vbin)),
        "a binary key after reopen"
    );
    if let Some(vb) = vb {
        let b = store.get(b"b").await.must("get b")?;
        ensure!(
            b.as_ref().is_some_and(
                |e| e.version == vb && e.expires_at == Some(start + Duration::from_secs(60))
            ),
            "b (ttl 60s) after reopen: {b:?}"
        );
    }
    let keys: Vec<String> = store
        .scan(ScanOptions::default())
        .await
        .must("scan after reopen")?
        .iter()
        .map(|e| show(&e.key))
        .collect();
    let mut want = vec![show(&[0, 0xFF]), show(b"a"), show(b"d")];
    if ttl {
        want.insert(2, show(b"b"));
    }
    ensure_eq!(keys, want, "scan after reopen");
    let vc2 = store
        .put(b"c", b"back", PutOptions::default())
        .await
        .must("put c")?;
    ensure!(
        vc2 > vc,
        "c's version after reopen ({vc2}) is not above its last one ({vc})"
    );
    let va2 = store
        .put(b"a", b"3", PutOptions::if_version(va))
        .await
        .must("swap a")?;
    ensure!(
        va2 > va,
        "a's version after reopen ({va2}) is not above {va}"
    );

    if ttl {
        ctx.clock().advance(Duration::from_secs(61));
        ensure!(
            read(&store, b"b").await?.is_none(),
            "b outlived its TTL across reopen"
        );
        within(Duration::from_secs(10), "close", store.close()).await?;
        let store = ctx.open_options(&options).await?;
        ensure!(
            read(&store, b"b").await?.is_none(),
            "an expired entry reappeared on reopen"
        );
        ensure_eq!(
            read(&store, b"a").await?,
            Some((b"3".to_vec(), va2)),
            "a after the second reopen"
        );
    }
    Ok(Verdict::Passed)
}
