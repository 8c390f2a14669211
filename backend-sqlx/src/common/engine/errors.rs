//! [`ErrorCodes`]: what an engine's error codes mean, and the one mapping of sqlx errors
//! to [`StoreError`]s built on it.

use std::time::Duration;

use sqlx::error::DatabaseError;
use storage_api::backend::PoolInstruments;
use storage_api::{ErrorKind, StoreError};

use crate::common::connect_check::Diagnosis;
use crate::common::errors::map_diagnosed_error;

/// How an engine reads the errors its server reports.
pub(crate) trait ErrorCodes {
    /// What an error on a transaction says after an earlier statement of it failed on
    /// the server (`an earlier statement failed and aborted the transaction`).
    const ABORTED: &'static str;

    /// The kind of a server error raised by `operation`, and its message: the operation,
    /// the server's primary message and its code; never the server's detail (which can
    /// quote row values), keys, values or the URL.
    fn classify(db: &dyn DatabaseError, operation: &str) -> (ErrorKind, String);

    /// Whether the server closes the session after this error.
    fn ends_session(db: &dyn DatabaseError) -> bool;

    /// The engine's own words for a failed connection (a TLS handshake, a full server),
    /// when it has them.
    fn describe_failure(_error: &sqlx::Error) -> Option<String> {
        None
    }

    /// Whether the error is a lock wait that ran out: the statement waited the busy
    /// timeout for a lock another transaction holds. Such a wait is counted in `busy`
    /// and never retried by the store (the caller has waited already), whatever kind
    /// the engine gives it.
    fn lock_wait_ran_out(_db: &dyn DatabaseError) -> bool {
        false
    }

    /// Whether a server error at connect may pass by waiting (no free connection slot).
    fn may_pass(_db: &dyn DatabaseError) -> bool {
        false
    }

    /// How a failed connection attempt is described and judged.
    fn diagnosis() -> Diagnosis {
        Diagnosis {
            describe: Self::describe_failure,
            transient: Self::may_pass,
        }
    }
}

/// Turns a sqlx error raised by `operation` into a [`StoreError`] of the right kind,
/// counting lock waits that ran out ([`ErrorCodes::lock_wait_ran_out`]) in
/// `instruments`. `waited` is how long the
/// caller waited, when the error came from acquiring a connection.
pub(crate) fn map_error<E: ErrorCodes>(
    error: sqlx::Error,
    operation: &str,
    waited: Option<Duration>,
    instruments: &PoolInstruments,
) -> StoreError {
    map_diagnosed_error(error, operation, waited, &E::diagnosis(), |db| {
        if E::lock_wait_ran_out(db) {
            instruments.record_busy();
        }
        E::classify(db, operation)
    })
}

/// Whether `error` means the connection is gone: I/O, TLS or protocol failures, or a
/// server error after which the server closes the session. Such a connection must
/// never go back to the pool.
pub(crate) fn is_connection_loss<E: ErrorCodes>(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::Protocol(_)
        | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(db) => E::ends_session(db.as_ref()),
        _ => false,
    }
}

/// The kind the SQL standard's SQLSTATE classes give: a serialization failure (40001)
/// is a `Conflict`, a connection exception (class 08) `Connection`, an invalid
/// authorization (class 28) `Config`, anything else `Backend`.
pub(crate) fn standard_sqlstate_kind(code: &str) -> ErrorKind {
    match code {
        "40001" => ErrorKind::Conflict,
        c if c.starts_with("08") => ErrorKind::Connection,
        c if c.starts_with("28") => ErrorKind::Config,
        _ => ErrorKind::Backend,
    }
}

/// Whether `error` is a lock wait that ran out ([`ErrorCodes::lock_wait_ran_out`]).
pub(crate) fn is_lock_wait<E: ErrorCodes>(error: &sqlx::Error) -> bool {
    matches!(error, sqlx::Error::Database(db) if E::lock_wait_ran_out(db.as_ref()))
}

/// Whether `error` came from the server (so the transaction it happened in is no
/// longer trusted to commit).
pub(crate) fn is_server_error(error: &sqlx::Error) -> bool {
    matches!(error, sqlx::Error::Database(_))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An engine that knows no error code.
    struct Uncoded;

    impl ErrorCodes for Uncoded {
        const ABORTED: &'static str = "an earlier statement failed";

        fn classify(db: &dyn DatabaseError, operation: &str) -> (ErrorKind, String) {
            (ErrorKind::Backend, format!("{operation}: {}", db.message()))
        }

        fn ends_session(_db: &dyn DatabaseError) -> bool {
            false
        }
    }

    #[test]
    fn standard_sqlstate_classes_map_to_kinds() {
        let cases = [
            ("40001", ErrorKind::Conflict),
            ("08006", ErrorKind::Connection),
            ("08S01", ErrorKind::Connection),
            ("28000", ErrorKind::Config),
            ("23505", ErrorKind::Backend),
            ("", ErrorKind::Backend),
        ];
        for (code, kind) in cases {
            assert_eq!(standard_sqlstate_kind(code), kind, "{code}");
        }
    }

    #[test]
    fn io_errors_are_connection_loss() {
        let io = sqlx::Error::Io(std::io::Error::from(std::io::ErrorKind::UnexpectedEof));
        assert!(is_connection_loss::<Uncoded>(&io));
        assert!(!is_server_error(&io));
        assert!(!is_connection_loss::<Uncoded>(&sqlx::Error::PoolTimedOut));
        let e = map_error::<Uncoded>(io, "get", None, &PoolInstruments::new());
        assert_eq!(e.kind(), ErrorKind::Connection);
        assert!(e.message().starts_with("get: "), "{e}");
    }
}
