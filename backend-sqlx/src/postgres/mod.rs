//! The PostgreSQL engine: [`PgEngine`] for the shared layer of
//! [`common::engine`](crate::common::engine), which runs the store, its transactions and
//! its pool over a `sqlx::PgPool`.
//!
//! What is PostgreSQL's own, one concern a file: [`connect_options`] turns the URL into
//! connection settings (TLS through [`tls`]), [`connect`] checks the server and sets up
//! each session, [`schema`] creates and checks the tables (names from
//! [`Names`](crate::common::names::Names), SQL from [`statements`]), [`sizing`] compares
//! the pool with the server's connection slots, [`engine`] holds the statements and
//! health round trip a store runs, [`errors`] reads SQLSTATEs, and [`scratch`] says how
//! throwaway schemas for tests are made.
//!
//! Every transaction is `SERIALIZABLE`: applications' (read-only ones `SERIALIZABLE
//! READ ONLY`), and the one each single write or batch runs in. Single reads are one
//! statement at the connection's default isolation, also `SERIALIZABLE`.

mod connect;
mod connect_options;
mod engine;
mod errors;
mod schema;
mod scratch;
mod sizing;
mod statements;
mod tls;

use crate::common::engine::store::EngineStore;
pub(crate) use engine::PgEngine;

/// A store over a pool of PostgreSQL connections.
pub(crate) type PostgresStore = EngineStore<PgEngine>;

impl PostgresStore {
    /// The `application_name` every connection of this store reports to the server.
    pub(crate) fn application_name(&self) -> &str {
        &self.shared.engine.application_name
    }
}
