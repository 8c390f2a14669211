#![doc = include_str!("../README.md")]

mod batch;
mod channel;
mod errors;
mod health;
mod layout;
mod leader;
mod leases;
mod locks;
mod ops;
mod pool;
mod rounds;
mod scan;
mod seen;
mod settings;
mod shared;
mod store;
mod timing;
mod tx;
mod url;

pub use store::EtcdStore;
pub use url::SCHEME;
