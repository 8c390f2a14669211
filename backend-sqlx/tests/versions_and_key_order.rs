//! Versions never repeat for a key, even across delete; keys order bytewise.

mod common;

use common::{KINDS, open, options, temp_dir};
use storage_api::{Condition, KeyRange, PooledStore, PutOptions, ScanOptions, WriteOp};

#[tokio::test]
async fn versions_increase_across_delete_and_recreate() {
    for kind in KINDS {
        let dir = temp_dir();
        let store = open(options(kind, &dir)).await;
        let mut last = None;
        for round in 0..5u8 {
            let v = store
                .put(b"k", &[round], PutOptions::default())
                .await
                .unwrap();
            if let Some(prev) = last {
                assert!(v > prev, "{kind:?}: {v} after {prev}");
            }
            assert!(store.delete(b"k", Condition::Any).await.unwrap());
            assert!(!store.delete(b"k", Condition::Any).await.unwrap());
            last = Some(v);
        }
        // A compare-and-swap against a version from before a delete never succeeds.
        let stale = last.unwrap();
        let fresh = store
            .put(b"k", b"new", PutOptions::if_absent())
            .await
            .unwrap();
        assert!(fresh > stale);
        let err = store
            .put(b"k", b"x", PutOptions::if_version(stale))
            .await
            .unwrap_err();
        assert_eq!(err.kind(), storage_api::ErrorKind::ConditionFailed);
        store.close().await;
    }
}

#[tokio::test]
async fn keys_with_nul_and_ff_bytes_scan_in_bytewise_order() {
    for kind in KINDS {
        let dir = temp_dir();
        let store = open(options(kind, &dir)).await;
        let keys: Vec<Vec<u8>> = vec![
            vec![0xFF],
            vec![0x00],
            vec![0x00, 0x00],
            vec![0x01],
            vec![0x7F, 0xFF],
            vec![0x80],
            vec![0xFF, 0x00],
            vec![0xFF, 0xFF, 0xFF],
            b"a".to_vec(),
            b"a\x00".to_vec(),
            b"A".to_vec(),
        ];
        let ops = keys
            .iter()
            .map(|k| WriteOp::put(k.clone(), k.clone()))
            .collect();
        store.batch(ops).await.unwrap();
        let mut expected = keys.clone();
        expected.sort();
        let all: Vec<Vec<u8>> = store
            .scan(ScanOptions::default())
            .await
            .unwrap()
            .into_iter()
            .map(|e| {
                assert_eq!(e.key, e.value);
                e.key
            })
            .collect();
        assert_eq!(all, expected, "{kind:?}");

        // A prefix of 0xFF includes every key starting with it and nothing else.
        let ff: Vec<Vec<u8>> = store
            .scan(ScanOptions::prefix(vec![0xFF]))
            .await
            .unwrap()
            .into_iter()
            .map(|e| e.key)
            .collect();
        assert_eq!(
            ff,
            vec![vec![0xFF], vec![0xFF, 0x00], vec![0xFF, 0xFF, 0xFF]]
        );

        // Range with an exclusive end, and paging with the `after` cursor.
        let range: Vec<Vec<u8>> = store
            .scan(ScanOptions::range(KeyRange::between(
                vec![0x00],
                vec![0x01],
            )))
            .await
            .unwrap()
            .into_iter()
            .map(|e| e.key)
            .collect();
        assert_eq!(range, vec![vec![0x00], vec![0x00, 0x00]]);
        let mut paged = Vec::new();
        let mut after: Option<Vec<u8>> = None;
        loop {
            let mut page = ScanOptions::default().with_limit(3);
            page.after = after.clone();
            let entries = store.scan(page).await.unwrap();
            if entries.is_empty() {
                break;
            }
            after = entries.last().map(|e| e.key.clone());
            paged.extend(entries.into_iter().map(|e| e.key));
        }
        assert_eq!(paged, expected, "{kind:?}");
        store.close().await;
    }
}
