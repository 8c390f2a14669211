//! How entries are laid out in etcd: keys under the table prefix, the value envelope that
//! carries the expiry beside the value, tombstones, and versions derived from revisions.
//!
//! # Keys
//! The entry under key `K` of table `T` is the etcd key `T/K` (the table name, one `/`,
//! then the key's bytes unchanged), so `etcdctl get --prefix T/` lists a table in key
//! order.
//!
//! # Values
//! Each value is a one-line ASCII header, then the stored bytes unchanged:
//!
//! ```text
//! ps1[ e=<expiry, Unix ms>][ r=<base revision>][ s=<sequence>]\n<value bytes>
//! ```
//!
//! `e` is present when the entry was written with a TTL; `r` and `s` when the version is
//! not simply the write's `mod_revision` (see below). A deleted key keeps, for
//! [`RETENTION`](crate::timing::RETENTION), the tombstone `ps1 deleted\n` as its value,
//! and the server then removes it (the tombstone's lease expires).
//!
//! # Versions
//! A version is `(revision << 16) | sequence`: the revision is the write's `mod_revision`
//! (or the header's `r`, for transactions), the sequence orders several writes of one key
//! in one etcd transaction (a batch's operation index; `0x8000 + n` for the `n`th write
//! of a pooledstore transaction). Revisions only grow, so versions rise across deletes.

use std::ops::Bound;

use storage_api::backend::from_unix_millis;
use storage_api::{Entry, ErrorKind, Result, ScanOptions, StoreError, Version, prefix_successor};

/// The first sequence number of writes made inside a transaction.
pub(crate) const TX_SEQUENCE_BASE: u16 = 0x8000;
/// The value of a deleted key while its tombstone lasts.
pub(crate) const TOMBSTONE: &[u8] = b"ps1 deleted\n";
const MAGIC: &str = "ps1";

/// The etcd keys of one table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Layout {
    /// `table/`.
    prefix: Vec<u8>,
}

impl Layout {
    /// The layout of `table`.
    pub(crate) fn new(table: &str) -> Self {
        let mut prefix = table.as_bytes().to_vec();
        prefix.push(b'/');
        Self { prefix }
    }

    /// The table's prefix, `table/`.
    pub(crate) fn prefix(&self) -> &[u8] {
        &self.prefix
    }

    /// The etcd key of `key`.
    pub(crate) fn etcd_key(&self, key: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.prefix.len() + key.len());
        out.extend_from_slice(&self.prefix);
        out.extend_from_slice(key);
        out
    }

    /// The key an etcd key stands for; `None` outside the table.
    pub(crate) fn user_key<'a>(&self, etcd_key: &'a [u8]) -> Option<&'a [u8]> {
        etcd_key
            .strip_prefix(self.prefix.as_slice())
            .filter(|k| !k.is_empty())
    }

    /// The end of the table's key space (exclusive).
    pub(crate) fn table_end(&self) -> Vec<u8> {
        prefix_successor(&self.prefix).expect("a table prefix ends in '/'")
    }

    /// The etcd range `[start, end)` a scan selects, or `None` when it is empty.
    pub(crate) fn scan_range(&self, options: &ScanOptions) -> Option<(Vec<u8>, Vec<u8>)> {
        let start = match options.lower_bound() {
            Bound::Unbounded => self.prefix.clone(),
            Bound::Included(key) => self.etcd_key(key),
            Bound::Excluded(key) => {
                let mut next = self.etcd_key(key);
                next.push(0);
                next
            }
        };
        let end = match &options.range.end {
            Some(end) => self.etcd_key(end),
            None => self.table_end(),
        };
        (start < end).then_some((start, end))
    }
}

/// A stored value, decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Stored {
    /// A value with its metadata.
    Value(Envelope),
    /// A deleted key, kept for a while.
    Tombstone,
}

/// A value with the metadata the header carries.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct Envelope {
    /// The value bytes.
    pub(crate) value: Vec<u8>,
    /// Expiry in Unix milliseconds; live while the store's clock is before it.
    pub(crate) expires_ms: Option<i64>,
    /// The revision the version is based on, when not the write's own `mod_revision`.
    pub(crate) base_revision: Option<i64>,
    /// The sequence part of the version.
    pub(crate) sequence: u16,
}

impl Envelope {
    /// The header and value as stored.
    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut header = String::from(MAGIC);
        if let Some(expiry) = self.expires_ms {
            header.push_str(&format!(" e={expiry}"));
        }
        if let Some(revision) = self.base_revision {
            header.push_str(&format!(" r={revision}"));
        }
        if self.sequence != 0 {
            header.push_str(&format!(" s={}", self.sequence));
        }
        header.push('\n');
        let mut out = Vec::with_capacity(header.len() + self.value.len());
        out.extend_from_slice(header.as_bytes());
        out.extend_from_slice(&self.value);
        out
    }

    /// Whether the entry is live at `now_ms`.
    pub(crate) fn is_live(&self, now_ms: i64) -> bool {
        self.expires_ms.is_none_or(|at| at > now_ms)
    }

    /// The version of this value written at `mod_revision`.
    pub(crate) fn version(&self, mod_revision: i64) -> Result<Version> {
        version(self.base_revision.unwrap_or(mod_revision), self.sequence)
    }

    /// The entry under `key`, written at `mod_revision`.
    pub(crate) fn entry(self, key: &[u8], mod_revision: i64) -> Result<Entry> {
        Ok(Entry {
            key: key.to_vec(),
            version: self.version(mod_revision)?,
            expires_at: self.expires_ms.map(from_unix_millis),
            value: self.value,
        })
    }
}

