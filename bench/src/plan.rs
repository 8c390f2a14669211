//! What gets measured: the configurations, the workloads and the concurrency levels.

use std::fmt;

/// Data sizes a sweep (`--sweep`) preloads unless `--sweep-keys` says otherwise.
pub(crate) const SWEEP_KEYS: [u64; 3] = [100_000, 1_000_000, 10_000_000];
/// Pool sizes the sweep runs at unless `--sweep-pools` says otherwise.
pub(crate) const SWEEP_POOLS: [u32; 6] = [1, 2, 4, 8, 16, 32];
/// Concurrency of the sweep unless `--tasks` says otherwise: more tasks than the
/// largest pools but one, so every pool size up to 16 has waiters.
pub(crate) const SWEEP_TASKS: [u32; 1] = [16];

/// Connections in every pool under test unless `--connections` says otherwise.
pub(crate) const DEFAULT_POOL_SIZE: u32 = 8;

static POOL_SIZE: std::sync::OnceLock<u32> = std::sync::OnceLock::new();

/// Sets the pool size of this process (once, from `--connections`).
pub(crate) fn set_pool_size(size: u32) {
    let _ = POOL_SIZE.set(size);
}

/// Connections in every pool under test.
pub(crate) fn pool_size() -> u32 {
    *POOL_SIZE.get().unwrap_or(&DEFAULT_POOL_SIZE)
}
/// Concurrent tasks (or, for raw rusqlite, threads) per measurement unless `--tasks`
/// says otherwise.
pub(crate) const CONCURRENCY: [u32; 2] = [1, 16];
/// OS threads raw rusqlite uses when asked for more than one task (one per core).
pub(crate) const RUSQLITE_THREADS: u32 = 2;
/// Tokio worker threads of the async configurations.
pub(crate) const TOKIO_WORKERS: usize = 2;
/// Writes per batch operation.
pub(crate) const BATCH_OPS: usize = 100;
/// Rows per scan operation.
pub(crate) const SCAN_ROWS: usize = 100;
/// Bytes per value.
pub(crate) const VALUE_BYTES: usize = 64;

/// One way of reaching the database.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum Config {
    /// rusqlite on plain OS threads, one connection per thread, no pool.
    Rusqlite,
    /// A deadpool-sqlite pool used directly (`pool.get()` + `interact`).
    Deadpool,
    /// An sqlx `SqlitePool` used directly.
    Sqlx,
    /// pooledstore through backend-sqlx.
    PooledSqlx,
    /// pooledstore through backend-deadpool.
    PooledDeadpool,
    /// An sqlx `PgPool` used directly.
    PgSqlx,
    /// pooledstore through backend-sqlx on PostgreSQL.
    PooledPg,
    /// An sqlx `MySqlPool` used directly.
    MysqlSqlx,
    /// pooledstore through backend-sqlx on MySQL/MariaDB.
    PooledMysql,
    /// An etcd-client `Client` used directly.
    EtcdClient,
    /// pooledstore through backend-etcd.
    PooledEtcd,
}

impl Config {
    /// Every configuration, in run and report order.
    pub(crate) const ALL: [Config; 11] = [
        Config::Rusqlite,
        Config::Deadpool,
        Config::Sqlx,
        Config::PooledDeadpool,
        Config::PooledSqlx,
        Config::PgSqlx,
        Config::PooledPg,
        Config::MysqlSqlx,
        Config::PooledMysql,
        Config::EtcdClient,
        Config::PooledEtcd,
    ];

