//! The SQLite table layout and statements the in-tree SQLite backends share, so a
//! database written by one opens and reads identically with the other.
//!
//! One row per key in the store's table (`key BLOB` so order is bytewise), and one row
//! per store table in `pooledstore_meta` holding its schema version and the last
//! version handed out (versions never repeat for a key, even across delete).

use std::ops::Bound;
use std::path::Path;

use storage_api::{ErrorKind, Result, StoreError};

/// The schema version this code writes and understands.
pub const SCHEMA_VERSION: i64 = 1;

/// The table holding one row per store table: schema version and version counter.
pub const META_TABLE: &str = "pooledstore_meta";

/// The SQL statements for one store table. The table name must have been validated
/// with [`validate_identifier`](storage_api::backend::validate_identifier); every value is a parameter.
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
    /// `?1` table name: increments the version counter; read it back with
    /// [`last_version`](Self::last_version) in the same transaction. Two statements
    /// cost less than [`next_version`](Self::next_version) on a connection that keeps
    /// both prepared: `RETURNING` collects its rows in a temporary table, opened,
    /// zeroed and closed on every call.
    pub bump_version: String,
    /// `?1` table name: the version counter.
    pub last_version: String,
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
            bump_version: format!(
                "UPDATE {META_TABLE} SET last_version = last_version + 1 WHERE table_name = ?1"
            ),
            last_version: format!("SELECT last_version FROM {META_TABLE} WHERE table_name = ?1"),
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

    /// A scan selecting live rows (`?1` now in ms) between the bounds, ascending, at
    /// most `?4` of them. Bind `?2` to the lower bound's key and `?3` to the upper
    /// bound's key when they are bounded (unbounded ones are left out of the SQL, but
    /// their parameter numbers are still reserved, so bind NULL there).
    ///
    /// The limit is `CAST(?4 AS INTEGER)`, not a bare `?4`: SQLite plans a bare
    /// parameter in `LIMIT` for the value bound at the time, so binding another value
    /// makes it prepare the statement again on the next step, parser and planner
    /// included, on every scan.
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
             WHERE (expires_at IS NULL OR expires_at > ?1){lower}{upper} ORDER BY key \
             LIMIT CAST(?4 AS INTEGER)",
            self.table
        )
    }
}

/// `?1` table name: 1 when a table of that name exists, else 0.
pub const TABLE_EXISTS: &str =
    "SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name = ?1";

/// What opening a store must do to its database, decided from a read alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Setup {
    /// The table is registered at this (supported) version and has our layout:
    /// nothing to write, so no write lock is taken.
    Ready(i64),
    /// Tables must be created or the table registered, in a write transaction.
    Create,
}

/// Decides, from what a read found, whether opening needs to write: `has_meta` (the
/// [`META_TABLE`] exists), `version` (the table's registered schema version) and
/// `columns` (the store table's, empty when it does not exist).
///
/// Errors: `Unsupported` for a newer schema version, `Corrupt` for an existing table
/// whose layout is not ours (see [`check_layout`]).
pub fn decide_setup(
    table: &str,
    has_meta: bool,
    version: Option<i64>,
    columns: &[Column],
) -> Result<Setup> {
    if let Some(found) = version.filter(|v| *v > SCHEMA_VERSION) {
        return Err(StoreError::new(
            ErrorKind::Unsupported,
            format!(
                "table {table} has schema version {found}, newer than the version this \
                 build supports ({SCHEMA_VERSION})"
            ),
        ));
    }
    if !columns.is_empty() {
        check_layout(table, columns)?;
    }
    match version {
        Some(found) if has_meta && !columns.is_empty() => Ok(Setup::Ready(found)),
        _ => Ok(Setup::Create),
    }
}

/// `?1` table name: each column's name, declared type (upper case) and position in
/// the primary key (0 when not part of it), in column order.
pub const TABLE_COLUMNS: &str =
    "SELECT name, upper(type), pk FROM pragma_table_info(?1) ORDER BY cid";

/// One column of a table, as [`TABLE_COLUMNS`] reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Column {
    /// Column name.
    pub name: String,
    /// Declared type, upper case.
    pub decl_type: String,
    /// Position in the primary key (1-based), 0 when not part of it.
    pub pk: i64,
}

/// The store table's columns as [`SqliteSql::create`] makes them.
const EXPECTED_COLUMNS: [(&str, &str, i64); 4] = [
    ("key", "BLOB", 1),
    ("value", "BLOB", 0),
    ("version", "INTEGER", 0),
    ("expires_at", "INTEGER", 0),
];

/// Checks that `columns` (read with [`TABLE_COLUMNS`]) are the layout this crate
/// creates: `key BLOB` primary key, `value BLOB`, `version INTEGER`, `expires_at
/// INTEGER`, nothing else. A table of the right name with another layout (a `TEXT`
/// key, say) would give wrong lookups and order, so it is `Corrupt`, naming the table
/// and every difference.
pub fn check_layout(table: &str, columns: &[Column]) -> Result<()> {
    let mut differences = Vec::new();
    for (name, decl_type, pk) in EXPECTED_COLUMNS {
        match columns.iter().find(|c| c.name.eq_ignore_ascii_case(name)) {
            None => differences.push(format!("column {name} is missing")),
            Some(found) => {
                if found.decl_type != decl_type {
                    differences.push(format!(
                        "column {name} is {:?}, expected {decl_type}",
                        found.decl_type
                    ));
                }
                if (found.pk == 1) != (pk == 1) {
                    differences.push(if pk == 1 {
                        format!("column {name} is not the primary key")
                    } else {
                        format!("column {name} is part of the primary key")
                    });
                }
            }
        }
    }
    if columns.iter().filter(|c| c.pk > 0).count() > 1 {
        differences.push("the primary key has more than one column".into());
    }
    for extra in columns.iter().filter(|c| {
        !EXPECTED_COLUMNS
            .iter()
            .any(|(n, _, _)| c.name.eq_ignore_ascii_case(n))
    }) {
        differences.push(format!("unexpected column {:?}", extra.name));
    }
    if differences.is_empty() {
        return Ok(());
    }
    Err(StoreError::new(
        ErrorKind::Corrupt,
        format!(
            "table {table:?} exists with a layout pooledstore does not use ({}); \
             use another `table` name or remove it",
            differences.join("; ")
        ),
    ))
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

    fn column(name: &str, decl_type: &str, pk: i64) -> Column {
        Column {
            name: name.into(),
            decl_type: decl_type.into(),
            pk,
        }
    }

    #[test]
    fn layout_check_names_every_difference() {
        let good = [
            column("key", "BLOB", 1),
            column("value", "BLOB", 0),
            column("version", "INTEGER", 0),
            column("expires_at", "INTEGER", 0),
        ];
        check_layout("kv", &good).unwrap();
        let foreign = [
            column("key", "TEXT", 1),
            column("value", "TEXT", 0),
            column("version", "INTEGER", 0),
        ];
        let e = check_layout("kv", &foreign).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Corrupt);
        for part in [
            "\"kv\"",
            "key is \"TEXT\"",
            "value",
            "expires_at is missing",
        ] {
            assert!(e.message().contains(part), "{part}: {e}");
        }
    }

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
