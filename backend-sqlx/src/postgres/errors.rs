//! What PostgreSQL's errors mean, by SQLSTATE
//! (<https://www.postgresql.org/docs/current/errcodes-appendix.html>): the
//! [`ErrorCodes`] of [`PgEngine`].

use sqlx::error::DatabaseError;
use sqlx::postgres::{PgDatabaseError, PgSeverity};
use storage_api::ErrorKind;

use super::engine::PgEngine;
use super::tls::handshake_failure;
use crate::common::engine::ErrorCodes;
use crate::common::engine::errors::standard_sqlstate_kind;

impl ErrorCodes for PgEngine {
    const ABORTED: &'static str = "an earlier statement failed and aborted the transaction";

    /// Names the server's primary message and the SQLSTATE. A prepared statement the
    /// session should hold that is missing, or one it never made that exists, means the
    /// session is shared behind a transaction-mode pooler: a `Config` error saying so.
    fn classify(db: &dyn DatabaseError, operation: &str) -> (ErrorKind, String) {
        let code = db.code().unwrap_or_default();
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
            sqlstate_kind(&code),
            format!("{operation}: {} (SQLSTATE {code})", db.message()),
        )
    }

    /// A connection exception (class 08), the server ending the session (57P01
    /// admin_shutdown, 57P02 crash_shutdown, 57P05 idle_session_timeout…) or any error
    /// the server reports as `FATAL` or `PANIC`, after which it closes the session.
    fn ends_session(db: &dyn DatabaseError) -> bool {
        let fatal = db
            .try_downcast_ref::<PgDatabaseError>()
            .is_some_and(|pg| matches!(pg.severity(), PgSeverity::Fatal | PgSeverity::Panic));
        fatal || sqlstate_kind(&db.code().unwrap_or_default()) == ErrorKind::Connection
    }

    /// A failed TLS handshake, or the server's connection limit, in words that say
    /// which setting to look at.
    fn describe_failure(error: &sqlx::Error) -> Option<String> {
        if let Some((_, described)) = handshake_failure(error) {
            return Some(described);
        }
        match error {
            sqlx::Error::Database(db) if db.code().as_deref() == Some("53300") => Some(format!(
                "{} (SQLSTATE 53300): the server's connection limit (max_connections, less \
                 the reserved slots) is reached",
                db.message()
            )),
            _ => None,
        }
    }

    /// `lock_not_available` (55P03): `lock_timeout`, set from `db_busy_timeout_ms`,
    /// ran out.
    fn lock_wait_ran_out(db: &dyn DatabaseError) -> bool {
        db.code().as_deref() == Some("55P03")
    }

    /// The server has no free connection slot (53300) or is starting up (57P03).
    fn may_pass(db: &dyn DatabaseError) -> bool {
        matches!(db.code().as_deref(), Some("53300" | "57P03"))
    }
}

/// The kind of a PostgreSQL error, from its SQLSTATE.
pub(crate) fn sqlstate_kind(code: &str) -> ErrorKind {
    match code {
        // deadlock_detected: the transaction may succeed if retried, as after a
        // serialization_failure (40001, standard).
        "40P01" => ErrorKind::Conflict,
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
        // connection_exception (08), invalid_authorization_specification and
        // invalid_password (28), serialization_failure (40001).
        c => standard_sqlstate_kind(c),
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
    fn io_errors_are_described_in_the_drivers_words() {
        let refused = sqlx::Error::Io(std::io::Error::from(std::io::ErrorKind::ConnectionRefused));
        assert_eq!(PgEngine::describe_failure(&refused), None);
        assert_eq!(PgEngine::diagnosis().cause(&refused), "connection refused");
    }
}
