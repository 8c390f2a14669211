//! TLS against a real server: a private PostgreSQL that accepts only TLS (`hostssl`
//! in `pg_hba.conf`), with certificates generated for the run (see
//! `server_tests::certs`), on a spare loopback port, listening on 127.0.0.1 and
//! 127.0.0.2 (which its certificate does not name). The user `certuser` must
//! authenticate with a client certificate (`cert`).
//!
//! The tests of this file share one server, started by the first and stopped when the
//! last one ends.

use std::path::Path;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use backend_sqlx::SqlxStore;
use server_tests::certs::Certs;
use server_tests::postgres::Scratch;
use server_tests::private_pg::{PgConfig, PrivatePg};
use storage_api::{ErrorKind, PooledStore, PutOptions, SslMode, StoreError, StoreOptions};

/// The user that must present a client certificate.
const CERT_USER: &str = "certuser";
/// The database it owns (tables made by the superuser elsewhere stay out of its way).
const CERT_DB: &str = "certdb";

/// A TLS-only private server and the run's certificates.
struct TlsServer {
    server: PrivatePg,
    certs: Certs,
}

impl TlsServer {
    fn start() -> Self {
        let config_dir = tempfile::tempdir().expect("a directory for certificates");
        // Generated in a directory of their own, then copied where the server user can
        // read them.
        let generated = Certs::generate(config_dir.path(), CERT_USER);
        let base = PgConfig::default();
        let mut server = PrivatePg::start(&base);
        let certs = copy_certs(&generated, server.dir());
        server.hand_over(server.dir());
        server.stop("fast");
        server = reconfigure(server, &certs);
        server.psql("postgres", &format!("CREATE ROLE {CERT_USER} LOGIN"));
        server.psql(
            "postgres",
            &format!("CREATE DATABASE {CERT_DB} OWNER {CERT_USER}"),
        );
        Self { server, certs }
    }

    /// `postgres://USER@HOST:PORT/DB?QUERY`, where DB is the user's.
    fn url(&self, user: &str, host: &str, query: &str) -> String {
        let database = if user == CERT_USER {
            CERT_DB
        } else {
            "postgres"
        };
        let url = self.server.url_for(user, host, database);
        if query.is_empty() {
            url
        } else {
            format!("{url}?{query}")
        }
    }
}

/// Copies the certificates into `dir`, returning their new paths.
fn copy_certs(certs: &Certs, dir: &Path) -> Certs {
    let copy = |from: &Path| {
        let to = dir.join(from.file_name().expect("a file name"));
        std::fs::copy(from, &to).expect("copy a certificate");
        to
    };
    Certs {
        ca: copy(&certs.ca),
        other_ca: copy(&certs.other_ca),
        server_cert: copy(&certs.server_cert),
        server_key: copy(&certs.server_key),
        client_cert: copy(&certs.client_cert),
        client_key: copy(&certs.client_key),
    }
}

/// Rewrites the stopped server's configuration for TLS only and starts it again.
fn reconfigure(server: PrivatePg, certs: &Certs) -> PrivatePg {
    let data = server.dir().join("data");
    let mut conf = std::fs::read_to_string(data.join("postgresql.conf")).unwrap();
    conf.push_str(&format!(
        "listen_addresses = '127.0.0.1,127.0.0.2'\nssl = on\nssl_cert_file = '{}'\n\
         ssl_key_file = '{}'\nssl_ca_file = '{}'\n",
        certs.server_cert.display(),
        certs.server_key.display(),
        certs.ca.display()
    ));
    std::fs::write(data.join("postgresql.conf"), conf).unwrap();
    let hba = format!(
        "local all all trust\nhostssl all {CERT_USER} 127.0.0.1/32 cert\n\
         hostssl all all 127.0.0.1/32 trust\nhostssl all all 127.0.0.2/32 trust\n"
    );
    std::fs::write(data.join("pg_hba.conf"), hba).unwrap();
    server.hand_over(server.dir());
    server.start_again();
    server
}

