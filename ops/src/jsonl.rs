//! The portable export format: JSON Lines, one object per line.
//!
//! ```text
//! {"format":"pooledstore-export","format_version":1,"source_backend":"sqlx"}
//! {"key":"dXNlcjox","value":"YWRh","version":7,"expires_at":null}
//! {"key":"c2Vzc2lvbjo5","value":"AAEC","version":9,"expires_at":1893456000000}
//! {"end":true,"entries":2}
//! ```
//!
//! Keys and values are standard base64 (with padding), so any bytes survive. `version`
//! is the version the entry had in the source, for reference: an importing store assigns
//! its own. `expires_at` is milliseconds since the Unix epoch, or `null` for no expiry.
//! The last line counts the entries, so a truncated file is recognised.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};
use storage_api::backend::{from_unix_millis, to_unix_millis};
use storage_api::{Entry, ErrorKind, Result, StoreError};

/// The `format` value of the header line.
pub const FORMAT_NAME: &str = "pooledstore-export";

/// The format version this build writes and reads.
pub const FORMAT_VERSION: u32 = 1;

/// The first line of an export.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Header {
    /// Always [`FORMAT_NAME`].
    pub(crate) format: String,
    /// [`FORMAT_VERSION`] when written.
    pub(crate) format_version: u32,
    /// The backend the entries were read from, for the record.
    #[serde(default)]
    pub(crate) source_backend: Option<String>,
}

impl Header {
    pub(crate) fn new(source_backend: &str) -> Self {
        Self {
            format: FORMAT_NAME.into(),
            format_version: FORMAT_VERSION,
            source_backend: Some(source_backend.into()),
        }
    }

    /// Parses and checks the header line.
    pub(crate) fn parse(line: &str) -> Result<Self> {
        let header: Self = serde_json::from_str(line).map_err(|e| {
            StoreError::invalid_input(format!("line 1 is not a pooledstore export header ({e})"))
        })?;
        if header.format != FORMAT_NAME {
            return Err(StoreError::invalid_input(format!(
                "line 1: format is {:?}, expected {FORMAT_NAME:?}",
                header.format
            )));
        }
        if header.format_version > FORMAT_VERSION {
            return Err(StoreError::new(
                ErrorKind::Unsupported,
                format!(
                    "the export has format version {}, newer than this build reads \
                     ({FORMAT_VERSION}); use a newer pooledstore",
                    header.format_version
                ),
            ));
        }
        Ok(header)
    }
}

/// One entry line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Record {
    key: String,
    value: String,
    version: u64,
    expires_at: Option<i64>,
}

impl Record {
    pub(crate) fn from_entry(entry: &Entry) -> Self {
        Self {
            key: STANDARD.encode(&entry.key),
            value: STANDARD.encode(&entry.value),
            version: entry.version.get(),
            expires_at: entry.expires_at.map(to_unix_millis),
        }
    }
}

/// The last line: how many entry lines came before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Trailer {
    /// Always `true`; marks the line.
    pub(crate) end: bool,
    /// Entry lines in the file.
    pub(crate) entries: u64,
}

/// A decoded entry line: the bytes to store and the absolute expiry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Decoded {
    pub(crate) key: Vec<u8>,
    pub(crate) value: Vec<u8>,
    pub(crate) expires_at: Option<std::time::SystemTime>,
}

/// A line after the header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Line {
    Entry(Decoded),
    End(Trailer),
}

impl Line {
    /// Parses line number `number` (1-based); errors name the line and what is wrong
    /// with it, never its content.
    pub(crate) fn parse(line: &str, number: u64) -> Result<Self> {
        let bad = |what: String| StoreError::invalid_input(format!("line {number}: {what}"));
        let object: serde_json::Map<String, serde_json::Value> = serde_json::from_str(line)
            .map_err(|e| bad(format!("not a JSON object ({})", describe_json_error(&e))))?;
        if object.contains_key("end") {
            let trailer: Trailer = serde_json::from_value(object.into())
                .map_err(|e| bad(format!("bad end line ({})", describe_json_error(&e))))?;
            if !trailer.end {
                return Err(bad("bad end line (end must be true)".into()));
            }
            return Ok(Self::End(trailer));
        }
        let record: Record = serde_json::from_value(object.into())
            .map_err(|e| bad(format!("bad entry ({})", describe_json_error(&e))))?;
        let key = STANDARD
            .decode(&record.key)
            .map_err(|_| bad("key is not valid base64".into()))?;
        let value = STANDARD
            .decode(&record.value)
            .map_err(|_| bad("value is not valid base64".into()))?;
        if record.version == 0 {
            return Err(bad("version must be at least 1".into()));
        }
        Ok(Self::Entry(Decoded {
            key,
            value,
            expires_at: record.expires_at.map(from_unix_millis),
        }))
    }
}

