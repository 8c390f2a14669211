//! Short scans answered in one row. sqlx hands every row of a statement from the
//! connection's worker thread to the caller's task on its own: a copy of each value, a
//! message, and often a wake-up of the caller, about 3 µs a row where SQLite itself
//! takes a fraction of that. A scan of at most [`PACKED_ROWS`] rows instead runs as one
//! statement that packs its rows into a single blob ([`statement`]), which
//! [`unpack`] turns back into entries: one hand-off whatever the row count.
//!
//! A packed row is a fixed-width header in lowercase hex digits, then the key's and
//! the value's bytes:
//!
//! | bytes | what |
//! |---|---|
//! | 8 | key length |
//! | 8 | value length |
//! | 16 | version (two's complement) |
//! | 1 | `n` (no expiry) or `e`, then 16 more: `expires_at` in ms |
//! | key length | the key |
//! | value length | the value |
//!
//! SQLite's `||` joins a blob's bytes as they are only in a UTF-8 database, so the
//! packed statement is used there alone ([`supported`]).

use sqlx::SqliteConnection;
use storage_api::{Entry, ErrorKind, Result, StoreError};

use crate::common::rows::entry;

/// The most rows a scan may ask for to run packed: larger scans stream their rows,
/// so a scan never holds more than one packed copy of a short answer.
pub(crate) const PACKED_ROWS: usize = 128;

/// The primary result code SQLite gives a string or blob longer than its length limit
/// (`SQLITE_TOOBIG`).
const TOO_BIG: &str = "18";

/// The statement answering `scan` (a [`SqliteSql::scan`](sqlite_common::schema::SqliteSql::scan),
/// same parameters) with one row and one column: its rows packed, or NULL when it
/// selects none.
///
/// SQLite packs the rows in the order the scan yields them, which is key order, but
/// does not promise to: [`unpack`] checks the order and sorts only when it is not
/// (`ORDER BY key` inside `group_concat` would copy every row into a sorter first).
pub(crate) fn statement(scan: &str) -> String {
    format!(
        "SELECT CAST(group_concat(\
         printf('%08x%08x%016x', octet_length(key), octet_length(value), version) \
         || CASE WHEN expires_at IS NULL THEN 'n' ELSE printf('e%016x', expires_at) END \
         || key || value, '') AS BLOB) FROM ({scan})"
    )
}

/// Whether the database's text encoding lets [`statement`] pack blobs byte for byte.
pub(crate) async fn supported(conn: &mut SqliteConnection) -> sqlx::Result<bool> {
    let encoding: String = sqlx::query_scalar("PRAGMA encoding")
        .fetch_one(conn)
        .await?;
    Ok(encoding.eq_ignore_ascii_case("UTF-8"))
}

/// Whether `error` says the packed answer outgrew SQLite's length limit (values far
/// above the usual sizes): the scan then streams its rows instead.
pub(crate) fn is_too_big(error: &sqlx::Error) -> bool {
    matches!(error, sqlx::Error::Database(e) if e.code().as_deref() == Some(TOO_BIG))
}

/// The entries packed in `packed` by [`statement`], in key order. A packing that does
/// not parse is `Corrupt`, naming the byte where it stopped.
pub(crate) fn unpack(packed: &[u8]) -> Result<Vec<Entry>> {
    let mut entries = Vec::new();
    let mut reader = Reader { packed, at: 0 };
    while reader.at < packed.len() {
        let key_len = reader.length()?;
        let value_len = reader.length()?;
        let version = reader.number(16)?;
        let expires_at = match reader.bytes(1)? {
            b"n" => None,
            b"e" => Some(reader.number(16)?),
            _ => return Err(reader.corrupt()),
        };
        let key = reader.bytes(key_len)?.to_vec();
        let value = reader.bytes(value_len)?.to_vec();
        entries.push(entry(key, value, version, expires_at)?);
    }
    if !entries.is_sorted_by(|a, b| a.key < b.key) {
        entries.sort_unstable_by(|a, b| a.key.cmp(&b.key));
    }
    Ok(entries)
}

