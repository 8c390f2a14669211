//! The schema: created on open, safely when many stores open at once; keys stored as
//! `bytea`; derived names kept within 63 bytes; a newer schema version, or a table
//! that is not a store's, refused.

use backend_sqlx::SqlxStore;
use server_tests::postgres::{Scratch, execute, open};
use storage_api::{ErrorKind, PooledStore, PutOptions};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_opens_of_new_tables_all_succeed() {
    let scratch = Scratch::new().await;
    // Eight stores on one new table and eight on tables of their own, all at once,
    // on a schema that has no meta table yet.
    let opens = (0..16).map(|i| {
        let table = if i % 2 == 0 {
            "shared_kv".to_owned()
        } else {
            format!("own_kv_{i}")
        };
        let mut options = scratch.options(&table);
        options.max_connections = 1;
        SqlxStore::open(options)
    });
    let stores: Vec<SqlxStore> = futures::future::join_all(opens)
        .await
        .into_iter()
        .map(|opened| opened.unwrap())
        .collect();
    for (i, store) in stores.iter().enumerate() {
        assert_eq!(store.schema_version(), 1);
        store
            .put(format!("k{i}").as_bytes(), b"v", PutOptions::default())
            .await
            .unwrap();
    }
    let shared = stores[0].scan(Default::default()).await.unwrap();
    assert_eq!(
        shared.len(),
        8,
        "every store on shared_kv wrote to the same table"
    );

    let mut admin = scratch.admin().await;
    let registered: i64 = sqlx::query_scalar("SELECT count(*) FROM pooledstore_meta")
        .fetch_one(&mut admin)
        .await
        .unwrap();
    assert_eq!(registered, 9);
    let key_type: String = sqlx::query_scalar(
        "SELECT format_type(atttypid, atttypmod) FROM pg_attribute \
         WHERE attrelid = to_regclass('\"shared_kv\"') AND attname = 'key'",
    )
    .fetch_one(&mut admin)
    .await
    .unwrap();
    assert_eq!(key_type, "bytea");
    for store in &stores {
        store.close().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn long_table_names_get_distinct_sequences_within_63_bytes() {
    let scratch = Scratch::new().await;
    let a = format!("{}a", "t".repeat(62));
    let b = format!("{}b", "t".repeat(62));
    let store_a = open(scratch.options(&a)).await;
    let store_b = open(scratch.options(&b)).await;
    let va = store_a
        .put(b"k", b"a", PutOptions::default())
        .await
        .unwrap();
    let vb = store_b
        .put(b"k", b"b", PutOptions::default())
        .await
        .unwrap();
    // Each table draws from its own sequence: both start at 1.
    assert_eq!((va.get(), vb.get()), (1, 1));

    let mut admin = scratch.admin().await;
    let sequences: Vec<String> = sqlx::query_scalar(
        "SELECT relname::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
         WHERE n.nspname = current_schema() AND c.relkind = 'S' ORDER BY relname",
    )
    .fetch_all(&mut admin)
    .await
    .unwrap();
    assert_eq!(sequences.len(), 2, "{sequences:?}");
    assert!(
        sequences
            .iter()
            .all(|s| s.len() <= 63 && s.ends_with("_version_seq"))
    );
    store_a.close().await;
    store_b.close().await;
    // Reopening derives the same names.
    let again = open(scratch.options(&a)).await;
    assert_eq!(
        again
            .put(b"k", b"a2", PutOptions::default())
            .await
            .unwrap()
            .get(),
        2
    );
    again.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_newer_schema_version_is_unsupported() {
    let scratch = Scratch::new().await;
    let store = open(scratch.options("kv")).await;
    store.close().await;
    let mut admin = scratch.admin().await;
    execute(
        &mut admin,
        "UPDATE pooledstore_meta SET schema_version = 2 WHERE table_name = 'kv'",
    )
    .await;
    let e = SqlxStore::open(scratch.options("kv")).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unsupported, "{e}");
    assert!(e.message().contains("schema version 2"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tables_that_are_not_a_stores_are_refused() {
    let scratch = Scratch::new().await;
    let mut admin = scratch.admin().await;
    // Text keys would order by the database's collation, not bytewise.
    execute(
        &mut admin,
        "CREATE TABLE text_kv (key text PRIMARY KEY, value bytea, version bigint, \
         expires_at bigint)",
    )
    .await;
    let e = SqlxStore::open(scratch.options("text_kv"))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Corrupt, "{e}");

    // A table whose name is another table's derived sequence name.
    let store = open(scratch.options("x")).await;
    store.close().await;
    let e = SqlxStore::open(scratch.options("x_version_seq"))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Corrupt, "{e}");
    // Nothing was registered for the refused tables.
    let registered: Vec<String> =
        sqlx::query_scalar("SELECT table_name FROM pooledstore_meta ORDER BY table_name")
            .fetch_all(&mut admin)
            .await
            .unwrap();
    assert_eq!(registered, ["x"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_role_with_only_data_privileges_uses_an_existing_store() {
    let scratch = Scratch::new().await;
    let store = open(scratch.options("kv")).await;
    store.close().await;
    let role = scratch.create_role("data-only").await;
    let mut admin = scratch.admin().await;
    for grant in [
        format!(
            "REVOKE CREATE ON SCHEMA \"{}\" FROM \"{role}\"",
            scratch.schema
        ),
        format!("GRANT SELECT ON pooledstore_meta TO \"{role}\""),
        format!("GRANT SELECT, INSERT, UPDATE, DELETE ON kv TO \"{role}\""),
        format!("GRANT USAGE ON SEQUENCE kv_version_seq TO \"{role}\""),
    ] {
        execute(&mut admin, &grant).await;
    }

    let mut options = scratch.options("kv");
    options.url = scratch.role_url(&role, "data-only");
    let store = open(options.clone()).await;
    let v = store.put(b"k", b"v", PutOptions::default()).await.unwrap();
    assert_eq!(store.get(b"k").await.unwrap().unwrap().version, v);
    let mut tx = store.begin(Default::default()).await.unwrap();
    tx.delete(b"k", storage_api::Condition::Version(v))
        .await
        .unwrap();
    tx.commit().await.unwrap();
    assert_eq!(store.purge_expired().await.unwrap(), 0);
    store.close().await;

    // Creating a new table needs CREATE on the schema.
    options.table = "new_kv".into();
    let e = SqlxStore::open(options).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Backend, "{e}");
    assert!(e.message().contains("42501"), "{e}");
}
