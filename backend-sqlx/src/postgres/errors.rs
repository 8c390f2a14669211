//! The one place PostgreSQL errors become [`StoreError`]s, by SQLSTATE
//! (<https://www.postgresql.org/docs/current/errcodes-appendix.html>).

use std::time::Duration;

use sqlx::postgres::{PgDatabaseError, PgSeverity};
use storage_api::backend::PoolInstruments;
use storage_api::{ErrorKind, StoreError};

use crate::common::errors::map_driver_error;

/// Turns a sqlx error raised by `operation` into a [`StoreError`] of the right kind,
/// counting lock timeouts in `instruments`.
///
/// Messages name the operation, the server's primary message and the SQLSTATE; never
/// the server's detail (which can quote row values), keys, values or the URL.
pub(crate) fn map_error(
    error: sqlx::Error,
    operation: &str,
    waited: Option<Duration>,
    instruments: &PoolInstruments,
) -> StoreError {
    map_driver_error(error, operation, waited, |db| {
        let code = db.code().unwrap_or_default();
        let kind = sqlstate_kind(&code);
        if kind == ErrorKind::Busy {
            instruments.record_busy();
        }
        // A prepared statement the session should hold is missing, or one it never
        // made exists: the session is shared behind a transaction-mode pooler.
        if matches!(code.as_ref(), "26000" | "42P05") {
            return (
                ErrorKind::Config,
                format!(
                    "{operation}: {} (SQLSTATE {code}); connections that share server \
                     sessions like this go through a transaction-mode pooler: set \
                     db_transaction_pooler = true",
                    db.message()
                ),
            );
        }
        (
            kind,
            format!("{operation}: {} (SQLSTATE {code})", db.message()),
        )
    })
}

/// Whether `error` means the connection is gone: I/O or protocol failures, a
/// connection exception (class 08), the server ending the session (57P01
/// admin_shutdown, 57P02 crash_shutdown, 57P05 idle_session_timeout…) or any error the
/// server reports as `FATAL` or `PANIC`, after which it closes the session. Such a
/// connection must never go back to the pool.
pub(crate) fn is_connection_loss(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::Protocol(_)
        | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(db) => {
            let fatal = db
                .try_downcast_ref::<PgDatabaseError>()
                .is_some_and(|pg| matches!(pg.severity(), PgSeverity::Fatal | PgSeverity::Panic));
            fatal || sqlstate_kind(&db.code().unwrap_or_default()) == ErrorKind::Connection
        }
        _ => false,
    }
}

/// Whether `error` came from the server (so a transaction it happened in is aborted).
pub(crate) fn is_server_error(error: &sqlx::Error) -> bool {
    matches!(error, sqlx::Error::Database(_))
}

/// The kind of a PostgreSQL error, from its SQLSTATE.
pub(crate) fn sqlstate_kind(code: &str) -> ErrorKind {
    match code {
        // serialization_failure, deadlock_detected: the transaction may succeed if retried.
        "40001" | "40P01" => ErrorKind::Conflict,
        // lock_not_available: `lock_timeout` (db_busy_timeout_ms) ran out.
        "55P03" => ErrorKind::Busy,
        // query_canceled: a statement timeout or a cancel request.
        "57014" => ErrorKind::Timeout,
        // The server ended the session (an administrator, a shutdown, an idle or
        // idle-in-transaction timeout), is starting or stopping, or is full.
        "57P01" | "57P02" | "57P03" | "57P05" | "25P03" | "53300" => ErrorKind::Connection,
        // invalid_catalog_name (no such database), invalid_schema_name (search_path).
        "3D000" | "3F000" => ErrorKind::Config,
        // data_corrupted, index_corrupted.
        "XX001" | "XX002" => ErrorKind::Corrupt,
        // connection_exception
        c if c.starts_with("08") => ErrorKind::Connection,
        // invalid_authorization_specification, invalid_password
        c if c.starts_with("28") => ErrorKind::Config,
        _ => ErrorKind::Backend,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlstates_map_to_kinds() {
        let cases = [
            ("40001", ErrorKind::Conflict),
            ("40P01", ErrorKind::Conflict),
            ("55P03", ErrorKind::Busy),
            ("57014", ErrorKind::Timeout),
            ("57P01", ErrorKind::Connection),
            ("57P02", ErrorKind::Connection),
            ("57P05", ErrorKind::Connection),
            ("25P03", ErrorKind::Connection),
            ("08006", ErrorKind::Connection),
            ("08003", ErrorKind::Connection),
            ("53300", ErrorKind::Connection),
            ("28P01", ErrorKind::Config),
            ("3D000", ErrorKind::Config),
            ("XX001", ErrorKind::Corrupt),
            ("23505", ErrorKind::Backend),
            ("42P01", ErrorKind::Backend),
            ("", ErrorKind::Backend),
        ];
        for (code, kind) in cases {
            assert_eq!(sqlstate_kind(code), kind, "{code}");
        }
        assert!(ErrorKind::Conflict.is_retryable());
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
