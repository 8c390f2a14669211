//! A password in the URL never shows: not in `Debug` of the store or its options, not
//! in errors from a URL that cannot be reached or names no database, not in health
//! reports or metrics.

use std::time::{Duration, Instant};

use backend_sqlx::SqlxStore;
use server_tests::postgres::{Scratch, open, url_as};
use storage_api::{ErrorKind, PooledStore, PutOptions, StoreError, StoreOptions};

const PASSWORD: &str = "Pw-7f3c9e1a-secret";

fn assert_hidden(what: &str, text: &str) {
    assert!(
        !text.contains(PASSWORD),
        "{what} shows the password: {text}"
    );
}

fn assert_error_hidden(what: &str, e: &StoreError) {
    assert_hidden(what, &e.to_string());
    assert_hidden(what, &format!("{e:?}"));
    let mut source = std::error::Error::source(e);
    while let Some(cause) = source {
        assert_hidden(what, &cause.to_string());
        source = cause.source();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_opened_with_a_password_never_shows_it() {
    let scratch = Scratch::new().await;
    let role = scratch.create_role(PASSWORD).await;
    let mut options = StoreOptions::new(scratch.role_url(&role, PASSWORD));
    options.table = "kv".into();
    assert_hidden("Debug of the options", &format!("{options:?}"));
    let store = open(options).await;
    store.put(b"k", b"v", PutOptions::default()).await.unwrap();

    let shown = format!("{store:?}");
    assert_hidden("Debug of the store", &shown);
    assert!(shown.contains("***"), "{shown}");
    let health = store.health_check().await;
    assert!(health.healthy, "{health:?}");
    assert_hidden("the health report", &format!("{health:?}"));
    assert_hidden("the metrics", &format!("{:?}", store.pool_metrics()));
    assert_hidden("the application name", store.application_name().unwrap());
    // The store really is connected as the role.
    let sessions = scratch.sessions(store.application_name().unwrap()).await;
    assert!(!sessions.is_empty());
    store.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_from_unusable_urls_do_not_show_the_password() {
    let scratch = Scratch::new().await;
    let with_password = url_as(&scratch.base_url, "postgres", PASSWORD);
    let (prefix, _) = with_password
        .rsplit_once('/')
        .expect("a database in the URL");

    let cases = [
        // A database the server does not have: the server refuses at once.
        (
            format!("{prefix}/no_such_database_{}", std::process::id()),
            ErrorKind::Config,
        ),
        // A host that does not resolve.
        (
            format!("postgres://app:{PASSWORD}@no-such-host.invalid:5432/db"),
            ErrorKind::Connection,
        ),
        // Nothing listening: refused, and said so at once.
        (
            format!("postgres://app:{PASSWORD}@127.0.0.1:1/db"),
            ErrorKind::Connection,
        ),
        // TLS verified against a CA file that is not there.
        (
            format!("{with_password}?sslmode=verify-full&sslrootcert=/nonexistent/ca.pem"),
            ErrorKind::Config,
        ),
        // Not a URL sqlx can use.
        (
            format!("postgres://app:{PASSWORD}@127.0.0.1:5432/db?sslmode=sometimes"),
            ErrorKind::Config,
        ),
    ];
    for (url, kind) in cases {
        let mut options = StoreOptions::new(url.clone());
        options.acquire_timeout = Duration::from_millis(800);
        let started = Instant::now();
        let e = SqlxStore::open(options).await.unwrap_err();
        assert_eq!(e.kind(), kind, "{url}: {e:?}");
        assert!(started.elapsed() < Duration::from_secs(10), "{url}");
        assert_error_hidden(&url, &e);
    }
}
