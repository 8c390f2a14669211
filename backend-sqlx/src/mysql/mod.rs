//! The MySQL and MariaDB engine: [`MysqlEngine`] for the shared layer of
//! [`common::engine`](crate::common::engine), which runs the store, its transactions and
//! its pool over a `sqlx::MySqlPool`.
//!
//! What is MySQL's own, one concern a file: [`connect_options`] turns the URL into
//! connection settings, [`connect`] checks the [`server`] and sets up each session,
//! [`schema`] creates and checks the tables (names from
//! [`Names`](crate::common::names::Names), SQL from [`statements`]), [`engine`] holds the
//! statements, version draw and health round trip a store runs, and [`errors`] reads
//! MySQL's error numbers; [`scratch`] says how throwaway databases for tests are made.
//!
//! Every session runs with strict SQL mode and `SERIALIZABLE` isolation, so every
//! transaction is serializable (InnoDB's locking form: reads in a transaction take
//! shared locks): applications' (read-only ones `READ ONLY`), and the one each single
//! write or batch runs in. Single reads are one autocommit statement, a consistent
//! snapshot.

mod connect;
mod connect_options;
mod engine;
mod errors;
mod schema;
mod scratch;
mod server;
mod statements;

use crate::common::engine::store::EngineStore;
pub(crate) use engine::MysqlEngine;

/// A store over a pool of MySQL or MariaDB connections.
pub(crate) type MysqlStore = EngineStore<MysqlEngine>;
