//! A short scan (answered in one packed row) returns exactly what the same scan returns
//! row by row: binary keys and values, empty values, expiries, expired entries left
//! out, every kind of bound, in a transaction too.

mod common;

use std::time::Duration;

use common::{KINDS, open, options_on_manual_clock, temp_dir};
use storage_api::{Entry, KeyRange, PooledStore, PutOptions, ScanOptions, TxOptions, WriteOp};

/// More than the rows a scan may ask for to run packed (128).
const ROWS: u32 = 300;

/// The key of row `i`: binary, with NUL and 0xFF bytes, of varying length.
fn key(i: u32) -> Vec<u8> {
    let mut key = vec![(i % 7) as u8 * 40, 0x00, 0xFF];
    key.extend_from_slice(&i.to_be_bytes());
    key.resize(key.len() + (i % 4) as usize, 0xFF);
    key
}

/// The value of row `i`: empty for some, binary for all, up to a few KiB.
fn value(i: u32) -> Vec<u8> {
    let len = if i % 11 == 1 { 0 } else { (i * 37) % 4_000 };
    (0..len).map(|b| (b ^ i) as u8).collect()
}

#[tokio::test]
async fn short_scans_return_what_streamed_scans_return() {
    for kind in KINDS {
        let dir = temp_dir();
        let (opts, clock) = options_on_manual_clock(kind, &dir);
        let store = open(opts).await;
        // Every third row expires after 10 s, every fifth after 100 s.
        let writes = (0..ROWS)
            .map(|i| {
                let ttl = match (i % 3, i % 5) {
                    (0, _) => Some(Duration::from_secs(10)),
                    (_, 0) => Some(Duration::from_secs(100)),
                    _ => None,
                };
                let options = PutOptions {
                    ttl,
                    ..PutOptions::default()
                };
                WriteOp::Put {
                    key: key(i),
                    value: value(i),
                    options,
                }
            })
            .collect();
        store.batch(writes).await.unwrap();
        clock.advance(Duration::from_secs(20));

        let (low, high) = (vec![80], vec![200, 0x00, 0xFF, 0x01]);
        let ranges = [
            KeyRange::default(),
            KeyRange {
                start: Some(low.clone()),
                end: None,
            },
            KeyRange {
                start: None,
                end: Some(high.clone()),
            },
            KeyRange {
                start: Some(low),
                end: Some(high),
            },
        ];
        let mut compared = 0;
        for range in ranges {
            let streamed = scan(&store, &range, ROWS as usize).await;
            for limit in [1, 2, 50, 128] {
                let short = scan(&store, &range, limit).await;
                let expected = &streamed[..limit.min(streamed.len())];
                assert_eq!(short, expected, "{kind:?}, {range:?}, limit {limit}");
                compared += short.len();
            }
            let mut tx = store.begin(TxOptions { read_only: true }).await.unwrap();
            let options = ScanOptions::range(range.clone()).with_limit(100);
            let in_tx = tx.scan(options).await.unwrap();
            tx.rollback().await.unwrap();
            assert_eq!(
                in_tx,
                &streamed[..100.min(streamed.len())],
                "{kind:?}, in a tx"
            );
        }
        assert!(compared > 400, "{kind:?}: only {compared} entries compared");
        // Expired rows are left out; live ones keep their expiry.
        let live = (0..ROWS).filter(|i| i % 3 != 0).count();
        assert_eq!(
            scan(&store, &KeyRange::default(), ROWS as usize)
                .await
                .len(),
            live
        );
        let short = scan(&store, &KeyRange::default(), 128).await;
        assert!(short.iter().any(|e| e.expires_at.is_some()));
        assert!(short.iter().any(|e| e.value.is_empty()));
        store.close().await;
    }
}

async fn scan(store: &dyn PooledStore, range: &KeyRange, limit: usize) -> Vec<Entry> {
    let options = ScanOptions::range(range.clone()).with_limit(limit);
    store.scan(options).await.unwrap()
}
