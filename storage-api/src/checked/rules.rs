//! The argument rules of the contract, checked against a store's [`Capabilities`]:
//! one wording and one order for every backend.

use crate::error::{Result, StoreError};
use crate::types::{Capabilities, PutOptions, ScanOptions, WriteOp};

/// What a store accepts, taken from its [`Capabilities`]; each method checks one call's
/// arguments and fails with `InvalidInput` (or `Unsupported` for a capability the store
/// lacks) before the call reaches the backend.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rules {
    capabilities: Capabilities,
}

impl Rules {
    /// The rules of a store with these capabilities.
    pub fn new(capabilities: Capabilities) -> Self {
        Self { capabilities }
    }

    /// The capabilities the rules follow.
    pub fn capabilities(&self) -> &Capabilities {
        &self.capabilities
    }

    /// Rejects an empty key or one over `max_key_bytes`.
    pub fn check_key(&self, key: &[u8]) -> Result<()> {
        if key.is_empty() {
            return Err(StoreError::invalid_input("key is empty"));
        }
        let max = self.capabilities.max_key_bytes;
        if key.len() > max {
            return Err(StoreError::invalid_input(format!(
                "key is {} bytes; the limit is {max}",
                key.len()
            )));
        }
        Ok(())
    }

    /// Checks the key, the value size (`max_value_bytes`) and the TTL of a put: zero is
    /// `InvalidInput`, any TTL on a store without the `ttl` capability `Unsupported`.
    pub fn check_put(&self, key: &[u8], value: &[u8], options: &PutOptions) -> Result<()> {
        self.check_key(key)?;
        let max = self.capabilities.max_value_bytes;
        if value.len() > max {
            return Err(StoreError::invalid_input(format!(
                "value is {} bytes; max_value_bytes is {max}",
                value.len()
            )));
        }
        match options.ttl {
            Some(_) if !self.capabilities.ttl => Err(StoreError::unsupported("a put with a ttl")),
            Some(ttl) if ttl.is_zero() => {
                Err(StoreError::invalid_input("ttl must be greater than zero"))
            }
            _ => Ok(()),
        }
    }

    /// Checks the size of a batch (`max_batch_ops`) and each of its operations; an
    /// operation's error carries its index.
    pub fn check_batch(&self, ops: &[WriteOp]) -> Result<()> {
        if let Some(max) = self.capabilities.max_batch_ops
            && ops.len() > max
        {
            return Err(StoreError::invalid_input(format!(
                "batch holds {} operations; max_batch_ops is {max}",
                ops.len()
            )));
        }
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
        let max = self.capabilities.max_scan_limit;
        match options.limit {
            None => Ok(max),
            Some(limit) if limit <= max => Ok(limit),
            Some(limit) => Err(StoreError::invalid_input(format!(
                "scan limit {limit} is over max_scan_limit ({max})"
            ))),
        }
    }

    /// `Unsupported` for `purge_expired` on a store without the `ttl` capability.
    pub fn check_purge(&self) -> Result<()> {
        if self.capabilities.ttl {
            Ok(())
        } else {
            Err(StoreError::unsupported("purge_expired"))
        }
    }

    /// `Unsupported` for `begin` on a store without the `transactions` capability.
    pub fn check_begin(&self) -> Result<()> {
        if self.capabilities.transactions {
            Ok(())
        } else {
            Err(StoreError::unsupported("begin"))
        }
    }

    /// `InvalidInput` for a write (`operation`) in a read-only transaction.
    pub fn check_writable(&self, read_only: bool, operation: &str) -> Result<()> {
        if read_only {
            Err(StoreError::invalid_input(format!(
                "{operation} in a read-only transaction"
            )))
        } else {
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorKind;
    use crate::types::MAX_KEY_BYTES;
    use std::time::Duration;

    fn rules() -> Rules {
        Rules::new(Capabilities::full(8, 10).with_max_batch_ops(3))
    }

    #[test]
    fn keys_and_values_are_bounded() {
        let rules = rules();
        assert_eq!(
            rules.check_key(b"").unwrap_err().kind(),
            ErrorKind::InvalidInput
        );
        assert!(rules.check_key(&[0; MAX_KEY_BYTES]).is_ok());
        assert!(rules.check_key(&[0; MAX_KEY_BYTES + 1]).is_err());
        let opts = PutOptions::default();
        assert!(rules.check_put(b"k", &[0; 8], &opts).is_ok());
        assert!(rules.check_put(b"k", &[0; 9], &opts).is_err());
        let zero_ttl = opts.with_ttl(Duration::ZERO);
        assert!(rules.check_put(b"k", b"v", &zero_ttl).is_err());
    }

    #[test]
    fn batch_errors_name_the_index_and_the_size_limit() {
        let rules = rules();
        let ops = vec![WriteOp::put("a", "1"), WriteOp::delete("")];
        assert_eq!(rules.check_batch(&ops).unwrap_err().batch_index(), Some(1));
        let big = vec![WriteOp::delete("a"); 4];
        let e = rules.check_batch(&big).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput);
        assert!(e.message().contains("max_batch_ops"), "{e}");
        assert!(rules.check_batch(&big[..3]).is_ok());
    }

    #[test]
    fn scan_limit_defaults_and_rejects_overflow() {
        let rules = rules();
        assert_eq!(rules.scan_limit(&ScanOptions::default()).unwrap(), 10);
        let three = ScanOptions::default().with_limit(3);
        assert_eq!(rules.scan_limit(&three).unwrap(), 3);
        assert!(
            rules
                .scan_limit(&ScanOptions::default().with_limit(11))
                .is_err()
        );
    }

    #[test]
    fn missing_capabilities_are_unsupported() {
        let mut caps = Capabilities::full(8, 10);
        caps.ttl = false;
        caps.transactions = false;
        let rules = Rules::new(caps);
        let ttl = PutOptions::default().with_ttl(Duration::from_secs(1));
        let unsupported = |r: Result<()>| r.unwrap_err().kind() == ErrorKind::Unsupported;
        assert!(unsupported(rules.check_put(b"k", b"v", &ttl)));
        assert!(unsupported(rules.check_purge()));
        assert!(unsupported(rules.check_begin()));
        assert_eq!(
            rules.check_writable(true, "put").unwrap_err().kind(),
            ErrorKind::InvalidInput
        );
    }
}
