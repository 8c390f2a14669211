//! The single-key operations outside transactions (get, put, delete) and
//! `purge_expired`.

use etcd_client::{Compare, CompareOp, GetOptions, KeyValue, Txn, TxnOp, TxnOpResponse};
use storage_api::backend::{expiry_millis, to_unix_millis};
use storage_api::{Condition, Entry, ErrorKind, PutOptions, Result, StoreError, Version};

use crate::layout::{Envelope, Stored, TOMBSTONE, decode, live_entry, version};
use crate::pool::Lease;
use crate::scan::walk;
use crate::shared::{Current, Shared};

/// How often a conditional write re-reads a key that keeps changing before it gives up
/// with `Conflict`.
const ATTEMPTS: usize = 16;

/// The error of a condition that did not hold.
pub(crate) fn condition_failed() -> StoreError {
    StoreError::new(ErrorKind::ConditionFailed, "the condition did not hold")
}

fn kept_changing() -> StoreError {
    StoreError::new(
        ErrorKind::Conflict,
        "the key kept changing while the conditional write was attempted; retry",
    )
}

/// The live entry under `key`, recorded for a conditional write that may follow
/// (see [`Seen`](crate::seen::Seen)).
pub(crate) async fn get(shared: &Shared, key: &[u8]) -> Result<Option<Entry>> {
    let mut lease = shared.pool.acquire().await?;
    let etcd_key = shared.layout.etcd_key(key);
    let (kv, _) = shared.read(&mut lease, &etcd_key, 0).await?;
    let Some(kv) = kv else {
        return Ok(None);
    };
    let entry = live_entry(key, kv.value(), kv.mod_revision(), shared.now_ms())?;
    if let Some(entry) = &entry {
        let expires_ms = entry.expires_at.map(to_unix_millis);
        let seen = &shared.seen;
        seen.record(&etcd_key, kv.mod_revision(), entry.version, expires_ms);
    }
    Ok(entry)
}

/// Writes `value` under `key` if the condition holds.
pub(crate) async fn put(
    shared: &Shared,
    key: &[u8],
    value: &[u8],
    options: PutOptions,
) -> Result<Version> {
    let etcd_key = shared.layout.etcd_key(key);
    shared.wait_unlocked(&[&etcd_key]).await?;
    let mut lease = shared.pool.acquire().await?;
    let now = shared.clock.now();
    let envelope = Envelope {
        value: value.to_vec(),
        expires_ms: expiry_millis(now, options.ttl),
        ..Envelope::default()
    };
    if options.condition == Condition::Any {
        let put_options = shared
            .value_put_options(&mut lease, envelope.expires_ms)
            .await?;
        let stored = envelope.encode();
        let response = lease
            .request("put", false, |channel| {
                let mut kv = channel.kv();
                let (k, v, o) = (etcd_key.clone(), stored.clone(), put_options.clone());
                async move { kv.put(k, v, Some(o)).await }
            })
            .await?;
        return version(response.header().map_or(0, |h| h.revision()), 0);
    }
    let write = shared
        .value_op(&mut lease, etcd_key.clone(), &envelope)
        .await?;
    let (_, revision) =
        conditional(shared, &mut lease, &etcd_key, options.condition, write).await?;
    version(revision, 0)
}

/// Removes `key` if the condition holds; `true` when a live entry was removed. The key
/// keeps a tombstone for a while (see [`layout`](crate::layout)).
pub(crate) async fn delete(shared: &Shared, key: &[u8], condition: Condition) -> Result<bool> {
    let etcd_key = shared.layout.etcd_key(key);
    shared.wait_unlocked(&[&etcd_key]).await?;
    let mut lease = shared.pool.acquire().await?;
    match condition {
        Condition::Any => delete_any(shared, &mut lease, etcd_key).await,
        Condition::Absent => {
            // Nothing live to remove; an expired entry is removed all the same.
            let (kv, _) = shared.read(&mut lease, &etcd_key, 0).await?;
            let current = Shared::current(kv.as_ref(), shared.now_ms())?;
            if current.live.is_some() {
                return Err(condition_failed());
            }
            if current.stored {
                let write = shared.tombstone_op(&mut lease, etcd_key.clone()).await?;
                conditional(shared, &mut lease, &etcd_key, condition, write).await?;
            }
            Ok(false)
        }
        Condition::Version(_) => {
            let write = shared.tombstone_op(&mut lease, etcd_key.clone()).await?;
            conditional(shared, &mut lease, &etcd_key, condition, write).await?;
            Ok(true)
        }
    }
}

/// An unconditional delete: one transaction that replaces anything but a tombstone with
/// a tombstone and reports whether what it replaced was live.
async fn delete_any(shared: &Shared, lease: &mut Lease, etcd_key: Vec<u8>) -> Result<bool> {
    let options = shared.tombstone_put_options(lease).await?.with_prev_key();
    let response = lease
        .request("delete", false, |channel| {
            let mut kv = channel.kv();
            let txn = Txn::new()
                .when([Compare::value(
                    etcd_key.clone(),
                    CompareOp::NotEqual,
                    TOMBSTONE,
                )])
                .and_then([TxnOp::put(
                    etcd_key.clone(),
                    TOMBSTONE,
                    Some(options.clone()),
                )]);
            async move { kv.txn(txn).await }
        })
        .await?;
    if !response.succeeded() {
        return Ok(false);
    }
    let previous = response.op_responses().into_iter().find_map(|op| match op {
        TxnOpResponse::Put(put) => put.prev_key().cloned(),
        _ => None,
    });
    Ok(Shared::current(previous.as_ref(), shared.now_ms())?
        .live
        .is_some())
}

