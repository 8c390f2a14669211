//! Scan cases: bytewise order, prefixes, ranges, the `after` cursor and limits.

use std::sync::Arc;

use storage_api::{
    Entry, ErrorKind, KeyRange, PooledStore, PutOptions, ScanOptions, Version, WriteOp,
};

use super::support::{SplitMix, show};
use crate::check::{CaseResult, Expect, Failure, Verdict};
use crate::context::{Ctx, SCAN_LIMIT};

/// Writes `keys` (in a seeded random order, one put each) with the key as value and
/// returns them sorted bytewise with their versions.
async fn write_keys(
    ctx: &Ctx,
    store: &Arc<dyn PooledStore>,
    keys: &[Vec<u8>],
) -> Result<Vec<(Vec<u8>, Version)>, Failure> {
    let mut order: Vec<Vec<u8>> = keys.to_vec();
    SplitMix::new(ctx.seed()).shuffle(&mut order);
    let mut written = Vec::new();
    for key in order {
        let version = store
            .put(&key, &key, PutOptions::default())
            .await
            .must(format_args!("put {}", show(&key)))?;
        written.push((key, version));
    }
    written.sort();
    Ok(written)
}

fn keys_of(entries: &[Entry]) -> Vec<String> {
    entries.iter().map(|e| show(&e.key)).collect()
}

fn expect_keys(entries: &[Entry], expected: &[&[u8]], what: &str) -> Result<(), Failure> {
    let want: Vec<String> = expected.iter().map(|k| show(k)).collect();
    ensure_eq!(keys_of(entries), want, "{what}");
    Ok(())
}

/// The keys that trip the usual ordering bugs: signed bytes (0x7F/0x80), case-folding
/// collations (`B` < `a`), length-first order (`ab` < `b`), NUL bytes and 0xFF.
fn tricky_keys() -> Vec<Vec<u8>> {
    vec![
        vec![0x00],
        vec![0x00, 0x00],
        vec![0x01],
        b"B".to_vec(),
        b"a".to_vec(),
        b"a\0".to_vec(),
        b"a\0b".to_vec(),
        b"ab".to_vec(),
        b"b".to_vec(),
        vec![0x7F],
        vec![0x80],
        vec![0xC3, 0xA9],
        vec![0xFE, 0xFF],
        vec![0xFF],
        vec![0xFF, 0x00],
        vec![0xFF, 0xFF],
    ]
}

/// `scan` returns live entries in ascending bytewise key order, with their values and
/// versions.
pub(crate) async fn scan_order(ctx: Ctx) -> CaseResult {
    let store = ctx.open_default().await?;
    let written = write_keys(&ctx, &store, &tricky_keys()).await?;
    let entries = store
        .scan(ScanOptions::default())
        .await
        .must("scan everything")?;
    let want: Vec<String> = written.iter().map(|(k, _)| show(k)).collect();
    ensure_eq!(keys_of(&entries), want, "scan order (ascending bytewise)");
    for (entry, (key, version)) in entries.iter().zip(&written) {
        ensure!(
            entry.value == *key && entry.version == *version,
            "scan entry {} has the wrong value or version ({} instead of {version})",
            show(key),
            entry.version
        );
    }
    Ok(Verdict::Passed)
}

/// A prefix scan returns exactly the keys that start with the prefix, including
/// prefixes ending in 0xFF bytes.
pub(crate) async fn scan_prefix(ctx: Ctx) -> CaseResult {
    let store = ctx.open_default().await?;
    let keys: Vec<Vec<u8>> = vec![
        b"use".to_vec(),
        b"user".to_vec(),
        b"user/".to_vec(),
        b"user/1".to_vec(),
        b"user/2".to_vec(),
        b"user/\xFF".to_vec(),
        b"user0".to_vec(),
        b"users".to_vec(),
        vec![0x01, 0xFE],
        vec![0x01, 0xFF],
        vec![0x01, 0xFF, 0x00],
        vec![0x01, 0xFF, 0xFF],
        vec![0x02],
        vec![0xFF],
        vec![0xFF, 0x00],
        vec![0xFF, 0xFF, 0xFF],
    ];
    write_keys(&ctx, &store, &keys).await?;
    let cases: Vec<(Vec<u8>, Vec<&[u8]>)> = vec![
        (
            b"user/".to_vec(),
            vec![b"user/", b"user/1", b"user/2", b"user/\xFF"],
        ),
        (
            b"user".to_vec(),
            vec![
                b"user",
                b"user/",
                b"user/1",
                b"user/2",
                b"user/\xFF",
                b"user0",
                b"users",
            ],
        ),
        (
            vec![0x01, 0xFF],
            vec![&[0x01, 0xFF], &[0x01, 0xFF, 0x00], &[0x01, 0xFF, 0xFF]],
        ),
        (
            vec![0xFF],
            vec![&[0xFF], &[0xFF, 0x00], &[0xFF, 0xFF, 0xFF]],
        ),
        (vec![0xFF, 0xFF], vec![&[0xFF, 0xFF, 0xFF]]),
        (b"nothing".to_vec(), vec![]),
    ];
    for (prefix, expected) in cases {
        let entries = store
            .scan(ScanOptions::prefix(prefix.clone()))
            .await
            .must(format_args!("scan prefix {}", show(&prefix)))?;
        expect_keys(
            &entries,
            &expected,
            &format!("scan prefix {}", show(&prefix)),
        )?;
    }
    Ok(Verdict::Passed)
}