/// The server the tests of this file share: started by the first test that asks,
/// stopped when no test holds it any more.
fn shared() -> Arc<TlsServer> {
    static SHARED: Mutex<Weak<TlsServer>> = Mutex::new(Weak::new());
    let mut slot = SHARED.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(server) = slot.upgrade() {
        return server;
    }
    let server = Arc::new(TlsServer::start());
    *slot = Arc::downgrade(&server);
    server
}

fn options(url: String) -> StoreOptions {
    let mut options = StoreOptions::new(url);
    options.table = format!("tls_kv_{}", std::process::id());
    options.acquire_timeout = Duration::from_secs(10);
    options.max_connections = 2;
    options
}

async fn open(options: StoreOptions) -> SqlxStore {
    SqlxStore::open(options)
        .await
        .unwrap_or_else(|e| panic!("open failed: {e}"))
}

async fn open_error(options: StoreOptions) -> StoreError {
    match tokio::time::timeout(Duration::from_secs(15), SqlxStore::open(options)).await {
        Ok(Ok(_)) => panic!("the store opened"),
        Ok(Err(e)) => e,
        Err(_) => panic!("open hung"),
    }
}

/// Writes and reads back a key, and returns the health detail.
async fn round_trip(store: &SqlxStore) -> String {
    let version = store.put(b"k", b"v", PutOptions::default()).await.unwrap();
    assert_eq!(store.get(b"k").await.unwrap().unwrap().version, version);
    let health = store.health_check().await;
    assert!(health.healthy, "{health:?}");
    store.close().await;
    health.detail
}

#[tokio::test]
async fn sslmode_require_connects_encrypted_and_health_says_so() {
    let tls = shared();
    let store = open(options(tls.url("postgres", "127.0.0.1", "sslmode=require"))).await;
    let detail = round_trip(&store).await;
    assert!(detail.contains("session encrypted (TLS)"), "{detail}");
}

#[tokio::test]
async fn health_says_when_a_session_is_not_encrypted() {
    let scratch = Scratch::new().await;
    let separator = if scratch.url().contains('?') {
        '&'
    } else {
        '?'
    };
    let mut options = scratch.options("plain_kv");
    options.url = format!("{}{separator}sslmode=disable", scratch.url());
    let store = open(options).await;
    let detail = round_trip(&store).await;
    assert!(detail.contains("session not encrypted"), "{detail}");
}

#[tokio::test]
async fn verify_full_with_the_right_ca_works_from_the_config_keys() {
    let tls = shared();
    for host in ["127.0.0.1", "localhost"] {
        let mut options = options(tls.url("postgres", host, ""));
        options.tls.mode = Some(SslMode::VerifyFull);
        options.tls.root_cert = Some(tls.certs.ca.clone());
        let detail = round_trip(&open(options).await).await;
        assert!(
            detail.contains("session encrypted (TLS)"),
            "{host}: {detail}"
        );
    }
    let from_url = format!("sslmode=verify-full&sslrootcert={}", tls.certs.ca.display());
    round_trip(&open(options(tls.url("postgres", "127.0.0.1", &from_url))).await).await;
}

#[tokio::test]
async fn a_wrong_ca_fails_at_open_saying_the_ca_is_not_trusted() {
    let tls = shared();
    for mode in ["verify-ca", "verify-full"] {
        let query = format!(
            "sslmode={mode}&sslrootcert={}",
            tls.certs.other_ca.display()
        );
        let e = open_error(options(tls.url("postgres", "127.0.0.1", &query))).await;
        assert_eq!(e.kind(), ErrorKind::Config, "{mode}: {e}");
        assert!(
            e.message().contains("not signed by a trusted CA"),
            "{mode}: {e}"
        );
        assert!(e.message().contains("127.0.0.1"), "{mode}: {e}");
    }
    // Without sslrootcert, only the bundled public roots are trusted.
    let e = open_error(options(tls.url(
        "postgres",
        "127.0.0.1",
        "sslmode=verify-full",
    )))
    .await;
    assert!(e.message().contains("not signed by a trusted CA"), "{e}");
}

