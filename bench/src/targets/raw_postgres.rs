//! PostgreSQL: an sqlx `PgPool` used directly, and pooledstore on the same server. Each
//! child works on a table of its own (named after its process id), preloaded and
//! dropped by the child, or on a table the sweep preloaded once for many children.

use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::{AssertSqlSafe, Row, SqlSafeStr, SqlStr};

use crate::drive::{Measured, Target, Window, drive_tasks};
use crate::ops::{MAX_CAS_ATTEMPTS, Op, OpGen, OpResult, key, modified, value};
use crate::parent::POSTGRES_URL_VAR;
use crate::plan::{Config, SCAN_ROWS, pool_size};
use crate::rng::SplitMix64;
use crate::sql::now_millis;
#[cfg(feature = "pooledstore")]
use crate::targets::pooled::{Pooled, options};
use crate::targets::{ACQUIRE_TIMEOUT, owned_rows};

/// Rows per preload statement.
const PRELOAD_CHUNK: u64 = 10_000;

/// Runs the measurement for `config` on the database named by the environment: on
/// `shared`, a table [`preload_shared`] filled, or else on a table of `keys` rows of its
/// own.
pub(crate) async fn measure(
    config: Config,
    keys: u64,
    shared: Option<&str>,
    generators: Vec<OpGen>,
    window: Window,
) -> Result<Measured, String> {
    let url = url()?;
    let own = format!("bench_kv_{}", std::process::id());
    let table = shared.unwrap_or(&own);
    let admin = connect_admin(&url).await?;
    // A shared table is already filled (and, for the raw pool, created).
    let keys = if shared.is_some() { 0 } else { keys };
    let measured = match config {
        Config::PgSqlx => {
            let pool = RawPg::open(&url, table, shared.is_none())
                .await
                .map_err(|e| pg_error(&e))?;
            let pool = Arc::new(pool);
            let result = match preload(&pool.pool, &pool.sql, keys).await {
                Ok(()) => Ok(drive_tasks(pool.clone(), generators, window).await),
                Err(e) => Err(format!("preloading: {}", pg_error(&e))),
            };
            pool.pool.close().await;
            result
        }
        #[cfg(feature = "pooledstore")]
        Config::PooledPg => {
            let mut opts = options(url.clone());
            opts.table = table.to_owned();
            let store = Arc::new(Pooled::open("sqlx", opts).await?);
            // The store created its table and sequence with the names the raw anchor
            // uses; fill them the same way.
            let result = match preload(&admin, &PgStatements::new(table), keys).await {
                Ok(()) => Ok(drive_tasks(store.clone(), generators, window).await),
                Err(e) => Err(format!("preloading: {}", pg_error(&e))),
            };
            store.close().await;
            result
        }
        other => Err(format!("{other} is not compiled into this build")),
    };
    if shared.is_none() {
        drop_table(&admin, table).await;
    }
    admin.close().await;
    measured
}

/// Creates `table` with pooledstore's layout (the raw pool's, plus the store's expiry
/// index and registration when this build has pooledstore), fills it with `keys` rows
/// for many children to share, and returns its size on disk in bytes and the server's
/// cache settings.
pub(crate) async fn preload_shared(table: &str, keys: u64) -> Result<(u64, String), String> {
    let url = url()?;
    let admin = connect_admin(&url).await?;
    let result = fill_shared(&url, &admin, table, keys).await;
    admin.close().await;
    result
}

async fn fill_shared(
    url: &str,
    admin: &PgPool,
    table: &str,
    keys: u64,
) -> Result<(u64, String), String> {
    let sql = PgStatements::new(table);
    for create in &sql.create {
        sqlx::query(AssertSqlSafe(create.clone()))
            .execute(admin)
            .await
            .map_err(|e| format!("creating {table}: {}", pg_error(&e)))?;
    }
    #[cfg(feature = "pooledstore")]
    {
        let mut opts = options(url.to_owned());
        opts.table = table.to_owned();
        Pooled::open("sqlx", opts).await?.close().await;
    }
    #[cfg(not(feature = "pooledstore"))]
    let _ = url;
    preload(admin, &sql, keys)
        .await
        .map_err(|e| format!("preloading: {}", pg_error(&e)))?;
    // Set the hint bits and the planner's statistics now rather than in the first
    // measurements.
    sqlx::query(AssertSqlSafe(format!("VACUUM ANALYZE {table}")))
        .execute(admin)
        .await
        .map_err(|e| format!("vacuuming: {}", pg_error(&e)))?;
    let bytes: i64 = sqlx::query_scalar("SELECT pg_total_relation_size($1::regclass)")
        .bind(table)
        .fetch_one(admin)
        .await
        .map_err(|e| format!("sizing: {}", pg_error(&e)))?;
    let buffers: String = sqlx::query_scalar("SELECT current_setting('shared_buffers')")
        .fetch_one(admin)
        .await
        .map_err(|e| format!("reading settings: {}", pg_error(&e)))?;
    let cache = format!("shared_buffers {buffers}, then the OS page cache");
    Ok((u64::try_from(bytes).unwrap_or(0), cache))
}

