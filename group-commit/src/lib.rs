//! Group commit without a driver: what every writer that lets concurrent callers share
//! one transaction and one commit is built on, whatever the database.
//!
//! - [`queue`]: calls one task answers group by group on a lent connection (and the
//!   caller that finds it idle serves itself).
//! - [`writes`]: what a writer is handed and hands back.
//! - [`rule`]: one group of writes and the failure rule that answers its callers.
//!
//! The SQLite writers (`sqlite-common`'s `writer`, with its checkpoint policy) and the
//! server engines' writers (backend-sqlx, PostgreSQL and MySQL) are built on these.

pub mod queue;
pub mod rule;
pub mod writes;
