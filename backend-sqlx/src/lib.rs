//! [`PooledStore`](storage_api::PooledStore) over sqlx 0.9: SQLite (feature
//! `sqlite`, on by default) and, later, PostgreSQL (feature `postgres`).
//!
//! ```no_run
//! # async fn demo() -> storage_api::Result<()> {
//! use backend_sqlx::SqlxStore;
//! use storage_api::{PooledStore, PutOptions, StoreOptions};
//!
//! let store = SqlxStore::open(StoreOptions::new("sqlite::memory:")).await?;
//! let version = store.put(b"greeting", b"hello", PutOptions::default()).await?;
//! let entry = store.get(b"greeting").await?.expect("just written");
//! assert_eq!((entry.value.as_slice(), entry.version), (&b"hello"[..], version));
//! store.close().await;
//! # Ok(())
//! # }
//! ```
//!
//! SQLite specifics: every write runs in `BEGIN IMMEDIATE`; file databases use WAL
//! when `enable_wal` is on; `sqlite::memory:` opens a private WAL database in a
//! fresh owner-only directory under the system temporary directory (`TMPDIR`),
//! never synced to disk and removed when the store closes. SQLite's own in-memory
//! databases cannot serve a pool the same way: with them a reader either fails at
//! once or waits behind every open write transaction.

#[cfg(feature = "sqlite")]
mod sqlite;
mod store;

pub use store::SqlxStore;
