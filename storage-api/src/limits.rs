//! Input checks every backend applies before touching the database, so bad input is
//! rejected the same way everywhere.

use crate::error::{Result, StoreError};
use crate::types::{MAX_KEY_BYTES, PutOptions, ScanOptions, WriteOp};

/// The size limits a store enforces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest value accepted (`max_value_bytes`).
    pub max_value_bytes: usize,
    /// Largest scan limit accepted (`max_scan_limit`).
    pub max_scan_limit: usize,
}

impl Limits {
    /// Rejects an empty key or one over [`MAX_KEY_BYTES`].
    pub fn check_key(&self, key: &[u8]) -> Result<()> {
        if key.is_empty() {
            return Err(StoreError::invalid_input("key is empty"));
        }
        if key.len() > MAX_KEY_BYTES {
            return Err(StoreError::invalid_input(format!(
                "key is {} bytes; the limit is {MAX_KEY_BYTES}",
                key.len()
            )));
        }
        Ok(())
    }

    /// Checks the key, the value size (`max_value_bytes`) and the TTL of a put.
    pub fn check_put(&self, key: &[u8], value: &[u8], options: &PutOptions) -> Result<()> {
        self.check_key(key)?;
        if value.len() > self.max_value_bytes {
            return Err(StoreError::invalid_input(format!(
                "value is {} bytes; max_value_bytes is {}",
                value.len(),
                self.max_value_bytes
            )));
        }
        if options.ttl.is_some_and(|ttl| ttl.is_zero()) {
            return Err(StoreError::invalid_input("ttl must be greater than zero"));
        }
        Ok(())
    }

    /// Checks every operation of a batch; an error carries the index of the first bad one.
    pub fn check_batch(&self, ops: &[WriteOp]) -> Result<()> {
        for (index, op) in ops.iter().enumerate() {
            let checked = match op {
                WriteOp::Put {
                    key,
                    value,
                    options,
                } => self.check_put(key, value, options),
                WriteOp::Delete { key, .. } => self.check_key(key),
            };
            checked.map_err(|e| e.with_batch_index(index))?;
        }
        Ok(())
    }

    /// The number of entries a scan may return: its limit, or `max_scan_limit` when it
    /// has none. A limit above `max_scan_limit` is rejected, never cut short silently.
    pub fn scan_limit(&self, options: &ScanOptions) -> Result<usize> {
        match options.limit {
            None => Ok(self.max_scan_limit),
            Some(limit) if limit <= self.max_scan_limit => Ok(limit),
            Some(limit) => Err(StoreError::invalid_input(format!(
                "scan limit {limit} is over max_scan_limit ({})",
                self.max_scan_limit
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorKind;
    use std::time::Duration;

    const LIMITS: Limits = Limits {
        max_value_bytes: 8,
        max_scan_limit: 10,
    };

    #[test]
    fn keys_and_values_are_bounded() {
        assert_eq!(
            LIMITS.check_key(b"").unwrap_err().kind(),
            ErrorKind::InvalidInput
        );
        assert!(LIMITS.check_key(&[0; MAX_KEY_BYTES]).is_ok());
        assert!(LIMITS.check_key(&[0; MAX_KEY_BYTES + 1]).is_err());
        let opts = PutOptions::default();
        assert!(LIMITS.check_put(b"k", &[0; 8], &opts).is_ok());
        assert!(LIMITS.check_put(b"k", &[0; 9], &opts).is_err());
        let zero_ttl = opts.with_ttl(Duration::ZERO);
        assert!(LIMITS.check_put(b"k", b"v", &zero_ttl).is_err());
    }

    #[test]
    fn batch_errors_name_the_index() {
        let ops = vec![WriteOp::put("a", "1"), WriteOp::delete("")];
        assert_eq!(LIMITS.check_batch(&ops).unwrap_err().batch_index(), Some(1));
    }

    #[test]
    fn scan_limit_defaults_and_rejects_overflow() {
        assert_eq!(LIMITS.scan_limit(&ScanOptions::default()).unwrap(), 10);
        assert_eq!(
            LIMITS
                .scan_limit(&ScanOptions::default().with_limit(3))
                .unwrap(),
            3
        );
        assert!(
            LIMITS
                .scan_limit(&ScanOptions::default().with_limit(11))
                .is_err()
        );
    }
}
