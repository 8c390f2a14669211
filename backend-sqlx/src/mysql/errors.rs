//! The one place MySQL and MariaDB errors become [`StoreError`]s, by error number
//! (<https://dev.mysql.com/doc/mysql-errors/8.0/en/server-error-reference.html>,
//! <https://mariadb.com/kb/en/mariadb-error-code-reference/>), then by SQLSTATE class.
//!
//! A deadlock (1213) is `Conflict`: InnoDB rolled the whole transaction back, and
//! running it again may succeed. A lock wait that ran out (1205
//! `innodb_lock_wait_timeout`, or on MariaDB 1969 from the `max_statement_time` that
//! bounds each single-key statement by the busy timeout) is `Busy`, as PostgreSQL's
//! `lock_timeout` and SQLite's busy timeout are: the statement waited past
//! `db_busy_timeout_ms` for a lock another transaction holds. Both kinds are
//! retryable; `Busy` says the caller waited the configured time, and the conformance
//! kit expects it for exactly this wait.

use std::time::Duration;

use sqlx::mysql::MySqlDatabaseError;
use storage_api::backend::PoolInstruments;
use storage_api::{ErrorKind, StoreError};

use crate::common::errors::map_driver_error;

/// `ER_LOCK_DEADLOCK`.
pub(crate) const DEADLOCK: u16 = 1213;
/// `ER_LOCK_WAIT_TIMEOUT`.
pub(crate) const LOCK_WAIT_TIMEOUT: u16 = 1205;
/// MariaDB's `ER_STATEMENT_TIMEOUT` (`max_statement_time` ran out).
pub(crate) const STATEMENT_TIMEOUT: u16 = 1969;

/// Turns a sqlx error raised by `operation` into a [`StoreError`] of the right kind,
/// counting lock waits that ran out in `instruments`.
///
/// Messages name the operation, the server's message and MySQL's error number; never
/// keys, values or the URL.
pub(crate) fn map_error(
    error: sqlx::Error,
    operation: &str,
    waited: Option<Duration>,
    instruments: &PoolInstruments,
) -> StoreError {
    map_driver_error(error, operation, waited, |db| {
        let (number, state) = identify(db);
        let kind = error_kind(number, state.as_deref().unwrap_or_default());
        if kind == ErrorKind::Busy {
            instruments.record_busy();
        }
        let message = match number {
            Some(LOCK_WAIT_TIMEOUT | STATEMENT_TIMEOUT) => format!(
                "{operation}: waited past the busy timeout for a lock another transaction \
                 holds (MySQL error {})",
                number.unwrap_or_default()
            ),
            Some(number) => format!("{operation}: {} (MySQL error {number})", db.message()),
            None => format!("{operation}: {}", db.message()),
        };
        (kind, message)
    })
}

/// MySQL's error number (when the error is MySQL's) and the SQLSTATE.
fn identify(db: &dyn sqlx::error::DatabaseError) -> (Option<u16>, Option<String>) {
    let number = db
        .try_downcast_ref::<MySqlDatabaseError>()
        .map(MySqlDatabaseError::number);
    (number, db.code().map(|c| c.into_owned()))
}

/// Whether `error` means the connection is gone: I/O or protocol failures, or an
/// error after which the server closes the session (killed, shutting down, packet
/// errors). Such a connection must never go back to the pool.
pub(crate) fn is_connection_loss(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::Protocol(_)
        | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(db) => {
            let (number, state) = identify(db.as_ref());
            error_kind(number, state.as_deref().unwrap_or_default()) == ErrorKind::Connection
        }
        _ => false,
    }
}

/// Whether `error` came from the server (so the transaction it happened in is no
/// longer trusted to commit).
pub(crate) fn is_server_error(error: &sqlx::Error) -> bool {
    matches!(error, sqlx::Error::Database(_))
}

