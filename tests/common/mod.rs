//! Helpers of the HTTP tests: a store to serve (a real backend when one is compiled in,
//! otherwise a pooled fake), a server running on 127.0.0.1:0, and a small HTTP client
//! on hyper's own client connection.
#![allow(dead_code, missing_docs, unreachable_pub)]

#[cfg(not(any(feature = "sqlx", feature = "deadpool")))]
pub mod fake;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use http_body_util::{BodyExt, Empty};
use hyper::body::Bytes;
use hyper::header::HOST;
use hyper::{HeaderMap, Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use pooledstore::observe::{ExportOptions, Instrumented};
use pooledstore::serve::{Server, ServerOptions, ShutdownReport};
use tokio::net::TcpStream;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// A store and whatever must live as long as it (its directory).
pub struct TestStore {
    pub store: Arc<Instrumented>,
    _dir: tempfile::TempDir,
}

/// A fresh store with `pool_size` connections and a 1 s acquire timeout.
pub async fn open_store(pool_size: u32) -> TestStore {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = open_in(&dir, pool_size).await;
    TestStore { store, _dir: dir }
}

/// The backend the tests serve: sqlx when compiled in, else deadpool, else a fake.
pub const BACKEND: &str = if cfg!(feature = "sqlx") {
    "sqlx"
} else if cfg!(feature = "deadpool") {
    "deadpool"
} else {
    "fake"
};

#[cfg(any(feature = "sqlx", feature = "deadpool"))]
async fn open_in(dir: &tempfile::TempDir, pool_size: u32) -> Arc<Instrumented> {
    let config = pooledstore::StorageConfig {
        backend: BACKEND.into(),
        url: format!("sqlite://{}", dir.path().join("serve.db").display()),
        db_pool_size: pool_size,
        db_connection_timeout_secs: 1,
        db_close_grace_secs: 5,
        ..pooledstore::StorageConfig::default()
    };
    pooledstore::open_instrumented(&config)
        .await
        .expect("open the store")
}

#[cfg(not(any(feature = "sqlx", feature = "deadpool")))]
async fn open_in(_dir: &tempfile::TempDir, pool_size: u32) -> Arc<Instrumented> {
    let fake = fake::FakePool::new(pool_size, Duration::from_secs(1));
    Arc::new(Instrumented::new(Arc::new(fake)))
}

/// Test server settings: a free loopback port, no background validation, a 500 ms
/// readiness bound, no shutdown delay, 5 s grace.
pub fn options() -> ServerOptions {
    ServerOptions {
        listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        validate_interval: None,
        ready_timeout: Duration::from_millis(500),
        shutdown_delay: Duration::ZERO,
        shutdown_grace: Duration::from_secs(5),
    }
}

/// A server running in a task until `stop` is called.
pub struct Running {
    pub addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<ShutdownReport>,
}

impl Running {
    /// Sends the shutdown signal without waiting.
    pub fn signal(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }

    /// Signals shutdown and waits (at most 30 s) for the server to finish.
    pub async fn stop(mut self) -> ShutdownReport {
        self.signal();
        tokio::time::timeout(Duration::from_secs(30), self.task)
            .await
            .expect("server stops in time")
            .expect("server task")
    }
}

pub async fn start(store: &Arc<Instrumented>, options: ServerOptions) -> Running {
    start_with(store, &ExportOptions::default(), options).await
}

pub async fn start_with(
    store: &Arc<Instrumented>,
    export: &ExportOptions,
    options: ServerOptions,
) -> Running {
    let server = Server::bind(Arc::clone(store), export, options)
        .await
        .expect("bind");
    let addr = server.local_addr();
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(server.run(async {
        let _ = stopped.await;
    }));
    Running {
        addr,
        stop: Some(stop),
        task,
    }
}

/// A response, body read in full.
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: String,
}

impl Reply {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("{e}: {}", self.body))
    }

    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }
}

pub async fn get(addr: SocketAddr, path: &str) -> Reply {
    request(addr, Method::GET, path).await
}

/// One request on a fresh connection, bounded at 30 s.
pub async fn request(addr: SocketAddr, method: Method, path: &str) -> Reply {
    tokio::time::timeout(Duration::from_secs(30), try_request(addr, method, path))
        .await
        .expect("reply within 30 s")
        .expect("request succeeds")
}

