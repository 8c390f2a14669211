//! What the database modules share: connection accounting, admission and closing,
//! health checks and metrics, transaction leak detection, the mapping of the sqlx errors every
//! database raises alike, stored rows as contract values, and the stash that lends a
//! connection from one operation to the next.

pub(crate) mod accounting;
pub(crate) mod close;
pub(crate) mod connect_check;
pub(crate) mod errors;
pub(crate) mod gate;
pub(crate) mod health;
pub(crate) mod rows;
pub(crate) mod stash;