/// A range scan returns the keys in `[start, end)`: start included, end excluded.
pub(crate) async fn scan_range(ctx: Ctx) -> CaseResult {
    let store = ctx.open_default().await?;
    let keys: Vec<Vec<u8>> = [&b"a"[..], b"b", b"b\0", b"ba", b"c", b"d", b"d\0", b"e"]
        .iter()
        .map(|k| k.to_vec())
        .collect();
    write_keys(&ctx, &store, &keys).await?;
    let cases: Vec<(KeyRange, Vec<&[u8]>)> = vec![
        (KeyRange::between("b", "d"), vec![b"b", b"b\0", b"ba", b"c"]),
        (KeyRange::between("b\0", "c\0"), vec![b"b\0", b"ba", b"c"]),
        (
            KeyRange {
                start: None,
                end: Some(b"b".to_vec()),
            },
            vec![b"a"],
        ),
        (
            KeyRange {
                start: Some(b"d".to_vec()),
                end: None,
            },
            vec![b"d", b"d\0", b"e"],
        ),
        (KeyRange::between("c", "c"), vec![]),
        (KeyRange::between("d", "b"), vec![]),
    ];
    for (range, expected) in cases {
        let what = format!("scan range {range:?}");
        let entries = store.scan(ScanOptions::range(range)).await.must(&what)?;
        expect_keys(&entries, &expected, &what)?;
    }
    Ok(Verdict::Passed)
}

/// Paging with `limit` and the exclusive `after` cursor visits every key exactly once,
/// in order; a cursor before the range start or past its end is honoured.
pub(crate) async fn scan_cursor(ctx: Ctx) -> CaseResult {
    let store = ctx.open_default().await?;
    let keys: Vec<Vec<u8>> = (0..25).map(|i| format!("p/{i:02}").into_bytes()).collect();
    write_keys(&ctx, &store, &keys).await?;
    store
        .put(b"q", b"outside", PutOptions::default())
        .await
        .must("put q")?;
    let mut paged: Vec<Vec<u8>> = Vec::new();
    let mut after: Option<Vec<u8>> = None;
    for page in 0..10 {
        let mut options = ScanOptions::prefix("p/").with_limit(7);
        options.after = after.clone();
        let entries = store
            .scan(options)
            .await
            .must(format_args!("scan page {page}"))?;
        ensure!(
            entries.len() <= 7,
            "page {page} returned {} entries with limit 7",
            entries.len()
        );
        let Some(last) = entries.last() else { break };
        after = Some(last.key.clone());
        paged.extend(entries.into_iter().map(|e| e.key));
    }
    let want: Vec<String> = keys.iter().map(|k| show(k)).collect();
    let got: Vec<String> = paged.iter().map(|k| show(k)).collect();
    ensure_eq!(got, want, "keys visited by paging 7 at a time");

    let from_missing = store
        .scan(ScanOptions::prefix("p/").with_after("p/10x"))
        .await
        .must("scan after a key that does not exist")?;
    ensure_eq!(
        from_missing.first().map(|e| show(&e.key)),
        Some(show(b"p/11")),
        "first key after the missing cursor p/10x"
    );
    let before_start = store
        .scan(ScanOptions::prefix("p/").with_after("a").with_limit(1))
        .await
        .must("scan with a cursor before the range")?;
    ensure_eq!(
        keys_of(&before_start),
        vec![show(b"p/00")],
        "scan with a cursor before the range start"
    );
    let past_end = store
        .scan(ScanOptions::prefix("p/").with_after("p/99"))
        .await
        .must("scan with a cursor past the range")?;
    ensure!(
        past_end.is_empty(),
        "scan with a cursor past the range returned {:?}",
        keys_of(&past_end)
    );
    let exact = store
        .scan(ScanOptions::prefix("p/").with_after("p/23"))
        .await
        .must("scan after p/23")?;
    ensure_eq!(
        keys_of(&exact),
        vec![show(b"p/24")],
        "the cursor is exclusive"
    );
    Ok(Verdict::Passed)
}