pub async fn try_request(
    addr: SocketAddr,
    method: Method,
    path: &str,
) -> Result<Reply, Box<dyn std::error::Error + Send + Sync>> {
    let stream = TcpStream::connect(addr).await?;
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(connection);
    let request = Request::builder()
        .method(method)
        .uri(path)
        .header(HOST, addr.to_string())
        .body(Empty::<Bytes>::new())?;
    let response = sender.send_request(request).await?;
    let status = response.status();
    let headers = response.headers().clone();
    let body = response.into_body().collect().await?.to_bytes();
    Ok(Reply {
        status,
        headers,
        body: String::from_utf8(body.to_vec())?,
    })
}

/// Parses a Prometheus text body.
pub fn parse_metrics(body: &str) -> prometheus_parse::Scrape {
    let lines = body.lines().map(|l| Ok(l.to_owned()));
    prometheus_parse::Scrape::parse(lines).expect("valid Prometheus text")
}

/// The value of the one sample of `name` carrying `labels` (0 when there is none).
pub fn sample(scrape: &prometheus_parse::Scrape, name: &str, labels: &[(&str, &str)]) -> f64 {
    let found: Vec<_> = scrape
        .samples
        .iter()
        .filter(|s| s.metric == name && labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
        .collect();
    assert!(found.len() <= 1, "{name} {labels:?}: {found:?}");
    match found.first().map(|s| &s.value) {
        None => 0.0,
        Some(
            prometheus_parse::Value::Counter(v)
            | prometheus_parse::Value::Gauge(v)
            | prometheus_parse::Value::Untyped(v),
        ) => *v,
        Some(prometheus_parse::Value::Histogram(buckets)) => {
            buckets.last().map(|b| b.count).unwrap_or(0.0)
        }
        Some(other) => panic!("{name}: unexpected {other:?}"),
    }
}

/// Runs every kind of operation once or more against `store`, failures included (a
/// failed condition, an invalid key and, on a pool of one connection, an acquire
/// timeout), so its exposition shows every family with error series beside the ok ones.
/// Returns whether an acquire timeout happened (only on a pool of one).
pub async fn exercise(store: &dyn pooledstore::PooledStore) -> bool {
    use pooledstore::{Condition, ErrorKind, PutOptions, ScanOptions, TxOptions, WriteOp};
    for i in 0..5 {
        let key = format!("k{i}");
        store
            .put(key.as_bytes(), b"v", PutOptions::default())
            .await
            .expect("put");
        store.get(key.as_bytes()).await.expect("get");
    }
    let cas = store.put(b"k0", b"v", PutOptions::if_absent()).await;
    assert_eq!(cas.unwrap_err().kind(), ErrorKind::ConditionFailed);
    let empty = store.get(b"").await;
    assert_eq!(empty.unwrap_err().kind(), ErrorKind::InvalidInput);
    store.scan(ScanOptions::prefix("k")).await.expect("scan");
    let ops = vec![
        WriteOp::Put {
            key: b"b1".to_vec(),
            value: b"v".to_vec(),
            options: PutOptions::default(),
        },
        WriteOp::Delete {
            key: b"k4".to_vec(),
            condition: Condition::Any,
        },
    ];
    store.batch(ops).await.expect("batch");
    store.delete(b"k3", Condition::Any).await.expect("delete");
    store.purge_expired().await.expect("purge_expired");
    let mut tx = store.begin(TxOptions::default()).await.expect("begin");
    tx.get(b"k1").await.expect("tx get");
    tx.put(b"t", b"v", PutOptions::default())
        .await
        .expect("tx put");
    tx.scan(ScanOptions::prefix("k")).await.expect("tx scan");
    tx.delete(b"k2", Condition::Any).await.expect("tx delete");
    tx.commit().await.expect("commit");
    let tx = store.begin(TxOptions::default()).await.expect("begin");
    tx.rollback().await.expect("rollback");
    store.validate_connections().await.expect("validate");
    store.health_check().await;

    if store.pool_metrics().max != 1 {
        return false;
    }
    // The only connection is held by a transaction, so the next begin waits out the
    // acquire timeout.
    let held = store.begin(TxOptions::default()).await.expect("begin");
    let waiter = store.begin(TxOptions::default()).await;
    let timed_out = matches!(&waiter, Err(e) if e.kind() == ErrorKind::Timeout);
    drop(waiter);
    held.rollback().await.expect("rollback");
    timed_out
}
