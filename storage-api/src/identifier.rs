//! Validation of the SQL identifiers that come from configuration (`table`), so none
//! is ever interpolated unchecked.

use crate::error::{Result, StoreError};

/// Checks that `name` is a safe SQL identifier: `[A-Za-z_][A-Za-z0-9_]{0,62}`.
/// `setting` names the config key in the error.
pub fn validate_identifier(setting: &str, name: &str) -> Result<()> {
    let mut chars = name.chars();
    let first_ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_');
    let rest_ok = chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
    if first_ok && rest_ok && name.len() <= 63 {
        Ok(())
    } else {
        Err(StoreError::config(format!(
            "{setting} = {name:?} is not a valid identifier; use [A-Za-z_][A-Za-z0-9_]{{0,62}}"
        )))
    }
}
