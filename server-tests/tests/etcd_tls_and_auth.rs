//! TLS and user/password authentication against private etcd clusters configured for
//! them: a store with the CA and a client certificate works where members demand one,
//! and fails without it or with the wrong CA; a store authenticates as the URL's user,
//! is confined to that user's permissions, and never shows the password.

use std::time::Duration;

use backend_etcd::EtcdStore;
use etcd_client::Permission;
use server_tests::certs::Certs;
use server_tests::etcd_cluster::{ClusterTls, PrivateCluster};
use storage_api::{ErrorKind, PooledStore, PutOptions, SslMode, StoreOptions};

fn options(url: &str, table: &str) -> StoreOptions {
    let mut options = StoreOptions::new(url);
    options.table = table.into();
    options.acquire_timeout = Duration::from_secs(3);
    options
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_with_a_client_certificate_works_and_wrong_settings_fail() {
    let dir = tempfile::tempdir().unwrap();
    let certs = Certs::generate(dir.path(), "app");
    let cluster = PrivateCluster::start(Some(ClusterTls {
        ca: certs.ca.clone(),
        cert: certs.server_cert.clone(),
        key: certs.server_key.clone(),
        client_cert_auth: true,
    }))
    .await;

    let mut good = options(&cluster.url(), "tlskv");
    good.tls.root_cert = Some(certs.ca.clone());
    good.tls.client_cert = Some(certs.client_cert.clone());
    good.tls.client_key = Some(certs.client_key.clone());
    good.tls.mode = Some(SslMode::VerifyFull);
    let store = EtcdStore::open(good.clone()).await.unwrap();
    let version = store
        .put(b"k", b"over tls", PutOptions::default())
        .await
        .unwrap();
    let entry = store.get(b"k").await.unwrap().unwrap();
    assert_eq!(
        (entry.value.as_slice(), entry.version),
        (&b"over tls"[..], version)
    );
    let health = store.health_check().await;
    assert!(
        health.healthy && health.detail.starts_with("3/3 members answer"),
        "{health:?}"
    );
    store.close().await;

    let mut no_client_cert = good.clone();
    no_client_cert.tls.client_cert = None;
    no_client_cert.tls.client_key = None;
    let mut wrong_ca = good.clone();
    wrong_ca.tls.root_cert = Some(certs.other_ca.clone());
    let mut plain = good.clone();
    plain.tls = Default::default();
    for (what, options) in [
        ("without a client certificate", no_client_cert),
        ("trusting another CA", wrong_ca),
        ("without TLS", plain),
    ] {
        let started = std::time::Instant::now();
        let error = EtcdStore::open(options).await.expect_err(what);
        assert_eq!(error.kind(), ErrorKind::Connection, "{what}: {error}");
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{what} took {:?}",
            started.elapsed()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_authenticates_as_the_url_user_and_never_shows_the_password() {
    let cluster = PrivateCluster::start(None).await;
    let mut admin = cluster.client(0, None).await.expect("a client");
    admin.user_add("root", "rootpw", None).await.unwrap();
    admin.user_grant_role("root", "root").await.unwrap();
    admin.role_add("app").await.unwrap();
    admin
        .role_grant_permission("app", Permission::read_write("authkv/").with_prefix())
        .await
        .unwrap();
    admin.user_add("app", "s3cret pw", None).await.unwrap();
    admin.user_grant_role("app", "app").await.unwrap();
    admin.auth_enable().await.unwrap();

    let hosts = cluster.url().trim_start_matches("etcd://").to_owned();
    let url = format!("etcd://app:s3cret%20pw@{hosts}");
    let store = EtcdStore::open(options(&url, "authkv")).await.unwrap();
    let ttl = PutOptions::default().with_ttl(Duration::from_secs(60));
    store.put(b"k", b"as app", ttl).await.unwrap();
    assert!(
        store
            .delete(b"k", storage_api::Condition::Any)
            .await
            .unwrap()
    );
    store
        .put(b"k", b"again", PutOptions::default())
        .await
        .unwrap();
    assert_eq!(store.get(b"k").await.unwrap().unwrap().value, b"again");
    let health = store.health_check().await;
    assert!(health.healthy, "{health:?}");
    for shown in [format!("{store:?}"), format!("{health:?}")] {
        assert!(!shown.contains("s3cret"), "{shown}");
    }
    store.close().await;

    let elsewhere = EtcdStore::open(options(&url, "otherkv")).await;
    let error = match elsewhere {
        Ok(store) => store
            .put(b"k", b"v", PutOptions::default())
            .await
            .unwrap_err(),
        Err(error) => error,
    };
    assert_eq!(error.kind(), ErrorKind::Config, "{error}");
    assert!(error.message().contains("permission"), "{error}");

    let wrong = format!("etcd://app:wrong-s3cret@{hosts}");
    let error = EtcdStore::open(options(&wrong, "authkv"))
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Config, "{error}");
    let shown = format!("{error} {error:?}");
    assert!(!shown.contains("wrong-s3cret"), "{shown}");

    let anonymous = EtcdStore::open(options(&cluster.url(), "authkv")).await;
    let error = match anonymous {
        Ok(store) => store
            .put(b"k", b"v", PutOptions::default())
            .await
            .unwrap_err(),
        Err(error) => error,
    };
    assert!(
        matches!(error.kind(), ErrorKind::Config | ErrorKind::Connection),
        "{error}"
    );
}