/// Decodes a stored value; one that is not ours is `Corrupt`.
pub(crate) fn decode(bytes: &[u8]) -> Result<Stored> {
    if bytes == TOMBSTONE {
        return Ok(Stored::Tombstone);
    }
    let newline = bytes
        .iter()
        .position(|&b| b == b'\n')
        .ok_or_else(not_ours)?;
    let header = std::str::from_utf8(&bytes[..newline]).map_err(|_| not_ours())?;
    let mut fields = header.split(' ');
    if fields.next() != Some(MAGIC) {
        return Err(not_ours());
    }
    let mut envelope = Envelope::default();
    for field in fields {
        let (name, value) = field.split_once('=').ok_or_else(not_ours)?;
        match name {
            "e" => envelope.expires_ms = Some(value.parse().map_err(|_| not_ours())?),
            "r" => envelope.base_revision = Some(value.parse().map_err(|_| not_ours())?),
            "s" => envelope.sequence = value.parse().map_err(|_| not_ours())?,
            _ => return Err(not_ours()),
        }
    }
    envelope.value = bytes[newline + 1..].to_vec();
    Ok(Stored::Value(envelope))
}

fn not_ours() -> StoreError {
    StoreError::new(
        ErrorKind::Corrupt,
        "an etcd value under the table prefix has no pooledstore header (another program \
         wrote under this prefix?)",
    )
}

/// The version `(revision << 16) | sequence`.
pub(crate) fn version(revision: i64, sequence: u16) -> Result<Version> {
    u64::try_from(revision)
        .ok()
        .filter(|r| *r > 0 && *r < (1 << 47))
        .and_then(|r| Version::new((r << 16) | u64::from(sequence)))
        .ok_or_else(|| {
            StoreError::new(
                ErrorKind::Backend,
                format!("etcd returned an unusable revision ({revision})"),
            )
        })
}

/// What a decoded etcd entry means for reads: the live entry, or `None` when the key is a
/// tombstone or expired at `now_ms`.
pub(crate) fn live_entry(
    key: &[u8],
    value: &[u8],
    mod_revision: i64,
    now_ms: i64,
) -> Result<Option<Entry>> {
    match decode(value)? {
        Stored::Value(envelope) if envelope.is_live(now_ms) => {
            envelope.entry(key, mod_revision).map(Some)
        }
        _ => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelopes_roundtrip_and_read_as_text() {
        let envelope = Envelope {
            value: b"\0bytes\n".to_vec(),
            expires_ms: Some(1_893_456_000_123),
            base_revision: Some(41),
            sequence: 0x8001,
        };
        let stored = envelope.encode();
        assert!(stored.starts_with(b"ps1 e=1893456000123 r=41 s=32769\n"));
        assert_eq!(decode(&stored).unwrap(), Stored::Value(envelope));
        let plain = Envelope {
            value: b"v".to_vec(),
            ..Envelope::default()
        };
        assert_eq!(plain.encode(), b"ps1\nv");
        assert_eq!(decode(TOMBSTONE).unwrap(), Stored::Tombstone);
        for foreign in [&b"hello"[..], b"ps2\nv", b"ps1 x=1\nv", b""] {
            assert_eq!(decode(foreign).unwrap_err().kind(), ErrorKind::Corrupt);
        }
    }

    #[test]
    fn versions_order_by_revision_then_sequence() {
        let plain = version(10, 0).unwrap();
        let batch_later_op = version(10, 3).unwrap();
        let tx = version(10, TX_SEQUENCE_BASE).unwrap();
        let next = version(11, 0).unwrap();
        assert!(plain < batch_later_op && batch_later_op < tx && tx < next);
        assert!(version(0, 0).is_err());
    }

    #[test]
    fn scan_ranges_stay_inside_the_table() {
        let layout = Layout::new("kv");
        let all = layout.scan_range(&ScanOptions::default()).unwrap();
        assert_eq!(all, (b"kv/".to_vec(), b"kv0".to_vec()));
        let after = layout
            .scan_range(&ScanOptions::prefix("a").with_after("ab"))
            .unwrap();
        assert_eq!(after, (b"kv/ab\0".to_vec(), b"kv/b".to_vec()));
        let empty = ScanOptions::range(storage_api::KeyRange::between("b", "a"));
        assert_eq!(layout.scan_range(&empty), None);
        assert_eq!(layout.user_key(b"kv/x"), Some(&b"x"[..]));
        assert_eq!(layout.user_key(b"kv/"), None);
    }
}
