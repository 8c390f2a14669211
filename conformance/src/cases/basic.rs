//! Single-key data cases: absence, round trips, versions, conditions, delete.

use std::time::Duration;

use storage_api::{Condition, ErrorKind, MAX_KEY_BYTES, PutOptions, Version};

use super::support::{read, show};
use crate::check::{CaseResult, Expect, Verdict};
use crate::context::{Ctx, VALUE_LIMIT};

/// `get` of a key never written is `Ok(None)`, before and after other keys are written.
pub(crate) async fn get_absent(ctx: Ctx) -> CaseResult {
    let store = ctx.open_default().await?;
    let never: [&[u8]; 4] = [b"never", b"\0", &[0xFF; MAX_KEY_BYTES], b"a\0b"];
    for key in never {
        ensure!(
            read(&store, key).await?.is_none(),
            "get {} on an empty store returned an entry",
            show(key)
        );
    }
    store
        .put(b"neighbour", b"v", PutOptions::default())
        .await
        .must("put neighbour")?;
    for key in [&b"neighbou"[..], b"neighbour\0", b"never"] {
        ensure!(
            read(&store, key).await?.is_none(),
            "get {} returned an entry after only b\"neighbour\" was written",
            show(key)
        );
    }
    Ok(Verdict::Passed)
}

/// `get` returns exactly the bytes `put` stored: any bytes, keys of 1 and 1024 bytes,
/// empty and maximum-size values.
pub(crate) async fn put_get_roundtrip(ctx: Ctx) -> CaseResult {
    let store = ctx.open_default().await?;
    let every_byte: Vec<u8> = (0..=255).collect();
    let big_value: Vec<u8> = (0..VALUE_LIMIT).map(|i| (i * 31 % 256) as u8).collect();
    let cases: Vec<(Vec<u8>, Vec<u8>)> = vec![
        (b"k".to_vec(), b"plain".to_vec()),
        (vec![0], b"nul key".to_vec()),
        (vec![0xFF], vec![0xC3, 0x28, 0xA0, 0xA1]),
        (b"a\0b".to_vec(), b"v\0with\0nuls".to_vec()),
        (b"A".to_vec(), b"upper".to_vec()),
        (b"a".to_vec(), b"lower".to_vec()),
        (b"a\0".to_vec(), b"trailing nul".to_vec()),
        (b"empty".to_vec(), Vec::new()),
        (every_byte.clone(), every_byte.clone()),
        (vec![0xFF; MAX_KEY_BYTES], big_value.clone()),
        (vec![0x00; MAX_KEY_BYTES], b"zeros".to_vec()),
    ];
    let mut written = Vec::new();
    for (key, value) in &cases {
        let version = store
            .put(key, value, PutOptions::default())
            .await
            .must(format_args!("put {}", show(key)))?;
        written.push(version);
    }
    for ((key, value), version) in cases.iter().zip(&written) {
        let entry = store
            .get(key)
            .await
            .must(format_args!("get {}", show(key)))?;
        let Some(entry) = entry else {
            fail!("get {} after put returned nothing", show(key));
        };
        ensure_eq!(entry.key, *key, "the key of the entry read back");
        ensure!(
            entry.value == *value,
            "get {} returned {} bytes that differ from the {} bytes put",
            show(key),
            entry.value.len(),
            value.len()
        );
        ensure_eq!(entry.version, *version, "get {} version", show(key));
        ensure_eq!(
            entry.expires_at,
            None,
            "get {} expiry of a put without TTL",
            show(key)
        );
    }
    let replaced = store
        .put(b"k", b"replaced", PutOptions::default())
        .await
        .must("overwrite k")?;
    ensure_eq!(
        read(&store, b"k").await?,
        Some((b"replaced".to_vec(), replaced)),
        "get k after overwriting it"
    );
    Ok(Verdict::Passed)
}

/// Every put returns a version strictly greater than the key's previous one, even
/// across a delete, so a compare-and-swap can never be fooled (ABA).
pub(crate) async fn versions_increase(ctx: Ctx) -> CaseResult {
    let store = ctx.open_default().await?;
    let mut seen: Vec<Version> = Vec::new();
    for round in 0..3 {
        for n in 0..3 {
            let value = format!("r{round}n{n}");
            let version = store
                .put(b"k", value.as_bytes(), PutOptions::default())
                .await
                .must("put k")?;
            if let Some(last) = seen.last() {
                ensure!(
                    version > *last,
                    "put k returned version {version}, not above the previous {last} \
                     (round {round})"
                );
            }
            seen.push(version);
            let current = read(&store, b"k").await?.map(|(_, v)| v);
            ensure_eq!(current, Some(version), "get k version after put");
        }
        let deleted = store.delete(b"k", Condition::Any).await.must("delete k")?;
        ensure!(deleted, "delete of a live key returned false");
    }
    let first = seen[0];
    let reborn = store
        .put(b"k", b"again", PutOptions::default())
        .await
        .must("put k")?;
    store
        .put(b"k", b"aba", PutOptions::if_version(first))
        .await
        .must_fail(
            ErrorKind::ConditionFailed,
            "put k if_version(first version) after delete and recreate (ABA)",
        )?;
    ensure_eq!(
        read(&store, b"k").await?,
        Some((b"again".to_vec(), reborn)),
        "k after a rejected ABA put"
    );
    Ok(Verdict::Passed)
}

