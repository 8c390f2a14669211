//! Closing a server engine's store: drain, close every connection, report.

use storage_api::CloseReport;

use super::Engine;
use super::shared::Shared;
use crate::common::close::close_pool;

impl<E: Engine> Shared<E> {
    /// Refuses new work at once, waits up to `close_grace` for in-flight work, closes
    /// every connection and reports. Idempotent.
    pub(crate) async fn close(&self) -> CloseReport {
        let after_pool = |_drained| std::future::ready(());
        let (gate, pool, stash) = (&self.gate, &self.pool, &self.stash);
        close_pool(
            gate,
            pool,
            stash,
            &self.accounting,
            &self.options,
            after_pool,
        )
        .await
    }
}
