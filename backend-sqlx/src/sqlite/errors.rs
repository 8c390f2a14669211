//! The one place sqlx and SQLite errors become [`StoreError`]s.

use std::time::Duration;

use storage_api::{ErrorKind, PoolInstruments, StoreError};

use crate::common::errors::map_driver_error;

/// SQLite primary result codes this backend tells apart
/// (<https://www.sqlite.org/rescode.html>).
mod code {
    pub(super) const BUSY: i32 = 5;
    pub(super) const LOCKED: i32 = 6;
    pub(super) const IOERR: i32 = 10;
    pub(super) const CORRUPT: i32 = 11;
    pub(super) const CANTOPEN: i32 = 14;
    pub(super) const NOTADB: i32 = 26;
}

/// Turns a sqlx error raised by `operation` into a [`StoreError`] of the right kind,
/// counting lock contention in `instruments`.
///
/// `waited` is how long the caller waited for a connection, when the error came from
/// acquiring one. Messages name the operation and SQLite's own description; they
/// never carry keys, values or the database URL.
pub(crate) fn map_error(
    error: sqlx::Error,
    operation: &str,
    waited: Option<Duration>,
    instruments: &PoolInstruments,
) -> StoreError {
    map_driver_error(error, operation, waited, |db| {
        let extended = db.code().and_then(|c| c.parse::<i32>().ok()).unwrap_or(0);
        let kind = sqlite_kind(extended);
        if kind == ErrorKind::Busy {
            instruments.record_busy();
        }
        (
            kind,
            format!("{operation}: {} (SQLite code {extended})", db.message()),
        )
    })
}

/// The kind of a SQLite error, from its (extended) result code.
fn sqlite_kind(extended: i32) -> ErrorKind {
    match extended & 0xff {
        code::BUSY | code::LOCKED => ErrorKind::Busy,
        code::CORRUPT | code::NOTADB => ErrorKind::Corrupt,
        code::IOERR | code::CANTOPEN => ErrorKind::Connection,
        _ => ErrorKind::Backend,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn result_codes_map_to_kinds() {
        assert_eq!(sqlite_kind(5), ErrorKind::Busy);
        assert_eq!(sqlite_kind(517), ErrorKind::Busy); // SQLITE_BUSY_SNAPSHOT
        assert_eq!(sqlite_kind(6), ErrorKind::Busy);
        assert_eq!(sqlite_kind(26), ErrorKind::Corrupt);
        assert_eq!(sqlite_kind(11), ErrorKind::Corrupt);
        assert_eq!(sqlite_kind(14), ErrorKind::Connection);
        assert_eq!(sqlite_kind(1555), ErrorKind::Backend); // SQLITE_CONSTRAINT_PRIMARYKEY
    }

    #[test]
    fn pool_errors_map_to_timeout_and_closed() {
        let instruments = PoolInstruments::new();
        let e = map_error(
            sqlx::Error::PoolTimedOut,
            "get",
            Some(Duration::from_millis(500)),
            &instruments,
        );
        assert_eq!(e.kind(), ErrorKind::Timeout);
        assert!(e.message().contains("acquiring a connection"), "{e}");
        assert!(e.message().contains("0.500 s"), "{e}");
        let e = map_error(sqlx::Error::PoolClosed, "get", None, &instruments);
        assert_eq!(e.kind(), ErrorKind::Closed);
    }
}
