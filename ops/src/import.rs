//! `import`: loads a JSONL export (see [`crate::jsonl`]) into any store, streaming, in
//! bounded atomic batches.
//!
//! **Resumable, not all-or-nothing.** One transaction over a whole import would hold a
//! connection and the write lock for as long as it runs, and grow without bound; instead
//! every batch of lines is applied atomically with `batch`, in file order, and the lines
//! before a bad one are kept. Each entry is an upsert, so running the same import again
//! converges on the same contents; `resume` skips keys the store already holds instead
//! of writing them again. After a failure, the error says how many entries were applied
//! and which line stopped the import: fix the file (or the store) and run it again.
//!
//! The target assigns its own versions: the `version` of a line is not kept. Expiry is
//! kept as an absolute time: an entry is written with the time it has left, and one
//! already expired is skipped.

use std::io::{BufRead, Read};
use std::path::Path;
use std::time::SystemTime;

use storage_api::{Condition, ErrorKind, PooledStore, PutOptions, Result, StoreError, WriteOp};

use crate::jsonl::{Decoded, Header, Line, max_line_bytes};
use crate::sqlite_file::io_error;

/// How to import.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ImportOptions {
    /// Skip keys the store already holds (live) instead of overwriting them.
    pub resume: bool,
    /// Entries per atomic batch, at least 1.
    pub batch_entries: usize,
    /// Bytes of keys and values per batch before it is applied, at least 1.
    pub batch_bytes: usize,
}

impl Default for ImportOptions {
    fn default() -> Self {
        Self {
            resume: false,
            batch_entries: 500,
            batch_bytes: 8 << 20,
        }
    }
}

/// What an import did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ImportReport {
    /// Entry lines read.
    pub lines: u64,
    /// Entries written.
    pub written: u64,
    /// Entries skipped because the store already held the key (`resume`).
    pub skipped_present: u64,
    /// Entries skipped because their expiry had passed.
    pub skipped_expired: u64,
}

/// Imports the export file at `path` into `store`.
pub async fn import_from_file(
    store: &dyn PooledStore,
    path: &Path,
    options: ImportOptions,
) -> Result<ImportReport> {
    let file = std::fs::File::open(path).map_err(|e| {
        StoreError::invalid_input(format!("cannot open {}: {e}", path.display())).with_source(e)
    })?;
    import(store, std::io::BufReader::new(file), options).await
}

/// Imports an export read from `reader` into `store`; see the module docs for what a
/// failure leaves behind.
pub async fn import<R: BufRead>(
    store: &dyn PooledStore,
    reader: R,
    options: ImportOptions,
) -> Result<ImportReport> {
    let caps = store.capabilities();
    let mut lines = Lines {
        reader,
        number: 0,
        max_bytes: max_line_bytes(caps.max_key_bytes, caps.max_value_bytes),
        buffer: Vec::new(),
    };
    let mut run = Import {
        store,
        options,
        report: ImportReport::default(),
        batch: Batch::default(),
    };
    let outcome = run.all_lines(&mut lines).await;
    outcome.map_err(|e| run.explain(e))?;
    Ok(run.report)
}

/// The state of one import.
struct Import<'a> {
    store: &'a dyn PooledStore,
    options: ImportOptions,
    report: ImportReport,
    batch: Batch,
}