/// Applies `write` to `etcd_key` if `condition` holds for what the key holds, guarded by
/// the key's `mod_revision` so nothing changes in between; reads again and retries when
/// something did. Returns what the key held and the revision of the write.
pub(crate) async fn conditional(
    shared: &Shared,
    lease: &mut Lease,
    etcd_key: &[u8],
    condition: Condition,
    write: TxnOp,
) -> Result<(Current, i64)> {
    let now_ms = shared.now_ms();
    // An if-absent write first assumes nothing is stored, and a write on a version a
    // `get` just returned assumes what that read found: either costs one round trip
    // when so.
    let mut known = match condition {
        Condition::Absent => Some(Current::MISSING),
        Condition::Version(version) => {
            let found = shared.seen.found(etcd_key, version, now_ms);
            found.map(|found| Current {
                live: found.live.then_some(version),
                mod_revision: found.mod_revision,
                stored: true,
            })
        }
        Condition::Any => None,
    };
    for _ in 0..ATTEMPTS {
        let current = match known {
            Some(current) => current,
            None => {
                let (kv, _) = shared.read(lease, etcd_key, 0).await?;
                Shared::current(kv.as_ref(), now_ms)?
            }
        };
        if !condition.holds(current.live) {
            return Err(condition_failed());
        }
        let response = lease
            .request("conditional write", false, |channel| {
                let mut kv = channel.kv();
                let txn = Txn::new()
                    .when([Compare::mod_revision(
                        etcd_key.to_vec(),
                        CompareOp::Equal,
                        current.mod_revision,
                    )])
                    .and_then([write.clone()])
                    .or_else([TxnOp::get(etcd_key.to_vec(), None)]);
                async move { kv.txn(txn).await }
            })
            .await?;
        if response.succeeded() {
            return Ok((current, response.header().map_or(0, |h| h.revision())));
        }
        let now_stored = first_kv(&response.op_responses());
        known = Some(Shared::current(now_stored.as_ref(), now_ms)?);
    }
    Err(kept_changing())
}

/// The first key-value a transaction's get responses returned.
pub(crate) fn first_kv(responses: &[TxnOpResponse]) -> Option<KeyValue> {
    responses.iter().find_map(|op| match op {
        TxnOpResponse::Get(get) => get.kvs().first().cloned(),
        _ => None,
    })
}

/// Replaces every entry expired by the store's clock with a tombstone (the server
/// removes it after the retention period), returning how many.
pub(crate) async fn purge_expired(shared: &Shared) -> Result<u64> {
    let mut lease = shared.pool.acquire().await?;
    let now_ms = shared.now_ms();
    let (start, end) = (shared.layout.prefix().to_vec(), shared.layout.table_end());
    let mut expired: Vec<(Vec<u8>, i64)> = Vec::new();
    walk(
        shared,
        &mut lease,
        (&start, &end),
        0,
        || usize::MAX,
        |kv| {
            if let Stored::Value(envelope) = decode(kv.value())?
                && !envelope.is_live(now_ms)
            {
                expired.push((kv.key().to_vec(), kv.mod_revision()));
            }
            Ok(true)
        },
    )
    .await?;
    let mut purged = 0;
    let chunk = shared.max_txn_ops.max(1);
    for group in expired.chunks(chunk) {
        if tombstone_unchanged(shared, &mut lease, group).await? {
            purged += group.len() as u64;
        } else {
            // Something in the group changed since the walk: one by one, so only the
            // changed entries are left alone.
            for one in group {
                if tombstone_unchanged(shared, &mut lease, std::slice::from_ref(one)).await? {
                    purged += 1;
                }
            }
        }
    }
    Ok(purged)
}

/// Tombstones every key of `group` if each still has the `mod_revision` seen.
async fn tombstone_unchanged(
    shared: &Shared,
    lease: &mut Lease,
    group: &[(Vec<u8>, i64)],
) -> Result<bool> {
    let options = shared.tombstone_put_options(lease).await?;
    let compares: Vec<Compare> = group
        .iter()
        .map(|(key, revision)| Compare::mod_revision(key.clone(), CompareOp::Equal, *revision))
        .collect();
    let writes: Vec<TxnOp> = group
        .iter()
        .map(|(key, _)| TxnOp::put(key.clone(), TOMBSTONE, Some(options.clone())))
        .collect();
    let response = lease
        .request("purge_expired", false, |channel| {
            let mut kv = channel.kv();
            let txn = Txn::new().when(compares.clone()).and_then(writes.clone());
            async move { kv.txn(txn).await }
        })
        .await?;
    Ok(response.succeeded())
}

/// Reads several keys at one revision in one round trip.
pub(crate) async fn read_many(
    lease: &mut Lease,
    keys: &[Vec<u8>],
    revision: i64,
) -> Result<(Vec<Option<KeyValue>>, i64)> {
    let response = lease
        .request("read", true, |channel| {
            let mut kv = channel.kv();
            let gets: Vec<TxnOp> = keys
                .iter()
                .map(|k| TxnOp::get(k.clone(), Some(GetOptions::new().with_revision(revision))))
                .collect();
            let txn = Txn::new().and_then(gets);
            async move { kv.txn(txn).await }
        })
        .await?;
    let seen = response.header().map_or(0, |h| h.revision());
    let kvs = response
        .op_responses()
        .into_iter()
        .map(|op| match op {
            TxnOpResponse::Get(get) => get.kvs().first().cloned(),
            _ => None,
        })
        .collect();
    Ok((kvs, seen))
}
