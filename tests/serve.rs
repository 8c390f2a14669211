//! The HTTP server against a real listening socket: each endpoint, the 503 paths,
//! metrics that reconcile with the work done, 404/405, odd requests, and graceful
//! shutdown with a request in flight.
#![cfg(feature = "serve")]

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{get, open_store, options, parse_metrics, request, sample, start, start_with};
use hyper::{Method, StatusCode};
use pooledstore::observe::ExportOptions;
use pooledstore::{Condition, ErrorKind, HealthStatus, PooledStore, PutOptions, TxOptions};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

#[tokio::test]
async fn health_ready_and_metrics_answer() {
    let t = open_store(2).await;
    let server = start(&t.store, options()).await;

    let health = get(server.addr, "/health").await;
    assert_eq!(health.status, StatusCode::OK, "{}", health.body);
    assert_eq!(health.header("content-type"), "application/json");
    let body = health.json();
    assert_eq!(body["status"], "ok");
    assert_eq!(body["backend"], t.store.backend_name());
    assert_eq!(body["engine"], t.store.engine_name());
    assert_eq!(body["pool"]["max"], 2);

    let ready = get(server.addr, "/ready").await;
    assert_eq!(ready.status, StatusCode::OK, "{}", ready.body);
    let body = ready.json();
    assert_eq!(body["ready"], true);
    assert_eq!(body["status"], "healthy");
    // The ready check is remembered and shown by /health.
    let health = get(server.addr, "/health?verbose=1").await.json();
    assert_eq!(health["last_check"]["status"], "healthy", "{health}");

    let metrics = get(server.addr, "/metrics").await;
    assert_eq!(metrics.status, StatusCode::OK);
    assert_eq!(
        metrics.header("content-type"),
        "text/plain; version=0.0.4; charset=utf-8"
    );
    let scrape = parse_metrics(&metrics.body);
    assert_eq!(sample(&scrape, "db_client_connection_max", &[]), 2.0);
    for family in [
        "db_client_connections",
        "db_client_connection_max",
        "db_client_connection_idle_min",
        "db_client_connection_pending_requests",
        "db_client_connection_timeouts_total",
        "db_client_connection_wait_time_seconds",
        "db_client_connection_closed_total",
        "pooledstore_operations_total",
        "pooledstore_sqlite_busy_total",
    ] {
        assert!(
            scrape.samples.iter().any(|s| s.metric == family),
            "{family} missing from\n{}",
            metrics.body
        );
    }
    let head = request(server.addr, Method::HEAD, "/metrics").await;
    assert_eq!(head.status, StatusCode::OK);
    assert!(head.body.is_empty());

    let report = server.stop().await;
    assert!(report.drained);
}

#[tokio::test]
async fn operation_metrics_reconcile_with_the_work_done() {
    let t = open_store(2).await;
    let store = &t.store;
    const PUTS: usize = 7;
    for i in 0..PUTS {
        store
            .put(format!("k{i}").as_bytes(), b"v", PutOptions::default())
            .await
            .unwrap();
    }
    for i in 0..3 {
        assert!(
            store
                .get(format!("k{i}").as_bytes())
                .await
                .unwrap()
                .is_some()
        );
    }
    let cas = store.put(b"k0", b"v", PutOptions::if_absent()).await;
    assert_eq!(cas.unwrap_err().kind(), ErrorKind::ConditionFailed);
    assert!(store.delete(b"k1", Condition::Any).await.unwrap());
    assert!(!store.delete(b"nope", Condition::Any).await.unwrap());
    let mut tx = store.begin(TxOptions::default()).await.unwrap();
    tx.put(b"tx", b"v", PutOptions::default()).await.unwrap();
    tx.commit().await.unwrap();

    let export = ExportOptions {
        namespace: "app".into(),
        pool: "main".into(),
    };
    let server = start_with(store, &export, options()).await;
    let scrape = parse_metrics(&get(server.addr, "/metrics").await.body);
    let ops = |op: &str, outcome: &str| {
        sample(
            &scrape,
            "app_pooledstore_operations_total",
            &[("op", op), ("outcome", outcome)],
        )
    };
    assert_eq!(ops("put", "ok"), PUTS as f64);
    assert_eq!(ops("put", "condition_failed"), 1.0);
    assert_eq!(ops("get", "ok"), 3.0);
    assert_eq!(ops("delete", "ok"), 2.0);
    assert_eq!(ops("begin", "ok"), 1.0);
    assert_eq!(ops("tx_put", "ok"), 1.0);
    assert_eq!(ops("commit", "ok"), 1.0);
    assert_eq!(ops("scan", "ok"), 0.0);
    let timed = |op: &str, outcome: &str| {
        sample(
            &scrape,
            "app_pooledstore_operation_duration_seconds_count",
            &[("op", op), ("outcome", outcome)],
        )
    };
    assert_eq!(timed("put", "ok"), PUTS as f64);
    assert_eq!(timed("put", "condition_failed"), 1.0);
    assert_eq!(timed("scan", "ok"), 0.0, "no histogram for an op never run");
    let put_sum = sample(
        &scrape,
        "app_pooledstore_operation_duration_seconds_sum",
        &[("op", "put"), ("outcome", "ok")],
    );
    assert!(put_sum > 0.0 && put_sum < 60.0, "{put_sum}");
    for s in &scrape.samples {
        assert_eq!(s.labels.get("pool"), Some("main"), "{s:?}");
        assert_eq!(s.labels.get("backend"), Some(store.backend_name()), "{s:?}");
        assert_eq!(s.labels.get("engine"), Some(store.engine_name()), "{s:?}");
    }
    // Every operation acquired a connection; the pool's own counters agree.
    let acquired = sample(&scrape, "app_pooledstore_connections_acquired_total", &[]);
    assert!(acquired >= (PUTS + 3 + 1 + 2 + 1) as f64, "{acquired}");
    let waits = sample(&scrape, "app_db_client_connection_wait_time_seconds", &[]);
    assert!(
        waits >= acquired,
        "every acquisition is observed: {waits} < {acquired}"
    );
    server.stop().await;
}

