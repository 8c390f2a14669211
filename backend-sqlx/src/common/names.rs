//! Names derived from the table name (its version sequence and expiry index), kept
//! within PostgreSQL's 63-byte identifier limit (MySQL's is 64).
//!
//! PostgreSQL silently truncates longer identifiers (MySQL refuses them), so two long table names sharing a
//! prefix would share a truncated sequence. A derived name that would not fit instead
//! keeps a prefix of the table name and adds a hash of the whole name: deterministic
//! (every process and version derives the same name) and distinct for distinct tables.

/// PostgreSQL's longest identifier, in bytes (`NAMEDATALEN - 1`); one less than MySQL's.
pub(crate) const MAX_IDENTIFIER_BYTES: usize = 63;

/// The names of everything one store's table needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Names {
    /// The table, as configured.
    pub(crate) table: String,
    /// The sequence versions are drawn from.
    pub(crate) sequence: String,
    /// The partial index on `expires_at`.
    pub(crate) expiry_index: String,
}

impl Names {
    /// The names for `table`, a validated identifier of at most 63 bytes.
    pub(crate) fn new(table: &str) -> Self {
        Self {
            table: table.to_owned(),
            sequence: derived_name(table, "_version_seq"),
            expiry_index: derived_name(table, "_expires_at"),
        }
    }
}

/// `table` followed by `suffix`, or, when that is over 63 bytes, as much of `table` as
/// fits, `_`, eight hex digits of the table name's FNV-1a hash, and `suffix`.
pub(crate) fn derived_name(table: &str, suffix: &str) -> String {
    if table.len() + suffix.len() <= MAX_IDENTIFIER_BYTES {
        return format!("{table}{suffix}");
    }
    let tag = format!("_{:08x}", fnv1a32(table.as_bytes()));
    let mut keep = MAX_IDENTIFIER_BYTES.saturating_sub(suffix.len() + tag.len());
    while !table.is_char_boundary(keep) {
        keep -= 1;
    }
    format!("{}{tag}{suffix}", &table[..keep])
}

/// The 32-bit FNV-1a hash: tiny, and stable across platforms and compiler versions.
fn fnv1a32(bytes: &[u8]) -> u32 {
    bytes.iter().fold(0x811c_9dc5, |hash, byte| {
        (hash ^ u32::from(*byte)).wrapping_mul(0x0100_0193)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_names_keep_the_plain_suffix() {
        let names = Names::new("pooledstore_kv");
        assert_eq!(names.sequence, "pooledstore_kv_version_seq");
        assert_eq!(names.expiry_index, "pooledstore_kv_expires_at");
        let exact = "t".repeat(MAX_IDENTIFIER_BYTES - "_version_seq".len());
        assert_eq!(
            derived_name(&exact, "_version_seq"),
            format!("{exact}_version_seq")
        );
    }

    #[test]
    fn long_names_fit_and_stay_distinct_and_stable() {
        let a = format!("{}a", "x".repeat(62));
        let b = format!("{}b", "x".repeat(62));
        let (sa, sb) = (
            derived_name(&a, "_version_seq"),
            derived_name(&b, "_version_seq"),
        );
        assert!(sa.len() <= MAX_IDENTIFIER_BYTES && sb.len() <= MAX_IDENTIFIER_BYTES);
        assert_ne!(sa, sb);
        assert!(
            sa.ends_with("_version_seq") && sa.starts_with("xxxx"),
            "{sa}"
        );
        assert_eq!(sa, derived_name(&a, "_version_seq"));
        // The hash is pinned: changing it would orphan existing sequences.
        assert_eq!(fnv1a32(b"pooledstore"), 0xcafc_b663);
    }
}
