#![doc = include_str!("../README.md")]

mod connection;
mod errors;
mod group;
mod lease;
mod maintenance;
mod ops;
mod parked;
mod pool;
mod schema;
mod store;
mod tx;
mod writer;

pub use rusqlite;
pub use store::DeadpoolStore;