/// A put or delete whose `Absent` condition fails is `ConditionFailed` and changes
/// nothing; an expired entry counts as absent.
pub(crate) async fn condition_absent(ctx: Ctx) -> CaseResult {
    let store = ctx.open_default().await?;
    let v1 = store
        .put(b"k", b"first", PutOptions::if_absent())
        .await
        .must("put k if_absent on an absent key")?;
    store
        .put(b"k", b"second", PutOptions::if_absent())
        .await
        .must_fail(ErrorKind::ConditionFailed, "put k if_absent on a live key")?;
    ensure_eq!(
        read(&store, b"k").await?,
        Some((b"first".to_vec(), v1)),
        "k after a failed if_absent put"
    );
    store.delete(b"k", Condition::Absent).await.must_fail(
        ErrorKind::ConditionFailed,
        "delete k if absent on a live key",
    )?;
    ensure_eq!(
        read(&store, b"k").await?,
        Some((b"first".to_vec(), v1)),
        "k after a failed conditional delete"
    );
    let removed = store
        .delete(b"missing", Condition::Absent)
        .await
        .must("delete an absent key if absent")?;
    ensure!(
        !removed,
        "delete if absent of an absent key reported a removal"
    );
    store.delete(b"k", Condition::Any).await.must("delete k")?;
    let v2 = store
        .put(b"k", b"third", PutOptions::if_absent())
        .await
        .must("put k if_absent after delete")?;
    ensure!(v2 > v1, "version {v2} after recreate is not above {v1}");
    if store.capabilities().ttl {
        let ttl = PutOptions::default().with_ttl(Duration::from_secs(5));
        store
            .put(b"t", b"short", ttl)
            .await
            .must("put t with ttl")?;
        ctx.clock().advance(Duration::from_secs(6));
        store
            .put(b"t", b"over expired", PutOptions::if_absent())
            .await
            .must("put if_absent over an expired entry (expired counts as absent)")?;
    }
    Ok(Verdict::Passed)
}

/// A put or delete whose `Version` condition fails is `ConditionFailed` and changes
/// nothing.
pub(crate) async fn condition_version(ctx: Ctx) -> CaseResult {
    let store = ctx.open_default().await?;
    let v1 = store
        .put(b"k", b"one", PutOptions::default())
        .await
        .must("put k")?;
    let v2 = store
        .put(b"k", b"two", PutOptions::if_version(v1))
        .await
        .must("put k if_version(current)")?;
    ensure!(v2 > v1, "conditional put version {v2} not above {v1}");
    store
        .put(b"k", b"stale", PutOptions::if_version(v1))
        .await
        .must_fail(ErrorKind::ConditionFailed, "put k if_version(stale)")?;
    let bogus = Version::new(v2.get().saturating_add(1_000_000)).unwrap_or(v2);
    store
        .put(b"k", b"future", PutOptions::if_version(bogus))
        .await
        .must_fail(ErrorKind::ConditionFailed, "put k if_version(never issued)")?;
    ensure_eq!(
        read(&store, b"k").await?,
        Some((b"two".to_vec(), v2)),
        "k after failed version-conditioned puts"
    );
    store
        .put(b"absent", b"x", PutOptions::if_version(v2))
        .await
        .must_fail(
            ErrorKind::ConditionFailed,
            "put if_version on an absent key",
        )?;
    ensure!(
        read(&store, b"absent").await?.is_none(),
        "a failed if_version put on an absent key created it"
    );
    store
        .delete(b"k", Condition::Version(v1))
        .await
        .must_fail(ErrorKind::ConditionFailed, "delete k if_version(stale)")?;
    ensure_eq!(
        read(&store, b"k").await?,
        Some((b"two".to_vec(), v2)),
        "k after a failed conditional delete"
    );
    let removed = store
        .delete(b"k", Condition::Version(v2))
        .await
        .must("delete k if_version(current)")?;
    ensure!(
        removed,
        "delete if_version(current) reported nothing removed"
    );
    ensure!(
        read(&store, b"k").await?.is_none(),
        "k still present after delete"
    );
    Ok(Verdict::Passed)
}

/// `delete` is `true` exactly when a live entry was removed.
pub(crate) async fn delete_reports_presence(ctx: Ctx) -> CaseResult {
    let store = ctx.open_default().await?;
    let absent = store
        .delete(b"k", Condition::Any)
        .await
        .must("delete absent")?;
    ensure!(!absent, "delete of a key never written returned true");
    store
        .put(b"k", b"v", PutOptions::default())
        .await
        .must("put k")?;
    store
        .put(b"other", b"v", PutOptions::default())
        .await
        .must("put other")?;
    let present = store.delete(b"k", Condition::Any).await.must("delete k")?;
    ensure!(present, "delete of a live key returned false");
    ensure!(
        read(&store, b"k").await?.is_none(),
        "k still readable after delete"
    );
    let again = store
        .delete(b"k", Condition::Any)
        .await
        .must("delete k again")?;
    ensure!(!again, "second delete of the same key returned true");
    ensure!(
        read(&store, b"other").await?.is_some(),
        "deleting k removed another key"
    );
    if store.capabilities().ttl {
        let ttl = PutOptions::default().with_ttl(Duration::from_secs(1));
        store.put(b"t", b"v", ttl).await.must("put t with ttl")?;
        ctx.clock().advance(Duration::from_secs(2));
        let expired = store
            .delete(b"t", Condition::Any)
            .await
            .must("delete expired")?;
        ensure!(!expired, "delete of an expired entry returned true");
    }
    Ok(Verdict::Passed)
}
