//! What the database modules share: connection accounting, admission and closing,
//! health checks (and the clock that bounds their round trips) and metrics, transaction
//! leak detection, the mapping of the sqlx errors every database raises alike, stored
//! rows as contract values, and the stash that lends a connection from one operation to
//! the next; and, in [`engine`], the whole store the server engines (PostgreSQL, MySQL)
//! share.

pub(crate) mod accounting;
pub(crate) mod alone;
pub(crate) mod check_clock;
pub(crate) mod close;
pub(crate) mod connect_check;
#[cfg(any(feature = "postgres", feature = "mysql"))]
pub(crate) mod engine;
pub(crate) mod errors;
pub(crate) mod gate;
pub(crate) mod health;
#[cfg(any(feature = "postgres", feature = "mysql"))]
pub(crate) mod names;
#[cfg(any(feature = "postgres", feature = "mysql"))]
pub(crate) mod retry;
pub(crate) mod rows;
pub(crate) mod stash;
