//! Reading key ranges page by page, every page at one revision, and scans of live
//! entries built on that.

use etcd_client::{GetOptions, KeyValue};
use storage_api::{Entry, ErrorKind, Result, ScanOptions};

use crate::layout::live_entry;
use crate::pool::Lease;
use crate::shared::Shared;

/// How many times a scan starts over when the revision it read at is compacted away.
const COMPACTED_RETRIES: usize = 3;
/// The most bytes one page may carry when every value is as large as allowed (pages are
/// sized so that even then they stay under the channel's response limit).
const PAGE_BYTES: usize = 256 * 1024 * 1024;

/// The most entries one page asks for when `want` more are needed: all of them, up to
/// what [`PAGE_BYTES`] allows at the largest values (at least 128, at most 5000).
pub(crate) fn page_size(shared: &Shared, want: usize) -> usize {
    let per_entry = shared.limits.max_value_bytes.saturating_add(1024);
    let cap = (PAGE_BYTES / per_entry).clamp(128, 5000);
    want.clamp(1, cap)
}

/// Reads `[start, end)` in key order at `revision` (the latest when 0, then fixed by the
/// first page), handing each key-value to `visit` until it returns `false` or the range
/// ends; `want` says how many more entries are needed, for page sizes. Returns the
/// revision read.
pub(crate) async fn walk(
    shared: &Shared,
    lease: &mut Lease,
    (start, end): (&[u8], &[u8]),
    mut revision: i64,
    mut want: impl FnMut() -> usize,
    mut visit: impl FnMut(KeyValue) -> Result<bool>,
) -> Result<i64> {
    let mut from = start.to_vec();
    loop {
        let limit = i64::try_from(page_size(shared, want())).unwrap_or(i64::MAX);
        let at = revision;
        let mut response = lease
            .request("scan", true, |channel| {
                let mut kv = channel.kv();
                let (key, end) = (from.clone(), end.to_vec());
                async move {
                    let options = GetOptions::new()
                        .with_range(end)
                        .with_limit(limit)
                        .with_revision(at);
                    kv.get(key, Some(options)).await
                }
            })
            .await?;
        if revision == 0 {
            revision = response.header().map_or(0, |h| h.revision());
        }
        let more = response.more();
        let kvs = response.take_kvs();
        let last = kvs.last().map(|kv| kv.key().to_vec());
        for kv in kvs {
            if !visit(kv)? {
                return Ok(revision);
            }
        }
        match last {
            Some(mut key) if more => {
                key.push(0);
                from = key;
            }
            _ => return Ok(revision),
        }
    }
}

/// The live entries `options` selects at `revision` (0: the latest), at most `limit`.
pub(crate) async fn live_entries(
    shared: &Shared,
    lease: &mut Lease,
    options: &ScanOptions,
    limit: usize,
    revision: i64,
    now_ms: i64,
) -> Result<(Vec<Entry>, i64)> {
    let Some((start, end)) = shared.layout.scan_range(options) else {
        return Ok((Vec::new(), revision));
    };
    let mut entries: Vec<Entry> = Vec::new();
    if limit == 0 {
        return Ok((entries, revision));
    }
    let count = std::sync::atomic::AtomicUsize::new(0);
    let read = walk(
        shared,
        lease,
        (&start, &end),
        revision,
        || limit - count.load(std::sync::atomic::Ordering::Relaxed),
        |kv| {
            let Some(key) = shared.layout.user_key(kv.key()) else {
                return Ok(true);
            };
            if let Some(entry) = live_entry(key, kv.value(), kv.mod_revision(), now_ms)? {
                entries.push(entry);
                count.store(entries.len(), std::sync::atomic::Ordering::Relaxed);
            }
            Ok(entries.len() < limit)
        },
    )
    .await?;
    Ok((entries, read))
}

/// A plain scan: live entries at one revision, started over if that revision is
/// compacted away while the pages are read.
pub(crate) async fn scan(shared: &Shared, options: &ScanOptions) -> Result<Vec<Entry>> {
    let limit = options.limit.unwrap_or(shared.limits.max_scan_limit);
    let mut lease = shared.pool.acquire().await?;
    let now_ms = shared.now_ms();
    let mut attempt = 0;
    loop {
        match live_entries(shared, &mut lease, options, limit, 0, now_ms).await {
            Ok((entries, _)) => return Ok(entries),
            Err(e) if e.kind() == ErrorKind::Conflict && attempt < COMPACTED_RETRIES => {
                attempt += 1;
            }
            Err(e) => return Err(e),
        }
    }
}
