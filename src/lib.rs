#![cfg_attr(feature = "sqlx", doc = include_str!("../README.md"))]
#![cfg_attr(
    not(feature = "sqlx"),
    doc = "One async key-value contract over pooled database connections; see README.md."
)]
//!
//! ## Features
//!
//! | feature | what it adds |
//! |---|---|
//! | `sqlx` (default) | the sqlx backend on SQLite |
//! | `postgres` | PostgreSQL through the sqlx backend |
//! | `mysql` | MySQL 8 and MariaDB through the sqlx backend (`mysql://…`) |
//! | `deadpool` | the deadpool-sqlite backend |
//! | `etcd` | the etcd backend (`backend = "etcd"`, `etcd://…`) |
//! | `metrics` | [`observe::PrometheusExporter`], the Prometheus text exposition |
//! | `serve` | the HTTP server for probes and metrics (`serve`) and the config file with its `[serve]` section (`Config`) |

#[cfg(feature = "serve")]
mod config;
mod engine;
pub mod observe;
mod open;
#[cfg(feature = "serve")]
pub mod serve;

#[cfg(feature = "serve")]
pub use config::{Config, EMBEDDED_DEFAULT};
pub use engine::{Engine, validate_config};
pub use open::{BACKENDS, BackendInfo, Store, backend_info, open, open_instrumented, open_with};
/// What application code uses of the contract. Backend authors depend on
/// `storage-api` itself (its `backend` module holds what they need).
pub use storage_api::{
    BoxError, Capabilities, Clock, CloseReason, CloseReport, ClosedCounts, Condition,
    ConnectionValidation, Entry, ErrorKind, HealthStatus, HistogramSnapshot, KeyRange,
    MAX_KEY_BYTES, ManualClock, PoolHealth, PoolMetrics, PooledStore, PutOptions, Result,
    ScanOptions, StorageConfig, StoreError, StoreOptions, Synchronous, SystemClock, Transaction,
    TxOptions, Version, WriteOp, WriteResult, prefix_successor,
};

#[cfg(feature = "etcd")]
pub use backend_etcd::EtcdStore;
/// A throwaway schema on a PostgreSQL server, or database on a MySQL or MariaDB server
/// (what `pooledstore conform` runs in).
#[cfg(any(feature = "postgres", feature = "mysql"))]
pub use backend_sqlx::ScratchSchema;
