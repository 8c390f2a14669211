#![cfg_attr(feature = "sqlx", doc = include_str!("../README.md"))]
#![cfg_attr(
    not(feature = "sqlx"),
    doc = "One async key-value contract over pooled database connections; see README.md."
)]

mod config;
pub mod observe;
mod open;
pub mod serve;

pub use config::{Config, EMBEDDED_DEFAULT};
pub use open::{BACKENDS, BackendInfo, Store, backend_info, open, open_instrumented, open_with};
pub use storage_api::*;

/// A throwaway schema on a PostgreSQL server (what `pooledstore conform` runs in).
#[cfg(feature = "postgres")]
pub use backend_sqlx::ScratchSchema;
