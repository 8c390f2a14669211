//! MySQL/MariaDB: an sqlx `MySqlPool` used directly, and pooledstore on the same
//! server. Each child works on a table of its own (named after its process id),
//! preloaded and dropped by the child, or on a table the sweep preloaded once for many
//! children.

use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use sqlx::mysql::{MySqlConnectOptions, MySqlPool, MySqlPoolOptions};
use sqlx::{AssertSqlSafe, Executor, Row, SqlSafeStr, SqlStr};

use crate::drive::{Measured, Target, Window, drive_tasks};
use crate::ops::{MAX_CAS_ATTEMPTS, Op, OpGen, OpResult, key, modified, value};
use crate::parent::MYSQL_URL_VAR;
use crate::plan::{Config, SCAN_ROWS, pool_size};
use crate::rng::SplitMix64;
use crate::sql::now_millis;
#[cfg(feature = "pooledstore")]
use crate::targets::pooled::{Pooled, options};
use crate::targets::{ACQUIRE_TIMEOUT, owned_rows};

/// Rows per preload statement (three placeholders each, well under MySQL's 65,535).
const PRELOAD_CHUNK: u64 = 5_000;

/// How long a raw write keeps retrying deadlocks, and its backoff: the same policy as
/// backend-sqlx's MySQL store.
const CONFLICT_BUDGET: Duration = Duration::from_secs(5);
const FIRST_BACKOFF: Duration = Duration::from_millis(1);
const MAX_BACKOFF: Duration = Duration::from_millis(64);

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
    let sql = MyStatements::new(table);
    // A shared table is already filled (and, for the raw pool, created).
    let keys = if shared.is_some() { 0 } else { keys };
    let measured = match config {
        Config::MysqlSqlx => {
            let pool = Arc::new(
                RawMysql::open(&url, table, shared.is_none())
                    .await
                    .map_err(|e| e.to_string())?,
            );
            let result = match preload(&pool.pool, &sql, keys).await {
                Ok(()) => Ok(drive_tasks(pool.clone(), generators, window).await),
                Err(e) => Err(format!("preloading: {e}")),
            };
            pool.pool.close().await;
            result
        }
        #[cfg(feature = "pooledstore")]
        Config::PooledMysql => {
            let mut opts = options(url.clone());
            opts.table = table.to_owned();
            let store = Arc::new(Pooled::open("sqlx", opts).await?);
            // The store created its table and sequence table with the names the raw
            // anchor uses; fill them the same way.
            let result = match preload(&admin, &sql, keys).await {
                Ok(()) => Ok(drive_tasks(store.clone(), generators, window).await),
                Err(e) => Err(format!("preloading: {e}")),
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

/// Creates `table` and its sequence table with pooledstore's layout (registered in
/// pooledstore's meta table when this build has pooledstore), fills it with `keys` rows
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
    admin: &MySqlPool,
    table: &str,
    keys: u64,
) -> Result<(u64, String), String> {
    let sql = MyStatements::new(table);
    for create in &sql.create {
        admin
            .execute(AssertSqlSafe(create.clone()))
            .await
            .map_err(|e| format!("creating {table}: {e}"))?;
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
        .map_err(|e| format!("preloading: {e}"))?;
    // Fresh statistics, so the size below is not a guess from the empty table.
    admin
        .execute(AssertSqlSafe(format!("ANALYZE TABLE {table}")))
        .await
        .map_err(|e| format!("analyzing: {e}"))?;
    let bytes: Option<u64> = sqlx::query_scalar(
        "SELECT CAST(data_length + index_length AS UNSIGNED) FROM information_schema.tables \
         WHERE table_schema = DATABASE() AND table_name = ?",
    )
    .bind(table)
    .fetch_optional(admin)
    .await
    .map_err(|e| format!("sizing: {e}"))?;
    let (pool, flush): (u64, String) = sqlx::query_as(
        "SELECT CAST(@@innodb_buffer_pool_size AS UNSIGNED), CAST(@@innodb_flush_method AS CHAR)",
    )
    .fetch_one(admin)
    .await
    .map_err(|e| format!("reading settings: {e}"))?;
    let cache = format!(
        "innodb_buffer_pool_size {} MiB, innodb_flush_method {flush}",
        pool / 1_048_576
    );
    Ok((bytes.unwrap_or(0), cache))
}

/// Drops a table [`preload_shared`] made, with its sequence table and registration.
pub(crate) async fn drop_shared(table: &str) -> Result<(), String> {
    let admin = connect_admin(&url()?).await?;
    drop_table(&admin, table).await;
    admin.close().await;
    Ok(())
}

fn url() -> Result<String, String> {
    std::env::var(MYSQL_URL_VAR).map_err(|_| format!("{MYSQL_URL_VAR} is not set"))
}

async fn connect_admin(url: &str) -> Result<MySqlPool, String> {
    MySqlPoolOptions::new()
        .max_connections(1)
        .connect(url)
        .await
        .map_err(|e| format!("connecting to MySQL: {e}"))
}

/// Drops `table`, its sequence table and its registration, whichever exist.
async fn drop_table(admin: &MySqlPool, table: &str) {
    for cleanup in [
        format!("DROP TABLE IF EXISTS {table}"),
        format!("DROP TABLE IF EXISTS {table}_version_seq"),
    ] {
        let _ = admin.execute(AssertSqlSafe(cleanup)).await;
    }
    // pooledstore registers its tables in its meta table; the raw anchor has none.
    let _ = sqlx::query("DELETE FROM pooledstore_meta WHERE table_name = ?")
        .bind(table)
        .execute(admin)
        .await;
}

/// Fills the table with `keys` rows of random values, versions 1..=keys, and moves the
/// version counter past them; with no keys, leaves the table and its counter alone.
async fn preload(pool: &MySqlPool, sql: &MyStatements, keys: u64) -> Result<(), sqlx::Error> {
    if keys == 0 {
        return Ok(());
    }
    let mut rng = SplitMix64::new(0x5EED);
    let mut next = 0;
    while next < keys {
        let end = (next + PRELOAD_CHUNK).min(keys);
        let rows = vec!["(?, ?, ?)"; usize::try_from(end - next).unwrap_or(0)].join(", ");
        let statement = format!("{}{rows}", sql.preload);
        let mut query = sqlx::query(AssertSqlSafe(statement));
        for n in next..end {
            query = query.bind(key(n)).bind(value(&mut rng)).bind(n as i64 + 1);
        }
        query.execute(pool).await?;
        next = end;
    }
    let counter = format!("ALTER TABLE {} AUTO_INCREMENT = {}", sql.sequence, keys + 1);
    pool.execute(AssertSqlSafe(counter)).await?;
    Ok(())
}

/// The error kind of a MySQL error.
fn classify(e: &sqlx::Error) -> &'static str {
    match e {
        sqlx::Error::PoolTimedOut => "timeout",
        sqlx::Error::PoolClosed => "closed",
        sqlx::Error::Database(db) => match db.code().as_deref() {
            // Deadlocks (1213) and serialization failures.
            Some("40001") => "conflict",
            Some(c) if c.starts_with("08") => "connection",
            _ => "backend",
        },
        sqlx::Error::Io(_) => "connection",
        _ => "backend",
    }
}

fn is_conflict(e: &sqlx::Error) -> bool {
    classify(e) == "conflict"
}

/// The anchor's statements: backend-sqlx's MySQL layout (a `VARBINARY` keyed InnoDB
/// table, versions from an `AUTO_INCREMENT` table) and its statements.
#[derive(Debug)]
struct MyStatements {
    sequence: String,
    create: Vec<String>,
    get: SqlStr,
    current: SqlStr,
    draw: SqlStr,
    forget: SqlStr,
    upsert: SqlStr,
    scan_from: SqlStr,
    preload: String,
}

impl MyStatements {
    fn new(table: &str) -> Self {
        let sequence = format!("{table}_version_seq");
        let sql = |s: String| AssertSqlSafe(Arc::<str>::from(s)).into_sql_str();
        Self {
            create: vec![
                format!(
                    "CREATE TABLE {sequence} (id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY) \
                     ENGINE=InnoDB"
                ),
                format!(
                    "CREATE TABLE {table} (`key` VARBINARY(1024) NOT NULL PRIMARY KEY, \
                     `value` LONGBLOB NOT NULL, version BIGINT NOT NULL, expires_at BIGINT NULL, \
                     KEY {table}_expires_at (expires_at)) ENGINE=InnoDB"
                ),
            ],
            get: sql(format!(
                "SELECT `value`, version, expires_at FROM {table} \
                 WHERE `key` = ? AND (expires_at IS NULL OR expires_at > ?)"
            )),
            current: sql(format!(
                "SELECT version, expires_at FROM {table} WHERE `key` = ? FOR UPDATE"
            )),
            draw: sql(format!("INSERT INTO {sequence} () VALUES ()")),
            forget: sql(format!("DELETE FROM {sequence} WHERE id = ?")),
            upsert: sql(format!(
                "INSERT INTO {table} (`key`, `value`, version, expires_at) VALUES (?, ?, ?, ?) \
                 ON DUPLICATE KEY UPDATE `value` = VALUES(`value`), version = VALUES(version), \
                 expires_at = VALUES(expires_at)"
            )),
            scan_from: sql(format!(
                "SELECT `key`, `value`, version, expires_at FROM {table} \
                 WHERE (expires_at IS NULL OR expires_at > ?) AND `key` >= ? ORDER BY `key` LIMIT ?"
            )),
            preload: format!("INSERT INTO {table} (`key`, `value`, version) VALUES "),
            sequence,
        }
    }
}

/// An sqlx `MySqlPool` of [`pool_size`] connections set up as backend-sqlx sets up its
/// own: `SERIALIZABLE` sessions, no ping before each checkout; otherwise sqlx's
/// defaults.
#[derive(Debug)]
pub(crate) struct RawMysql {
    pool: MySqlPool,
    sql: MyStatements,
}

impl RawMysql {
    /// Opens the pool on `table`, creating the table and its sequence table with
    /// `create`.
    async fn open(url: &str, table: &str, create: bool) -> Result<Self, sqlx::Error> {
        let options = MySqlConnectOptions::from_str(url)?;
        let pool = MySqlPoolOptions::new()
            .max_connections(pool_size())
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .test_before_acquire(false)
            .after_connect(|conn, _meta| {
                Box::pin(async move {
                    conn.execute("SET SESSION TRANSACTION ISOLATION LEVEL SERIALIZABLE")
                        .await
                        .map(drop)
                })
            })
            .connect_with(options)
            .await?;
        let sql = MyStatements::new(table);
        for statement in sql.create.iter().filter(|_| create) {
            pool.execute(AssertSqlSafe(statement.clone())).await?;
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
    /// read for update (and, with `expected`, compared), a version drawn, and the row
    /// upserted. `Ok(false)` when the expected version did not match (nothing written).
    async fn try_write(
        &self,
        pairs: &[(Vec<u8>, Vec<u8>)],
        expected: Option<i64>,
    ) -> Result<bool, sqlx::Error> {
        let mut tx = self.pool.begin().await?;
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
            let id = sqlx::query(self.sql.draw.clone())
                .execute(&mut *tx)
                .await?
                .last_insert_id() as i64;
            sqlx::query(self.sql.forget.clone())
                .bind(id)
                .execute(&mut *tx)
                .await?;
            sqlx::query(self.sql.upsert.clone())
                .bind(key)
                .bind(value)
                .bind(id)
                .bind(None::<i64>)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(true)
    }

    /// [`try_write`](Self::try_write), retrying deadlocks with backoff.
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

impl Target for RawMysql {
    async fn run(&self, op: Op) -> OpResult {
        self.run_inner(op)
            .await
            .unwrap_or_else(|e| Err(classify(&e)))
    }
}
