//! Checks the copy tests share: every entry of a store, page by page, and what a copy
//! must have kept of each.

use std::time::Duration;

use storage_api::{Entry, PooledStore, PutOptions, ScanOptions};

/// Writes entries a copy can get wrong into `store` and returns how many: binary,
/// case- and space-sensitive keys and the longest key allowed, then `numbered` keys
/// `key000`…; values in turn empty, every byte value, `big` bytes long, or text with a
/// newline; every third entry with a time to live of about an hour.
pub async fn fill_awkward(store: &dyn PooledStore, numbered: usize, big: usize) -> usize {
    let mut keys: Vec<Vec<u8>> = vec![
        b"\x00".to_vec(),
        b"\xff\xfe".to_vec(),
        b"a".to_vec(),
        b"A".to_vec(),
        b"a ".to_vec(),
        b"a\x00".to_vec(),
        "é".as_bytes().to_vec(),
        vec![0x5a; storage_api::MAX_KEY_BYTES],
    ];
    keys.extend((0..numbered).map(|i| format!("key{i:03}").into_bytes()));
    for (i, key) in keys.iter().enumerate() {
        let value: Vec<u8> = match i % 4 {
            0 => Vec::new(),
            1 => (0..=255u8).collect(),
            2 => vec![i as u8; big],
            _ => format!("value {i}\nwith a newline").into_bytes(),
        };
        let options = match i % 3 {
            0 => PutOptions::default().with_ttl(Duration::from_secs(3600 + i as u64)),
            _ => PutOptions::default(),
        };
        store.put(key, &value, options).await.unwrap();
    }
    keys.len()
}

/// Asserts that the versions of `copied` (as read back from `store`) grow in the order
/// the copy wrote (key order), and that a new write to `store` outranks them all.
pub async fn check_versions(store: &dyn PooledStore, copied: &[Entry]) {
    let versions: Vec<u64> = copied.iter().map(|e| e.version.get()).collect();
    assert!(
        versions.windows(2).all(|w| w[0] < w[1]),
        "versions do not follow the copy's order: {versions:?}"
    );
    let first = &copied[0];
    let newer = store
        .put(&first.key, &first.value, PutOptions::default())
        .await
        .unwrap();
    assert!(newer.get() > *versions.iter().max().unwrap());
}

/// Every live entry of `store`, in key order, read in pages of 50.
pub async fn entries(store: &dyn PooledStore) -> Vec<Entry> {
    let mut all: Vec<Entry> = Vec::new();
    loop {
        let mut page = ScanOptions::default().with_limit(50);
        if let Some(last) = all.last() {
            page = page.with_after(&last.key[..]);
        }
        let page = store.scan(page).await.unwrap();
        if page.is_empty() {
            return all;
        }
        all.extend(page);
    }
}

/// Asserts that `copied` holds the keys and values of `expected`, in the same order,
/// with the same expiry times: `copy` carries the remaining time to live (on the
/// system clock), so an expiry may move later by the time the copy took, and by the
/// millisecond precision of the stores, never earlier.
pub fn assert_same(hop: &str, copied: &[Entry], expected: &[Entry]) {
    assert_eq!(copied.len(), expected.len(), "{hop}: entry count");
    for (index, (c, e)) in copied.iter().zip(expected).enumerate() {
        assert!(c.key == e.key, "{hop}: key #{index} differs");
        assert!(
            c.value == e.value,
            "{hop}: the value of key #{index} differs"
        );
        match (c.expires_at, e.expires_at) {
            (None, None) => {}
            (Some(at), Some(was)) => {
                let earliest = was - Duration::from_millis(1);
                let latest = was + Duration::from_secs(5);
                assert!(
                    at >= earliest && at <= latest,
                    "{hop}: the expiry of key #{index} moved from {was:?} to {at:?}"
                );
            }
            (at, was) => panic!("{hop}: the expiry of key #{index} went from {was:?} to {at:?}"),
        }
    }
}
