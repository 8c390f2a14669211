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

#[cfg(any(feature = "postgres", feature = "mysql"))]
pub use common::engine::scratch::ScratchSchema;
pub use store::SqlxStore;
