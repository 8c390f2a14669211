//! The sqlx errors every database raises the same way (pool, I/O, configuration,
//! decoding) as [`StoreError`]s; each database module maps its own server errors.

use std::time::Duration;

use sqlx::error::DatabaseError;
use storage_api::{ErrorKind, StoreError};

use super::connect_check::Diagnosis;

/// Turns a sqlx error raised by `operation` into a [`StoreError`], asking `database`
/// for the kind and message of errors the database itself reported; a failed
/// connection is described in the driver's words.
///
/// `waited` is how long the caller waited for a connection, when the error came from
/// acquiring one. Messages name the operation; they never carry keys, values or the
/// connection URL.
#[cfg(feature = "sqlite")]
pub(crate) fn map_driver_error(
    error: sqlx::Error,
    operation: &str,
    waited: Option<Duration>,
    database: impl FnOnce(&dyn DatabaseError) -> (ErrorKind, String),
) -> StoreError {
    map_diagnosed_error(error, operation, waited, &Diagnosis::DRIVER, database)
}

/// Like `map_driver_error`, with a failed connection described as `diagnosis` says.
pub(crate) fn map_diagnosed_error(
    error: sqlx::Error,
    operation: &str,
    waited: Option<Duration>,
    diagnosis: &Diagnosis,
    database: impl FnOnce(&dyn DatabaseError) -> (ErrorKind, String),
) -> StoreError {
    let (kind, message) = match &error {
        sqlx::Error::PoolTimedOut => (
            ErrorKind::Timeout,
            format!(
                "{operation}: timed out acquiring a connection after {:.3} s",
                waited.unwrap_or_default().as_secs_f64()
            ),
        ),
        sqlx::Error::PoolClosed => return StoreError::closed(),
        sqlx::Error::Database(db) => database(db.as_ref()),
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::WorkerCrashed
        | sqlx::Error::Protocol(_) => (
            ErrorKind::Connection,
            format!(
                "{operation}: the database connection failed: {}",
                diagnosis.cause(&error)
            ),
        ),
        sqlx::Error::Configuration(_) => (
            ErrorKind::Config,
            format!("{operation}: invalid connection options"),
        ),
        sqlx::Error::ColumnDecode { .. } | sqlx::Error::Decode(_) => (
            ErrorKind::Corrupt,
            format!("{operation}: a stored row does not have the expected types"),
        ),
        _ => (
            ErrorKind::Backend,
            format!("{operation}: the database driver failed"),
        ),
    };
    StoreError::new(kind, message).with_source(error)
}
