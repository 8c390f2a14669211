#![doc = include_str!("../README.md")]

#[cfg(feature = "sqlite")]
mod sqlite;
mod store;
mod trace;

pub use store::SqlxStore;
