//! Moving a store SQLite -> MariaDB/MySQL -> PostgreSQL with the ops library's `copy`:
//! every key (binary, case- and space-sensitive), value and expiry arrives unchanged
//! at each hop, each target's versions follow the order the copy wrote in, and a later
//! write on a target gets a version above every copied one.

use std::time::SystemTime;

use backend_sqlx::SqlxStore;
use pooledstore_ops::{Progress, copy};
use server_tests::copied::{assert_same, check_versions, entries, fill_awkward};
use server_tests::mysql::ScratchDatabase;
use server_tests::postgres::Scratch;
use storage_api::{PooledStore, StoreOptions};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn copy_round_trips_sqlite_to_mariadb_to_postgres() {
    let dir = tempfile::tempdir().unwrap();
    let sqlite_url = format!("sqlite://{}", dir.path().join("source.db").display());
    let source = SqlxStore::open(StoreOptions::new(sqlite_url))
        .await
        .unwrap();
    let written = fill_awkward(&source, 120, 200 * 1024).await;
    let expected = entries(&source).await;
    assert_eq!(expected.len(), written);
    assert!(expected.iter().any(|e| e.expires_at.is_some()));

    let maria_db = ScratchDatabase::new("copy_mysql").await;
    let maria = SqlxStore::open(maria_db.options("copied")).await.unwrap();
    let report = copy(&source, &maria, &Progress::hidden()).await.unwrap();
    assert_eq!(report.copied as usize, written);
    let on_maria = entries(&maria).await;
    assert_same("SQLite -> MariaDB", &on_maria, &expected);

    let pg_scratch = Scratch::new().await;
    let pg = SqlxStore::open(pg_scratch.options("copied")).await.unwrap();
    let report = copy(&maria, &pg, &Progress::hidden()).await.unwrap();
    assert_eq!(report.copied as usize, written);
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
