//! `copy`: moves every live entry of one store into another, empty one, through the
//! `PooledStore` trait, so any pair of backends works (SQLite to PostgreSQL, sqlx to
//! deadpool, …), and checks the counts at the end.

use std::time::SystemTime;

use storage_api::{ErrorKind, PooledStore, PutOptions, Result, ScanOptions, StoreError, WriteOp};

use crate::pages::{Pages, count_entries};
use crate::progress::Progress;

/// What a copy did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CopyReport {
    /// Live entries the source held before the copy.
    pub source_count: u64,
    /// Entries written to the target.
    pub copied: u64,
    /// Live entries the target holds after the copy.
    pub target_count: u64,
}

/// Copies every live entry of `source` into `target`, which must be empty, page by
/// page (each page in atomic batches of at most the target's `max_batch_ops`),
/// reporting to `progress`.
///
/// Values and expiry times are kept; the target assigns its own versions. Stop writers
/// of the source first: the copy reads pages as they are, and the final check
/// (`source_count == copied == target_count`, else a `Conflict` error) catches writes
/// that change the number of entries, not ones that change values. An entry that
/// expires while the copy runs also fails the check; run it again on an emptied target.
pub async fn copy(
    source: &dyn PooledStore,
    target: &dyn PooledStore,
    progress: &Progress,
) -> Result<CopyReport> {
    let probe = target.scan(ScanOptions::default().with_limit(1)).await?;
    if !probe.is_empty() {
        return Err(StoreError::invalid_input(
            "the target store already holds entries; copy needs an empty target",
        ));
    }
    let source_count = count_entries(source).await?;
    progress.set_total(source_count);
    let copied = copy_pages(source, target, progress).await?;
    progress.finish();
    let target_count = count_entries(target).await?;
    let report = CopyReport {
        source_count,
        copied,
        target_count,
    };
    if source_count != copied || copied != target_count {
        return Err(StoreError::new(
            ErrorKind::Conflict,
            format!(
                "counts differ after the copy: source {source_count}, copied {copied}, target \
                 {target_count}; the source changed during the copy (or entries expired). \
                 Stop its writers, empty the target and copy again"
            ),
        ));
    }
    Ok(report)
}

/// Keys and values per batch before a new one starts: under the smallest request limit
/// of the engines (etcd's default `--max-request-bytes` is 1.5 MiB).
const BATCH_BYTES: usize = 1 << 20;

/// `ops` in batches of at most `max_ops` operations and about [`BATCH_BYTES`] (a batch
/// always takes at least one operation).
fn chunks(ops: Vec<WriteOp>, max_ops: Option<usize>) -> Vec<Vec<WriteOp>> {
    let most = max_ops.unwrap_or(usize::MAX).max(1);
    let mut batches: Vec<Vec<WriteOp>> = Vec::new();
    let mut bytes = 0;
    for op in ops {
        let size = match &op {
            WriteOp::Put { key, value, .. } => key.len() + value.len(),
            WriteOp::Delete { key, .. } => key.len(),
        };
        match batches.last_mut() {
            Some(batch) if batch.len() < most && bytes + size <= BATCH_BYTES => {
                bytes += size;
                batch.push(op);
            }
            _ => {
                bytes = size;
                batches.push(vec![op]);
            }
        }
    }
    batches
}

async fn copy_pages(
    source: &dyn PooledStore,
    target: &dyn PooledStore,
    progress: &Progress,
) -> Result<u64> {
    let mut pages = Pages::live(source);
    let mut copied = 0u64;
    loop {
        let page = pages.next_page().await?;
        if page.is_empty() {
            return Ok(copied);
        }
        let read = page.len() as u64;
        let now = SystemTime::now();
        let ops: Vec<WriteOp> = page
            .into_iter()
            .filter_map(|entry| {
                let ttl = match entry.expires_at {
                    None => None,
                    Some(at) => Some(at.duration_since(now).ok().filter(|d| !d.is_zero())?),
                };
                Some(WriteOp::Put {
                    key: entry.key,
                    value: entry.value,
                    options: PutOptions {
                        ttl,
                        ..PutOptions::default()
                    },
                })
            })
            .collect();
        for chunk in chunks(ops, target.capabilities().max_batch_ops) {
            copied += target.batch(chunk).await?.len() as u64;
        }
        progress.advance(read);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_respect_the_operation_and_byte_bounds() {
        let ops: Vec<WriteOp> = (0..10)
            .map(|i| WriteOp::put(vec![i], vec![0; 300 * 1024]))
            .collect();
        let by_bytes = chunks(ops.clone(), None);
        assert_eq!(
            by_bytes.iter().map(Vec::len).collect::<Vec<_>>(),
            [3, 3, 3, 1]
        );
        let by_count = chunks(ops, Some(2));
        assert!(by_count.iter().all(|b| b.len() <= 2) && by_count.len() == 5);
        let huge = chunks(vec![WriteOp::put("k", vec![0; 2 << 20])], Some(128));
        assert_eq!(huge.len(), 1);
    }
}
