//! [`Seen`]: what `get` last found under recently read keys, so that a write conditional
//! on the version a read returned (a read-modify-write) skips reading the key again.
//!
//! The write's transaction compares the key's `mod_revision` with the one recorded: a
//! record that is out of date costs one failed comparison (whose answer carries what is
//! stored now, as after a read), never a wrong write. A record is used only when it
//! agrees with the condition; otherwise the write reads the key as before.

use std::hash::{BuildHasher, RandomState};
use std::sync::{Mutex, PoisonError};

use storage_api::Version;

use crate::shared::Current;

/// How many keys are remembered at once: a key takes the slot its hash picks,
/// replacing whatever was there.
const SLOTS: usize = 256;

/// The last live entry `get` found under recently read keys (see the module docs).
#[derive(Debug, Default)]
pub(crate) struct Seen {
    slots: Mutex<Vec<Option<Record>>>,
    hasher: RandomState,
}

/// A live entry `get` found.
#[derive(Debug)]
struct Record {
    etcd_key: Vec<u8>,
    mod_revision: i64,
    version: Version,
    /// Expiry in Unix milliseconds.
    expires_ms: Option<i64>,
}

impl Seen {
    /// Records that `etcd_key`, at `mod_revision`, held the live entry of `version`
    /// expiring at `expires_ms`.
    pub(crate) fn record(
        &self,
        etcd_key: &[u8],
        mod_revision: i64,
        version: Version,
        expires_ms: Option<i64>,
    ) {
        let slot = self.slot(etcd_key);
        let mut slots = self.lock();
        if slots.is_empty() {
            slots.resize_with(SLOTS, || None);
        }
        match &mut slots[slot] {
            Some(record) => {
                record.etcd_key.clear();
                record.etcd_key.extend_from_slice(etcd_key);
                record.mod_revision = mod_revision;
                record.version = version;
                record.expires_ms = expires_ms;
            }
            empty => {
                *empty = Some(Record {
                    etcd_key: etcd_key.to_vec(),
                    mod_revision,
                    version,
                    expires_ms,
                });
            }
        }
    }

    /// What is stored under `etcd_key` as a write conditional on `version` sees it at
    /// `now_ms`, if the last `get` of the key found the live entry of exactly `version`.
    pub(crate) fn current(
        &self,
        etcd_key: &[u8],
        version: Version,
        now_ms: i64,
    ) -> Option<Current> {
        let slot = self.slot(etcd_key);
        let slots = self.lock();
        let record = slots.get(slot)?.as_ref()?;
        if record.etcd_key != etcd_key || record.version != version {
            return None;
        }
        let live = record.expires_ms.is_none_or(|expires| now_ms < expires);
        Some(Current {
            live: live.then_some(version),
            mod_revision: record.mod_revision,
            stored: true,
        })
    }

    fn slot(&self, etcd_key: &[u8]) -> usize {
        // The modulo keeps it below `SLOTS`, so the cast loses nothing that matters.
        (self.hasher.hash_one(etcd_key) % SLOTS as u64) as usize
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Option<Record>>> {
        self.slots.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn version(n: u64) -> Version {
        Version::new(n).unwrap()
    }

    #[test]
    fn a_record_serves_only_the_version_it_saw_and_judges_expiry_now() {
        let seen = Seen::default();
        assert!(
            seen.current(b"k", version(7), 0).is_none(),
            "nothing recorded"
        );
        seen.record(b"k", 5, version(7), Some(1_000));
        let current = seen.current(b"k", version(7), 999).unwrap();
        assert_eq!((current.live, current.mod_revision), (Some(version(7)), 5));
        assert!(current.stored);
        // Expired since: the write's condition cannot hold.
        assert_eq!(seen.current(b"k", version(7), 1_000).unwrap().live, None);
        // Another version, or another key: read the key instead.
        assert!(seen.current(b"k", version(8), 0).is_none());
        assert!(seen.current(b"other", version(7), 0).is_none());
        // A newer read replaces the record.
        seen.record(b"k", 9, version(8), None);
        assert!(seen.current(b"k", version(7), 0).is_none());
        assert_eq!(seen.current(b"k", version(8), 0).unwrap().mod_revision, 9);
    }
}
