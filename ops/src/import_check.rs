//! The first pass of an import: reads and checks the whole file before anything is
//! written (header, every line, the limits of the target, the end line and its count,
//! nothing after it), and counts distinct keys and duplicates.
//!
//! Memory stays small whatever the file: one line at a time, plus 16 bytes per
//! distinct key (a 128-bit hash of it) and, for keys that occur more than once, the
//! line of their last occurrence, which is the one the import writes.

use std::collections::hash_map::RandomState;
use std::collections::{HashMap, HashSet};
use std::hash::BuildHasher;
use std::io::{BufRead, Read};

use storage_api::{Capabilities, Result, StoreError};

use crate::jsonl::{Decoded, Header, Line, max_line_bytes};
use crate::sqlite_file::io_error;

/// What the first pass learned about a sound file.
#[derive(Debug)]
pub(crate) struct Plan {
    /// Entry lines.
    pub(crate) entries: u64,
    /// Different keys among them.
    pub(crate) distinct_keys: u64,
    /// Entry lines whose key an earlier line already had.
    pub(crate) duplicates: u64,
    hashes: KeyHasher,
    last_of_duplicate: HashMap<u128, u64>,
}

impl Plan {
    /// Whether the entry on line `number` is overwritten by a later line of the same
    /// key, so that writing it would only be undone.
    pub(crate) fn superseded(&self, key: &[u8], number: u64) -> bool {
        self.last_of_duplicate
            .get(&self.hashes.hash(key))
            .is_some_and(|&last| last != number)
    }
}

/// Checks everything `reader` holds against `caps`; the first fault is an
/// `InvalidInput` error naming its line (or `Unsupported` for a newer format).
pub(crate) fn check<R: BufRead>(reader: R, caps: &Capabilities) -> Result<Plan> {
    let mut lines = Lines::new(reader, caps);
    let Some(first) = lines.next()? else {
        return Err(StoreError::invalid_input(
            "the file is empty: no export header",
        ));
    };
    Header::parse(&first)?;
    let hashes = KeyHasher::default();
    let mut seen = HashSet::new();
    let mut last_of_duplicate = HashMap::new();
    let mut entries = 0u64;
    loop {
        let Some(text) = lines.next()? else {
            return Err(line_error(
                lines.number,
                "the file ends without its end line: the export is truncated",
            ));
        };
        match Line::parse(&text, lines.number)? {
            Line::Entry(entry) => {
                check_entry(&entry, caps, lines.number)?;
                entries += 1;
                let hash = hashes.hash(&entry.key);
                if !seen.insert(hash) {
                    last_of_duplicate.insert(hash, lines.number);
                }
            }
            Line::End(trailer) => {
                if trailer.entries != entries {
                    return Err(line_error(
                        lines.number,
                        &format!(
                            "the end line counts {} entries but the file has {entries}: the \
                             export is damaged",
                            trailer.entries
                        ),
                    ));
                }
                if lines.next()?.is_some() {
                    return Err(line_error(lines.number, "text after the end line"));
                }
                let distinct_keys = seen.len() as u64;
                return Ok(Plan {
                    entries,
                    distinct_keys,
                    duplicates: entries - distinct_keys,
                    hashes,
                    last_of_duplicate,
                });
            }
        }
    }
}

/// The target's limits, checked on every entry line.
pub(crate) fn check_entry(entry: &Decoded, caps: &Capabilities, number: u64) -> Result<()> {
    if entry.key.is_empty() || entry.key.len() > caps.max_key_bytes {
        return Err(line_error(number, "the key is empty or over the key limit"));
    }
    if entry.value.len() > caps.max_value_bytes {
        return Err(line_error(
            number,
            &format!(
                "the value is {} bytes, over this store's max_value_bytes ({})",
                entry.value.len(),
                caps.max_value_bytes
            ),
        ));
    }
    Ok(())
}

pub(crate) fn line_error(number: u64, what: &str) -> StoreError {
    StoreError::invalid_input(format!("line {number}: {what}"))
}

/// Two independently keyed hashers: a 128-bit hash, so distinct keys do not collide
/// in practice.
#[derive(Debug, Default)]
struct KeyHasher(RandomState, RandomState);

impl KeyHasher {
    fn hash(&self, key: &[u8]) -> u128 {
        (u128::from(self.0.hash_one(key)) << 64) | u128::from(self.1.hash_one(key))
    }
}

/// Reads lines of at most the longest an entry of the target can need, never holding
/// a longer one in memory.
pub(crate) struct Lines<R> {
    reader: R,
    /// The number of the line last read (1-based).
    pub(crate) number: u64,
    max_bytes: usize,
    buffer: Vec<u8>,
}

impl<R: BufRead> Lines<R> {
    pub(crate) fn new(reader: R, caps: &Capabilities) -> Self {
        Self {
            reader,
            number: 0,
            max_bytes: max_line_bytes(caps.max_key_bytes, caps.max_value_bytes),
            buffer: Vec::new(),
        }
    }

    pub(crate) fn next(&mut self) -> Result<Option<String>> {
        self.buffer.clear();
        self.number += 1;
        let limit = u64::try_from(self.max_bytes).unwrap_or(u64::MAX);
        let read = (&mut self.reader)
            .take(limit.saturating_add(1))
            .read_until(b'\n', &mut self.buffer)
            .map_err(|e| io_error(e, &format!("reading line {}", self.number)))?;
        if read == 0 {
            return Ok(None);
        }
        if self.buffer.last() == Some(&b'\n') {
            self.buffer.pop();
        } else if self.buffer.len() > self.max_bytes {
            return Err(line_error(
                self.number,
                &format!(
                    "longer than {} bytes, more than any entry this store accepts can need",
                    self.max_bytes
                ),
            ));
        }
        let text = std::str::from_utf8(&self.buffer)
            .map_err(|_| line_error(self.number, "not UTF-8 text"))?;
        Ok(Some(text.trim_end_matches('\r').to_owned()))
    }
}