impl Import<'_> {
    async fn all_lines<R: BufRead>(&mut self, lines: &mut Lines<R>) -> Result<()> {
        let Some(first) = lines.next()? else {
            return Err(StoreError::invalid_input(
                "the file is empty: no export header",
            ));
        };
        Header::parse(&first)?;
        loop {
            match self.next_line(lines).await {
                Ok(true) => {}
                Ok(false) => return Ok(()),
                Err(e) => {
                    // Keep the promise of the module docs: every line before the one
                    // that failed is applied.
                    self.flush().await?;
                    return Err(e);
                }
            }
        }
    }

    /// Handles one line; `false` once the end line has been checked.
    async fn next_line<R: BufRead>(&mut self, lines: &mut Lines<R>) -> Result<bool> {
        let Some(text) = lines.next()? else {
            return Err(StoreError::invalid_input(
                "the file ends without its end line: the export is truncated",
            ));
        };
        match Line::parse(&text, lines.number)? {
            Line::Entry(entry) => {
                self.add(entry, lines.number).await?;
                Ok(true)
            }
            Line::End(trailer) => {
                self.flush().await?;
                self.check_end(trailer.entries, lines)?;
                Ok(false)
            }
        }
    }

    async fn add(&mut self, entry: Decoded, number: u64) -> Result<()> {
        self.report.lines += 1;
        let now = SystemTime::now();
        let ttl = match entry.expires_at {
            None => None,
            Some(at) => match at.duration_since(now) {
                Ok(left) if !left.is_zero() => Some(left),
                _ => {
                    self.report.skipped_expired += 1;
                    return Ok(());
                }
            },
        };
        let caps = self.store.capabilities();
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
        if self.options.resume && self.store.get(&entry.key).await?.is_some() {
            self.report.skipped_present += 1;
            return Ok(());
        }
        let condition = if self.options.resume {
            Condition::Absent
        } else {
            Condition::Any
        };
        self.batch
            .push(entry, PutOptions { condition, ttl }, number);
        if self.batch.ops.len() >= self.options.batch_entries.max(1)
            || self.batch.bytes >= self.options.batch_bytes.max(1)
        {
            self.flush().await?;
        }
        Ok(())
    }

    /// Applies the pending batch. With `resume`, a key written by someone else since it
    /// was checked fails its `Absent` condition: it is dropped and the rest retried.
    async fn flush(&mut self) -> Result<()> {
        while !self.batch.ops.is_empty() {
            let ops = self.batch.ops.clone();
            match self.store.batch(ops).await {
                Ok(results) => {
                    self.report.written += results.len() as u64;
                    self.batch = Batch::default();
                }
                Err(e) if e.kind() == ErrorKind::ConditionFailed && self.options.resume => {
                    let Some(index) = e.batch_index().filter(|&i| i < self.batch.ops.len()) else {
                        return Err(e);
                    };
                    self.batch.remove(index);
                    self.report.skipped_present += 1;
                }
                Err(e) => {
                    return Err(
                        match e.batch_index().and_then(|i| self.batch.lines.get(i)) {
                            Some(&line) => {
                                StoreError::new(e.kind(), format!("line {line}: {}", e.message()))
                                    .with_source(e)
                            }
                            None => e,
                        },
                    );
                }
            }
        }
        Ok(())
    }

    fn check_end<R: BufRead>(&self, declared: u64, lines: &mut Lines<R>) -> Result<()> {
        if declared != self.report.lines {
            return Err(StoreError::invalid_input(format!(
                "the end line counts {declared} entries but the file has {}: the export is damaged",
                self.report.lines
            )));
        }
        if lines.next()?.is_some() {
            return Err(line_error(lines.number, "text after the end line"));
        }
        Ok(())
    }

    /// Adds what was applied before the failure to its message, once entries were read.
    fn explain(&self, error: StoreError) -> StoreError {
        let r = &self.report;
        if r.lines == 0 {
            return error;
        }
        StoreError::new(
            error.kind(),
            format!(
                "{}; {} entries were written before this ({} skipped as present, {} as \
                 expired); fix the cause and import again (entries are upserts; --resume \
                 skips keys already present)",
                error.message(),
                r.written,
                r.skipped_present,
                r.skipped_expired
            ),
        )
        .with_source(error)
    }
}

fn line_error(number: u64, what: &str) -> StoreError {
    StoreError::invalid_input(format!("line {number}: {what}"))
}

/// Pending writes and the file line each came from.
#[derive(Debug, Default)]
struct Batch {
    ops: Vec<WriteOp>,
    lines: Vec<u64>,
    bytes: usize,
}

impl Batch {
    fn push(&mut self, entry: Decoded, options: PutOptions, line: u64) {
        self.bytes += entry.key.len() + entry.value.len();
        self.ops.push(WriteOp::Put {
            key: entry.key,
            value: entry.value,
            options,
        });
        self.lines.push(line);
    }

    fn remove(&mut self, index: usize) {
        self.ops.remove(index);
        self.lines.remove(index);
    }
}

/// Reads lines of at most `max_bytes`, never holding a longer one in memory.
struct Lines<R> {
    reader: R,
    number: u64,
    max_bytes: usize,
    buffer: Vec<u8>,
}

impl<R: BufRead> Lines<R> {
    fn next(&mut self) -> Result<Option<String>> {
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