/// A position in a packed answer.
struct Reader<'a> {
    packed: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    /// The next `n` bytes.
    fn bytes(&mut self, n: usize) -> Result<&'a [u8]> {
        let end = self.at.checked_add(n).ok_or_else(|| self.corrupt())?;
        let bytes = self
            .packed
            .get(self.at..end)
            .ok_or_else(|| self.corrupt())?;
        self.at = end;
        Ok(bytes)
    }

    /// The next `digits` hex digits as a two's complement number.
    fn number(&mut self, digits: usize) -> Result<i64> {
        let start = self.at;
        let mut n: u64 = 0;
        for &digit in self.bytes(digits)? {
            let value = match digit {
                b'0'..=b'9' => digit - b'0',
                b'a'..=b'f' => digit - b'a' + 10,
                _ => {
                    self.at = start;
                    return Err(self.corrupt());
                }
            };
            n = n << 4 | u64::from(value);
        }
        // Sixteen digits are the 64 bits of the stored integer, sign included.
        Ok(n as i64)
    }

    /// The next 8-digit length.
    fn length(&mut self) -> Result<usize> {
        let n = self.number(8)?;
        usize::try_from(n).map_err(|_| self.corrupt())
    }

    fn corrupt(&self) -> StoreError {
        StoreError::new(
            ErrorKind::Corrupt,
            format!("scan: a packed answer does not parse at byte {}", self.at),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    /// A packed row as [`statement`] writes it.
    fn packed(key: &[u8], value: &[u8], version: i64, expires_at: Option<i64>) -> Vec<u8> {
        let mut row = format!("{:08x}{:08x}{:016x}", key.len(), value.len(), version);
        match expires_at {
            None => row.push('n'),
            Some(at) => row.push_str(&format!("e{at:016x}")),
        }
        let mut row = row.into_bytes();
        row.extend_from_slice(key);
        row.extend_from_slice(value);
        row
    }

    #[test]
    fn unpacks_rows_in_order_with_and_without_expiry() {
        let mut answer = packed(b"a", b"", 1, None);
        answer.extend(packed(
            b"b\0;",
            &[0xff, 0, b'n'],
            7,
            Some(1_700_000_000_123),
        ));
        let entries = unpack(&answer).unwrap();
        assert_eq!(entries.len(), 2);
        assert_eq!(
            (&entries[0].key[..], &entries[0].value[..]),
            (&b"a"[..], &b""[..])
        );
        assert_eq!(entries[0].version.get(), 1);
        assert_eq!(entries[0].expires_at, None);
        assert_eq!(&entries[1].key[..], b"b\0;");
        assert_eq!(entries[1].value, [0xff, 0, b'n']);
        assert_eq!(entries[1].version.get(), 7);
        let at = UNIX_EPOCH + Duration::from_millis(1_700_000_000_123);
        assert_eq!(entries[1].expires_at, Some(at));
        assert!(unpack(b"").unwrap().is_empty());
    }

    #[test]
    fn rows_packed_out_of_order_come_back_in_key_order() {
        let mut answer = packed(b"b", b"2", 2, None);
        answer.extend(packed(b"a", b"1", 1, None));
        answer.extend(packed(b"c", b"3", 3, None));
        let keys: Vec<_> = unpack(&answer)
            .unwrap()
            .into_iter()
            .map(|e| e.key)
            .collect();
        assert_eq!(keys, [b"a", b"b", b"c"]);
    }

    #[test]
    fn a_version_not_positive_is_corrupt_as_in_a_streamed_row() {
        let e = unpack(&packed(b"k", b"v", -1, None)).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Corrupt);
        assert!(e.to_string().contains("version"), "{e}");
    }

    #[test]
    fn a_packing_that_does_not_parse_is_corrupt_and_names_where() {
        let good = packed(b"key", b"value", 3, None);
        let cases: [(&str, Vec<u8>); 4] = [
            ("cut short", good[..good.len() - 1].to_vec()),
            ("not hex", [&b"0000000x"[..], &good[8..]].concat()),
            (
                "no expiry mark",
                [&good[..32], &b"x"[..], &good[33..]].concat(),
            ),
            (
                "length past the end",
                packed(b"k", b"v", 1, None)[..34].to_vec(),
            ),
        ];
        for (case, bytes) in cases {
            let e = unpack(&bytes).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::Corrupt, "{case}");
            assert!(e.to_string().contains("at byte"), "{case}: {e}");
        }
    }
}
