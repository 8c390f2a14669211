//! How entries are printed: plain lines, a table for people, or one JSON object per
//! entry (`key`, `value`, `version`, `expires_at` in Unix milliseconds, `encoding`).

use std::io::{BufWriter, Stdout, Write};
use std::time::{SystemTime, UNIX_EPOCH};

use clap::Args;
use pooledstore::{Entry, ErrorKind, StoreError};
use serde_json::{Map, Value, json};
use storage_api::backend::to_unix_millis;

use super::encoding::{OutputEncoding, Used};

/// The output flags every reading command shares.
#[derive(Debug, Args, Clone, Copy)]
pub(super) struct OutputArgs {
    /// Print one JSON object per entry: key, value, version, expires_at (Unix ms or
    /// null) and encoding (how key and value are written).
    #[arg(long, conflicts_with = "table")]
    pub(super) json: bool,
    /// Print a table with version and expiry, for people.
    #[arg(long)]
    pub(super) table: bool,
    /// How keys and values are shown: auto (escaped text; in JSON text or, for bytes
    /// that are not UTF-8, base64), text, escape or base64.
    #[arg(long, value_enum, default_value_t = OutputEncoding::Auto, value_name = "ENCODING")]
    pub(super) encoding: OutputEncoding,
}

/// Which parts of an entry are shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Parts {
    /// Key, value, version, expiry.
    Whole,
    /// Key, version, expiry: no value.
    KeysOnly,
    /// The value alone in plain output (`get`); everything in table and JSON.
    ValueOnly,
}

/// Standard output, buffered; a reader that went away (`| head`) ends the output
/// quietly instead of failing.
#[derive(Debug)]
pub(super) struct Out {
    writer: BufWriter<Stdout>,
    closed: bool,
}

impl Out {
    pub(super) fn new() -> Self {
        Self {
            writer: BufWriter::new(std::io::stdout()),
            closed: false,
        }
    }

    /// Whether the reader has gone away.
    pub(super) fn closed(&self) -> bool {
        self.closed
    }

    /// Writes one line.
    pub(super) fn line(&mut self, text: &str) -> Result<(), StoreError> {
        if self.closed {
            return Ok(());
        }
        let outcome = writeln!(self.writer, "{text}");
        self.check(outcome)
    }

    /// Flushes what was written so far.
    pub(super) fn flush(&mut self) -> Result<(), StoreError> {
        if self.closed {
            return Ok(());
        }
        let outcome = self.writer.flush();
        self.check(outcome)
    }

    fn check(&mut self, outcome: std::io::Result<()>) -> Result<(), StoreError> {
        match outcome {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {
                self.closed = true;
                Ok(())
            }
            Err(e) => Err(StoreError::new(
                ErrorKind::Backend,
                format!("cannot write to standard output: {e}"),
            )),
        }
    }
}

/// Prints entries in the chosen form; the table header comes before the first row.
#[derive(Debug)]
pub(super) struct Printer {
    args: OutputArgs,
    parts: Parts,
    header_done: bool,
}

impl Printer {
    pub(super) fn new(args: OutputArgs, parts: Parts) -> Self {
        Self {
            args,
            parts,
            header_done: false,
        }
    }

    /// Prints a page of entries (table columns are aligned within the page).
    pub(super) fn page(&mut self, out: &mut Out, entries: &[Entry]) -> Result<(), StoreError> {
        if self.args.table {
            return self.table(out, entries);
        }
        for entry in entries {
            let text = if self.args.json {
                json_entry(entry, self.args.encoding, self.parts != Parts::KeysOnly)?.to_string()
            } else {
                self.plain(entry)?
            };
            out.line(&text)?;
        }
        Ok(())
    }

    fn plain(&self, entry: &Entry) -> Result<String, StoreError> {
        let used = self.args.encoding.for_plain();
        Ok(match self.parts {
            Parts::Whole => format!(
                "{}\t{}",
                used.render(&entry.key, "a key")?,
                used.render(&entry.value, "a value")?
            ),
            Parts::KeysOnly => used.render(&entry.key, "a key")?,
            Parts::ValueOnly => used.render(&entry.value, "the value")?,
        })
    }

