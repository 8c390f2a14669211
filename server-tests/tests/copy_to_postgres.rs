//! Moving a SQLite store to PostgreSQL with `copy`, then exporting it from there.

use std::time::Duration;

use backend_sqlx::SqlxStore;
use pooledstore_ops::{Progress, copy, export};
use server_tests::postgres::{Scratch, open};
use storage_api::{PooledStore, PutOptions, StoreOptions};

#[tokio::test]
async fn copy_moves_a_sqlite_store_to_postgres() {
    let scratch = Scratch::new().await;
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("a.db").display());
    let source = SqlxStore::open(StoreOptions::new(url)).await.unwrap();
    for i in 0..25 {
        let key = format!("key{i:02}");
        let value = format!("value {i}");
        source
            .put(key.as_bytes(), value.as_bytes(), PutOptions::default())
            .await
            .unwrap();
    }
    let ttl = PutOptions::default().with_ttl(Duration::from_secs(600));
    source.put(b"session", b"s", ttl).await.unwrap();

    let target = open(scratch.options("copied")).await;
    let report = copy(&source, &target, &Progress::hidden()).await.unwrap();
    assert_eq!(
        (report.source_count, report.copied, report.target_count),
        (26, 26, 26)
    );
    let entry = target.get(b"key07").await.unwrap().expect("key07 copied");
    assert_eq!(entry.value, b"value 7");
    let session = target
        .get(b"session")
        .await
        .unwrap()
        .expect("session copied");
    assert!(session.expires_at.is_some(), "the expiry is kept");

    let mut dump = Vec::new();
    let exported = export(&target, &mut dump, false).await.unwrap();
    assert_eq!(exported, 26);
    source.close().await;
    target.close().await;
}