/// `limit` caps a scan; without one, `max_scan_limit` does; a limit above
/// `max_scan_limit` is `InvalidInput`.
pub(crate) async fn scan_limit(ctx: Ctx) -> CaseResult {
    let store = ctx.open_default().await?;
    let total = SCAN_LIMIT + 5;
    let ops: Vec<WriteOp> = (0..total)
        .map(|i| WriteOp::put(format!("l/{i:04}"), "v"))
        .collect();
    store.batch(ops).await.must("batch of puts")?;
    let limited = store
        .scan(ScanOptions::prefix("l/").with_limit(3))
        .await
        .must("scan limit 3")?;
    ensure_eq!(
        keys_of(&limited),
        vec![show(b"l/0000"), show(b"l/0001"), show(b"l/0002")],
        "scan with limit 3"
    );
    let zero = store
        .scan(ScanOptions::prefix("l/").with_limit(0))
        .await
        .must("scan limit 0")?;
    ensure!(
        zero.is_empty(),
        "scan with limit 0 returned {} entries",
        zero.len()
    );
    let unlimited = store
        .scan(ScanOptions::prefix("l/"))
        .await
        .must("scan without a limit")?;
    ensure_eq!(
        unlimited.len(),
        SCAN_LIMIT,
        "entries returned without a limit (max_scan_limit is {SCAN_LIMIT}, {total} stored)"
    );
    let at_max = store
        .scan(ScanOptions::prefix("l/").with_limit(SCAN_LIMIT))
        .await
        .must("scan limit max_scan_limit")?;
    ensure_eq!(at_max.len(), SCAN_LIMIT, "scan with limit = max_scan_limit");
    store
        .scan(ScanOptions::prefix("l/").with_limit(SCAN_LIMIT + 1))
        .await
        .must_fail(ErrorKind::InvalidInput, "scan limit over max_scan_limit")?;
    Ok(Verdict::Passed)
}

/// Range starts, range ends and prefixes, crossed with cursors and limits, over live and
/// expired entries: every combination returns what the model (the live keys, filtered
/// by `ScanOptions::selects`, cut at the limit) says, on the store and inside a
/// read-only transaction.
pub(crate) async fn scan_combinations(ctx: Ctx) -> CaseResult {
    let store = ctx.open_default().await?;
    let caps = store.capabilities();
    let mut live: Vec<Vec<u8>> = [
        &b"a"[..],
        b"a\0",
        b"ab",
        b"abc",
        b"b",
        b"b\xff",
        b"ba",
        b"c",
    ]
    .iter()
    .map(|k| k.to_vec())
    .collect();
    live.sort();
    write_keys(&ctx, &store, &live).await?;
    // Expired entries between the live ones: a limit must count only live entries.
    let expiring: Vec<Vec<u8>> = [&b"a\x01"[..], b"aa", b"abb", b"b\0", b"bb"]
        .iter()
        .map(|k| k.to_vec())
        .collect();
    if caps.ttl {
        let ttl = PutOptions::default().with_ttl(std::time::Duration::from_secs(5));
        for key in &expiring {
            store
                .put(key, b"expiring", ttl)
                .await
                .must(format_args!("put {} with a TTL", show(key)))?;
        }
        ctx.clock().advance(std::time::Duration::from_secs(6));
    }
    let bounds: Vec<Option<Vec<u8>>> =
        [None, Some(&b"a"[..]), Some(b"ab"), Some(b"b\0"), Some(b"c")]
            .into_iter()
            .map(|b| b.map(<[u8]>::to_vec))
            .collect();
    let cursors: Vec<Option<Vec<u8>>> = [
        None,
        Some(&b"\0"[..]),
        Some(b"a"),
        Some(b"aa"),
        Some(b"abc"),
        Some(b"b"),
        Some(b"c"),
        Some(b"d"),
    ]
    .into_iter()
    .map(|b| b.map(<[u8]>::to_vec))
    .collect();
    let limits = [None, Some(0), Some(1), Some(2), Some(5)];
    let mut ranges = Vec::new();
    for start in &bounds {
        for end in &bounds {
            ranges.push(KeyRange {
                start: start.clone(),
                end: end.clone(),
            });
        }
    }
    for prefix in [&b"a"[..], b"ab", b"b", b"\xff"] {
        ranges.push(KeyRange::prefix(prefix));
    }
    let mut scans = Vec::new();
    for range in &ranges {
        for after in &cursors {
            for limit in limits {
                scans.push(ScanOptions {
                    range: range.clone(),
                    limit,
                    after: after.clone(),
                });
            }
        }
    }
    let expected = |options: &ScanOptions| -> Vec<String> {
        live.iter()
            .filter(|k| options.selects(k))
            .take(options.limit.unwrap_or(SCAN_LIMIT))
            .map(|k| show(k))
            .collect()
    };
    for options in &scans {
        let what = format!("scan {options:?}");
        let entries = store.scan(options.clone()).await.must(&what)?;
        ensure_eq!(keys_of(&entries), expected(options), "{what}");
    }
    if caps.transactions {
        let mut tx = store
            .begin(storage_api::TxOptions { read_only: true })
            .await
            .must("begin read-only")?;
        for options in &scans {
            let what = format!("transaction scan {options:?}");
            let entries = tx.scan(options.clone()).await.must(&what)?;
            ensure_eq!(keys_of(&entries), expected(options), "{what}");
        }
        tx.commit().await.must("commit read-only")?;
    }
    Ok(Verdict::Passed)
}
