//! The configurations under test, each a [`Target`](crate::drive::Target) or
//! [`SyncTarget`](crate::drive::SyncTarget).

pub(crate) mod raw_deadpool;
pub(crate) mod raw_rusqlite;
pub(crate) mod raw_sqlx;

#[cfg(feature = "pooledstore")]
pub(crate) mod pooled;

#[cfg(feature = "etcd")]
pub(crate) mod raw_etcd;
#[cfg(feature = "mysql")]
pub(crate) mod raw_mysql;
#[cfg(feature = "postgres")]
pub(crate) mod raw_postgres;

/// SQLite's busy timeout in every configuration.
pub(crate) const BUSY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// How long a pool waits for a free connection before a `timeout` error.
pub(crate) const ACQUIRE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// A scanned row as every raw target hands it over: owned key, value, version and
/// expiry, as a store's `scan` returns its entries.
pub(crate) type OwnedRow = (Vec<u8>, Vec<u8>, i64, Option<i64>);

/// Decodes the rows of a sqlx scan into [`OwnedRow`]s, all kept until the scan ends (as
/// a store's `scan` returns them together) and marked as used, so that no decode or
/// copy is optimised away; returns how many.
pub(crate) fn owned_rows<R>(rows: &[R]) -> Result<usize, sqlx::Error>
where
    R: sqlx::Row,
    OwnedRow: for<'r> sqlx::FromRow<'r, R>,
{
    let owned = rows
        .iter()
        .map(<OwnedRow as sqlx::FromRow<'_, R>>::from_row)
        .collect::<Result<Vec<_>, _>>()?;
    Ok(std::hint::black_box(owned).len())
}
