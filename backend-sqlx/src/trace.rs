//! Per-operation tracing: a debug span naming the backend, the operation and the key
//! length, closed by an event with the outcome. Keys and values are never recorded.

use std::future::Future;

use storage_api::Result;
use tracing::Instrument;

/// Runs `work` inside a `pooledstore` debug span and reports how it ended.
pub(crate) async fn traced<T>(
    operation: &'static str,
    key_len: Option<usize>,
    work: impl Future<Output = Result<T>>,
) -> Result<T> {
    let span = tracing::debug_span!("pooledstore", backend = "sqlx", operation, key_len);
    async move {
        let result = work.await;
        match &result {
            Ok(_) => tracing::debug!(outcome = "ok"),
            Err(e) => tracing::debug!(outcome = e.kind().as_str(), "{e}"),
        }
        result
    }
    .instrument(span)
    .await
}