    /// The name used on the command line and in JSON.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::Rusqlite => "rusqlite",
            Self::Deadpool => "deadpool",
            Self::Sqlx => "sqlx",
            Self::PooledSqlx => "pooledstore-sqlx",
            Self::PooledDeadpool => "pooledstore-deadpool",
            Self::PgSqlx => "pg-sqlx",
            Self::PooledPg => "pooledstore-pg",
            Self::MysqlSqlx => "mysql-sqlx",
            Self::PooledMysql => "pooledstore-mysql",
            Self::EtcdClient => "etcd-client",
            Self::PooledEtcd => "pooledstore-etcd",
        }
    }

    /// Looks a configuration up by name.
    pub(crate) fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.name() == name)
    }

    /// The raw pool a pooledstore configuration wraps, for the "vs pool" ratio.
    pub(crate) fn wraps(self) -> Option<Config> {
        match self {
            Self::PooledSqlx => Some(Self::Sqlx),
            Self::PooledDeadpool => Some(Self::Deadpool),
            Self::PooledPg => Some(Self::PgSqlx),
            Self::PooledMysql => Some(Self::MysqlSqlx),
            Self::PooledEtcd => Some(Self::EtcdClient),
            _ => None,
        }
    }

    /// Whether this configuration talks to PostgreSQL.
    pub(crate) fn is_postgres(self) -> bool {
        matches!(self, Self::PgSqlx | Self::PooledPg)
    }

    /// Whether this configuration talks to MySQL/MariaDB.
    pub(crate) fn is_mysql(self) -> bool {
        matches!(self, Self::MysqlSqlx | Self::PooledMysql)
    }

    /// Whether this configuration talks to etcd.
    pub(crate) fn is_etcd(self) -> bool {
        matches!(self, Self::EtcdClient | Self::PooledEtcd)
    }

    /// Whether this build can run it (pooledstore and PostgreSQL are Cargo features).
    pub(crate) fn compiled(self) -> bool {
        match self {
            Self::Rusqlite | Self::Deadpool | Self::Sqlx => true,
            Self::PooledSqlx | Self::PooledDeadpool => cfg!(feature = "pooledstore"),
            Self::PgSqlx => cfg!(feature = "postgres"),
            Self::PooledPg => cfg!(all(feature = "postgres", feature = "pooledstore")),
            Self::MysqlSqlx => cfg!(feature = "mysql"),
            Self::PooledMysql => cfg!(all(feature = "mysql", feature = "pooledstore")),
            Self::EtcdClient => cfg!(feature = "etcd"),
            Self::PooledEtcd => cfg!(all(feature = "etcd", feature = "pooledstore")),
        }
    }

    /// How many tasks or threads actually drive a measurement at `concurrency`.
    pub(crate) fn workers(self, concurrency: u32) -> u32 {
        match self {
            Self::Rusqlite => concurrency.min(RUSQLITE_THREADS),
            _ => concurrency,
        }
    }
}

impl fmt::Display for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What the workers do, over and over.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum Workload {
    /// `get` of a uniformly chosen key.
    PointRead,
    /// Unconditional single-row upsert of a uniformly chosen key.
    Put,
    /// One atomic batch of [`BATCH_OPS`] upserts of uniformly chosen keys.
    Batch,
    /// [`SCAN_ROWS`] consecutive keys from a uniformly chosen start.
    Scan,
    /// YCSB A: 50% reads, 50% updates, zipfian keys.
    YcsbA,
    /// YCSB B: 95% reads, 5% updates, zipfian keys.
    YcsbB,
    /// YCSB C: reads only, zipfian keys.
    YcsbC,
    /// YCSB F: 50% reads, 50% read-modify-writes by compare-and-swap, zipfian keys.
    YcsbF,
    /// Pool checkout plus a trivial query (`health_check` for pooledstore).
    Acquire,
}

impl Workload {
    /// Every workload, in run and report order.
    pub(crate) const ALL: [Workload; 9] = [
        Workload::PointRead,
        Workload::Put,
        Workload::Batch,
        Workload::Scan,
        Workload::YcsbA,
        Workload::YcsbB,
        Workload::YcsbC,
        Workload::YcsbF,
        Workload::Acquire,
    ];

    /// The name used on the command line and in JSON.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::PointRead => "point_read",
            Self::Put => "put",
            Self::Batch => "batch",
            Self::Scan => "scan",
            Self::YcsbA => "ycsb_a",
            Self::YcsbB => "ycsb_b",
            Self::YcsbC => "ycsb_c",
            Self::YcsbF => "ycsb_f",
            Self::Acquire => "acquire",
        }
    }

    /// Looks a workload up by name.
    pub(crate) fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|w| w.name() == name)
    }

    /// Rows written or read by one operation (batches and scans touch many).
    pub(crate) fn rows_per_op(self) -> u32 {
        match self {
            Self::Batch => BATCH_OPS as u32,
            Self::Scan => SCAN_ROWS as u32,
            _ => 1,
        }
    }
}

impl fmt::Display for Workload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for c in Config::ALL {
            assert_eq!(Config::from_name(c.name()), Some(c));
        }
        for w in Workload::ALL {
            assert_eq!(Workload::from_name(w.name()), Some(w));
        }
        assert_eq!(Config::from_name("redis"), None);
        assert_eq!(Workload::from_name("ycsb_e"), None);
    }

    #[test]
    fn pooled_configs_name_the_pool_they_wrap() {
        assert_eq!(Config::PooledSqlx.wraps(), Some(Config::Sqlx));
        assert_eq!(Config::PooledDeadpool.wraps(), Some(Config::Deadpool));
        assert_eq!(Config::Rusqlite.wraps(), None);
        assert_eq!(Config::Rusqlite.workers(16), RUSQLITE_THREADS);
        assert_eq!(Config::Sqlx.workers(16), 16);
    }
}
