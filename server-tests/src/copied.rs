//! Checks the copy tests share: every entry of a store, page by page, and what a copy
//! must have kept of each.

use std::time::Duration;

use storage_api::{Entry, PooledStore, ScanOptions};

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
