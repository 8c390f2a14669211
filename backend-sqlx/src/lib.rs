#![doc = include_str!("../README.md")]

#[cfg(any(feature = "sqlite", feature = "postgres", feature = "mysql"))]
mod common;
#[cfg(feature = "mysql")]
mod mysql;
#[cfg(feature = "postgres")]
mod postgres;
#[cfg(feature = "sqlite")]
mod sqlite;
mod store;
mod url_engine;

#[cfg(feature = "postgres")]
pub use postgres::ScratchSchema;
pub use store::SqlxStore;
