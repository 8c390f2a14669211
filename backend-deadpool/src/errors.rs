//! The one place driver and pool failures become [`StoreError`]s.

use std::path::Path;

use deadpool::managed::PoolError;
use rusqlite::ErrorCode;
use sqlite_common::codes;
use storage_api::{ErrorKind, StoreError};

/// A failure inside this backend before it is mapped for the caller.
#[derive(Debug)]
pub(crate) enum DbError {
    /// SQLite or rusqlite reported an error.
    Sqlite(rusqlite::Error),
    /// Already a contract error (a failed condition, bad input, a closed store…).
    Store(StoreError),
    /// The closure run on the connection panicked; the connection is discarded.
    Panicked,
    /// The worker running the closure was cancelled (the runtime is shutting down).
    Lost,
}

impl DbError {
    /// Whether SQLite reported the database locked (`SQLITE_BUSY`/`SQLITE_LOCKED`).
    pub(crate) fn is_busy(&self) -> bool {
        matches!(
            self,
            Self::Sqlite(rusqlite::Error::SqliteFailure(e, _))
                if matches!(e.code, ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked)
        )
    }
}

impl From<rusqlite::Error> for DbError {
    fn from(err: rusqlite::Error) -> Self {
        Self::Sqlite(err)
    }
}

impl From<StoreError> for DbError {
    fn from(err: StoreError) -> Self {
        Self::Store(err)
    }
}

impl From<PoolError<StoreError>> for DbError {
    fn from(err: PoolError<StoreError>) -> Self {
        match err {
            PoolError::Backend(e) => Self::Store(e),
            PoolError::Closed => Self::Store(StoreError::closed()),
            PoolError::Timeout(_) => Self::Store(StoreError::new(
                ErrorKind::Timeout,
                "timed out acquiring a connection",
            )),
            other => Self::Store(
                StoreError::new(ErrorKind::Backend, "the connection pool failed")
                    .with_source(other.to_string()),
            ),
        }
    }
}

/// Maps a failure of operation `op` to the contract's error. Messages name the
/// operation and what went wrong, never keys, values or bound parameters.
pub(crate) fn map_error(op: &str, err: impl Into<DbError>) -> StoreError {
    match err.into() {
        DbError::Store(e) => e,
        DbError::Sqlite(e) => sqlite_error(op, e),
        DbError::Panicked => StoreError::new(
            ErrorKind::Backend,
            format!("{op}: the operation panicked; its connection was discarded"),
        ),
        DbError::Lost => StoreError::new(
            ErrorKind::Connection,
            format!("{op}: the connection's worker was cancelled"),
        ),
    }
}

/// The error for a database file SQLite could not open (missing, a directory,
/// not writable…), naming the path.
pub(crate) fn open_error(path: &Path, err: rusqlite::Error) -> StoreError {
    let reason = match &err {
        rusqlite::Error::SqliteFailure(e, _) => e.to_string(),
        _ => "invalid path".to_owned(),
    };
    StoreError::config(format!(
        "cannot open database file {}: {reason}",
        path.display()
    ))
    .with_source(err)
}

fn sqlite_error(op: &str, err: rusqlite::Error) -> StoreError {
    let (kind, what) = classify(&err);
    let message = match &err {
        rusqlite::Error::SqliteFailure(e, _) => format!("{op}: {e}"),
        _ => format!("{op}: {what}"),
    };
    StoreError::new(kind, message).with_source(err)
}

fn classify(err: &rusqlite::Error) -> (ErrorKind, &'static str) {
    use rusqlite::Error as E;
    match err {
        E::SqliteFailure(e, _) => (codes::kind(e.extended_code), "SQLite reported an error"),
        E::FromSqlConversionFailure(..)
        | E::IntegralValueOutOfRange(..)
        | E::InvalidColumnType(..) => (
            ErrorKind::Corrupt,
            "a stored row does not match the pooledstore layout",
        ),
        _ => (ErrorKind::Backend, "the SQLite driver reported an error"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failure(code: i32) -> rusqlite::Error {
        rusqlite::Error::SqliteFailure(rusqlite::ffi::Error::new(code), Some("detail".into()))
    }

    #[test]
    fn sqlite_codes_map_to_contract_kinds() {
        let kind = |code| map_error("op", failure(code)).kind();
        assert_eq!(kind(rusqlite::ffi::SQLITE_BUSY), ErrorKind::Busy);
        assert_eq!(kind(rusqlite::ffi::SQLITE_LOCKED), ErrorKind::Busy);
        assert_eq!(kind(rusqlite::ffi::SQLITE_NOTADB), ErrorKind::Corrupt);
        assert_eq!(kind(rusqlite::ffi::SQLITE_CORRUPT), ErrorKind::Corrupt);
        assert_eq!(kind(rusqlite::ffi::SQLITE_CANTOPEN), ErrorKind::Connection);
        assert_eq!(kind(rusqlite::ffi::SQLITE_FULL), ErrorKind::Backend);
        let bad_row = rusqlite::Error::IntegralValueOutOfRange(1, -3);
        assert_eq!(map_error("get", bad_row).kind(), ErrorKind::Corrupt);
    }

    #[test]
    fn messages_name_the_operation_and_keep_store_errors() {
        let e = map_error("put", failure(rusqlite::ffi::SQLITE_BUSY));
        assert!(e.message().starts_with("put: "), "{e}");
        let condition = StoreError::new(ErrorKind::ConditionFailed, "no").with_batch_index(2);
        let kept = map_error("batch", condition);
        assert_eq!(kept.batch_index(), Some(2));
        assert_eq!(
            map_error("get", DbError::Panicked).kind(),
            ErrorKind::Backend
        );
        let closed = map_error("get", PoolError::<StoreError>::Closed);
        assert_eq!(closed.kind(), ErrorKind::Closed);
    }
}
