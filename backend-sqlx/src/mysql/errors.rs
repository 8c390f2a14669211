//! What MySQL's and MariaDB's errors mean, by error number
//! (<https://dev.mysql.com/doc/mysql-errors/8.0/en/server-error-reference.html>,
//! <https://mariadb.com/kb/en/mariadb-error-code-reference/>), then by SQLSTATE class:
//! the [`ErrorCodes`] of [`MysqlEngine`].
//!
//! A deadlock (1213) and a lock wait that ran out (1205 `innodb_lock_wait_timeout`, or
//! on MariaDB 1969 from the `max_statement_time` that bounds each single-key statement
//! by the busy timeout) are both `Conflict`, retryable: the transaction met another
//! one's locks, and running it again may succeed. A deadlock rolled the whole
//! transaction back, so a store-level operation retries it itself; a lock wait that ran
//! out is reported at once, since the caller has waited `db_busy_timeout_ms` already,
//! and is counted in `busy` ([`ErrorCodes::lock_wait_ran_out`]).

use sqlx::error::DatabaseError;
use sqlx::mysql::MySqlDatabaseError;
use storage_api::ErrorKind;

use super::engine::MysqlEngine;
use crate::common::engine::ErrorCodes;
use crate::common::engine::errors::standard_sqlstate_kind;

/// `ER_LOCK_DEADLOCK`.
pub(crate) const DEADLOCK: u16 = 1213;
/// `ER_LOCK_WAIT_TIMEOUT`.
pub(crate) const LOCK_WAIT_TIMEOUT: u16 = 1205;
/// MariaDB's `ER_STATEMENT_TIMEOUT` (`max_statement_time` ran out).
pub(crate) const STATEMENT_TIMEOUT: u16 = 1969;

impl ErrorCodes for MysqlEngine {
    const ABORTED: &'static str = "an earlier statement failed, so the transaction cannot commit";

    /// Names the server's message and MySQL's error number; a lock wait that ran out
    /// says so in the store's words.
    fn classify(db: &dyn DatabaseError, operation: &str) -> (ErrorKind, String) {
        let (number, state) = identify(db);
        let kind = error_kind(number, state.as_deref().unwrap_or_default());
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
    }

    /// Errors after which the server closes the session: killed, shutting down, packet
    /// errors.
    fn ends_session(db: &dyn DatabaseError) -> bool {
        let (number, state) = identify(db);
        error_kind(number, state.as_deref().unwrap_or_default()) == ErrorKind::Connection
    }

    /// A MySQL server error in the server's words with its number.
    fn describe_failure(error: &sqlx::Error) -> Option<String> {
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

    /// `innodb_lock_wait_timeout` (1205) or, on MariaDB, the `max_statement_time`
    /// bounding a single-key statement by the busy timeout (1969) ran out.
    fn lock_wait_ran_out(db: &dyn DatabaseError) -> bool {
        matches!(identify(db).0, Some(LOCK_WAIT_TIMEOUT | STATEMENT_TIMEOUT))
    }

    /// The server has no free connection slot (1040) or the user is at its limit (1203).
    fn may_pass(db: &dyn DatabaseError) -> bool {
        matches!(identify(db).0, Some(1040 | 1203))
    }
}

/// MySQL's error number (when the error is MySQL's) and the SQLSTATE.
fn identify(db: &dyn DatabaseError) -> (Option<u16>, Option<String>) {
    let number = db
        .try_downcast_ref::<MySqlDatabaseError>()
        .map(MySqlDatabaseError::number);
    (number, db.code().map(|c| c.into_owned()))
}

/// The kind of a MySQL error from its number and SQLSTATE.
pub(crate) fn error_kind(number: Option<u16>, state: &str) -> ErrorKind {
    match number {
        Some(DEADLOCK | LOCK_WAIT_TIMEOUT | STATEMENT_TIMEOUT) => return ErrorKind::Conflict,
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
    // serialization_failure (deadlocks and any other the server reports so), connection
    // exceptions, invalid authorization.
    standard_sqlstate_kind(state)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_map_to_kinds() {
        let cases = [
            (Some(1213), "40001", ErrorKind::Conflict),
            (Some(1205), "HY000", ErrorKind::Conflict),
            (Some(1969), "70100", ErrorKind::Conflict),
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
        assert!(ErrorKind::Conflict.is_retryable());
    }

    #[test]
    fn io_errors_are_described_in_the_drivers_words() {
        let refused = sqlx::Error::Io(std::io::Error::from(std::io::ErrorKind::ConnectionRefused));
        assert_eq!(MysqlEngine::describe_failure(&refused), None);
        assert_eq!(
            MysqlEngine::diagnosis().cause(&refused),
            "connection refused"
        );
    }
}