#[tokio::test]
async fn ready_is_503_while_the_pool_is_saturated() {
    let t = open_store(1).await;
    let server = start(&t.store, options()).await;
    let tx = t.store.begin(TxOptions::default()).await.unwrap();

    let started = Instant::now();
    let ready = get(server.addr, "/ready").await;
    let took = started.elapsed();
    assert_eq!(
        ready.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        ready.body
    );
    let body = ready.json();
    assert_eq!(body["ready"], false);
    assert_eq!(body["reason"], "saturated", "{body}");
    assert!(took >= Duration::from_millis(400), "bounded wait: {took:?}");
    assert!(took < Duration::from_secs(10), "bounded wait: {took:?}");

    // Liveness does not wait for a connection.
    let started = Instant::now();
    let health = get(server.addr, "/health").await;
    assert_eq!(health.status, StatusCode::OK);
    assert!(started.elapsed() < Duration::from_secs(2));
    let body = health.json();
    assert_eq!(body["pool"]["in_use"], 1);
    assert_eq!(body["last_check"]["status"], "saturated", "{body}");

    drop(tx);
    let ready = wait_for(server.addr, "/ready", StatusCode::OK).await;
    assert_eq!(ready.json()["ready"], true);
    server.stop().await;
}

#[tokio::test]
async fn ready_and_health_are_503_once_the_store_is_closed() {
    let t = open_store(2).await;
    let server = start(&t.store, options()).await;
    assert_eq!(get(server.addr, "/ready").await.status, StatusCode::OK);
    t.store.close().await;

    let ready = get(server.addr, "/ready").await;
    assert_eq!(ready.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(ready.json()["reason"], "closed");
    let health = get(server.addr, "/health").await;
    assert_eq!(health.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(health.json()["status"], "closed");
    server.stop().await;
}

#[tokio::test]
async fn unknown_paths_are_404_and_other_methods_405() {
    let t = open_store(1).await;
    let server = start(&t.store, options()).await;
    for path in ["/", "/healthz", "/health/", "/metrics/x", "/%ff"] {
        let reply = get(server.addr, path).await;
        assert_eq!(reply.status, StatusCode::NOT_FOUND, "{path}");
    }
    for method in [Method::POST, Method::PUT, Method::DELETE, Method::OPTIONS] {
        let reply = request(server.addr, method.clone(), "/health").await;
        assert_eq!(reply.status, StatusCode::METHOD_NOT_ALLOWED, "{method}");
        assert_eq!(reply.header("allow"), "GET, HEAD");
    }
    assert_eq!(
        request(server.addr, Method::POST, "/nope").await.status,
        StatusCode::NOT_FOUND
    );
    server.stop().await;
}

#[tokio::test]
async fn odd_requests_do_not_hurt_the_server() {
    let t = open_store(1).await;
    let server = start(&t.store, options()).await;
    let huge_header = format!(
        "GET /health HTTP/1.1\r\nX-Big: {}\r\n\r\n",
        "a".repeat(64 * 1024)
    );
    let oddities: [&[u8]; 6] = [
        b"\x00\x01\x02garbage\r\n\r\n",
        b"GET /health HTTP/9.9\r\n\r\n",
        b"GET\r\n\r\n",
        b"POST /metrics HTTP/1.1\r\nContent-Length: 99999999\r\n\r\nabc",
        b"GET /ready HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        huge_header.as_bytes(),
    ];
    for raw in oddities {
        let answer = raw_exchange(server.addr, raw).await;
        assert!(
            answer.is_empty()
                || answer.starts_with("HTTP/1.1 4")
                || answer.starts_with("HTTP/1.1 2"),
            "{answer}"
        );
    }
    // A client that connects and says nothing, and one that hangs up mid-request.
    let _silent = TcpStream::connect(server.addr).await.unwrap();
    let mut half = TcpStream::connect(server.addr).await.unwrap();
    half.write_all(b"GET /hea").await.unwrap();
    drop(half);

    assert_eq!(get(server.addr, "/health").await.status, StatusCode::OK);
    assert_eq!(get(server.addr, "/metrics").await.status, StatusCode::OK);
    // The silent connection does not hold shutdown up.
    let started = Instant::now();
    let report = server.stop().await;
    assert!(report.drained);
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn shutdown_lets_the_request_in_flight_finish_then_closes_the_store() {
    let t = open_store(1).await;
    let mut opts = options();
    opts.ready_timeout = Duration::from_secs(10);
    let mut server = start(&t.store, opts).await;
    let addr = server.addr;

    // Hold the only connection so /ready has to wait for it.
    let tx = t.store.begin(TxOptions::default()).await.unwrap();
    let in_flight = tokio::spawn(async move { get(addr, "/ready").await });
    wait_until(|| t.store.pool_metrics().pending >= 1).await;

    server.signal();
    // The listener closes promptly; the request in flight is still waiting.
    wait_until_refused(addr).await;
    assert!(!in_flight.is_finished());
    assert!(
        !t.store.is_closed(),
        "the store stays open while requests are in flight"
    );

    drop(tx);
    let reply = in_flight.await.unwrap();
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    let report = server.stop().await;
    assert!(report.drained);
    assert!(!report.store.already_closed);
    assert_eq!(t.store.health_check().await.status, HealthStatus::Closed);
    let after = t.store.get(b"k").await.unwrap_err();
    assert_eq!(after.kind(), ErrorKind::Closed);
}

#[tokio::test]
async fn readiness_turns_503_before_the_listener_closes() {
    let t = open_store(1).await;
    let mut opts = options();
    opts.shutdown_delay = Duration::from_millis(1500);
    let mut server = start(&t.store, opts).await;
    assert_eq!(get(server.addr, "/ready").await.status, StatusCode::OK);

    let signalled = Instant::now();
    server.signal();
    let ready = wait_for(server.addr, "/ready", StatusCode::SERVICE_UNAVAILABLE).await;
    assert_eq!(ready.json()["reason"], "shutting_down");
    let health = get(server.addr, "/health").await;
    assert_eq!(health.status, StatusCode::OK, "still alive while draining");
    assert_eq!(health.json()["status"], "shutting_down");
    assert!(
        signalled.elapsed() < Duration::from_millis(1500),
        "observed within the delay"
    );

    let addr = server.addr;
    let report = server.stop().await;
    assert!(signalled.elapsed() >= Duration::from_millis(1400));
    assert!(report.drained);
    assert!(TcpStream::connect(addr).await.is_err(), "listener closed");
    assert!(t.store.is_closed());
}

#[tokio::test]
async fn background_validation_runs_and_is_reported() {
    let t = open_store(2).await;
    // Open a connection so there is something idle to validate.
    t.store
        .put(b"k", b"v", PutOptions::default())
        .await
        .unwrap();
    let mut opts = options();
    opts.validate_interval = Some(Duration::from_millis(100));
    let server = start(&t.store, opts).await;

    let deadline = Instant::now() + Duration::from_secs(10);
    let health = loop {
        let health = get(server.addr, "/health").await.json();
        if !health["last_validation"].is_null() || Instant::now() > deadline {
            break health;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let validation = &health["last_validation"];
    assert_eq!(validation["passed"], true, "{health}");
    assert_eq!(validation["invalid"], 0, "{health}");

    let scrape = parse_metrics(&get(server.addr, "/metrics").await.body);
    let labels = [("op", "validate_connections"), ("outcome", "ok")];
    assert!(sample(&scrape, "pooledstore_operations_total", &labels) >= 1.0);
    server.stop().await;
}

#[tokio::test]
async fn bind_failure_names_listen() {
    let t = open_store(1).await;
    let first = start(&t.store, options()).await;
    let mut opts = options();
    opts.listen = first.addr;
    let e = pooledstore::serve::Server::bind(Arc::clone(&t.store), &ExportOptions::default(), opts)
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Config);
    assert!(e.message().contains("listen"), "{e}");
    first.stop().await;
}

/// Writes `raw`, then reads whatever comes back until the server closes or 5 s pass.
async fn raw_exchange(addr: std::net::SocketAddr, raw: &[u8]) -> String {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let _ = stream.write_all(raw).await;
    let _ = stream.shutdown().await;
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut answer)).await;
    String::from_utf8_lossy(&answer).into_owned()
}

/// Polls `path` until it answers `status` (at most 10 s).
async fn wait_for(addr: std::net::SocketAddr, path: &str, status: StatusCode) -> common::Reply {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let reply = get(addr, path).await;
        if reply.status == status || Instant::now() > deadline {
            assert_eq!(reply.status, status, "{}", reply.body);
            return reply;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn wait_until(mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !condition() {
        assert!(Instant::now() < deadline, "condition not met within 10 s");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

async fn wait_until_refused(addr: std::net::SocketAddr) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(addr).await.is_ok() {
        assert!(Instant::now() < deadline, "listener still open after 10 s");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
