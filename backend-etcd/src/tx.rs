//! Transactions: reads at the revision of the first read (a consistent snapshot), writes
//! buffered, and at commit one etcd transaction that applies the writes only if no key
//! read or written, and no key in any range scanned, changed after that revision. A
//! concurrent change makes the commit a retryable `Conflict`, so committed transactions
//! are serializable.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Instant;

use etcd_client::{Compare, CompareOp, KeyValue, Txn};
use storage_api::backend::{LeakTimer, expiry_millis};
use storage_api::{
    Condition, Entry, ErrorKind, PutOptions, Result, ScanOptions, StoreError, Transaction, Version,
    async_trait,
};

use crate::layout::{Envelope, TX_SEQUENCE_BASE, live_entry, version};
use crate::ops::condition_failed;
use crate::pool::Lease;
use crate::scan::live_entries;
use crate::shared::Shared;
use crate::timing::TX_MAX_AGE;

/// A buffered write.
#[derive(Debug, Clone)]
enum Write {
    Put(Envelope),
    Delete,
}

/// The buffered write of one key and what the key held when the transaction began.
#[derive(Debug, Clone)]
struct Pending {
    write: Write,
    /// Something other than a tombstone was stored at the start revision.
    stored_before: bool,
    /// The transaction put this key (and handed out a version for it).
    put: bool,
}

/// A transaction holding one pooled channel until commit, rollback or drop.
#[derive(Debug)]
pub(crate) struct EtcdTransaction {
    shared: Arc<Shared>,
    lease: Lease,
    id: u64,
    read_only: bool,
    started: Instant,
    /// The revision every read sees; 0 until the first read.
    revision: i64,
    reads: BTreeSet<Vec<u8>>,
    ranges: Vec<(Vec<u8>, Vec<u8>)>,
    writes: BTreeMap<Vec<u8>, Pending>,
    locked: Vec<Vec<u8>>,
    next_sequence: u16,
    _leak: LeakTimer,
}

impl EtcdTransaction {
    /// A transaction on `lease`.
    pub(crate) fn new(shared: Arc<Shared>, lease: Lease, read_only: bool) -> Self {
        let id = shared
            .next_transaction
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let leak = LeakTimer::start(
            shared.leak_detection_threshold,
            shared.pool.instruments(),
            "etcd",
        );
        Self {
            shared,
            lease,
            id,
            read_only,
            started: Instant::now(),
            revision: 0,
            reads: BTreeSet::new(),
            ranges: Vec::new(),
            writes: BTreeMap::new(),
            locked: Vec::new(),
            next_sequence: TX_SEQUENCE_BASE,
            _leak: leak,
        }
    }

    /// Reads the stored key-value at the transaction's revision, fixing it on the first
    /// read.
    async fn snapshot(&mut self, etcd_key: &[u8]) -> Result<Option<KeyValue>> {
        let (kv, seen) = self
            .shared
            .read(&mut self.lease, etcd_key, self.revision)
            .await?;
        if self.revision == 0 {
            self.revision = seen;
        }
        self.reads.insert(etcd_key.to_vec());
        Ok(kv)
    }

    /// Fixes the revision if no read has yet.
    async fn begin_reading(&mut self) -> Result<()> {
        if self.revision == 0 {
            let anchor = self.shared.layout.prefix().to_vec();
            let (_, seen) = self.shared.read(&mut self.lease, &anchor, 0).await?;
            self.revision = seen;
        }
        Ok(())
    }

    /// What the transaction sees under `key`, and whether anything but a tombstone was
    /// stored there at its revision.
    async fn look(&mut self, key: &[u8], etcd_key: &[u8]) -> Result<(Option<Entry>, bool)> {
        let now_ms = self.shared.now_ms();
        if let Some(pending) = self.writes.get(etcd_key) {
            let entry = match &pending.write {
                Write::Put(envelope) if envelope.is_live(now_ms) => {
                    Some(envelope.clone().entry(key, self.revision)?)
                }
                _ => None,
            };
            return Ok((entry, pending.stored_before));
        }
        let kv = self.snapshot(etcd_key).await?;
        let stored = Shared::current(kv.as_ref(), now_ms)?.stored;
        let entry = match kv {
            Some(kv) => live_entry(key, kv.value(), kv.mod_revision(), now_ms)?,
            None => None,
        };
        Ok((entry, stored))
    }

