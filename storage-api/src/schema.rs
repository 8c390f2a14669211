//! The SQLite table layout and statements the in-tree SQLite backends share, so a
//! database written by one opens and reads identically with the other.
//!
//! One row per key in the store's table (`key BLOB` so order is bytewise), and one row
//! per store table in `pooledstore_meta` holding its schema version and the last
//! version handed out (versions never repeat for a key, even across delete).

use std::ops::Bound;
use std::path::Path;

use crate::error::{ErrorKind, Result, StoreError};

/// The schema version this code writes and understands.
pub const SCHEMA_VERSION: i64 = 1;

/// The table holding one row per store table: schema version and version counter.
pub const META_TABLE: &str = "pooledstore_meta";

/// The SQL statements for one store table. The table name must have been validated
/// with [`validate_identifier`](crate::validate_identifier); every value is a parameter.
#[derive(Debug, Clone)]
pub struct SqliteSql {
    table: String,
    /// Creates the tables and index if missing (run in one transaction, in order).
    pub create: Vec<String>,
    /// `?1` table name: registers the table at [`SCHEMA_VERSION`] if new.
    pub register: String,
    /// `?1` table name: the stored schema version.
    pub schema_version: String,
    /// `?1` key, `?2` now (ms): value, version, expires_at of a live entry.
    pub get: String,
    /// `?1` key, `?2` now (ms): version of a live entry.
    pub live_version: String,
    /// `?1` table name: increments and returns the version counter.
    pub next_version: String,
    /// `?1` table name, `?2` a count `n`: raises the version counter by `n` and
    /// returns it, reserving the `n` versions up to and including the result.
    pub reserve_versions: String,
    /// `?1` key, `?2` value, `?3` version, `?4` expires_at (ms or NULL).
    pub upsert: String,
    /// `?1` key: deletes the row, returning its expires_at (to tell live from expired).
    pub delete: String,
    /// `?1` now (ms): deletes expired rows.
    pub purge: String,
}

impl SqliteSql {
    /// The statements for `table`.
    pub fn new(table: &str) -> Self {
        let t = format!("\"{table}\"");
        let live = "(expires_at IS NULL OR expires_at > ?2)";
        Self {
            table: t.clone(),
            create: vec![
                format!(
                    "CREATE TABLE IF NOT EXISTS {META_TABLE} (table_name TEXT PRIMARY KEY NOT NULL, \
                     schema_version INTEGER NOT NULL, last_version INTEGER NOT NULL)"
                ),
                format!(
                    "CREATE TABLE IF NOT EXISTS {t} (key BLOB PRIMARY KEY NOT NULL, value BLOB NOT NULL, \
                     version INTEGER NOT NULL, expires_at INTEGER) WITHOUT ROWID"
                ),
                format!(
                    "CREATE INDEX IF NOT EXISTS \"{table}_expires_at\" ON {t} (expires_at) \
                     WHERE expires_at IS NOT NULL"
                ),
            ],
            register: format!(
                "INSERT INTO {META_TABLE} (table_name, schema_version, last_version) \
                 VALUES (?1, {SCHEMA_VERSION}, 0) ON CONFLICT (table_name) DO NOTHING"
            ),
            schema_version: format!(
                "SELECT schema_version FROM {META_TABLE} WHERE table_name = ?1"
            ),
            get: format!("SELECT value, version, expires_at FROM {t} WHERE key = ?1 AND {live}"),
            live_version: format!("SELECT version FROM {t} WHERE key = ?1 AND {live}"),
            next_version: format!(
                "UPDATE {META_TABLE} SET last_version = last_version + 1 WHERE table_name = ?1 \
                 RETURNING last_version"
            ),
            reserve_versions: format!(
                "UPDATE {META_TABLE} SET last_version = last_version + ?2 WHERE table_name = ?1 \
                 RETURNING last_version"
            ),
            upsert: format!(
                "INSERT INTO {t} (key, value, version, expires_at) VALUES (?1, ?2, ?3, ?4) \
                 ON CONFLICT (key) DO UPDATE SET value = excluded.value, \
                 version = excluded.version, expires_at = excluded.expires_at"
            ),
            delete: format!("DELETE FROM {t} WHERE key = ?1 RETURNING expires_at"),
            purge: format!("DELETE FROM {t} WHERE expires_at IS NOT NULL AND expires_at <= ?1"),
        }
    }

