//! How bytes travel through the command line: keys and values given as text, escaped
//! text or base64, and shown the same ways, so any bytes survive a round trip.
//!
//! The escaped form keeps printable UTF-8 as is and writes `\\`, `\t`, `\n`, `\r` and
//! `\xNN` for everything else (control characters, bytes that are not UTF-8); reading
//! it back with `--key-encoding escape` gives the same bytes.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use clap::ValueEnum;
use pooledstore::StoreError;
use serde::Deserialize;

/// How a key or value is written on the command line or in a batch/tx file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(super) enum InputEncoding {
    /// The UTF-8 bytes of the text, as given.
    #[default]
    Text,
    /// Text with `\\`, `\t`, `\n`, `\r` and `\xNN` escapes.
    Escape,
    /// Standard base64 with padding.
    Base64,
}

impl InputEncoding {
    /// Decodes `text`, naming `what` (e.g. "KEY", "--after") in the error.
    pub(super) fn decode(self, text: &str, what: &str) -> Result<Vec<u8>, StoreError> {
        match self {
            Self::Text => Ok(text.as_bytes().to_vec()),
            Self::Escape => unescape(text).map_err(|cause| {
                StoreError::invalid_input(format!("{what} is not valid escaped text: {cause}"))
            }),
            Self::Base64 => STANDARD
                .decode(text)
                .map_err(|e| StoreError::invalid_input(format!("{what} is not valid base64: {e}"))),
        }
    }
}

/// How keys and values are shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub(super) enum OutputEncoding {
    /// Escaped text in plain and table output; in JSON, text when the key and value are
    /// UTF-8, base64 otherwise (the `encoding` field says which).
    #[default]
    Auto,
    /// UTF-8 text as is; a key or value that is not UTF-8 is an error.
    Text,
    /// Escaped text (see `--key-encoding escape`).
    Escape,
    /// Standard base64 with padding.
    Base64,
}

/// The encoding actually used for one entry, as named in JSON output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Used {
    Text,
    Escape,
    Base64,
}

impl Used {
    pub(super) fn name(self) -> &'static str {
        match self {
            Self::Text => "text",
            Self::Escape => "escape",
            Self::Base64 => "base64",
        }
    }

    /// Renders `bytes`; `Text` fails for bytes that are not UTF-8, naming `what`.
    pub(super) fn render(self, bytes: &[u8], what: &str) -> Result<String, StoreError> {
        match self {
            Self::Text => String::from_utf8(bytes.to_vec()).map_err(|_| {
                StoreError::invalid_input(format!(
                    "{what} is not UTF-8 text; show it with --encoding escape or base64"
                ))
            }),
            Self::Escape => Ok(escape(bytes)),
            Self::Base64 => Ok(STANDARD.encode(bytes)),
        }
    }
}

impl OutputEncoding {
    /// The encoding for plain and table output.
    pub(super) fn for_plain(self) -> Used {
        match self {
            Self::Auto | Self::Escape => Used::Escape,
            Self::Text => Used::Text,
            Self::Base64 => Used::Base64,
        }
    }

    /// The encoding for one JSON object holding `parts`.
    pub(super) fn for_json(self, parts: &[&[u8]]) -> Used {
        match self {
            Self::Auto if parts.iter().all(|p| std::str::from_utf8(p).is_ok()) => Used::Text,
            Self::Auto | Self::Base64 => Used::Base64,
            Self::Text => Used::Text,
            Self::Escape => Used::Escape,
        }
    }
}

/// Printable UTF-8 as is; `\\`, `\t`, `\n`, `\r`; every other byte as `\xNN`.
pub(super) fn escape(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            match c {
                '\\' => out.push_str("\\\\"),
                '\t' => out.push_str("\\t"),
                '\n' => out.push_str("\\n"),
                '\r' => out.push_str("\\r"),
                c if c.is_control() => {
                    let mut buf = [0; 4];
                    for b in c.encode_utf8(&mut buf).bytes() {
                        out.push_str(&format!("\\x{b:02x}"));
                    }
                }
                c => out.push(c),
            }
        }
        for b in chunk.invalid() {
            out.push_str(&format!("\\x{b:02x}"));
        }
    }
    out
}

/// The inverse of [`escape`]; also accepts `\0`, `\'` and `\"`.
pub(super) fn unescape(text: &str) -> Result<Vec<u8>, String> {
    let mut out = Vec::with_capacity(text.len());
    let mut chars = text.char_indices();
    while let Some((at, c)) = chars.next() {
        if c != '\\' {
            let mut buf = [0; 4];
            out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            continue;
        }
        let byte = match chars.next().map(|(_, c)| c) {
            Some('\\') => b'\\',
            Some('t') => b'\t',
            Some('n') => b'\n',
            Some('r') => b'\r',
            Some('0') => 0,
            Some('\'') => b'\'',
            Some('"') => b'"',
            Some('x') => {
                let hex: String = chars.by_ref().take(2).map(|(_, c)| c).collect();
                u8::from_str_radix(&hex, 16)
                    .ok()
                    .filter(|_| hex.len() == 2)
                    .ok_or_else(|| format!("\\x at byte {at} needs two hex digits"))?
            }
            Some(other) => return Err(format!("unknown escape \\{other} at byte {at}")),
            None => return Err(format!("a lone backslash at byte {at}")),
        };
        out.push(byte);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaped_bytes_read_back_the_same() {
        let samples: [&[u8]; 6] = [
            b"plain",
            "caf\u{e9} \u{1F600}".as_bytes(),
            &[0, 0xFF, 0xC3, b'\\', b'\t', b'\n', b'\r', 0x7F],
            b"a\\x41",
            &[0xC2, 0x85],
            b"",
        ];
        for bytes in samples {
            let shown = escape(bytes);
            assert!(!shown.contains('\n') && !shown.contains('\t'), "{shown}");
            assert_eq!(unescape(&shown).unwrap(), bytes, "{shown}");
        }
        assert_eq!(escape("café".as_bytes()), "café");
        assert_eq!(escape(&[0xFF, b'a']), "\\xffa");
    }

    #[test]
    fn bad_escapes_and_base64_are_errors_naming_the_input() {
        for bad in ["\\", "\\q", "\\x4", "\\xzz"] {
            assert!(unescape(bad).is_err(), "{bad}");
        }
        let e = InputEncoding::Base64.decode("***", "KEY").unwrap_err();
        assert!(e.message().contains("KEY"), "{e}");
        let e = InputEncoding::Escape.decode("\\q", "--after").unwrap_err();
        assert!(e.message().contains("--after"), "{e}");
        assert_eq!(
            InputEncoding::Base64.decode("AP8=", "KEY").unwrap(),
            [0, 0xFF]
        );
    }

    #[test]
    fn json_falls_back_to_base64_only_when_needed() {
        assert_eq!(OutputEncoding::Auto.for_json(&[b"k", b"v"]), Used::Text);
        assert_eq!(
            OutputEncoding::Auto.for_json(&[b"k", &[0xFF]]),
            Used::Base64
        );
        assert!(Used::Text.render(&[0xFF], "the value").is_err());
    }
}
