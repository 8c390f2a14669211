//! Raw rusqlite: pooledstore's statements on a connection the caller owns. The free
//! functions are also what the raw deadpool configuration runs inside `interact`.

use rusqlite::{Connection, ErrorCode, OptionalExtension, TransactionBehavior, params};

use crate::drive::SyncTarget;
use crate::ops::{MAX_CAS_ATTEMPTS, Op, OpResult, modified};
use crate::plan::SCAN_ROWS;
use crate::sql::{Statements, TABLE, now_millis};
use crate::targets::{BUSY_TIMEOUT, OwnedRow};

/// Applies the settings every SQLite configuration uses: busy timeout first, then WAL
/// and `synchronous = NORMAL`.
pub(crate) fn configure(conn: &Connection) -> rusqlite::Result<()> {
    conn.busy_timeout(BUSY_TIMEOUT)?;
    conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get::<_, String>(0))?;
    conn.execute_batch("PRAGMA synchronous = NORMAL")
}

/// Opens and configures a connection to `path`.
pub(crate) fn open(path: &std::path::Path) -> rusqlite::Result<Connection> {
    let conn = Connection::open(path)?;
    configure(&conn)?;
    Ok(conn)
}

/// The error kind of a rusqlite error, as the bench labels it.
pub(crate) fn classify(e: &rusqlite::Error) -> &'static str {
    match e.sqlite_error_code() {
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => "busy",
        _ => "backend",
    }
}

/// A live entry's value and version.
pub(crate) fn get(
    conn: &Connection,
    s: &Statements,
    key: &[u8],
) -> rusqlite::Result<Option<(Vec<u8>, i64)>> {
    conn.prepare_cached(&s.sql.get)?
        .query_row(params![key, now_millis()], |r| {
            Ok((r.get::<_, Vec<u8>>(0)?, r.get::<_, i64>(1)?))
        })
        .optional()
}

/// Takes the next version and upserts under it; the caller holds a write transaction.
fn write(conn: &Connection, s: &Statements, key: &[u8], value: &[u8]) -> rusqlite::Result<()> {
    let version: i64 = conn
        .prepare_cached(&s.sql.next_version)?
        .query_row([TABLE], |r| r.get(0))?;
    conn.prepare_cached(&s.sql.upsert)?
        .execute(params![key, value, version, None::<i64>])?;
    Ok(())
}

/// An unconditional put: `BEGIN IMMEDIATE`, next version, upsert, commit.
pub(crate) fn put(
    conn: &mut Connection,
    s: &Statements,
    key: &[u8],
    value: &[u8],
) -> rusqlite::Result<()> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    write(&tx, s, key, value)?;
    tx.commit()
}

/// Every pair upserted in one `BEGIN IMMEDIATE` transaction.
pub(crate) fn batch(
    conn: &mut Connection,
    s: &Statements,
    pairs: &[(Vec<u8>, Vec<u8>)],
) -> rusqlite::Result<()> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    for (key, value) in pairs {
        write(&tx, s, key, value)?;
    }
    tx.commit()
}

/// Reads up to [`SCAN_ROWS`] live rows from `start` on (every column, owned, as
/// pooledstore returns them); returns how many.
pub(crate) fn scan(conn: &Connection, s: &Statements, start: &[u8]) -> rusqlite::Result<usize> {
    let mut stmt = conn.prepare_cached(&s.scan_from)?;
    let limit = SCAN_ROWS as i64;
    let rows = stmt.query_map(params![now_millis(), start, None::<Vec<u8>>, limit], |r| {
        Ok((
            r.get::<_, Vec<u8>>(0)?,
            r.get::<_, Vec<u8>>(1)?,
            r.get::<_, i64>(2)?,
            r.get::<_, Option<i64>>(3)?,
        ))
    })?;
    // Kept until the scan ends, as the stores return them (see `OwnedRow`).
    let owned = rows.collect::<rusqlite::Result<Vec<OwnedRow>>>()?;
    Ok(std::hint::black_box(owned).len())
}

/// A put conditional on the key's live version being `expected`, in one
/// `BEGIN IMMEDIATE` transaction; `false` (nothing written) when it is not.
pub(crate) fn cas_put(
    conn: &mut Connection,
    s: &Statements,
    key: &[u8],
    value: &[u8],
    expected: i64,
) -> rusqlite::Result<bool> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let current: Option<i64> = tx
        .prepare_cached(&s.sql.live_version)?
        .query_row(params![key, now_millis()], |r| r.get(0))
        .optional()?;
    if current != Some(expected) {
        return Ok(false); // dropping `tx` rolls back
    }
    write(&tx, s, key, value)?;
    tx.commit()?;
    Ok(true)
}

