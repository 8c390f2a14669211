//! The preloaded database: built once per invocation through raw rusqlite on
//! pooledstore's schema, then copied to a fresh file for every child.

use std::path::{Path, PathBuf};

use rusqlite::{Connection, params};

use crate::ops::{key, value};
use crate::rng::SplitMix64;
use crate::sql::{Statements, TABLE};

/// Writes a database at `path` holding `keys` rows of random values, in one
/// transaction, with versions `1..=keys` and the version counter at `keys`, so every
/// configuration (raw or pooledstore) starts from the same bytes.
pub(crate) fn build_template(path: &Path, keys: u64, seed: u64) -> rusqlite::Result<()> {
    let statements = Statements::new();
    let sql = &statements.sql;
    let mut conn = Connection::open(path)?;
    conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get::<_, String>(0))?;
    let tx = conn.transaction()?;
    for create in &sql.create {
        tx.execute(create, [])?;
    }
    tx.execute(&sql.register, [TABLE])?;
    {
        let mut insert = tx.prepare(&sql.upsert)?;
        let mut rng = SplitMix64::new(seed);
        for index in 0..keys {
            let version = i64::try_from(index + 1).unwrap_or(i64::MAX);
            insert.execute(params![key(index), value(&mut rng), version, None::<i64>])?;
        }
    }
    let last = i64::try_from(keys).unwrap_or(i64::MAX);
    tx.execute(
        "UPDATE pooledstore_meta SET last_version = ?1 WHERE table_name = ?2",
        params![last, TABLE],
    )?;
    tx.commit()?;
    // Closing the last connection checkpoints the WAL into the main file.
    conn.close().map_err(|(_, e)| e)
}

/// Copies the template into `dir` as a fresh database file, on disk, and returns its
/// path. Synced here so the copy's writeback does not land in the measured window: the
/// first checkpoint's fsync would otherwise wait for all of it (hundreds of ms at 10^7
/// keys).
pub(crate) fn fresh_copy(template: &Path, dir: &Path) -> std::io::Result<PathBuf> {
    let path = dir.join("bench.db");
    std::fs::copy(template, &path)?;
    std::fs::File::open(&path)?.sync_all()?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn template_holds_every_key_and_the_version_counter() {
        let dir = tempfile::tempdir().unwrap();
        let template = dir.path().join("template.db");
        build_template(&template, 500, 1).unwrap();
        assert!(!dir.path().join("template.db-wal").exists());
        let copy_dir = tempfile::tempdir().unwrap();
        let copy = fresh_copy(&template, copy_dir.path()).unwrap();
        let conn = Connection::open(copy).unwrap();
        let rows: i64 = conn
            .query_row(&format!("SELECT count(*) FROM {TABLE}"), [], |r| r.get(0))
            .unwrap();
        assert_eq!(rows, 500);
        let last: i64 = conn
            .query_row(
                "SELECT last_version FROM pooledstore_meta WHERE table_name = ?1",
                [TABLE],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(last, 500);
        let value: Vec<u8> = conn
            .query_row(
                &format!("SELECT value FROM {TABLE} WHERE key = ?1"),
                [key(499)],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(value.len(), crate::plan::VALUE_BYTES);
        let mode: String = conn
            .query_row("PRAGMA journal_mode", [], |r| r.get(0))
            .unwrap();
        assert_eq!(mode, "wal");
    }
}
