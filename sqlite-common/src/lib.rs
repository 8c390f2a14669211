//! What both SQLite backends (sqlx and deadpool) share, driver-independent: one
//! answer for each question they both face.
//!
//! - [`schema`]: the table layout, its statements and the checks on a file found.
//! - [`codes`]: SQLite result codes as the contract's error kinds.
//! - [`queue`]: calls one task answers group by group on a lent connection (from
//!   [`group_commit`], which the server engines' writers share).
//! - [`writer`]: the single writer with group commit, and the trait each backend
//!   implements to apply a group on its connection.
//! - [`round`]: the groups one turn of the writer's connection applies, answered by
//!   [`group_commit`]'s failure rule.
//! - [`writes`]: the writer's state in a store.
//! - [`wal`]: when the write-ahead log is checkpointed.
//! - [`scratch`]: the private database behind `sqlite::memory:`.
//! - [`open_files`]: which database files stores of this process hold open.
//! - [`location`]: the SQLite URLs, parsed into a file or an in-memory database.

pub mod codes;
pub mod location;
pub mod open_files;
pub mod round;
pub mod schema;
pub mod scratch;
pub mod wal;
pub mod writer;
pub mod writes;

pub use group_commit::queue;
pub use location::SqliteLocation;
pub use open_files::{OpenFile, open_database_files};