/// The trivial query of the acquire workload.
pub(crate) fn select_one(conn: &Connection) -> rusqlite::Result<()> {
    conn.prepare_cached("SELECT 1")?
        .query_row([], |r| r.get::<_, i64>(0))
        .map(drop)
}

/// One thread's own connection.
#[derive(Debug)]
pub(crate) struct RawConnection {
    conn: Connection,
    statements: Statements,
}

impl RawConnection {
    /// Opens a configured connection to `path`.
    pub(crate) fn open(path: &std::path::Path) -> rusqlite::Result<Self> {
        Ok(Self {
            conn: open(path)?,
            statements: Statements::new(),
        })
    }

    fn run_inner(&mut self, op: Op) -> rusqlite::Result<Result<u32, &'static str>> {
        let (conn, s) = (&mut self.conn, &self.statements);
        match op {
            Op::Get(key) => Ok(get(conn, s, &key)?.map(|_| 0).ok_or("missing")),
            Op::Put(key, value) => put(conn, s, &key, &value).map(|()| Ok(0)),
            Op::Batch(pairs) => batch(conn, s, &pairs).map(|()| Ok(0)),
            Op::Scan(start) => scan(conn, s, &start).map(|_| Ok(0)),
            Op::ReadModifyWrite(key) => {
                for attempt in 0..MAX_CAS_ATTEMPTS {
                    let Some((value, version)) = get(conn, s, &key)? else {
                        return Ok(Err("missing"));
                    };
                    if cas_put(conn, s, &key, &modified(&value), version)? {
                        return Ok(Ok(attempt));
                    }
                }
                Ok(Err("cas_exhausted"))
            }
            Op::Acquire => select_one(conn).map(|()| Ok(0)),
        }
    }
}

impl SyncTarget for RawConnection {
    fn run(&mut self, op: Op) -> OpResult {
        self.run_inner(op).unwrap_or_else(|e| Err(classify(&e)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dataset::build_template;
    use crate::ops::key;

    fn connection() -> (tempfile::TempDir, RawConnection) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        build_template(&path, 300, 1).unwrap();
        let conn = RawConnection::open(&path).unwrap();
        (dir, conn)
    }

    #[test]
    fn every_operation_succeeds_on_the_preloaded_data() {
        let (_dir, mut c) = connection();
        assert_eq!(c.run(Op::Get(key(7))), Ok(0));
        assert_eq!(c.run(Op::Get(key(300))), Err("missing"));
        assert_eq!(c.run(Op::Put(key(7), vec![1; 64])), Ok(0));
        let got = get(&c.conn, &c.statements, &key(7)).unwrap().unwrap();
        assert_eq!(got, (vec![1; 64], 301));
        let pairs = vec![(key(1), vec![2; 64]), (key(2), vec![3; 64])];
        assert_eq!(c.run(Op::Batch(pairs)), Ok(0));
        assert_eq!(
            get(&c.conn, &c.statements, &key(2)).unwrap().unwrap().1,
            303
        );
        assert_eq!(scan(&c.conn, &c.statements, &key(250)).unwrap(), 50);
        assert_eq!(scan(&c.conn, &c.statements, &key(0)).unwrap(), SCAN_ROWS);
        assert_eq!(c.run(Op::Acquire), Ok(0));
    }

    #[test]
    fn read_modify_write_increments_and_cas_refuses_stale_versions() {
        let (_dir, mut c) = connection();
        let (before, version) = get(&c.conn, &c.statements, &key(5)).unwrap().unwrap();
        assert_eq!(c.run(Op::ReadModifyWrite(key(5))), Ok(0));
        let (after, new_version) = get(&c.conn, &c.statements, &key(5)).unwrap().unwrap();
        assert_eq!(after, modified(&before));
        assert!(new_version > version);
        let stale = cas_put(&mut c.conn, &c.statements, &key(5), b"x", version).unwrap();
        assert!(!stale);
        let (unchanged, _) = get(&c.conn, &c.statements, &key(5)).unwrap().unwrap();
        assert_eq!(unchanged, after);
    }
}