    /// An upsert of `rows` rows in one statement, applied in order (a key that comes
    /// twice ends with the later row): `?1`–`?4` are the first row's key, value,
    /// version and expires_at as in [`upsert`](Self::upsert), `?5`–`?8` the second's,
    /// and so on. `rows` must be at least 1.
    pub fn upsert_rows(&self, rows: usize) -> String {
        let values: Vec<String> = (0..rows.max(1))
            .map(|row| {
                let p = row * 4;
                format!("(?{}, ?{}, ?{}, ?{})", p + 1, p + 2, p + 3, p + 4)
            })
            .collect();
        format!(
            "INSERT INTO {} (key, value, version, expires_at) VALUES {} \
             ON CONFLICT (key) DO UPDATE SET value = excluded.value, \
             version = excluded.version, expires_at = excluded.expires_at",
            self.table,
            values.join(", ")
        )
    }

    /// A read of up to `keys` keys in one statement: `?1` now (ms), `?2`… the keys.
    /// Returns key, value, version, expires_at of each live entry among them (a key
    /// passed twice is returned once). `keys` must be at least 1.
    pub fn get_many(&self, keys: usize) -> String {
        let params: Vec<String> = (0..keys.max(1)).map(|k| format!("?{}", k + 2)).collect();
        format!(
            "SELECT key, value, version, expires_at FROM {} \
             WHERE key IN ({}) AND (expires_at IS NULL OR expires_at > ?1)",
            self.table,
            params.join(", ")
        )
    }

    /// A scan selecting live rows (`?1` now in ms) between the bounds, ascending, with
    /// `LIMIT ?4`. Bind `?2` to the lower bound's key and `?3` to the upper bound's key
    /// when they are bounded (unbounded ones are left out of the SQL, but their
    /// parameter numbers are still reserved, so bind NULL there).
    pub fn scan(&self, lower: Bound<&[u8]>, upper: Bound<&[u8]>) -> String {
        let lower = match lower {
            Bound::Included(_) => " AND key >= ?2",
            Bound::Excluded(_) => " AND key > ?2",
            Bound::Unbounded => " AND ?2 IS NULL",
        };
        let upper = match upper {
            Bound::Included(_) => " AND key <= ?3",
            Bound::Excluded(_) => " AND key < ?3",
            Bound::Unbounded => " AND ?3 IS NULL",
        };
        format!(
            "SELECT key, value, version, expires_at FROM {} \
             WHERE (expires_at IS NULL OR expires_at > ?1){lower}{upper} ORDER BY key LIMIT ?4",
            self.table
        )
    }
}

/// Checks that a SQLite database file can exist at `path` and creates it, empty and
/// readable and writable by its owner only, when missing, so nothing is created
/// anywhere else. SQLite gives the WAL and shared-memory files the same permissions.
///
/// A missing directory, a parent that is not a directory, or a path that is itself a
/// directory is a `Config` error naming the path; other I/O failures are `Connection`.
pub fn prepare_database_file(path: &Path) -> Result<()> {
    match std::fs::metadata(path) {
        Ok(meta) if meta.is_dir() => {
            return Err(StoreError::config(format!(
                "database path {} is a directory",
                path.display()
            )));
        }
        Ok(_) => return Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotADirectory => {
            return Err(StoreError::config(format!(
                "the parent of database path {} is not a directory",
                path.display()
            )));
        }
        Err(e) => return Err(cannot("access database file", path, &e)),
    }
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    match std::fs::metadata(dir) {
        Ok(meta) if meta.is_dir() => {}
        Ok(_) => {
            return Err(StoreError::config(format!(
                "the parent of database path {} is not a directory",
                path.display()
            )));
        }
        Err(e) => {
            return Err(StoreError::config(format!(
                "the directory of database path {} does not exist: {e}",
                path.display()
            )));
        }
    }
    let mut open = std::fs::OpenOptions::new();
    open.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut open, 0o600);
    match open.open(path) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(cannot("create database file", path, &e)),
    }
}

fn cannot(what: &str, path: &Path, e: &std::io::Error) -> StoreError {
    StoreError::new(
        ErrorKind::Connection,
        format!("cannot {what} {}: {e}", path.display()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prepare_creates_an_owner_only_file_and_names_bad_paths() {
        let dir = std::env::temp_dir().join(format!("pooledstore-schema-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let db = dir.join("x.db");
        prepare_database_file(&db).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&db).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);
        }
        prepare_database_file(&db).unwrap();
        let missing = dir.join("nope").join("x.db");
        let e = prepare_database_file(&missing).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Config);
        assert!(e.message().contains("nope"), "{e}");
        assert!(!missing.parent().unwrap().exists());
        let under_file = db.join("x.db");
        assert_eq!(
            prepare_database_file(&under_file).unwrap_err().kind(),
            ErrorKind::Config
        );
        assert_eq!(
            prepare_database_file(&dir).unwrap_err().kind(),
            ErrorKind::Config
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
