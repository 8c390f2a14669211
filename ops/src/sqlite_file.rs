//! Opening and verifying a store's SQLite file with a connection of our own, apart from
//! whichever backend serves the store, and mapping SQLite's errors onto [`ErrorKind`].

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use rusqlite::{Connection, ErrorCode, OpenFlags, OptionalExtension};
use sqlite_common::SqliteLocation;
use sqlite_common::schema::{
    Column, META_TABLE, SCHEMA_VERSION, SqliteSql, TABLE_COLUMNS, check_layout,
};
use storage_api::backend::to_unix_millis;
use storage_api::{ErrorKind, Result, StoreError, url_scheme};

/// What [`verify`] found in a store file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileSummary {
    /// The schema version recorded for the table.
    pub schema_version: i64,
    /// Live (unexpired) entries in the table.
    pub entries: u64,
    /// Size of the database file in bytes.
    pub bytes: u64,
}

/// The SQLite file behind `url`, or an `Unsupported` error naming `operation` for
/// in-memory and server stores (which have no file to work on), with the tools that
/// do their job for that engine. A URL no engine owns is a `Config` error.
pub fn sqlite_path(url: &str, operation: &str) -> Result<PathBuf> {
    let instead = match url_scheme(url)? {
        "postgres" | "postgresql" => {
            "for PostgreSQL use `pooledstore export` / `import` (portable JSONL) or pg_dump / \
             pg_restore"
        }
        "mysql" => {
            "for MySQL or MariaDB use `pooledstore export` / `import` (portable JSONL) or \
             mysqldump / mariadb-dump"
        }
        "etcd" => {
            "for etcd use `pooledstore export` / `import` (portable JSONL) or `etcdctl \
             snapshot save`"
        }
        _ => match SqliteLocation::parse(url)? {
            SqliteLocation::File(path) => return Ok(path),
            SqliteLocation::Memory => {
                "an in-memory store has no file and lives only as long as its process"
            }
        },
    };
    Err(StoreError::new(
        ErrorKind::Unsupported,
        format!("{operation} works on SQLite files; {instead}"),
    ))
}

/// Opens an existing database file read-write (never creating it), waiting up to
/// `busy_timeout` on locks.
pub(crate) fn open_existing(path: &Path, busy_timeout: Duration) -> Result<Connection> {
    if !path.is_file() {
        return Err(StoreError::config(format!(
            "database file {} does not exist",
            path.display()
        )));
    }
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(path, flags)
        .map_err(|e| sqlite_error(e, &format!("opening {}", path.display())))?;
    conn.busy_timeout(busy_timeout)
        .map_err(|e| sqlite_error(e, "setting busy_timeout"))?;
    Ok(conn)
}

/// Checks that the file at `path` is a sound database holding `table` in a schema this
/// build understands: `PRAGMA integrity_check`, the metadata table present, the table
/// registered at a schema version not newer than [`SCHEMA_VERSION`], its columns the
/// layout the backends create.
///
/// Errors: `Corrupt` for a damaged file or one that is not a pooledstore database (or
/// lacks the table), `Unsupported` for a newer schema, `Config` for a missing file.
pub fn verify(path: &Path, table: &str) -> Result<FileSummary> {
    let conn = open_existing(path, Duration::ZERO)?;
    let summary = verify_connection(&conn, table)?;
    let bytes = file_len(path)?;
    Ok(FileSummary { bytes, ..summary })
}

/// [`verify`] on an open connection; `bytes` is left 0.
pub(crate) fn verify_connection(conn: &Connection, table: &str) -> Result<FileSummary> {
    integrity_check(conn)?;
    let schema_version = registered_version(conn, table)?;
    let entries = live_entries(conn, table)?;
    Ok(FileSummary {
        schema_version,
        entries,
        bytes: 0,
    })
}

/// Fails with `Corrupt` unless `PRAGMA integrity_check` answers `ok`.
fn integrity_check(conn: &Connection) -> Result<()> {
    let mut problems = Vec::new();
    conn.pragma(None, "integrity_check", 5, |row| {
        problems.push(row.get::<_, String>(0)?);
        Ok(())
    })
    .map_err(|e| sqlite_error(e, "integrity_check"))?;
    if problems == ["ok"] {
        return Ok(());
    }
    Err(StoreError::new(
        ErrorKind::Corrupt,
        format!(
            "the database failed PRAGMA integrity_check: {}",
            problems.join("; ")
        ),
    ))
}

/// The schema version `table` is registered at, checking it is one this build reads.
pub(crate) fn registered_version(conn: &Connection, table: &str) -> Result<i64> {
    storage_api::backend::validate_identifier("table", table)?;
    if !table_exists(conn, META_TABLE)? {
        return Err(StoreError::new(
            ErrorKind::Corrupt,
            format!("not a pooledstore database: it has no {META_TABLE} table"),
        ));
    }
    let sql = SqliteSql::new(table);
    let version: Option<i64> = conn
        .query_row(&sql.schema_version, [table], |row| row.get(0))
        .optional()
        .map_err(|e| sqlite_error(e, "reading the schema version"))?;
    let version = match version {
        Some(version) if table_exists(conn, table)? => version,
        _ => {
            return Err(StoreError::new(
                ErrorKind::Corrupt,
                format!("the database holds no store table named {table:?}"),
            ));
        }
    };
    check_table_layout(conn, table)?;
    if version > SCHEMA_VERSION {
        return Err(StoreError::new(
            ErrorKind::Unsupported,
            format!(
                "table {table:?} has schema version {version}, newer than this build \
                 understands ({SCHEMA_VERSION}); use a newer pooledstore"
            ),
        ));
    }
    Ok(version)
}

