//! Atomic batches: every key read at one revision, the operations applied in order to
//! what was read, and the outcome written in one etcd transaction guarded by each key's
//! `mod_revision` (read again and retried if a key changed in between). A batch of
//! unconditional puts needs no read: it is one etcd transaction.

use std::collections::HashMap;

use etcd_client::{Compare, CompareOp, Txn};
use storage_api::backend::expiry_millis;
use storage_api::{Condition, ErrorKind, Result, StoreError, Version, WriteOp, WriteResult};

use crate::layout::{Envelope, TX_SEQUENCE_BASE, version};
use crate::ops::{condition_failed, read_many};
use crate::pool::Lease;
use crate::shared::{Current, Shared};

/// How often a batch is read again after a key changed before it gives up.
const ATTEMPTS: usize = 16;

/// The live version a key has while a batch is applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Live {
    Absent,
    /// The version it had before the batch.
    Before(Version),
    /// Written by this batch's operation of that index.
    Written,
}

impl Live {
    fn satisfies(self, condition: Condition) -> bool {
        match (condition, self) {
            (Condition::Any, _) => true,
            (Condition::Absent, live) => live == Live::Absent,
            (Condition::Version(v), Live::Before(current)) => v == current,
            (Condition::Version(_), _) => false,
        }
    }
}

/// What a batch leaves under one key.
#[derive(Debug)]
struct KeyPlan {
    before: Current,
    live: Live,
    last: Option<Final>,
    written: bool,
}

#[derive(Debug)]
enum Final {
    Put(Envelope),
    Delete,
}

/// Applies `ops` atomically, in order.
pub(crate) async fn batch(shared: &Shared, ops: &[WriteOp]) -> Result<Vec<WriteResult>> {
    if ops.is_empty() {
        return Ok(Vec::new());
    }
    if ops.len() >= usize::from(TX_SEQUENCE_BASE) {
        return Err(StoreError::invalid_input(format!(
            "a batch holds at most {} operations on etcd",
            TX_SEQUENCE_BASE - 1
        )));
    }
    let mut keys: Vec<Vec<u8>> = Vec::new();
    for op in ops {
        let key = shared.layout.etcd_key(op.key());
        if !keys.contains(&key) {
            keys.push(key);
        }
    }
    let borrowed: Vec<&[u8]> = keys.iter().map(Vec::as_slice).collect();
    shared.wait_unlocked(&borrowed).await?;
    let mut lease = shared.pool.acquire().await?;
    if ops
        .iter()
        .all(|op| matches!(op, WriteOp::Put { options, .. } if options.condition == Condition::Any))
    {
        return blind_puts(shared, &mut lease, ops).await;
    }
    for _ in 0..ATTEMPTS {
        if let Some(results) = attempt(shared, &mut lease, ops, &keys).await? {
            return Ok(results);
        }
    }
    Err(StoreError::new(
        ErrorKind::Conflict,
        "keys of the batch kept changing while it was attempted; retry",
    ))
}

/// A batch of unconditional puts: nothing to read, one etcd transaction writing each
/// key's last value (each put's version still rises with its index).
async fn blind_puts(
    shared: &Shared,
    lease: &mut Lease,
    ops: &[WriteOp],
) -> Result<Vec<WriteResult>> {
    let now = shared.clock.now();
    let mut last: HashMap<Vec<u8>, (usize, Envelope)> = HashMap::new();
    for (index, op) in ops.iter().enumerate() {
        if let WriteOp::Put {
            key,
            value,
            options,
        } = op
        {
            let envelope = Envelope {
                value: value.clone(),
                expires_ms: expiry_millis(now, options.ttl),
                base_revision: None,
                sequence: u16::try_from(index).expect("checked against TX_SEQUENCE_BASE"),
            };
            last.insert(shared.layout.etcd_key(key), (index, envelope));
        }
    }
    let mut ordered: Vec<(Vec<u8>, (usize, Envelope))> = last.into_iter().collect();
    ordered.sort_by_key(|(_, (index, _))| *index);
    let mut writes = Vec::with_capacity(ordered.len());
    for (key, (_, envelope)) in ordered {
        writes.push(shared.value_op(lease, key, &envelope).await?);
    }
    let response = lease
        .request("batch", false, |channel| {
            let mut kv = channel.kv();
            let txn = Txn::new().and_then(writes.clone());
            async move { kv.txn(txn).await }
        })
        .await?;
    let revision = response.header().map_or(0, |h| h.revision());
    (0..ops.len())
        .map(|index| {
            let sequence = u16::try_from(index).expect("checked against TX_SEQUENCE_BASE");
            version(revision, sequence).map(WriteResult::Put)
        })
        .collect()
}

