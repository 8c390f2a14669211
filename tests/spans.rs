//! Operation spans carry the backend, the engine, the operation, key lengths, item counts
//! and the outcome, and never keys or values. In a test binary of its own, with the one
//! test installing a global subscriber: a thread-local one races tracing's process-wide
//! per-callsite interest, and spans go missing.
#![cfg(feature = "sqlx")]

use std::sync::{Arc, Mutex};

use pooledstore::{Condition, PutOptions, StorageConfig, TxOptions, Version, WriteOp};

/// Collects what a `fmt` subscriber writes.
#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn spans_carry_backend_engine_op_key_length_and_outcome_but_no_data() {
    let capture = Capture::default();
    let writer = capture.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::DEBUG)
        .with_span_events(tracing_subscriber::fmt::format::FmtSpan::CLOSE)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    tracing::subscriber::set_global_default(subscriber).expect("the only subscriber");

    let dir = tempfile::tempdir().unwrap();
    let config = StorageConfig {
        url: format!("sqlite://{}", dir.path().join("kv.db").display()),
        ..StorageConfig::default()
    };
    let store = pooledstore::open(&config).await.unwrap();
    store
        .put(b"user-key-1", b"secret-value", PutOptions::default())
        .await
        .unwrap();
    let failed = store
        .put(
            b"cas",
            b"other-secret",
            PutOptions::if_version(Version::new(12345).unwrap()),
        )
        .await;
    assert!(failed.is_err());
    let mut tx = store.begin(TxOptions::default()).await.unwrap();
    tx.delete(b"tx-key-7", Condition::Any).await.unwrap();
    tx.commit().await.unwrap();
    store
        .batch(vec![WriteOp::put("a", "b"), WriteOp::delete("c")])
        .await
        .unwrap();
    store.close().await;

    let out = String::from_utf8(capture.0.lock().unwrap().clone()).unwrap();
    // The facade's own span closing (a backend may open spans of its own inside it).
    let closes: Vec<&str> = out
        .lines()
        .filter(|l| l.contains("pooledstore::observe::instrumented: close"))
        .collect();
    let find = |needle: &str| {
        closes
            .iter()
            .find(|l| l.contains(needle))
            .unwrap_or_else(|| panic!("no span with {needle} in\n{out}"))
    };
    let put = find("key_len=10");
    for field in [
        "backend=\"sqlx\"",
        "engine=\"sqlite\"",
        "op=\"put\"",
        "outcome=\"ok\"",
    ] {
        assert!(put.contains(field), "{field} missing: {put}");
    }
    let cas = find("key_len=3");
    assert!(cas.contains("outcome=\"condition_failed\""), "{cas}");
    let tx_delete = find("op=\"tx_delete\"");
    assert!(tx_delete.contains("key_len=8") && tx_delete.contains("outcome=\"ok\""));
    assert!(find("op=\"batch\"").contains("items=2"));
    for secret in ["secret-value", "other-secret", "user-key-1", "tx-key-7"] {
        assert!(!out.contains(secret), "{secret} leaked into\n{out}");
    }
}