/// Drops a table [`preload_shared`] made, with its sequence and registration.
pub(crate) async fn drop_shared(table: &str) -> Result<(), String> {
    let admin = connect_admin(&url()?).await?;
    drop_table(&admin, table).await;
    admin.close().await;
    Ok(())
}

fn url() -> Result<String, String> {
    std::env::var(POSTGRES_URL_VAR).map_err(|_| format!("{POSTGRES_URL_VAR} is not set"))
}

async fn connect_admin(url: &str) -> Result<PgPool, String> {
    PgPoolOptions::new()
        .max_connections(1)
        .connect(url)
        .await
        .map_err(|e| format!("connecting to PostgreSQL: {}", pg_error(&e)))
}

/// Drops `table`, its sequence and its registration, whichever exist.
async fn drop_table(admin: &PgPool, table: &str) {
    for cleanup in [
        format!("DROP TABLE IF EXISTS {table}"),
        format!("DROP SEQUENCE IF EXISTS {table}_version_seq"),
    ] {
        let _ = sqlx::query(AssertSqlSafe(cleanup)).execute(admin).await;
    }
    // pooledstore registers its tables in its meta table; the raw anchor has none.
    let _ = sqlx::query("DELETE FROM pooledstore_meta WHERE table_name = $1")
        .bind(table)
        .execute(admin)
        .await;
}

/// Fills the table with `keys` rows of random values, versions from its sequence.
async fn preload(pool: &PgPool, sql: &PgStatements, keys: u64) -> Result<(), sqlx::Error> {
    let mut rng = SplitMix64::new(0x5EED);
    let mut next = 0;
    while next < keys {
        let end = (next + PRELOAD_CHUNK).min(keys);
        let ks: Vec<Vec<u8>> = (next..end).map(key).collect();
        let vs: Vec<Vec<u8>> = (next..end).map(|_| value(&mut rng)).collect();
        sqlx::query(sql.preload.clone())
            .bind(ks)
            .bind(vs)
            .execute(pool)
            .await?;
        next = end;
    }
    Ok(())
}

fn pg_error(e: &sqlx::Error) -> String {
    // sqlx errors never carry the connection URL; the database message may name a
    // table but no user value.
    e.to_string()
}

/// The error kind of a PostgreSQL error.
fn classify(e: &sqlx::Error) -> &'static str {
    match e {
        sqlx::Error::PoolTimedOut => "timeout",
        sqlx::Error::PoolClosed => "closed",
        sqlx::Error::Database(db) => match db.code().as_deref() {
            Some("40001" | "40P01") => "conflict",
            // admin_shutdown, crash_shutdown, cannot_connect_now: the server ended it.
            Some("57P01" | "57P02" | "57P03") => "connection",
            _ => "backend",
        },
        sqlx::Error::Io(_) => "connection",
        _ => "backend",
    }
}

/// How long a raw write keeps retrying serialization conflicts, and its backoff: the
/// same policy as backend-sqlx's PostgreSQL store.
const CONFLICT_BUDGET: Duration = Duration::from_secs(5);
const FIRST_BACKOFF: Duration = Duration::from_millis(1);
const MAX_BACKOFF: Duration = Duration::from_millis(64);

fn is_conflict(e: &sqlx::Error) -> bool {
    classify(e) == "conflict"
}

/// The anchor's statements: backend-sqlx's PostgreSQL layout (a `bytea` keyed table,
/// versions from the table's own sequence) and its statements.
#[derive(Debug)]
struct PgStatements {
    create: Vec<String>,
    get: SqlStr,
    current: SqlStr,
    upsert: SqlStr,
    scan_from: SqlStr,
    preload: SqlStr,
}

impl PgStatements {
    fn new(table: &str) -> Self {
        let sequence = format!("{table}_version_seq");
        let sql = |s: String| AssertSqlSafe(Arc::<str>::from(s)).into_sql_str();
        Self {
            create: vec![
                format!("CREATE SEQUENCE {sequence} AS bigint MINVALUE 1"),
                format!(
                    "CREATE TABLE {table} (key bytea PRIMARY KEY, value bytea NOT NULL, \
                     version bigint NOT NULL, expires_at bigint)"
                ),
            ],
            get: sql(format!(
                "SELECT value, version, expires_at FROM {table} \
                 WHERE key = $1 AND (expires_at IS NULL OR expires_at > $2)"
            )),
            current: sql(format!(
                "SELECT version, expires_at FROM {table} WHERE key = $1"
            )),
            upsert: sql(format!(
                "INSERT INTO {table} (key, value, version, expires_at) \
                 VALUES ($1, $2, nextval('{sequence}'), $3) \
                 ON CONFLICT (key) DO UPDATE SET value = excluded.value, \
                 version = excluded.version, expires_at = excluded.expires_at \
                 RETURNING version"
            )),
            scan_from: sql(format!(
                "SELECT key, value, version, expires_at FROM {table} \
                 WHERE (expires_at IS NULL OR expires_at > $1) AND key >= $2 ORDER BY key LIMIT $3"
            )),
            preload: sql(format!(
                "INSERT INTO {table} (key, value, version) \
                 SELECT k, v, nextval('{sequence}') FROM UNNEST($1::bytea[], $2::bytea[]) AS u(k, v)"
            )),
        }
    }
}