    /// Takes the write lock of `etcd_key` for this transaction.
    fn lock(&mut self, etcd_key: &[u8]) -> Result<()> {
        if self.shared.locks.take(etcd_key, self.id)? {
            self.locked.push(etcd_key.to_vec());
        }
        Ok(())
    }

    fn record(&mut self, etcd_key: Vec<u8>, write: Write, stored_before: bool) -> Result<()> {
        let put =
            matches!(write, Write::Put(_)) || self.writes.get(&etcd_key).is_some_and(|p| p.put);
        self.writes.insert(
            etcd_key,
            Pending {
                write,
                stored_before,
                put,
            },
        );
        let limit = self.shared.max_txn_ops;
        if self.writes.len() > limit {
            return Err(StoreError::invalid_input(format!(
                "a transaction writes at most {limit} keys on this etcd cluster \
                 (--max-txn-ops; max_batch_ops)"
            )));
        }
        Ok(())
    }

    /// The compares that fail if anything the transaction read, wrote or scanned changed
    /// after its revision; merged into one range when there are more than the server
    /// allows.
    fn guards(&self) -> Vec<Compare> {
        let after = self.revision + 1;
        let keys: BTreeSet<&Vec<u8>> = self.reads.iter().chain(self.writes.keys()).collect();
        let count = keys.len() + self.ranges.len();
        if count <= self.shared.max_txn_ops {
            let mut guards: Vec<Compare> = keys
                .into_iter()
                .map(|key| Compare::mod_revision(key.clone(), CompareOp::Less, after))
                .collect();
            guards.extend(self.ranges.iter().map(|(start, end)| {
                Compare::mod_revision(start.clone(), CompareOp::Less, after).with_range(end.clone())
            }));
            return guards;
        }
        let mut start = self.shared.layout.table_end();
        let mut end = self.shared.layout.prefix().to_vec();
        for key in keys {
            start = start.min(key.clone());
            let mut next = key.clone();
            next.push(0);
            end = end.max(next);
        }
        for (s, e) in &self.ranges {
            start = start.min(s.clone());
            end = end.max(e.clone());
        }
        vec![Compare::mod_revision(start, CompareOp::Less, after).with_range(end)]
    }
}

#[async_trait]
impl Transaction for EtcdTransaction {
    async fn get(&mut self, key: &[u8]) -> Result<Option<Entry>> {
        let etcd_key = self.shared.layout.etcd_key(key);
        Ok(self.look(key, &etcd_key).await?.0)
    }

    async fn put(&mut self, key: &[u8], value: &[u8], options: PutOptions) -> Result<Version> {
        let etcd_key = self.shared.layout.etcd_key(key);
        self.lock(&etcd_key)?;
        let stored_before = if options.condition == Condition::Any {
            self.begin_reading().await?;
            self.writes.get(&etcd_key).is_some_and(|p| p.stored_before)
        } else {
            let (entry, stored) = self.look(key, &etcd_key).await?;
            if !options.condition.holds(entry.map(|e| e.version)) {
                return Err(condition_failed());
            }
            stored
        };
        let sequence = self.next_sequence;
        self.next_sequence = sequence.checked_add(1).ok_or_else(|| {
            StoreError::invalid_input("a transaction may write at most 32767 times")
        })?;
        let envelope = Envelope {
            value: value.to_vec(),
            expires_ms: expiry_millis(self.shared.clock.now(), options.ttl),
            base_revision: Some(self.revision),
            sequence,
        };
        let written = version(self.revision, sequence)?;
        self.record(etcd_key, Write::Put(envelope), stored_before)?;
        Ok(written)
    }

    async fn delete(&mut self, key: &[u8], condition: Condition) -> Result<bool> {
        let etcd_key = self.shared.layout.etcd_key(key);
        self.lock(&etcd_key)?;
        let (entry, stored_before) = self.look(key, &etcd_key).await?;
        let live = entry.map(|e| e.version);
        if !condition.holds(live) {
            return Err(condition_failed());
        }
        self.record(etcd_key, Write::Delete, stored_before)?;
        Ok(live.is_some())
    }

