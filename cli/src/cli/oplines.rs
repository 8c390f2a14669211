//! The JSON Lines files `batch` and `tx` read: one operation per line, blank lines
//! skipped.
//!
//! ```text
//! {"op":"put","key":"user:1","value":"ada","if_absent":true,"ttl":60}
//! {"op":"put","key":"AP8=","value":"AAE=","encoding":"base64","if_version":7}
//! {"op":"delete","key":"user:2","if_version":3}
//! {"op":"get","key":"user:1"}                                   (tx only)
//! {"op":"scan","prefix":"user:","limit":10}                    (tx only; or start, end, after)
//! ```
//!
//! `encoding` (text, escape or base64; default text) says how the line's keys and value
//! are written. Unknown fields are errors.

use std::path::Path;
use std::time::Duration;

use pooledstore::{KeyRange, PutOptions, ScanOptions, StoreError, WriteOp};
use serde::Deserialize;

use super::condition;
use super::encoding::InputEncoding;

/// One line as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    op: String,
    key: Option<String>,
    value: Option<String>,
    #[serde(default)]
    encoding: InputEncoding,
    #[serde(default)]
    if_absent: bool,
    if_version: Option<u64>,
    ttl: Option<u64>,
    prefix: Option<String>,
    start: Option<String>,
    end: Option<String>,
    after: Option<String>,
    limit: Option<usize>,
}

/// One operation and the line it came from.
#[derive(Debug, Clone)]
pub(super) struct Op {
    /// 1-based line number in the file.
    pub(super) line: usize,
    pub(super) kind: OpKind,
}

/// What an operation does.
#[derive(Debug, Clone)]
pub(super) enum OpKind {
    Write(WriteOp),
    Get(Vec<u8>),
    Scan(ScanOptions),
}

impl OpKind {
    pub(super) fn name(&self) -> &'static str {
        match self {
            Self::Write(WriteOp::Put { .. }) => "put",
            Self::Write(WriteOp::Delete { .. }) => "delete",
            Self::Get(_) => "get",
            Self::Scan(_) => "scan",
        }
    }
}

/// Reads every operation of `path` (`-`: standard input); `reads` allows get and scan.
pub(super) fn read(path: &Path, reads: bool) -> Result<Vec<Op>, StoreError> {
    let name = path.display();
    let text = if path == Path::new("-") {
        std::io::read_to_string(std::io::stdin().lock())
    } else {
        std::fs::read_to_string(path)
    }
    .map_err(|e| StoreError::invalid_input(format!("cannot read {name}: {e}")).with_source(e))?;
    let mut ops = Vec::new();
    for (index, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let number = index + 1;
        let kind = parse(line, reads)
            .map_err(|e| StoreError::invalid_input(format!("{name}, line {number}: {e}")))?;
        ops.push(Op { line: number, kind });
    }
    if ops.is_empty() {
        return Err(StoreError::invalid_input(format!(
            "{name} holds no operation"
        )));
    }
    Ok(ops)
}

