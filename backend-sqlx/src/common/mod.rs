//! What the database modules share: connection accounting, transaction leak
//! detection and the mapping of the sqlx errors every database raises alike.

pub(crate) mod accounting;
pub(crate) mod errors;
pub(crate) mod leak;
