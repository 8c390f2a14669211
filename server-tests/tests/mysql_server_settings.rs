//! What a store requires of a MySQL/MariaDB server, checked at open: a
//! `max_allowed_packet` that admits the largest value (`max_value_bytes`), strict SQL
//! mode on every session so nothing is silently truncated, and a table that is the
//! store's own (binary keys, InnoDB), never a look-alike with a `_ci` collation.

use server_tests::mysql::{ScratchDatabase, execute, open};
use storage_api::{ErrorKind, PooledStore, PutOptions};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_packet_limit_below_max_value_bytes_is_refused_at_open() {
    let scratch = ScratchDatabase::new("mysql_settings").await;
    let mut admin = scratch.admin().await;
    let packet: u64 = sqlx::query_scalar("SELECT CAST(@@GLOBAL.max_allowed_packet AS UNSIGNED)")
        .fetch_one(&mut admin)
        .await
        .unwrap();
    let mut options = scratch.options("kv");
    options.limits.max_value_bytes = usize::try_from(packet).unwrap() + 1;
    let e = backend_sqlx::SqlxStore::open(options).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Config, "{e}");
    for named in ["max_allowed_packet", "max_value_bytes", &packet.to_string()] {
        assert!(e.message().contains(named), "{named}: {e}");
    }
    // Nothing was created by the refused open.
    let tables: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE()",
    )
    .fetch_one(&mut admin)
    .await
    .unwrap();
    assert_eq!(tables, 0);

    // A limit that fits opens, and a value of exactly that size round-trips.
    let mut options = scratch.options("kv");
    options.limits.max_value_bytes = usize::try_from(packet / 2).unwrap();
    let store = open(options).await;
    let value = vec![0xa5; usize::try_from(packet / 2).unwrap()];
    store
        .put(b"big", &value, PutOptions::default())
        .await
        .unwrap();
    assert_eq!(store.get(b"big").await.unwrap().unwrap().value, value);
    store.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_session_is_strict_so_nothing_is_silently_truncated() {
    let scratch = ScratchDatabase::new("mysql_settings").await;
    let store = open(scratch.options("kv")).await;
    let health = store.health_check().await;
    assert!(health.healthy, "{health:?}");
    let sql_mode = health
        .detail
        .split("sql_mode ")
        .nth(1)
        .and_then(|rest| rest.split(';').next())
        .unwrap_or_else(|| panic!("no sql_mode in {:?}", health.detail))
        .to_owned();
    for mode in [
        "STRICT_ALL_TABLES",
        "NO_ZERO_DATE",
        "NO_ENGINE_SUBSTITUTION",
    ] {
        assert!(sql_mode.contains(mode), "{mode} missing from {sql_mode}");
    }
    // In that mode the server refuses what it would otherwise truncate with a warning.
    let mut admin = scratch.admin().await;
    let too_long = "INSERT INTO kv (`key`, `value`, version) VALUES (REPEAT('k', 1025), '', 1)";
    execute(&mut admin, "SET SESSION sql_mode = ''").await;
    execute(&mut admin, "START TRANSACTION").await;
    execute(&mut admin, too_long).await;
    execute(&mut admin, "ROLLBACK").await;
    execute(&mut admin, &format!("SET SESSION sql_mode = '{sql_mode}'")).await;
    let refused = sqlx::raw_sql(too_long)
        .execute(&mut admin)
        .await
        .unwrap_err();
    assert!(refused.to_string().contains("too long"), "{refused}");
    store.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_table_with_text_keys_or_another_engine_is_not_a_store() {
    let scratch = ScratchDatabase::new("mysql_settings").await;
    let mut admin = scratch.admin().await;
    execute(
        &mut admin,
        "CREATE TABLE ci_keys (`key` VARCHAR(1024) CHARACTER SET latin1 COLLATE latin1_swedish_ci PRIMARY KEY, \
         `value` LONGBLOB NOT NULL, version BIGINT NOT NULL, expires_at BIGINT NULL) \
         ENGINE=InnoDB",
    )
    .await;
    let e = backend_sqlx::SqlxStore::open(scratch.options("ci_keys"))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Corrupt, "{e}");
    assert!(e.message().contains("VARBINARY(1024)"), "{e}");

    execute(
        &mut admin,
        "CREATE TABLE myisam (`key` VARBINARY(1024) NOT NULL, `value` LONGBLOB NOT NULL, \
         version BIGINT NOT NULL, expires_at BIGINT NULL, PRIMARY KEY (`key`(1000))) \
         ENGINE=MyISAM",
    )
    .await;
    let e = backend_sqlx::SqlxStore::open(scratch.options("myisam"))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Corrupt, "{e}");
    assert!(e.message().contains("InnoDB"), "{e}");
}
