//! The shared SQLite statements ([`SqliteSql`]) as ready-to-run sqlx strings.

use std::ops::Bound;
use std::sync::Arc;

use sqlite_common::schema::SqliteSql;
use sqlx::{AssertSqlSafe, SqlSafeStr, SqlStr};

use super::packed;

/// The row counts of the multi-row upserts a writer sends, largest first: a few
/// fixed sizes, so each connection's statement cache holds them all.
pub(crate) const UPSERT_CHUNKS: [usize; 4] = [64, 16, 4, 1];

/// The key counts of the multi-key reads the reader sends, smallest first (fewer
/// keys are padded up to the next size by repeating one).
pub(crate) const GET_CHUNKS: [usize; 4] = [1, 4, 16, 64];

/// Every statement this backend runs against the store's table, built once per store.
///
/// The table name was validated as an identifier before it reached [`SqliteSql`];
/// every value is bound as a parameter.
#[derive(Debug, Clone)]
pub(crate) struct Statements {
    /// The `CREATE` statements, in order; the first creates the meta table.
    pub(crate) create: Vec<SqlStr>,
    pub(crate) register: SqlStr,
    pub(crate) schema_version: SqlStr,
    pub(crate) get: SqlStr,
    pub(crate) live_version: SqlStr,
    pub(crate) next_version: SqlStr,
    pub(crate) reserve_versions: SqlStr,
    pub(crate) upsert: SqlStr,
    /// Multi-row upserts, one per size in [`UPSERT_CHUNKS`] (the last is `upsert`).
    upsert_chunks: Vec<SqlStr>,
    /// Multi-key reads, one per size in [`GET_CHUNKS`].
    get_chunks: Vec<SqlStr>,
    /// The scans, one per kind of lower bound and of upper bound (see [`bound_kind`]).
    scans: [[SqlStr; 3]; 3],
    /// The same scans, answered in one packed row (see [`packed`]).
    packed_scans: [[SqlStr; 3]; 3],
    pub(crate) delete: SqlStr,
    pub(crate) purge: SqlStr,
}

impl Statements {
    /// The statements for `table`, a validated identifier.
    pub(crate) fn new(table: &str) -> Self {
        let sql = SqliteSql::new(table);
        Self {
            create: sql.create.iter().map(|s| sql_str(s)).collect(),
            register: sql_str(&sql.register),
            schema_version: sql_str(&sql.schema_version),
            get: sql_str(&sql.get),
            live_version: sql_str(&sql.live_version),
            next_version: sql_str(&sql.next_version),
            reserve_versions: sql_str(&sql.reserve_versions),
            upsert: sql_str(&sql.upsert),
            upsert_chunks: UPSERT_CHUNKS
                .iter()
                .map(|&rows| sql_str(&sql.upsert_rows(rows)))
                .collect(),
            scans: [0, 1, 2].map(|lower| {
                [0, 1, 2].map(|upper| sql_str(&sql.scan(BOUNDS[lower], BOUNDS[upper])))
            }),
            packed_scans: [0, 1, 2].map(|lower| {
                [0, 1, 2].map(|upper| {
                    let scan = sql.scan(BOUNDS[lower], BOUNDS[upper]);
                    sql_str(&packed::statement(&scan))
                })
            }),
            get_chunks: GET_CHUNKS
                .iter()
                .map(|&keys| sql_str(&sql.get_many(keys)))
                .collect(),
            delete: sql_str(&sql.delete),
            purge: sql_str(&sql.purge),
        }
    }

    /// The largest multi-row upsert of at most `rows` rows (`rows` >= 1): its
    /// statement and how many rows it takes.
    pub(crate) fn upsert_chunk(&self, rows: usize) -> (SqlStr, usize) {
        let at = UPSERT_CHUNKS
            .iter()
            .position(|&size| size <= rows)
            .unwrap_or(UPSERT_CHUNKS.len() - 1);
        (self.upsert_chunks[at].clone(), UPSERT_CHUNKS[at])
    }

    /// The smallest multi-key read that takes `keys` keys, or the largest there is:
    /// its statement and how many keys it takes.
    pub(crate) fn get_chunk(&self, keys: usize) -> (SqlStr, usize) {
        let at = GET_CHUNKS
            .iter()
            .position(|&size| size >= keys)
            .unwrap_or(GET_CHUNKS.len() - 1);
        (self.get_chunks[at].clone(), GET_CHUNKS[at])
    }

    /// The scan between `lower` and `upper`; see [`SqliteSql::scan`] for its parameters.
    pub(crate) fn scan(&self, lower: Bound<&[u8]>, upper: Bound<&[u8]>) -> SqlStr {
        self.scans[bound_kind(lower)][bound_kind(upper)].clone()
    }

    /// The scan between `lower` and `upper` answered in one packed row (see
    /// [`packed::statement`]); the same parameters.
    pub(crate) fn packed_scan(&self, lower: Bound<&[u8]>, upper: Bound<&[u8]>) -> SqlStr {
        self.packed_scans[bound_kind(lower)][bound_kind(upper)].clone()
    }
}

/// One bound of each kind, in the order [`bound_kind`] numbers them (the SQL of a scan
/// depends on the kinds of its bounds, never on their keys).
const BOUNDS: [Bound<&[u8]>; 3] = [Bound::Included(&[]), Bound::Excluded(&[]), Bound::Unbounded];

/// The index of `bound`'s kind in [`BOUNDS`].
fn bound_kind(bound: Bound<&[u8]>) -> usize {
    match bound {
        Bound::Included(_) => 0,
        Bound::Excluded(_) => 1,
        Bound::Unbounded => 2,
    }
}

/// A statement string shared cheaply between calls.
fn sql_str(sql: &str) -> SqlStr {
    AssertSqlSafe(Arc::<str>::from(sql)).into_sql_str()
}
