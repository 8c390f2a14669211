//! SQLite's `synchronous` setting (`db_synchronous`).

use serde::{Deserialize, Serialize};

/// SQLite's `synchronous` setting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Synchronous {
    /// Durable against process crashes; with WAL, a power loss may drop the last commits.
    #[default]
    Normal,
    /// Durable against power loss too; slower commits.
    Full,
}

impl Synchronous {
    /// The value for `PRAGMA synchronous`.
    pub fn as_sql(self) -> &'static str {
        match self {
            Self::Normal => "NORMAL",
            Self::Full => "FULL",
        }
    }
}
