//! Moving a store SQLite -> MariaDB/MySQL -> PostgreSQL with the ops library's `copy`:
//! every key (binary, case- and space-sensitive), value and expiry arrives unchanged
//! at each hop, each target's versions follow the order the copy wrote in, and a later
//! write on a target gets a version above every copied one.

use std::time::{Duration, SystemTime};

use backend_sqlx::SqlxStore;
use pooledstore_ops::{Progress, copy};
use server_tests::copied::{assert_same, entries};
use server_tests::mysql::ScratchDatabase;
use server_tests::postgres::Scratch;
use storage_api::{Entry, PooledStore, PutOptions, StoreOptions};

/// Versions grow in the order the copy wrote (key order), and a new write outranks
/// them all.
async fn check_versions(store: &dyn PooledStore, copied: &[Entry]) {
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn copy_round_trips_sqlite_to_mariadb_to_postgres() {
    let dir = tempfile::tempdir().unwrap();
    let sqlite_url = format!("sqlite://{}", dir.path().join("source.db").display());
    let source = SqlxStore::open(StoreOptions::new(sqlite_url))
        .await
        .unwrap();
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
    keys.extend((0..120).map(|i| format!("key{i:03}").into_bytes()));
    for (i, key) in keys.iter().enumerate() {
        let value: Vec<u8> = match i % 4 {
            0 => Vec::new(),
            1 => (0..=255u8).collect(),
            2 => vec![i as u8; 200 * 1024],
            _ => format!("value {i}").into_bytes(),
        };
        let options = match i % 3 {
            0 => PutOptions::default().with_ttl(Duration::from_secs(3600 + i as u64)),
            _ => PutOptions::default(),
        };
        source.put(key, &value, options).await.unwrap();
    }
    let expected = entries(&source).await;
    assert_eq!(expected.len(), keys.len());
    assert!(expected.iter().any(|e| e.expires_at.is_some()));

    let maria_db = ScratchDatabase::new("copy_mysql").await;
    let maria = SqlxStore::open(maria_db.options("copied")).await.unwrap();
    let report = copy(&source, &maria, &Progress::hidden()).await.unwrap();
    assert_eq!(report.copied as usize, keys.len());
    let on_maria = entries(&maria).await;
    assert_same("SQLite -> MariaDB", &on_maria, &expected);

    let pg_scratch = Scratch::new().await;
    let pg = SqlxStore::open(pg_scratch.options("copied")).await.unwrap();
    let report = copy(&maria, &pg, &Progress::hidden()).await.unwrap();
    assert_eq!(report.copied as usize, keys.len());
    let on_pg = entries(&pg).await;
    assert_same("MariaDB -> PostgreSQL", &on_pg, &on_maria);
    assert_same("SQLite -> PostgreSQL", &on_pg, &expected);
    assert!(
        on_pg
            .iter()
            .filter_map(|e| e.expires_at)
            .all(|at| at > SystemTime::now())
    );

    check_versions(&maria, &on_maria).await;
    check_versions(&pg, &on_pg).await;
    for store in [&source, &maria, &pg] {
        store.close().await;
    }
}
