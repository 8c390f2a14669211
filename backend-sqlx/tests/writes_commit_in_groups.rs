//! The single writer commits concurrent writes together: each caller still gets its
//! own answer, a refused write leaves the others of its group applied, and a write
//! whose statement fails takes no other write down with it.

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;

use common::{KINDS, Kind, db_path, open, options, temp_dir};
use sqlx::Connection;
use storage_api::{ErrorKind, PooledStore, PutOptions, WriteOp, WriteResult};

#[tokio::test]
async fn a_long_batch_with_repeated_keys_ends_with_the_last_write_of_each() {
    for kind in KINDS {
        let dir = temp_dir();
        let store = open(options(kind, &dir)).await;
        // 150 writes over 37 keys cross every multi-row chunk size; two deletes near
        // the end make the writer send what it buffered first.
        let mut ops = Vec::new();
        let mut expected = BTreeMap::new();
        for i in 0..150u32 {
            let key = format!("k{:02}", i % 37).into_bytes();
            if i == 145 || i == 146 {
                ops.push(WriteOp::delete(key.clone()));
                expected.remove(&key);
            } else {
                let value = format!("v{i}").into_bytes();
                ops.push(WriteOp::put(key.clone(), value.clone()));
                expected.insert(key, (value, ops.len() - 1));
            }
        }
        let results = store.batch(ops).await.unwrap();
        assert_eq!(results.len(), 150, "{kind:?}");
        let versions: Vec<u64> = results
            .iter()
            .filter_map(|r| match r {
                WriteResult::Put(v) => Some(v.get()),
                WriteResult::Delete(_) => None,
            })
            .collect();
        assert!(
            versions.windows(2).all(|w| w[0] < w[1]),
            "{kind:?}: versions in batch order must rise: {versions:?}"
        );
        for (key, (value, index)) in &expected {
            let entry = store.get(key).await.unwrap().expect("a written key");
            assert_eq!(&entry.value, value, "{kind:?}");
            assert_eq!(WriteResult::Put(entry.version), results[*index], "{kind:?}");
        }
        assert_eq!(store.get(b"k34").await.unwrap(), None, "deleted at op 145");
        assert_eq!(store.get(b"k35").await.unwrap(), None, "deleted at op 146");
        store.close().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_writes_leave_the_rest_of_their_group_applied() {
    for kind in KINDS {
        let dir = temp_dir();
        let store = Arc::new(open(options(kind, &dir)).await);
        let taken = store
            .put(b"taken", b"0", PutOptions::default())
            .await
            .unwrap();
        let tasks: Vec<_> = (0..64)
            .map(|i| {
                let store = Arc::clone(&store);
                tokio::spawn(async move {
                    if i % 2 == 0 {
                        store.put(b"taken", b"x", PutOptions::if_absent()).await
                    } else {
                        let key = format!("free/{i}");
                        store.put(key.as_bytes(), b"v", PutOptions::default()).await
                    }
                })
            })
            .collect();
        for (i, task) in tasks.into_iter().enumerate() {
            let result = task.await.unwrap();
            if i % 2 == 0 {
                let err = result.unwrap_err();
                assert_eq!(err.kind(), ErrorKind::ConditionFailed, "{kind:?}: {err}");
            } else {
                let version = result.unwrap();
                let key = format!("free/{i}");
                let entry = store.get(key.as_bytes()).await.unwrap().unwrap();
                assert_eq!(entry.version, version, "{kind:?}");
            }
        }
        assert_eq!(store.get(b"taken").await.unwrap().unwrap().version, taken);
        store.close().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_whose_statement_fails_takes_no_other_write_with_it() {
    let dir = temp_dir();
    let opts = options(Kind::File, &dir);
    let table = opts.table.clone();
    let store = Arc::new(open(opts).await);
    // A trigger makes every write of the key `bad` fail inside SQLite, as a full disk
    // or a damaged page would fail one statement.
    let url = format!("sqlite://{}", db_path(&dir).display());
    let mut raw = sqlx::SqliteConnection::connect(&url).await.unwrap();
    let trigger = format!(
        "CREATE TRIGGER reject_bad BEFORE INSERT ON \"{table}\" WHEN NEW.key = x'626164' \
         BEGIN SELECT RAISE(ABORT, 'rejected by trigger'); END"
    );
    sqlx::raw_sql(sqlx::AssertSqlSafe(trigger))
        .execute(&mut raw)
        .await
        .unwrap();
    raw.close().await.unwrap();

    for round in 0..5 {
        let tasks: Vec<_> = (0..32)
            .map(|i| {
                let store = Arc::clone(&store);
                tokio::spawn(async move {
                    let key = if i == 7 {
                        "bad".to_owned()
                    } else {
                        format!("good/{round}/{i}")
                    };
                    (
                        key.clone(),
                        store.put(key.as_bytes(), b"v", PutOptions::default()).await,
                    )
                })
            })
            .collect();
        for task in tasks {
            let (key, result) = task.await.unwrap();
            if key == "bad" {
                assert!(result.is_err(), "the trigger rejects `bad`");
            } else {
                let version = result.unwrap_or_else(|e| panic!("{key}: {e}"));
                let entry = store.get(key.as_bytes()).await.unwrap().unwrap();
                assert_eq!(entry.version, version);
            }
        }
    }
    assert_eq!(store.get(b"bad").await.unwrap(), None);
    store.close().await;
}
