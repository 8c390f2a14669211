//! The one place sqlx and SQLite errors become [`StoreError`]s.

use std::path::Path;
use std::time::Duration;

use storage_api::backend::PoolInstruments;
use storage_api::{ErrorKind, StoreError};

use sqlite_common::codes;

use crate::common::errors::map_driver_error;

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
        let kind = codes::kind(extended);
        if kind == ErrorKind::Busy {
            instruments.record_busy();
        }
        let message = if extended & 0xff == codes::READONLY {
            format!(
                "{operation}: database file {} is not writable: {} (SQLite code {extended})",
                path.display(),
                db.message()
            )
        } else if codes::concerns_the_file(extended) {
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

#[cfg(test)]
mod tests {
    use super::*;

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