    async fn scan(&mut self, options: ScanOptions) -> Result<Vec<Entry>> {
        let limit = options.limit.unwrap_or(self.shared.limits.max_scan_limit);
        self.begin_reading().await?;
        let Some((start, end)) = self.shared.layout.scan_range(&options) else {
            return Ok(Vec::new());
        };
        let local: Vec<(Vec<u8>, Pending)> = self
            .writes
            .range(start.clone()..end.clone())
            .map(|(k, p)| (k.clone(), p.clone()))
            .collect();
        let deletes = local
            .iter()
            .filter(|(_, p)| matches!(p.write, Write::Delete))
            .count();
        let want = limit.saturating_add(deletes);
        let now_ms = self.shared.now_ms();
        let (snapshot, _) = live_entries(
            &self.shared,
            &mut self.lease,
            &options,
            want,
            self.revision,
            now_ms,
        )
        .await?;
        // Keys past the last one read are only complete when the snapshot was.
        let complete = snapshot.len() < want;
        let last_read = snapshot.last().map(|e| e.key.clone());
        let mut merged: BTreeMap<Vec<u8>, Entry> =
            snapshot.into_iter().map(|e| (e.key.clone(), e)).collect();
        for (etcd_key, pending) in local {
            let key = self
                .shared
                .layout
                .user_key(&etcd_key)
                .expect("buffered keys are the table's")
                .to_vec();
            if !complete && last_read.as_ref().is_some_and(|last| key > *last) {
                continue;
            }
            match pending.write {
                Write::Put(envelope) if envelope.is_live(now_ms) => {
                    merged.insert(key.clone(), envelope.entry(&key, self.revision)?);
                }
                _ => {
                    merged.remove(&key);
                }
            }
        }
        let entries: Vec<Entry> = merged.into_values().take(limit).collect();
        let seen_end = match entries.last() {
            Some(last) if entries.len() == limit => {
                let mut next = self.shared.layout.etcd_key(&last.key);
                next.push(0);
                next
            }
            _ => end,
        };
        if start < seen_end {
            self.ranges.push((start, seen_end));
        }
        Ok(entries)
    }

    async fn commit(mut self: Box<Self>) -> Result<()> {
        if self.read_only || self.writes.is_empty() {
            return Ok(());
        }
        if self.started.elapsed() > TX_MAX_AGE {
            return Err(StoreError::new(
                ErrorKind::Conflict,
                format!(
                    "the transaction ran longer than {TX_MAX_AGE:?}, the most an etcd \
                     transaction may; retry it"
                ),
            ));
        }
        let guards = self.guards();
        let pending: Vec<(Vec<u8>, Pending)> =
            std::mem::take(&mut self.writes).into_iter().collect();
        let mut writes = Vec::with_capacity(pending.len());
        for (etcd_key, p) in pending {
            match p.write {
                Write::Put(envelope) => {
                    let op = self
                        .shared
                        .value_op(&mut self.lease, etcd_key, &envelope)
                        .await?;
                    writes.push(op);
                }
                Write::Delete if p.stored_before || p.put => {
                    let op = self.shared.tombstone_op(&mut self.lease, etcd_key).await?;
                    writes.push(op);
                }
                Write::Delete => {}
            }
        }
        let response = self
            .lease
            .request("commit", false, |channel| {
                let mut kv = channel.kv();
                let txn = Txn::new().when(guards.clone()).and_then(writes.clone());
                async move { kv.txn(txn).await }
            })
            .await?;
        if response.succeeded() {
            Ok(())
        } else {
            Err(StoreError::new(
                ErrorKind::Conflict,
                "a key the transaction read, wrote or scanned changed after it began; retry it",
            ))
        }
    }

    async fn rollback(self: Box<Self>) -> Result<()> {
        Ok(())
    }
}

impl Drop for EtcdTransaction {
    fn drop(&mut self) {
        self.shared.locks.release(&self.locked, self.id);
    }
}
