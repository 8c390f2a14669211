//! Write locks between the transactions and writes of one store: a transaction that
//! writes a key holds it until it ends; a plain write of that key waits up to
//! `db_busy_timeout_ms` (then `Busy`), another transaction writing it fails at once with
//! `Conflict`. Across stores and processes nothing waits: transactions are validated at
//! commit instead.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use storage_api::{ErrorKind, Result, StoreError};
use tokio::sync::Notify;

/// The keys held by this store's open transactions.
#[derive(Debug, Default)]
pub(crate) struct Locks {
    held: Mutex<HashMap<Vec<u8>, u64>>,
    released: Notify,
}

impl Locks {
    fn held(&self) -> std::sync::MutexGuard<'_, HashMap<Vec<u8>, u64>> {
        self.held.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Takes `key` for transaction `owner`; `Conflict` when another transaction holds it.
    /// Returns whether this call took it (false when `owner` already held it).
    pub(crate) fn take(&self, key: &[u8], owner: u64) -> Result<bool> {
        let mut held = self.held();
        match held.get(key) {
            Some(holder) if *holder == owner => Ok(false),
            Some(_) => Err(StoreError::new(
                ErrorKind::Conflict,
                "another transaction of this store is writing the same key; retry",
            )),
            None => {
                held.insert(key.to_vec(), owner);
                Ok(true)
            }
        }
    }

    /// Releases `keys`, held by `owner`.
    pub(crate) fn release(&self, keys: &[Vec<u8>], owner: u64) {
        if keys.is_empty() {
            return;
        }
        {
            let mut held = self.held();
            for key in keys {
                if held.get(key) == Some(&owner) {
                    held.remove(key);
                }
            }
        }
        self.released.notify_waiters();
    }

    /// Waits until no transaction holds any of `keys`, up to `timeout`; `Busy` after.
    pub(crate) async fn wait_free(&self, keys: &[&[u8]], timeout: Duration) -> Result<()> {
        let deadline = Instant::now() + timeout;
        loop {
            let notified = self.released.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            {
                let held = self.held();
                if held.is_empty() || keys.iter().all(|k| !held.contains_key(*k)) {
                    return Ok(());
                }
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(StoreError::new(
                    ErrorKind::Busy,
                    format!(
                        "a transaction of this store held the key past db_busy_timeout_ms \
                         ({timeout:?})"
                    ),
                ));
            }
            let _ = tokio::time::timeout(deadline - now, notified).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn writers_wait_for_the_holder_and_transactions_conflict() {
        let locks = Locks::default();
        assert!(locks.take(b"k", 1).unwrap());
        assert!(!locks.take(b"k", 1).unwrap());
        assert_eq!(locks.take(b"k", 2).unwrap_err().kind(), ErrorKind::Conflict);
        let started = Instant::now();
        let busy = locks.wait_free(&[b"k"], Duration::from_millis(100)).await;
        assert_eq!(busy.unwrap_err().kind(), ErrorKind::Busy);
        assert!(started.elapsed() >= Duration::from_millis(90));
        locks.wait_free(&[b"other"], Duration::ZERO).await.unwrap();
        locks.release(&[b"k".to_vec()], 1);
        locks.wait_free(&[b"k"], Duration::ZERO).await.unwrap();
    }
}
