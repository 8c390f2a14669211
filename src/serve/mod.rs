//! `pooledstore serve` as a library: an HTTP server exposing `/health` (liveness),
//! `/ready` (readiness) and `/metrics` (Prometheus text) for one instrumented store,
//! with a background connection validator and an orderly shutdown.

mod config;
mod probes;
mod routes;
mod server;
mod state;
mod validator;

pub use config::ServeConfig;
pub use server::{Server, ServerOptions, ShutdownReport};