fn parse(line: &str, reads: bool) -> Result<OpKind, String> {
    let raw: Raw =
        serde_json::from_str(line).map_err(|e| pooledstore_ops::jsonl::describe_json_error(&e))?;
    let decode = |text: &Option<String>, field: &str| {
        text.as_deref()
            .map(|t| {
                raw.encoding
                    .decode(t, field)
                    .map_err(|e| e.message().to_owned())
            })
            .transpose()
    };
    let need = |text: &Option<String>, field: &str| {
        decode(text, field)?.ok_or_else(|| format!("{} needs \"{field}\"", raw.op))
    };
    let reject = |present: bool, field: &str| {
        if present {
            Err(format!("{} takes no \"{field}\"", raw.op))
        } else {
            Ok(())
        }
    };
    let scan_fields = raw.prefix.is_some()
        || raw.start.is_some()
        || raw.end.is_some()
        || raw.after.is_some()
        || raw.limit.is_some();
    match raw.op.as_str() {
        "put" => {
            reject(scan_fields, "prefix/start/end/after/limit")?;
            let condition = condition::from_flags(raw.if_absent, raw.if_version, "put")
                .map_err(|e| e.message().to_owned())?;
            let options = PutOptions {
                condition,
                ttl: raw.ttl.map(Duration::from_secs),
            };
            Ok(OpKind::Write(WriteOp::Put {
                key: need(&raw.key, "key")?,
                value: need(&raw.value, "value")?,
                options,
            }))
        }
        "delete" => {
            reject(scan_fields, "prefix/start/end/after/limit")?;
            reject(raw.value.is_some(), "value")?;
            reject(raw.ttl.is_some(), "ttl")?;
            reject(raw.if_absent, "if_absent")?;
            let condition = condition::from_flags(false, raw.if_version, "delete")
                .map_err(|e| e.message().to_owned())?;
            Ok(OpKind::Write(WriteOp::Delete {
                key: need(&raw.key, "key")?,
                condition,
            }))
        }
        "get" | "scan" if !reads => Err(format!(
            "{} is for `tx` files; a batch holds puts and deletes",
            raw.op
        )),
        "get" => {
            reject(scan_fields, "prefix/start/end/after/limit")?;
            reject(raw.value.is_some() || raw.ttl.is_some(), "value or ttl")?;
            reject(raw.if_absent || raw.if_version.is_some(), "condition")?;
            Ok(OpKind::Get(need(&raw.key, "key")?))
        }
        "scan" => {
            reject(raw.key.is_some() || raw.value.is_some(), "key or value")?;
            reject(raw.if_absent || raw.if_version.is_some(), "condition")?;
            if raw.prefix.is_some() && (raw.start.is_some() || raw.end.is_some()) {
                return Err("scan takes either \"prefix\" or \"start\"/\"end\"".into());
            }
            let range = match decode(&raw.prefix, "prefix")? {
                Some(prefix) => KeyRange::prefix(prefix),
                None => KeyRange {
                    start: decode(&raw.start, "start")?,
                    end: decode(&raw.end, "end")?,
                },
            };
            Ok(OpKind::Scan(ScanOptions {
                range,
                limit: raw.limit,
                after: decode(&raw.after, "after")?,
            }))
        }
        other => Err(format!(
            "unknown op {other:?}; expected put, delete{}",
            if reads { ", get or scan" } else { "" }
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_become_operations_or_name_what_is_wrong() {
        let put = parse(
            r#"{"op":"put","key":"AP8=","value":"","encoding":"base64","if_version":4}"#,
            false,
        )
        .unwrap();
        let OpKind::Write(WriteOp::Put { key, options, .. }) = put else {
            panic!("{put:?}")
        };
        assert_eq!(key, [0, 0xFF]);
        assert_eq!(
            options.condition,
            pooledstore::Condition::Version(pooledstore::Version::new(4).unwrap())
        );
        for (line, cause) in [
            (r#"{"op":"get","key":"a"}"#, "for `tx` files"),
            (r#"{"op":"put","key":"a"}"#, "needs \"value\""),
            (
                r#"{"op":"put","key":"a","value":"b","if_absent":true,"if_version":2}"#,
                "exclude",
            ),
            (
                r#"{"op":"delete","key":"a","value":"secret"}"#,
                "takes no \"value\"",
            ),
            (
                r#"{"op":"put","key":"a","value":"secret","colour":1}"#,
                "unknown field",
            ),
            (r#"{"op":"put","key":"a","value":"secret!""#, "ends early"),
            (r#"{"op":"frob"}"#, "unknown op"),
        ] {
            let e = parse(line, false).unwrap_err();
            assert!(e.contains(cause), "{line}: {e}");
            assert!(!e.contains("secret"), "{e}");
        }
        assert!(parse(r#"{"op":"scan","prefix":"a","limit":2}"#, true).is_ok());
    }
}