/// The longest entry line a store with these limits can need, in bytes.
pub(crate) fn max_line_bytes(max_key_bytes: usize, max_value_bytes: usize) -> usize {
    let b64 = |n: usize| n.div_ceil(3) * 4;
    b64(max_key_bytes) + b64(max_value_bytes) + 256
}

/// What is wrong with a JSON line, in words that never echo its content: `serde_json`'s
/// own messages may quote values ("invalid type: string \"…\""), so only the ones
/// that name a field or a variant are passed on.
pub fn describe_json_error(error: &serde_json::Error) -> String {
    let message = error.to_string();
    let names_a_field = message.starts_with("missing field")
        || message.starts_with("unknown field")
        || message.starts_with("unknown variant");
    match error.classify() {
        serde_json::error::Category::Data if names_a_field => message
            .split(" at line")
            .next()
            .unwrap_or("wrong shape")
            .to_owned(),
        serde_json::error::Category::Data => "a field has the wrong type".to_owned(),
        serde_json::error::Category::Syntax => "not valid JSON".to_owned(),
        serde_json::error::Category::Eof => "the JSON ends early".to_owned(),
        serde_json::error::Category::Io => "read error".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use storage_api::Version;

    #[test]
    fn entries_roundtrip_through_a_line() {
        let entry = Entry {
            key: vec![0, 0xFF, b'k'],
            value: vec![],
            version: Version::new(42).unwrap(),
            expires_at: Some(from_unix_millis(1_893_456_000_123)),
        };
        let line = serde_json::to_string(&Record::from_entry(&entry)).unwrap();
        let Line::Entry(decoded) = Line::parse(&line, 2).unwrap() else {
            panic!("not an entry: {line}");
        };
        assert_eq!(decoded.key, entry.key);
        assert_eq!(decoded.value, entry.value);
        assert_eq!(decoded.expires_at, entry.expires_at);
    }

    #[test]
    fn bad_lines_name_the_line_and_never_echo_content() {
        for line in [
            "not json at all",
            r#"{"key":"@@@","value":"","version":1,"expires_at":null}"#,
            r#"{"key":"YQ==","value":"YQ==","version":0,"expires_at":null}"#,
            r#"{"key":"YQ==","value":"YQ==","version":1,"expires_at":null,"x":1}"#,
            r#"{"end":"yes"}"#,
            r#"{"end":false,"entries":1}"#,
            r#"{"key":"YQ==","value":"YQ==","version":"@@@","expires_at":null}"#,
        ] {
            let e = Line::parse(line, 7).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::InvalidInput, "{line}");
            assert!(e.message().starts_with("line 7: "), "{e}");
            assert!(!e.message().contains("@@@"), "{e}");
        }
    }

    #[test]
    fn headers_are_checked() {
        let ok = serde_json::to_string(&Header::new("sqlx")).unwrap();
        assert_eq!(Header::parse(&ok).unwrap().format_version, FORMAT_VERSION);
        let newer = ok.replace(
            &format!("\"format_version\":{FORMAT_VERSION}"),
            "\"format_version\":99",
        );
        assert_eq!(
            Header::parse(&newer).unwrap_err().kind(),
            ErrorKind::Unsupported
        );
        let other = ok.replace(FORMAT_NAME, "csv");
        assert_eq!(
            Header::parse(&other).unwrap_err().kind(),
            ErrorKind::InvalidInput
        );
        assert!(Header::parse("{}").is_err());
    }
}
