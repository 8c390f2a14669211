//! The fixed time bounds the etcd mapping relies on.
//!
//! Versions of transaction writes are taken from the transaction's start revision, which
//! is only safe while nothing the transaction could miss has disappeared from the server:
//! tombstones and the leases of entries with a TTL outlive every transaction that may
//! still commit.

use std::time::Duration;

/// The longest a transaction may run; committing an older one fails with `Conflict`.
pub(crate) const TX_MAX_AGE: Duration = Duration::from_secs(60);

/// How long a deleted key's tombstone stays on the server.
pub(crate) const RETENTION: Duration = Duration::from_secs(120);

/// How long past its expiry an entry with a TTL stays on the server before its lease
/// removes it (until then it is only invisible).
pub(crate) const LEASE_SLACK: Duration = Duration::from_secs(120);

/// How long a health probe or a channel check waits for a member.
pub(crate) const PROBE_TIMEOUT: Duration = Duration::from_secs(2);
