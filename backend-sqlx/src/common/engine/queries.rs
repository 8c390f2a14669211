//! [`Queries`]: the statements the shared layer runs, for any sqlx database whose driver
//! binds and reads the store's column types. One implementation serves every engine, so
//! the rest of the layer needs no bound beyond [`Engine`](super::Engine).

use futures::future::BoxFuture;
use sqlx::query::Query;
use sqlx::{Database, Encode, Executor, FromRow, IntoArguments, SqlStr, Type};

/// A live entry as a read returns it: value, version, expires_at (ms).
pub(crate) type StoredRow = (Vec<u8>, i64, Option<i64>);

/// An entry as a scan returns it: key, value, version, expires_at (ms).
pub(crate) type ScannedRow = (Vec<u8>, Vec<u8>, i64, Option<i64>);

/// A key's row as a write sees it: version, expires_at (ms).
pub(crate) type CurrentRow = (i64, Option<i64>);

/// A key's row as a write of many keys sees it: key, version, expires_at (ms).
pub(crate) type KeyedRow = (Vec<u8>, i64, Option<i64>);

/// One bound parameter.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Param<'a> {
    /// A key.
    Bytes(&'a [u8]),
    /// A time (ms) or a limit.
    Int(i64),
}

/// Running the shared layer's statements on one connection, each with its parameters
/// bound in order.
pub(crate) trait Queries: Database {
    /// At most one [`StoredRow`].
    fn fetch_stored<'c>(
        conn: &'c mut Self::Connection,
        sql: SqlStr,
        params: &[Param<'_>],
    ) -> BoxFuture<'c, sqlx::Result<Option<StoredRow>>>;

    /// At most one [`CurrentRow`].
    fn fetch_current<'c>(
        conn: &'c mut Self::Connection,
        sql: SqlStr,
        params: &[Param<'_>],
    ) -> BoxFuture<'c, sqlx::Result<Option<CurrentRow>>>;

    /// Every [`ScannedRow`].
    fn fetch_scanned<'c>(
        conn: &'c mut Self::Connection,
        sql: SqlStr,
        params: &[Param<'_>],
    ) -> BoxFuture<'c, sqlx::Result<Vec<ScannedRow>>>;

    /// Runs a statement that returns no rows.
    fn execute<'c>(
        conn: &'c mut Self::Connection,
        sql: SqlStr,
        params: &[Param<'_>],
    ) -> BoxFuture<'c, sqlx::Result<Self::QueryResult>>;

    /// The one row of a text-protocol query without parameters.
    fn fetch_raw<'c>(
        conn: &'c mut Self::Connection,
        sql: &'static str,
    ) -> BoxFuture<'c, sqlx::Result<Self::Row>>;

    /// Runs `SELECT 1` as a prepared statement (cached on the connection).
    fn select_one<'c>(conn: &'c mut Self::Connection) -> BoxFuture<'c, sqlx::Result<()>>;

    /// Runs a text-protocol statement without parameters.
    fn execute_raw<'c>(
        conn: &'c mut Self::Connection,
        sql: &'static str,
    ) -> BoxFuture<'c, sqlx::Result<Self::QueryResult>>;
}

impl<DB> Queries for DB
where
    DB: Database,
    DB::Arguments: IntoArguments<DB>,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'a> &'a [u8]: Encode<'a, DB> + Type<DB>,
    for<'a> i64: Encode<'a, DB> + Type<DB>,
    StoredRow: for<'r> FromRow<'r, DB::Row>,
    CurrentRow: for<'r> FromRow<'r, DB::Row>,
    ScannedRow: for<'r> FromRow<'r, DB::Row>,
{
    fn fetch_stored<'c>(
        conn: &'c mut Self::Connection,
        sql: SqlStr,
        params: &[Param<'_>],
    ) -> BoxFuture<'c, sqlx::Result<Option<StoredRow>>> {
        let query = bound(sql, params);
        Box::pin(async move {
            let row = conn.fetch_optional(query).await?;
            row.map(|row| StoredRow::from_row(&row)).transpose()
        })
    }

    fn fetch_current<'c>(
        conn: &'c mut Self::Connection,
        sql: SqlStr,
        params: &[Param<'_>],
    ) -> BoxFuture<'c, sqlx::Result<Option<CurrentRow>>> {
        let query = bound(sql, params);
        Box::pin(async move {
            let row = conn.fetch_optional(query).await?;
            row.map(|row| CurrentRow::from_row(&row)).transpose()
        })
    }

    fn fetch_scanned<'c>(
        conn: &'c mut Self::Connection,
        sql: SqlStr,
        params: &[Param<'_>],
    ) -> BoxFuture<'c, sqlx::Result<Vec<ScannedRow>>> {
        let query = bound(sql, params);
        Box::pin(async move {
            let rows = conn.fetch_all(query).await?;
            rows.iter().map(ScannedRow::from_row).collect()
        })
    }

    fn execute<'c>(
        conn: &'c mut Self::Connection,
        sql: SqlStr,
        params: &[Param<'_>],
    ) -> BoxFuture<'c, sqlx::Result<Self::QueryResult>> {
        conn.execute(bound(sql, params))
    }

    fn fetch_raw<'c>(
        conn: &'c mut Self::Connection,
        sql: &'static str,
    ) -> BoxFuture<'c, sqlx::Result<Self::Row>> {
        conn.fetch_one(sqlx::raw_sql(sql))
    }

    fn execute_raw<'c>(
        conn: &'c mut Self::Connection,
        sql: &'static str,
    ) -> BoxFuture<'c, sqlx::Result<Self::QueryResult>> {
        conn.execute(sqlx::raw_sql(sql))
    }

    fn select_one<'c>(conn: &'c mut Self::Connection) -> BoxFuture<'c, sqlx::Result<()>> {
        Box::pin(async move { conn.fetch_optional(sqlx::query("SELECT 1")).await.map(drop) })
    }
}

/// `sql` with `params` bound in order.
fn bound<DB>(sql: SqlStr, params: &[Param<'_>]) -> Query<'static, DB, DB::Arguments>
where
    DB: Database,
    for<'a> &'a [u8]: Encode<'a, DB> + Type<DB>,
    for<'a> i64: Encode<'a, DB> + Type<DB>,
{
    let mut query = sqlx::query(sql);
    for param in params {
        query = match *param {
            Param::Bytes(bytes) => query.bind(bytes),
            Param::Int(int) => query.bind(int),
        };
    }
    query
}
