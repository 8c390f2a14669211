//! Errors on MySQL/MariaDB by kind: a deadlock is a retryable `Conflict`; a lock wait
//! ends after the store's busy timeout (as a `Conflict` reported at once, counted in
//! `busy`), not the server's 50 s default; a
//! killed session is `Connection` and its connection leaves the pool; a server that
//! cannot be used is named at open, without the password.

use std::time::{Duration, Instant};

use server_tests::mysql::{ScratchDatabase, admin, kill_idle_sessions, open, with_database};
use server_tests::mysql_url;
use storage_api::{
    ErrorKind, KeyRange, PooledStore, PutOptions, ScanOptions, StoreOptions, TxOptions,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deadlock_is_a_conflict_reported_at_once() {
    let scratch = ScratchDatabase::new("mysql_errors").await;
    let mut options = scratch.options("kv");
    options.busy_timeout = Duration::from_secs(5);
    let store = open(options).await;
    for key in [&b"a"[..], b"b"] {
        store.put(key, b"0", PutOptions::default()).await.unwrap();
    }
    let mut first = store.begin(TxOptions::default()).await.unwrap();
    let mut second = store.begin(TxOptions::default()).await.unwrap();
    // Serializable reads take shared locks: each holds one key the other will write.
    first.get(b"a").await.unwrap();
    second.get(b"b").await.unwrap();
    let started = Instant::now();
    let blocked = tokio::spawn(async move {
        let result = first.put(b"b", b"1", PutOptions::default()).await;
        (first, result)
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    let second_result = second.put(b"a", b"2", PutOptions::default()).await;
    let (first, first_result) = blocked.await.unwrap();
    let waited = started.elapsed();
    let kinds = [&first_result, &second_result].map(|r| r.as_ref().err().map(|e| e.kind()));
    assert_eq!(
        kinds
            .iter()
            .filter(|k| **k == Some(ErrorKind::Conflict))
            .count(),
        1,
        "exactly one side of the deadlock fails with Conflict: {first_result:?} {second_result:?}"
    );
    assert!(kinds.contains(&None), "the other side goes on: {kinds:?}");
    assert!(
        waited < Duration::from_secs(3),
        "the deadlock was reported after {waited:?}, not at once"
    );
    let error = first_result
        .as_ref()
        .err()
        .or(second_result.as_ref().err())
        .unwrap();
    assert!(error.is_retryable());
    assert!(error.message().contains("1213"), "{error}");
    let (loser, winner) = if first_result.is_err() {
        (first, second)
    } else {
        (second, first)
    };
    // The victim cannot commit what is left of it; the survivor commits.
    assert_eq!(
        loser.commit().await.unwrap_err().kind(),
        ErrorKind::Conflict
    );
    winner.commit().await.unwrap();
    store.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lock_wait_ends_after_the_busy_timeout_not_the_servers_default() {
    let scratch = ScratchDatabase::new("mysql_errors").await;
    let mut options = scratch.options("kv");
    options.busy_timeout = Duration::from_millis(300);
    let store = open(options).await;
    let health = store.health_check().await;
    assert!(
        health.detail.contains("innodb_lock_wait_timeout 1 s"),
        "{}",
        health.detail
    );
    store.put(b"k", b"0", PutOptions::default()).await.unwrap();
    let mut holder = store.begin(TxOptions::default()).await.unwrap();
    holder.put(b"k", b"1", PutOptions::default()).await.unwrap();

    let started = Instant::now();
    let e = store
        .put(b"k", b"2", PutOptions::default())
        .await
        .unwrap_err();
    let waited = started.elapsed();
    assert_eq!(e.kind(), ErrorKind::Conflict, "{e}");
    assert!(e.is_retryable());
    assert!(
        waited >= Duration::from_millis(270) && waited < Duration::from_millis(1500),
        "a single-key write waited {waited:?} for a 300 ms busy timeout"
    );

    // A scan's range locks are bounded by the session's innodb_lock_wait_timeout
    // (whole seconds: 1 s here), not the server's default of 50 s.
    let mut reader = store.begin(TxOptions::default()).await.unwrap();
    let started = Instant::now();
    let range = KeyRange::between(&b"a"[..], &b"z"[..]);
    let e = reader.scan(ScanOptions::range(range)).await.unwrap_err();
    let waited = started.elapsed();
    assert_eq!(e.kind(), ErrorKind::Conflict, "{e}");
    assert!(e.message().contains("1205"), "{e}");
    assert!(
        waited < Duration::from_secs(3),
        "a scan waited {waited:?} for a lock"
    );
    reader.rollback().await.unwrap();
    assert_eq!(store.pool_metrics().busy, 2, "lock waits counted as busy");
    holder.commit().await.unwrap();
    assert_eq!(store.get(b"k").await.unwrap().unwrap().value, b"1");
    store.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_session_is_a_connection_error_and_leaves_the_pool() {
    let scratch = ScratchDatabase::new("mysql_errors").await;
    let mut options = scratch.options("kv");
    options.max_connections = 2;
    let store = open(options).await;
    store.put(b"k", b"v", PutOptions::default()).await.unwrap();
    let mut tx = store.begin(TxOptions::default()).await.unwrap();
    tx.get(b"k").await.unwrap();
    let before = store.pool_metrics();
    // Between statements the transaction's session sleeps too: it is killed with the
    // idle ones.
    let mut conn = admin(&scratch.base_url).await;
    let killed = kill_idle_sessions(&mut conn, &scratch.name).await;
    assert!(killed >= 1, "no session was killed");
    let e = tx.get(b"k").await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Connection, "{e}");
    assert!(e.is_retryable());
    tx.rollback().await.unwrap();
    let after = store.pool_metrics();
    assert!(
        after.closed.broken > before.closed.broken,
        "the dead connection was evicted: {after:?}"
    );
    // Operations move past the other killed connections to fresh ones.
    assert_eq!(store.get(b"k").await.unwrap().unwrap().value, b"v");
    store.put(b"k", b"w", PutOptions::default()).await.unwrap();
    store.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unusable_server_is_named_at_open_without_the_password() {
    let base = mysql_url();
    let missing = with_database(&base, "pooledstore_no_such_database");
    let e = SqlxOpen::error(&missing).await;
    assert_eq!(e.kind(), ErrorKind::Config, "{e}");
    assert!(e.message().contains("1049"), "{e}");

    let (scheme, rest) = base.split_once("://").unwrap();
    let host = rest.rsplit_once('@').map_or(rest, |(_, host)| host);
    let wrong = format!("{scheme}://pooledstore_nobody:s3cret-pw@{host}");
    let e = SqlxOpen::error(&wrong).await;
    assert_eq!(e.kind(), ErrorKind::Config, "{e}");
    assert!(e.message().contains("Access denied"), "{e}");
    assert!(!format!("{e} {e:?}").contains("s3cret-pw"), "{e:?}");

    let started = Instant::now();
    let e = SqlxOpen::error("mysql://root:s3cret-pw@127.0.0.1:1/db").await;
    assert_eq!(e.kind(), ErrorKind::Connection, "{e}");
    assert!(e.message().contains("127.0.0.1:1"), "{e}");
    assert!(!format!("{e} {e:?}").contains("s3cret-pw"), "{e:?}");
    assert!(started.elapsed() < Duration::from_secs(5));
}

/// Opening a store that must fail.
struct SqlxOpen;

impl SqlxOpen {
    async fn error(url: &str) -> storage_api::StoreError {
        let mut options = StoreOptions::new(url);
        options.acquire_timeout = Duration::from_secs(10);
        match backend_sqlx::SqlxStore::open(options).await {
            Ok(_) => panic!("open succeeded on an unusable server"),
            Err(e) => e,
        }
    }
}
