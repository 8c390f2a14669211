//! TLS to MySQL/MariaDB, on a private MariaDB serving TLS with this run's certificates
//! (a user there requires TLS): a store verifying the server against the right CA opens
//! and works; one trusting another CA, or connecting without TLS, is refused at open
//! with an error that names the cause and never the password.

use std::time::Duration;

use backend_sqlx::SqlxStore;
use server_tests::certs::Certs;
use server_tests::private_mysql::PrivateMariadb;
use storage_api::{ErrorKind, PooledStore, PutOptions, StoreOptions};

const PASSWORD: &str = "tls-secret-pw";

/// A private server with TLS and a user `tls_user` that must use it, owning `app`.
fn server_with_tls_user(certs: &Certs) -> PrivateMariadb {
    let server = PrivateMariadb::start(Some(certs));
    server.sql(&format!(
        "CREATE DATABASE app; \
         CREATE USER 'tls_user'@'%' IDENTIFIED BY '{PASSWORD}' REQUIRE SSL; \
         GRANT ALL ON app.* TO 'tls_user'@'%';"
    ));
    server
}

fn options(url: String) -> StoreOptions {
    let mut options = StoreOptions::new(url);
    options.acquire_timeout = Duration::from_secs(5);
    options
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_verifying_the_servers_certificate_opens_and_works() {
    let dir = tempfile::tempdir().unwrap();
    let certs = Certs::generate(dir.path(), "tls_user");
    let server = server_with_tls_user(&certs);
    let parameters = format!("ssl-mode=verify_identity&ssl-ca={}", certs.ca.display());
    let url = server.url(&format!("tls_user:{PASSWORD}"), "app", &parameters);
    let store = match SqlxStore::open(options(url)).await {
        Ok(store) => store,
        Err(e) => panic!("open over TLS failed: {e:?}\n{}", server.log_text()),
    };
    store
        .put(b"k", b"over tls", PutOptions::default())
        .await
        .unwrap();
    assert_eq!(store.get(b"k").await.unwrap().unwrap().value, b"over tls");
    let health = store.health_check().await;
    assert!(health.healthy, "{health:?}");
    assert!(!format!("{health:?}").contains(PASSWORD), "{health:?}");
    assert!(!format!("{store:?}").contains(PASSWORD));
    store.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_signed_by_another_ca_is_refused_at_open() {
    let dir = tempfile::tempdir().unwrap();
    let certs = Certs::generate(dir.path(), "tls_user");
    let server = server_with_tls_user(&certs);
    let parameters = format!("ssl-mode=verify_ca&ssl-ca={}", certs.other_ca.display());
    let url = server.url(&format!("tls_user:{PASSWORD}"), "app", &parameters);
    let e = SqlxStore::open(options(url)).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Connection, "{e:?}");
    let text = format!("{e} {e:?}");
    assert!(
        text.to_lowercase().contains("certificate") || text.contains("TLS"),
        "the error does not say TLS failed: {text}"
    );
    assert!(!text.contains(PASSWORD), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_that_requires_tls_is_refused_without_it() {
    let dir = tempfile::tempdir().unwrap();
    let certs = Certs::generate(dir.path(), "tls_user");
    let server = server_with_tls_user(&certs);
    let url = server.url(&format!("tls_user:{PASSWORD}"), "app", "ssl-mode=disabled");
    let e = SqlxStore::open(options(url)).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Config, "{e:?}");
    assert!(e.message().contains("1045"), "{e}");
    assert!(!format!("{e} {e:?}").contains(PASSWORD), "{e:?}");
}