/// One try: `None` when a key changed between the read and the write.
async fn attempt(
    shared: &Shared,
    lease: &mut Lease,
    ops: &[WriteOp],
    keys: &[Vec<u8>],
) -> Result<Option<Vec<WriteResult>>> {
    let now = shared.clock.now();
    let now_ms = shared.now_ms();
    let (stored, _) = read_many(lease, keys, 0).await?;
    let mut plans: HashMap<&[u8], KeyPlan> = HashMap::new();
    for (key, kv) in keys.iter().zip(&stored) {
        let before = Shared::current(kv.as_ref(), now_ms)?;
        let live = before.live.map_or(Live::Absent, Live::Before);
        plans.insert(
            key,
            KeyPlan {
                before,
                live,
                last: None,
                written: false,
            },
        );
    }
    enum Outcome {
        Put(u16),
        Delete(bool),
    }
    let mut outcomes = Vec::with_capacity(ops.len());
    for (index, op) in ops.iter().enumerate() {
        let key = shared.layout.etcd_key(op.key());
        let plan = plans.get_mut(key.as_slice()).expect("every key was read");
        let sequence = u16::try_from(index).expect("checked against TX_SEQUENCE_BASE");
        match op {
            WriteOp::Put { value, options, .. } => {
                if !plan.live.satisfies(options.condition) {
                    return Err(condition_failed().with_batch_index(index));
                }
                plan.live = Live::Written;
                plan.written = true;
                plan.last = Some(Final::Put(Envelope {
                    value: value.clone(),
                    expires_ms: expiry_millis(now, options.ttl),
                    base_revision: None,
                    sequence,
                }));
                outcomes.push(Outcome::Put(sequence));
            }
            WriteOp::Delete { condition, .. } => {
                if !plan.live.satisfies(*condition) {
                    return Err(condition_failed().with_batch_index(index));
                }
                outcomes.push(Outcome::Delete(plan.live != Live::Absent));
                plan.live = Live::Absent;
                plan.last = Some(Final::Delete);
            }
        }
    }
    let mut compares = Vec::with_capacity(keys.len());
    let mut writes = Vec::with_capacity(keys.len());
    for key in keys {
        let plan = &plans[key.as_slice()];
        compares.push(Compare::mod_revision(
            key.clone(),
            CompareOp::Equal,
            plan.before.mod_revision,
        ));
        match &plan.last {
            Some(Final::Put(envelope)) => {
                writes.push(shared.value_op(lease, key.clone(), envelope).await?);
            }
            // A tombstone where something was stored, or where this batch handed out a
            // version, so no later write can be given a lower one.
            Some(Final::Delete) if plan.before.stored || plan.written => {
                writes.push(shared.tombstone_op(lease, key.clone()).await?);
            }
            _ => {}
        }
    }
    let response = lease
        .request("batch", false, |channel| {
            let mut kv = channel.kv();
            let txn = Txn::new().when(compares.clone()).and_then(writes.clone());
            async move { kv.txn(txn).await }
        })
        .await?;
    if !response.succeeded() {
        return Ok(None);
    }
    let revision = response.header().map_or(0, |h| h.revision());
    outcomes
        .into_iter()
        .map(|outcome| match outcome {
            Outcome::Put(sequence) => version(revision, sequence).map(WriteResult::Put),
            Outcome::Delete(removed) => Ok(WriteResult::Delete(removed)),
        })
        .collect::<Result<Vec<_>>>()
        .map(Some)
}