/// An sqlx `PgPool` of [`pool_size`] connections set up as backend-sqlx sets up its
/// own: sessions default to `SERIALIZABLE`, no ping before each checkout; otherwise
/// sqlx's defaults.
#[derive(Debug)]
pub(crate) struct RawPg {
    pool: PgPool,
    sql: PgStatements,
}

impl RawPg {
    /// Opens the pool on `table`, creating the table and its sequence with `create`.
    async fn open(url: &str, table: &str, create: bool) -> Result<Self, sqlx::Error> {
        let options = PgConnectOptions::from_str(url)?
            .options([("default_transaction_isolation", "serializable")]);
        let pool = PgPoolOptions::new()
            .max_connections(pool_size())
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .test_before_acquire(false)
            .connect_with(options)
            .await?;
        let sql = PgStatements::new(table);
        for statement in sql.create.iter().filter(|_| create) {
            sqlx::query(AssertSqlSafe(statement.clone()))
                .execute(&pool)
                .await?;
        }
        Ok(Self { pool, sql })
    }

    async fn get(&self, key: &[u8]) -> Result<Option<(Vec<u8>, i64)>, sqlx::Error> {
        let row = sqlx::query(self.sql.get.clone())
            .bind(key)
            .bind(now_millis())
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| Ok((r.try_get(0)?, r.try_get(1)?))).transpose()
    }

    /// One serializable write transaction: for each pair, the key's current row is
    /// read (and, with `expected`, compared), then upserted. `Ok(false)` when the
    /// expected version did not match (nothing written).
    async fn try_write(
        &self,
        pairs: &[(Vec<u8>, Vec<u8>)],
        expected: Option<i64>,
    ) -> Result<bool, sqlx::Error> {
        let mut tx = self
            .pool
            .begin_with("BEGIN ISOLATION LEVEL SERIALIZABLE")
            .await?;
        for (key, value) in pairs {
            let current: Option<(i64, Option<i64>)> = sqlx::query_as(self.sql.current.clone())
                .bind(key)
                .fetch_optional(&mut *tx)
                .await?;
            if let Some(expected) = expected {
                let now = now_millis();
                let live = current.filter(|(_, at)| at.is_none_or(|at| at > now));
                if live.map(|(v, _)| v) != Some(expected) {
                    tx.rollback().await?;
                    return Ok(false);
                }
            }
            let _: i64 = sqlx::query_scalar(self.sql.upsert.clone())
                .bind(key)
                .bind(value)
                .bind(None::<i64>)
                .fetch_one(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(true)
    }

    /// [`try_write`](Self::try_write), retrying serialization conflicts with backoff.
    async fn write(
        &self,
        pairs: &[(Vec<u8>, Vec<u8>)],
        expected: Option<i64>,
    ) -> Result<bool, sqlx::Error> {
        let started = Instant::now();
        let mut backoff = FIRST_BACKOFF;
        loop {
            match self.try_write(pairs, expected).await {
                Err(e) if is_conflict(&e) && started.elapsed() < CONFLICT_BUDGET => {
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                }
                other => return other,
            }
        }
    }

    async fn run_inner(&self, op: Op) -> Result<OpResult, sqlx::Error> {
        Ok(match op {
            Op::Get(key) => self.get(&key).await?.map(|_| 0).ok_or("missing"),
            Op::Put(key, value) => self.write(&[(key, value)], None).await.map(|_| Ok(0))?,
            Op::Batch(pairs) => self.write(&pairs, None).await.map(|_| Ok(0))?,
            Op::Scan(start) => {
                let rows = sqlx::query(self.sql.scan_from.clone())
                    .bind(now_millis())
                    .bind(start)
                    .bind(SCAN_ROWS as i64)
                    .fetch_all(&self.pool)
                    .await?;
                owned_rows(&rows)?;
                Ok(0)
            }
            Op::ReadModifyWrite(key) => {
                for attempt in 0..MAX_CAS_ATTEMPTS {
                    let Some((value, version)) = self.get(&key).await? else {
                        return Ok(Err("missing"));
                    };
                    let pair = [(key.clone(), modified(&value))];
                    if self.write(&pair, Some(version)).await? {
                        return Ok(Ok(attempt));
                    }
                }
                Err("cas_exhausted")
            }
            Op::Acquire => {
                let mut conn = self.pool.acquire().await?;
                let _: i32 = sqlx::query_scalar("SELECT 1").fetch_one(&mut *conn).await?;
                Ok(0)
            }
        })
    }
}

impl Target for RawPg {
    async fn run(&self, op: Op) -> OpResult {
        self.run_inner(op)
            .await
            .unwrap_or_else(|e| Err(classify(&e)))
    }
}
