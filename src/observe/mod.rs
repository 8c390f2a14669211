//! Observability: per-operation instrumentation of any store ([`Instrumented`]) and the
//! Prometheus text exposition of its pool and operation metrics
//! ([`PrometheusExporter`]).
//!
//! [`open`](crate::open) already returns an instrumented store;
//! [`open_instrumented`](crate::open_instrumented) returns it typed, so its metrics can
//! be rendered:
//!
//! ```no_run
//! # #[cfg(feature = "metrics")]
//! # async fn demo(config: &pooledstore::StorageConfig) -> pooledstore::Result<()> {
//! use std::sync::Arc;
//! use pooledstore::observe::{ExportOptions, PrometheusExporter};
//!
//! let store = pooledstore::open_instrumented(config).await?;
//! let exporter = PrometheusExporter::new(Arc::clone(&store), &ExportOptions::default())?;
//! println!("{}", exporter.render());
//! # Ok(()) }
//! ```

#[cfg(test)]
mod fake;
mod instrumented;
mod labels;
#[cfg(feature = "metrics")]
mod prometheus;
mod stats;

pub use instrumented::Instrumented;
pub use labels::{Op, Outcome};
#[cfg(feature = "metrics")]
pub use prometheus::{CONTENT_TYPE, ExportOptions, PrometheusExporter};
pub use stats::OperationsSnapshot;