/// Fails with `Corrupt`, naming the table and what differs, unless `table` has the
/// layout the backends create (see [`check_layout`]).
fn check_table_layout(conn: &Connection, table: &str) -> Result<()> {
    let mut stmt = conn
        .prepare(TABLE_COLUMNS)
        .map_err(|e| sqlite_error(e, "reading the table layout"))?;
    let columns = stmt
        .query_map([table], |row| {
            Ok(Column {
                name: row.get(0)?,
                decl_type: row.get(1)?,
                pk: row.get(2)?,
            })
        })
        .and_then(|rows| rows.collect::<rusqlite::Result<Vec<_>>>())
        .map_err(|e| sqlite_error(e, "reading the table layout"))?;
    check_layout(table, &columns)
}

fn table_exists(conn: &Connection, name: &str) -> Result<bool> {
    conn.query_row(
        "SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name = ?1",
        [name],
        |row| row.get::<_, i64>(0),
    )
    .map(|n| n > 0)
    .map_err(|e| sqlite_error(e, "reading the schema"))
}

fn live_entries(conn: &Connection, table: &str) -> Result<u64> {
    let now = to_unix_millis(SystemTime::now());
    let count: i64 = conn
        .query_row(
            &format!(
                "SELECT count(*) FROM \"{table}\" WHERE expires_at IS NULL OR expires_at > ?1"
            ),
            [now],
            |row| row.get(0),
        )
        .map_err(|e| sqlite_error(e, "counting entries"))?;
    Ok(u64::try_from(count).unwrap_or(0))
}

/// Switches a standalone copy to a rollback journal, so the single file holds all of
/// its data (no `-wal` beside it). The store switches back to WAL when it opens it.
pub(crate) fn make_self_contained(conn: &Connection) -> Result<()> {
    let mode: String = conn
        .query_row("PRAGMA journal_mode = DELETE", [], |row| row.get(0))
        .map_err(|e| sqlite_error(e, "setting journal_mode"))?;
    if mode.eq_ignore_ascii_case("delete") {
        Ok(())
    } else {
        Err(StoreError::new(
            ErrorKind::Backend,
            format!("the copy stayed in journal_mode {mode}"),
        ))
    }
}

/// The length of the file at `path`.
pub(crate) fn file_len(path: &Path) -> Result<u64> {
    std::fs::metadata(path)
        .map(|m| m.len())
        .map_err(|e| io_error(e, &format!("reading the size of {}", path.display())))
}

/// Maps a SQLite error met while `doing` something onto the error kinds of the contract.
pub(crate) fn sqlite_error(error: rusqlite::Error, doing: &str) -> StoreError {
    let kind = match error.sqlite_error_code() {
        Some(ErrorCode::DatabaseCorrupt | ErrorCode::NotADatabase) => ErrorKind::Corrupt,
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => ErrorKind::Busy,
        Some(ErrorCode::CannotOpen) => ErrorKind::Connection,
        _ => ErrorKind::Backend,
    };
    let detail = match kind {
        ErrorKind::Corrupt => "the file is damaged or not a database",
        ErrorKind::Busy => "the database is locked by another connection",
        _ => "SQLite failed",
    };
    StoreError::new(kind, format!("{doing}: {detail} ({error})")).with_source(error)
}

/// Maps a file-system error met while `doing` something.
pub(crate) fn io_error(error: std::io::Error, doing: &str) -> StoreError {
    StoreError::new(ErrorKind::Backend, format!("{doing}: {error}")).with_source(error)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn non_sqlite_urls_are_unsupported_and_name_the_alternatives() {
        let e = sqlite_path("postgres://u:pw@h/db", "backup").unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Unsupported);
        assert!(e.message().contains("export"), "{e}");
        assert!(!e.message().contains("pw"), "{e}");
        let e = sqlite_path("sqlite::memory:", "restore").unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Unsupported);
        assert_eq!(
            sqlite_path("sqlite://x/y.db", "backup").unwrap(),
            PathBuf::from("x/y.db")
        );
        for (url, tool) in [
            ("postgresql://h/db", "pg_dump"),
            ("mysql://h/db", "mysqldump"),
            ("etcd://h:2379", "etcdctl"),
        ] {
            let e = sqlite_path(url, "backup").unwrap_err();
            assert_eq!(e.kind(), ErrorKind::Unsupported, "{url}");
            assert!(e.message().contains(tool), "{url}: {e}");
        }
        let e = sqlite_path("redis://:pw@h", "backup").unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Config);
        assert!(!e.message().contains("pw"), "{e}");
    }
}
