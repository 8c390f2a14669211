//! The one place sqlx and SQLite errors become [`StoreError`]s.

use std::path::Path;
use std::time::Duration;

use storage_api::{ErrorKind, PoolInstruments, StoreError};

use crate::common::errors::map_driver_error;

/// SQLite primary result codes this backend tells apart
/// (<https://www.sqlite.org/rescode.html>).
mod code {
    pub(super) const BUSY: i32 = 5;
    pub(super) const LOCKED: i32 = 6;
    pub(super) const READONLY: i32 = 8;
    pub(super) const IOERR: i32 = 10;
    pub(super) const CORRUPT: i32 = 11;
    pub(super) const CANTOPEN: i32 = 14;
    pub(super) const NOTADB: i32 = 26;
}

/// Turns a sqlx error raised by `operation` on the database file at `path` into a
/// [`StoreError`] of the right kind, counting lock contention in `instruments`.
///
/// `waited` is how long the caller waited for a connection, when the error came from
/// acquiring one. Messages name the operation and SQLite's own description (and the
/// file, when it cannot be written); they never carry keys, values or the database URL.
pub(crate) fn map_error(
    error: sqlx::Error,
    operation: &str,
    waited: Option<Duration>,
    path: &Path,
    instruments: &PoolInstruments,
) -> StoreError {
    map_driver_error(error, operation, waited, |db| {
        let extended = db.code().and_then(|c| c.parse::<i32>().ok()).unwrap_or(0);
        let kind = sqlite_kind(extended);
        if kind == ErrorKind::Busy {
            instruments.record_busy();
        }
        let message = if extended & 0xff == code::READONLY {
            format!(
                "{operation}: database file {} is not writable: {} (SQLite code {extended})",
                path.display(),
                db.message()
            )
        } else if matches!(
            extended & 0xff,
            code::CANTOPEN | code::NOTADB | code::CORRUPT
        ) {
            format!(
                "{operation}: database file {}: {} (SQLite code {extended})",
                path.display(),
                db.message()
            )
        } else {
            format!("{operation}: {} (SQLite code {extended})", db.message())
        };
        (kind, message)
    })
}

/// The kind of a SQLite error, from its (extended) result code.
fn sqlite_kind(extended: i32) -> ErrorKind {
    match extended & 0xff {
        code::BUSY | code::LOCKED => ErrorKind::Busy,
        code::CORRUPT | code::NOTADB => ErrorKind::Corrupt,
        // A file this process may not write: a deployment mistake no retry mends.
        code::READONLY => ErrorKind::Config,
        code::CANTOPEN => ErrorKind::Connection,
        // I/O errors (a failed write, a file-size cap…) come from the local file, not
        // from a connection, and recur on retry.
        code::IOERR => ErrorKind::Backend,
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
        assert_eq!(sqlite_kind(8), ErrorKind::Config);
        assert_eq!(sqlite_kind(1544), ErrorKind::Config); // SQLITE_READONLY_DIRECTORY
        assert_eq!(sqlite_kind(10), ErrorKind::Backend);
        assert_eq!(sqlite_kind(778), ErrorKind::Backend); // SQLITE_IOERR_WRITE
        assert_eq!(sqlite_kind(1555), ErrorKind::Backend); // SQLITE_CONSTRAINT_PRIMARYKEY
    }

    #[test]
    fn pool_errors_map_to_timeout_and_closed() {
        let instruments = PoolInstruments::new();
        let e = map_error(
            sqlx::Error::PoolTimedOut,
            "get",
            Some(Duration::from_millis(500)),
            Path::new("x.db"),
            &instruments,
        );
        assert_eq!(e.kind(), ErrorKind::Timeout);
        assert!(e.message().contains("acquiring a connection"), "{e}");
        assert!(e.message().contains("0.500 s"), "{e}");
        let e = map_error(
            sqlx::Error::PoolClosed,
            "get",
            None,
            Path::new("x.db"),
            &instruments,
        );
        assert_eq!(e.kind(), ErrorKind::Closed);
    }
}
