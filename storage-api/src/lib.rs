//! The `PooledStore` contract: one async key-value API over pooled database
//! connections, with the types, errors, configuration and pool instruments every
//! backend shares. This crate depends on no database driver.
//!
//! Backends implement [`PooledStore`]; applications hold an `Arc<dyn PooledStore>`.
//!
//! ```
//! use storage_api::{Condition, ErrorKind, PutOptions, StorageConfig};
//!
//! let config = StorageConfig::from_toml("[storage]\ndb_pool_size = 4\n").unwrap();
//! config.validate().unwrap();
//! assert_eq!(config.db_pool_size, 4);
//!
//! let bad = StorageConfig::from_toml("[storage]\ndb_pool_sise = 4\n").unwrap_err();
//! assert_eq!(bad.kind(), ErrorKind::Config);
//!
//! let cas = PutOptions::if_absent();
//! assert_eq!(cas.condition, Condition::Absent);
//! ```

mod checked;
mod clock;
mod config;
mod engine_options;
mod error;
mod identifier;
mod instruments;
mod leak;
mod lifecycle;
mod limits;
mod options;
mod redact;
mod reports;
mod scheme;
mod store;
mod synchronous;
mod tls;
mod types;

pub use async_trait::async_trait;
pub use clock::{Clock, ManualClock, SystemClock};
pub use config::{ENV_ALLOWED, ENV_PREFIX, StorageConfig, check_env_names};
pub use engine_options::{PostgresOptions, SqliteOptions};
pub use error::{BoxError, ErrorKind, Result, StoreError};
pub use limits::Limits;
pub use options::StoreOptions;
pub use redact::describe_toml_error;
pub use reports::{
    CloseReason, CloseReport, ClosedCounts, ConnectionValidation, HealthStatus, HistogramSnapshot,
    PoolHealth, PoolMetrics,
};
pub use scheme::url_scheme;
pub use store::{PooledStore, Transaction};
pub use synchronous::Synchronous;
pub use tls::{SslMode, TlsSettings};
pub use types::{
    Capabilities, Condition, Entry, KeyRange, MAX_KEY_BYTES, PutOptions, ScanOptions, TxOptions,
    Version, WriteOp, WriteResult, prefix_successor,
};

/// What backend authors need beside the contract: the checking layer and its rules,
/// the pool instruments every backend feeds, the close gate, leak detection, clock
/// and redaction helpers, identifier validation, and the error for a URL scheme a
/// backend does not open.
pub mod backend {
    pub use crate::checked::{Checked, Rules};
    pub use crate::clock::{expiry_millis, from_unix_millis, to_unix_millis};
    pub use crate::identifier::validate_identifier;
    pub use crate::instruments::{Histogram, PoolGauges, PoolInstruments, WAIT_BUCKETS, WaitGuard};
    pub use crate::leak::LeakTimer;
    pub use crate::lifecycle::{Drain, InFlight, InFlightHere, Lifecycle};
    pub use crate::redact::{redact_secrets, redact_url, shown_url};
    pub use crate::scheme::unsupported_scheme;
}