/// Whether a failed connection attempt may succeed later without anyone acting: the
/// server has no free connection slot (1040) or the user is at its limit (1203).
pub(crate) fn is_transient_connect_error(db: &dyn sqlx::error::DatabaseError) -> bool {
    matches!(identify(db).0, Some(1040 | 1203))
}

/// A MySQL server error in the server's words with its number (`None` for other
/// errors), for connection failures.
pub(crate) fn describe_server_error(error: &sqlx::Error) -> Option<String> {
    let sqlx::Error::Database(db) = error else {
        return None;
    };
    let mysql = db.try_downcast_ref::<MySqlDatabaseError>()?;
    Some(format!(
        "{} (MySQL error {})",
        mysql.message(),
        mysql.number()
    ))
}

/// The kind of a MySQL error from its number and SQLSTATE.
pub(crate) fn error_kind(number: Option<u16>, state: &str) -> ErrorKind {
    match number {
        Some(DEADLOCK) => return ErrorKind::Conflict,
        Some(LOCK_WAIT_TIMEOUT | STATEMENT_TIMEOUT) => return ErrorKind::Busy,
        // ER_QUERY_INTERRUPTED (KILL QUERY), MySQL's max_execution_time.
        Some(1317 | 3024) => return ErrorKind::Timeout,
        // Killed, server shutdown, too many connections, network and packet errors
        // after which the server drops the session, disconnected for inactivity.
        Some(
            1040 | 1053 | 1077 | 1152 | 1153 | 1154 | 1155 | 1156 | 1157 | 1158 | 1159 | 1160
            | 1161 | 1203 | 1927 | 2006 | 2013 | 4031,
        ) => return ErrorKind::Connection,
        // Access denied (user, database), unknown database.
        Some(1044 | 1045 | 1049 | 1698) => return ErrorKind::Config,
        // Corrupt or crashed tables.
        Some(1034 | 1035 | 1194 | 1195) => return ErrorKind::Corrupt,
        _ => {}
    }
    match state {
        // serialization_failure (deadlocks and any other the server reports so).
        "40001" => ErrorKind::Conflict,
        c if c.starts_with("08") => ErrorKind::Connection,
        c if c.starts_with("28") => ErrorKind::Config,
        _ => ErrorKind::Backend,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_map_to_kinds() {
        let cases = [
            (Some(1213), "40001", ErrorKind::Conflict),
            (Some(1205), "HY000", ErrorKind::Busy),
            (Some(1969), "70100", ErrorKind::Busy),
            (Some(1317), "70100", ErrorKind::Timeout),
            (Some(1927), "70100", ErrorKind::Connection),
            (Some(1053), "08S01", ErrorKind::Connection),
            (Some(1040), "08004", ErrorKind::Connection),
            (Some(1045), "28000", ErrorKind::Config),
            (Some(1049), "42000", ErrorKind::Config),
            (Some(1194), "HY000", ErrorKind::Corrupt),
            (Some(1062), "23000", ErrorKind::Backend),
            (Some(1146), "42S02", ErrorKind::Backend),
            (Some(9999), "40001", ErrorKind::Conflict),
            (Some(9999), "08S01", ErrorKind::Connection),
            (None, "", ErrorKind::Backend),
        ];
        for (number, state, kind) in cases {
            assert_eq!(error_kind(number, state), kind, "{number:?} {state}");
        }
        assert!(ErrorKind::Conflict.is_retryable() && ErrorKind::Busy.is_retryable());
    }

    #[test]
    fn io_errors_are_connection_loss() {
        let io = sqlx::Error::Io(std::io::Error::from(std::io::ErrorKind::UnexpectedEof));
        assert!(is_connection_loss(&io));
        assert!(!is_server_error(&io));
        assert!(!is_connection_loss(&sqlx::Error::PoolTimedOut));
        let e = map_error(io, "get", None, &PoolInstruments::new());
        assert_eq!(e.kind(), ErrorKind::Connection);
    }
}
