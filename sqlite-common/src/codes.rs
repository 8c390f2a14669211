//! SQLite result codes as the contract's error kinds (<https://www.sqlite.org/rescode.html>):
//! one answer per code, whichever driver reported it.

use storage_api::ErrorKind;

/// `SQLITE_BUSY`: another connection holds a lock past the busy timeout.
pub const BUSY: i32 = 5;
/// `SQLITE_LOCKED`: a conflict inside one connection or shared cache.
pub const LOCKED: i32 = 6;
/// `SQLITE_READONLY`: the file or its directory may not be written.
pub const READONLY: i32 = 8;
/// `SQLITE_INTERRUPT`: the statement was interrupted.
pub const INTERRUPT: i32 = 9;
/// `SQLITE_IOERR`: the operating system reported an I/O error.
pub const IOERR: i32 = 10;
/// `SQLITE_CORRUPT`: the file is damaged.
pub const CORRUPT: i32 = 11;
/// `SQLITE_FULL`: the disk (or a size limit) is full.
pub const FULL: i32 = 13;
/// `SQLITE_CANTOPEN`: the file cannot be opened.
pub const CANTOPEN: i32 = 14;
/// `SQLITE_NOTADB`: the file is not a SQLite database.
pub const NOTADB: i32 = 26;

/// The kind of an error SQLite reported with `extended` (an extended or primary
/// result code).
pub fn kind(extended: i32) -> ErrorKind {
    match extended & 0xff {
        BUSY | LOCKED => ErrorKind::Busy,
        CORRUPT | NOTADB => ErrorKind::Corrupt,
        // A file this process may not write: a deployment mistake no retry mends.
        READONLY => ErrorKind::Config,
        // The backends interrupt statements only when a store closes under them.
        INTERRUPT => ErrorKind::Closed,
        CANTOPEN => ErrorKind::Connection,
        // I/O errors and a full disk come from the local file, not from a connection,
        // and recur on retry until an operator acts.
        IOERR | FULL => ErrorKind::Backend,
        _ => ErrorKind::Backend,
    }
}

/// Whether an error with `extended` is about the database file itself, so its
/// message should name the file.
pub fn concerns_the_file(extended: i32) -> bool {
    matches!(extended & 0xff, READONLY | CORRUPT | NOTADB | CANTOPEN)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn result_codes_map_to_kinds() {
        assert_eq!(kind(5), ErrorKind::Busy);
        assert_eq!(kind(517), ErrorKind::Busy); // SQLITE_BUSY_SNAPSHOT
        assert_eq!(kind(6), ErrorKind::Busy);
        assert_eq!(kind(26), ErrorKind::Corrupt);
        assert_eq!(kind(11), ErrorKind::Corrupt);
        assert_eq!(kind(14), ErrorKind::Connection);
        assert_eq!(kind(8), ErrorKind::Config);
        assert_eq!(kind(1544), ErrorKind::Config); // SQLITE_READONLY_DIRECTORY
        assert_eq!(kind(9), ErrorKind::Closed);
        assert_eq!(kind(10), ErrorKind::Backend);
        assert_eq!(kind(13), ErrorKind::Backend);
        assert_eq!(kind(778), ErrorKind::Backend); // SQLITE_IOERR_WRITE
        assert_eq!(kind(1555), ErrorKind::Backend); // SQLITE_CONSTRAINT_PRIMARYKEY
        assert!(concerns_the_file(26) && concerns_the_file(1544) && !concerns_the_file(5));
    }
}