    fn table(&mut self, out: &mut Out, entries: &[Entry]) -> Result<(), StoreError> {
        let used = self.args.encoding.for_plain();
        let with_value = self.parts != Parts::KeysOnly;
        let mut rows = Vec::with_capacity(entries.len());
        for entry in entries {
            let value = if with_value {
                used.render(&entry.value, "a value")?
            } else {
                String::new()
            };
            rows.push([
                used.render(&entry.key, "a key")?,
                entry.version.to_string(),
                entry.expires_at.map_or_else(|| "-".into(), utc),
                value,
            ]);
        }
        let header = [
            "KEY",
            "VERSION",
            "EXPIRES",
            if with_value { "VALUE" } else { "" },
        ]
        .map(String::from);
        let widths: Vec<usize> = (0..3)
            .map(|i| {
                rows.iter()
                    .chain(std::iter::once(&header))
                    .map(|r| r[i].chars().count())
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        let render = |row: &[String; 4]| {
            let line = format!(
                "{:<w0$}  {:>w1$}  {:<w2$}  {}",
                row[0],
                row[1],
                row[2],
                row[3],
                w0 = widths[0],
                w1 = widths[1],
                w2 = widths[2]
            );
            line.trim_end().to_owned()
        };
        if !self.header_done {
            out.line(&render(&header))?;
            self.header_done = true;
        }
        for row in &rows {
            out.line(&render(row))?;
        }
        Ok(())
    }
}

/// One entry as a JSON object; `with_value` false leaves the value out.
pub(super) fn json_entry(
    entry: &Entry,
    encoding: OutputEncoding,
    with_value: bool,
) -> Result<Value, StoreError> {
    let parts: &[&[u8]] = if with_value {
        &[&entry.key, &entry.value]
    } else {
        &[&entry.key]
    };
    let used = encoding.for_json(parts);
    let mut object = Map::new();
    object.insert("key".into(), used.render(&entry.key, "a key")?.into());
    if with_value {
        object.insert("value".into(), used.render(&entry.value, "a value")?.into());
    }
    object.insert("version".into(), entry.version.get().into());
    object.insert(
        "expires_at".into(),
        entry.expires_at.map(to_unix_millis).into(),
    );
    object.insert("encoding".into(), used.name().into());
    Ok(Value::Object(object))
}

/// A key alone as JSON fields: `key` and its `encoding`.
pub(super) fn json_key(key: &[u8], encoding: OutputEncoding) -> Result<Value, StoreError> {
    let used = encoding.for_json(&[key]);
    Ok(json!({ "key": used.render(key, "a key")?, "encoding": used.name() }))
}

/// A key for messages and plain output: escaped, so any bytes show unambiguously.
pub(super) fn shown_key(key: &[u8]) -> String {
    Used::Escape
        .render(key, "a key")
        .unwrap_or_else(|_| String::new())
}

/// A time as UTC, `YYYY-MM-DDTHH:MM:SS.mmmZ`.
pub(super) fn utc(time: SystemTime) -> String {
    let millis = time
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0);
    let secs = i64::try_from(millis / 1000).unwrap_or(i64::MAX);
    let (days, rest) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (year, month, day) = civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rest / 3600,
        rest % 3600 / 60,
        rest % 60,
        millis % 1000
    )
}

/// The proleptic Gregorian date `days` after 1970-01-01 (Howard Hinnant's algorithm).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn utc_dates_are_right() {
        assert_eq!(utc(UNIX_EPOCH), "1970-01-01T00:00:00.000Z");
        let t = UNIX_EPOCH + Duration::from_millis(1_893_456_000_123);
        assert_eq!(utc(t), "2030-01-01T00:00:00.123Z");
        let leap = UNIX_EPOCH + Duration::from_secs(951_782_400);
        assert_eq!(utc(leap), "2000-02-29T00:00:00.000Z");
    }
}
