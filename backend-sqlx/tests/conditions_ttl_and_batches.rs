//! Conditions, TTL (on the store's clock), purge and atomic batches.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{KINDS, open, options, temp_dir};
use storage_api::{
    Clock, Condition, ErrorKind, ManualClock, PooledStore, PutOptions, ScanOptions, TxOptions,
    WriteOp, WriteResult,
};

#[tokio::test]
async fn conditions_hold_or_change_nothing() {
    for kind in KINDS {
        let dir = temp_dir();
        let store = open(options(kind, &dir)).await;
        let v1 = store
            .put(b"k", b"1", PutOptions::if_absent())
            .await
            .unwrap();
        let err = store
            .put(b"k", b"2", PutOptions::if_absent())
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::ConditionFailed);
        let v2 = store
            .put(b"k", b"2", PutOptions::if_version(v1))
            .await
            .unwrap();
        let err = store
            .put(b"k", b"3", PutOptions::if_version(v1))
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::ConditionFailed);
        let err = store
            .delete(b"k", Condition::Version(v1))
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::ConditionFailed);
        let entry = store.get(b"k").await.unwrap().unwrap();
        assert_eq!((entry.value, entry.version), (b"2".to_vec(), v2));
        assert!(store.delete(b"k", Condition::Version(v2)).await.unwrap());
        let err = store
            .delete(b"k", Condition::Version(v2))
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::ConditionFailed);
        assert!(!store.delete(b"k", Condition::Absent).await.unwrap());
        store.close().await;
    }
}

#[tokio::test]
async fn expired_entries_are_invisible_absent_for_conditions_and_purged() {
    for kind in KINDS {
        let dir = temp_dir();
        let clock = ManualClock::default();
        let mut opts = options(kind, &dir);
        opts.clock = Arc::new(clock.clone());
        let store = open(opts).await;
        let ttl = PutOptions::default().with_ttl(Duration::from_secs(10));
        let v = store.put(b"t", b"x", ttl).await.unwrap();
        store.put(b"p", b"y", PutOptions::default()).await.unwrap();
        let entry = store.get(b"t").await.unwrap().unwrap();
        assert_eq!(
            entry.expires_at,
            Some(clock.now() + Duration::from_secs(10))
        );

        clock.advance(Duration::from_millis(9_999));
        assert!(
            store.get(b"t").await.unwrap().is_some(),
            "{kind:?}: expired early"
        );
        clock.advance(Duration::from_millis(1));
        assert_eq!(
            store.get(b"t").await.unwrap(),
            None,
            "{kind:?}: at expires_at"
        );
        let keys: Vec<_> = store
            .scan(ScanOptions::default())
            .await
            .unwrap()
            .into_iter()
            .map(|e| e.key)
            .collect();
        assert_eq!(keys, vec![b"p".to_vec()]);
        let err = store
            .put(b"t", b"z", PutOptions::if_version(v))
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::ConditionFailed);
        assert!(
            !store.delete(b"t", Condition::Any).await.unwrap(),
            "expired delete"
        );

        store.put(b"u", b"1", ttl).await.unwrap();
        clock.advance(Duration::from_secs(11));
        assert_eq!(store.purge_expired().await.unwrap(), 1);
        assert_eq!(store.purge_expired().await.unwrap(), 0);
        let again = store
            .put(b"u", b"2", PutOptions::if_absent())
            .await
            .unwrap();
        assert!(again > v);
        store.close().await;
    }
}

#[tokio::test]
async fn batches_apply_in_order_or_not_at_all() {
    for kind in KINDS {
        let dir = temp_dir();
        let store = open(options(kind, &dir)).await;
        let v = store.put(b"a", b"0", PutOptions::default()).await.unwrap();
        let results = store
            .batch(vec![
                WriteOp::put(b"a".to_vec(), b"1".to_vec()),
                WriteOp::put(b"b".to_vec(), b"1".to_vec()),
                WriteOp::Put {
                    key: b"b".to_vec(),
                    value: b"2".to_vec(),
                    options: PutOptions::if_absent(),
                },
            ])
            .await
            .unwrap_err();
        assert_eq!(results.kind(), ErrorKind::ConditionFailed);
        assert_eq!(results.batch_index(), Some(2));
        assert_eq!(store.get(b"a").await.unwrap().unwrap().version, v);
        assert_eq!(store.get(b"b").await.unwrap(), None);

        let results = store
            .batch(vec![
                WriteOp::put(b"b".to_vec(), b"1".to_vec()),
                WriteOp::Delete {
                    key: b"a".to_vec(),
                    condition: Condition::Version(v),
                },
                WriteOp::delete(b"missing".to_vec()),
            ])
            .await
            .unwrap();
        assert!(matches!(results[0], WriteResult::Put(_)));
        assert_eq!(
            results[1..],
            [WriteResult::Delete(true), WriteResult::Delete(false)]
        );
        assert_eq!(store.get(b"a").await.unwrap(), None);
        assert!(store.batch(Vec::new()).await.unwrap().is_empty());
        store.close().await;
    }
}

#[tokio::test]
async fn a_transaction_uses_the_store_clock_for_ttl() {
    for kind in KINDS {
        let dir = temp_dir();
        let clock = ManualClock::default();
        let mut opts = options(kind, &dir);
        opts.clock = Arc::new(clock.clone());
        let store = open(opts).await;
        let mut tx = store.begin(TxOptions::default()).await.unwrap();
        tx.put(
            b"t",
            b"x",
            PutOptions::default().with_ttl(Duration::from_secs(1)),
        )
        .await
        .unwrap();
        clock.advance(Duration::from_secs(2));
        assert_eq!(tx.get(b"t").await.unwrap(), None, "{kind:?}");
        tx.commit().await.unwrap();
        assert_eq!(store.get(b"t").await.unwrap(), None);
        store.close().await;
    }
}
