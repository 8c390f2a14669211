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

/// How many keys are remembered at once: a key takes the slot its hash picks,
/// replacing whatever was there.
const SLOTS: usize = 256;

/// The last live entry `get` found under recently read keys (see the module docs).
#[derive(Debug)]
pub(crate) struct Seen {
    slots: Mutex<Vec<Option<Record>>>,
    hasher: RandomState,
}

impl Default for Seen {
    fn default() -> Self {
        Self {
            slots: Mutex::new((0..SLOTS).map(|_| None).collect()),
            hasher: RandomState::new(),
        }
    }
}

/// What [`Seen::found`] answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Found {
    /// The `mod_revision` the entry was stored at.
    pub(crate) mod_revision: i64,
    /// Whether the entry is still live.
    pub(crate) live: bool,
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
        let record = Record {
            etcd_key: etcd_key.to_vec(),
            mod_revision,
            version,
            expires_ms,
        };
        let slot = self.slot(etcd_key);
        self.lock()[slot] = Some(record);
    }

    /// If the last `get` of `etcd_key` found the live entry of exactly `version`: the
    /// `mod_revision` it was stored at, and whether that entry is still live at `now_ms`.
    pub(crate) fn found(&self, etcd_key: &[u8], version: Version, now_ms: i64) -> Option<Found> {
        let slot = self.slot(etcd_key);
        let slots = self.lock();
        let record = slots.get(slot)?.as_ref()?;
        if record.etcd_key != etcd_key || record.version != version {
            return None;
        }
        Some(Found {
            mod_revision: record.mod_revision,
            live: record.expires_ms.is_none_or(|expires| now_ms < expires),
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
            seen.found(b"k", version(7), 0).is_none(),
            "nothing recorded"
        );
        seen.record(b"k", 5, version(7), Some(1_000));
        let found = |now| seen.found(b"k", version(7), now);
        let at = |live| {
            Some(Found {
                mod_revision: 5,
                live,
            })
        };
        assert_eq!(found(999), at(true));
        // Expired since: the write's condition cannot hold.
        assert_eq!(found(1_000), at(false));
        // Another version, or another key: read the key instead.
        assert!(seen.found(b"k", version(8), 0).is_none());
        assert!(seen.found(b"other", version(7), 0).is_none());
        // A newer read replaces the record.
        seen.record(b"k", 9, version(8), None);
        assert!(seen.found(b"k", version(7), 0).is_none());
        let found = seen.found(b"k", version(8), 0);
        assert_eq!(found.map(|f| f.mod_revision), Some(9));
    }
}