#[tokio::test]
async fn a_host_name_mismatch_fails_at_open_saying_so_and_verify_ca_does_not_check_it() {
    let tls = shared();
    let ca = tls.certs.ca.display().to_string();
    let full = format!("sslmode=verify-full&sslrootcert={ca}");
    let e = open_error(options(tls.url("postgres", "127.0.0.2", &full))).await;
    assert_eq!(e.kind(), ErrorKind::Config, "{e}");
    assert!(e.message().contains("does not match the host name"), "{e}");
    assert!(e.message().contains("127.0.0.2"), "{e}");
    assert!(!e.message().contains("not signed"), "{e}");
    let ca_only = format!("sslmode=verify-ca&sslrootcert={ca}");
    round_trip(&open(options(tls.url("postgres", "127.0.0.2", &ca_only))).await).await;
}

#[tokio::test]
async fn sslmode_disable_against_a_tls_only_server_fails_clearly() {
    let tls = shared();
    let e = open_error(options(tls.url("postgres", "127.0.0.1", "sslmode=disable"))).await;
    assert_eq!(e.kind(), ErrorKind::Config, "{e}");
    assert!(e.message().contains("no encryption"), "{e}");
    assert!(
        e.message().contains("not encrypted (sslmode=disable)"),
        "{e}"
    );
    assert!(e.message().contains("sslmode=require"), "{e}");
}

#[tokio::test]
async fn client_certificate_authentication_works_and_is_required() {
    let tls = shared();
    let mut options_with_cert = options(tls.url(CERT_USER, "127.0.0.1", ""));
    options_with_cert.tls.mode = Some(SslMode::VerifyFull);
    options_with_cert.tls.root_cert = Some(tls.certs.ca.clone());
    options_with_cert.tls.client_cert = Some(tls.certs.client_cert.clone());
    options_with_cert.tls.client_key = Some(tls.certs.client_key.clone());
    let store = open(options_with_cert).await;
    round_trip(&store).await;

    let query = format!(
        "sslmode=require&sslcert={}&sslkey={}",
        tls.certs.client_cert.display(),
        tls.certs.client_key.display()
    );
    round_trip(&open(options(tls.url(CERT_USER, "127.0.0.1", &query))).await).await;

    let e = open_error(options(tls.url(CERT_USER, "127.0.0.1", "sslmode=require"))).await;
    assert_eq!(e.kind(), ErrorKind::Config, "{e}");
    assert!(e.message().contains("certificate"), "{e}");
}

#[tokio::test]
async fn no_key_material_or_password_reaches_errors_debug_or_health() {
    let tls = shared();
    let key_text = std::fs::read_to_string(&tls.certs.client_key).unwrap();
    let key_body: Vec<&str> = key_text
        .lines()
        .filter(|line| !line.starts_with("-----"))
        .collect();
    assert!(!key_body.is_empty());
    let secret = "pw-Xq7-never-shown";
    let url = format!(
        "postgres://{CERT_USER}:{secret}@127.0.0.1:{}/{CERT_DB}",
        tls.server.port()
    );
    let mut good = options(url.clone());
    good.tls.mode = Some(SslMode::Require);
    good.tls.client_cert = Some(tls.certs.client_cert.clone());
    good.tls.client_key = Some(tls.certs.client_key.clone());
    let store = open(good.clone()).await;
    let health = store.health_check().await;
    let mut shown = format!("{store:?} {good:?} {health:?}");
    store.close().await;

    let mut wrong_ca = good.clone();
    wrong_ca.tls.mode = Some(SslMode::VerifyFull);
    wrong_ca.tls.root_cert = Some(tls.certs.other_ca.clone());
    let e = open_error(wrong_ca).await;
    shown.push_str(&format!("{e} {e:?}"));
    let mut key_as_cert = good.clone();
    key_as_cert.tls.client_cert = Some(tls.certs.client_key.clone());
    let e = open_error(key_as_cert).await;
    assert_eq!(e.kind(), ErrorKind::Config, "{e}");
    assert!(e.message().contains("db_ssl_cert"), "{e}");
    shown.push_str(&format!("{e} {e:?}"));
    let mut no_cert = good;
    no_cert.tls = Default::default();
    let e = open_error(no_cert).await;
    shown.push_str(&format!("{e} {e:?}"));

    assert!(!shown.contains(secret), "the password leaked: {shown}");
    for line in key_body {
        assert!(!shown.contains(line), "key material leaked: {shown}");
    }
}
