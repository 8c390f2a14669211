//! `import`: loads a JSONL export (see [`crate::jsonl`]) into any store, in two
//! passes over the file.
//!
//! **Checked whole before any write.** The first pass reads every line and checks it
//! (see [`crate::import_check`]): a malformed line, an entry over the target's limits,
//! a missing or miscounted end line or text after it is reported with its line number
//! and nothing is written. It also counts distinct keys and duplicates: when a key
//! occurs more than once the last line wins, and only that one is written.
//!
//! **Applied in bounded atomic batches, resumable.** One transaction over a whole
//! import would hold a connection and the write lock for as long as it runs, and grow
//! without bound; instead the second pass applies every batch of lines atomically with
//! `batch`, in file order. If the store fails meanwhile, the batches before are kept
//! and the error says how many entries were applied. Each entry is an upsert, so
//! running the same import again converges on the same contents; `resume` skips keys
//! the store already holds instead of writing them again.
//!
//! The target assigns its own versions: the `version` of a line is not kept. Expiry is
//! kept as an absolute time: an entry is written with the time it has left, and one
//! already expired is skipped.

use std::io::{BufRead, Seek, SeekFrom};
use std::path::Path;
use std::time::SystemTime;

use storage_api::{Condition, ErrorKind, PooledStore, PutOptions, Result, StoreError, WriteOp};

use crate::import_check::{Lines, Plan, check, check_entry, line_error};
use crate::jsonl::{Decoded, Header, Line};
use crate::sqlite_file::io_error;

/// How to import.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ImportOptions {
    /// Skip keys the store already holds (live) instead of overwriting them.
    pub resume: bool,
    /// Entries per atomic batch, at least 1 (and at most the store's `max_batch_ops`).
    pub batch_entries: usize,
    /// Bytes of keys and values per batch before it is applied, at least 1.
    pub batch_bytes: usize,
}

impl Default for ImportOptions {
    fn default() -> Self {
        Self {
            resume: false,
            batch_entries: 500,
            batch_bytes: 1 << 20,
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
    /// Different keys in the file.
    pub distinct_keys: u64,
    /// Entry lines whose key an earlier line already had; the last line of a key wins
    /// and the earlier ones are not written.
    pub duplicates: u64,
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

/// Imports an export read from `reader` into `store`: checks all of it, rewinds, and
/// applies it; see the module docs for what a failure leaves behind.
pub async fn import<R: BufRead + Seek>(
    store: &dyn PooledStore,
    mut reader: R,
    options: ImportOptions,
) -> Result<ImportReport> {
    let caps = store.capabilities();
    let plan = check(&mut reader, &caps)?;
    reader
        .seek(SeekFrom::Start(0))
        .map_err(|e| io_error(e, "rewinding the file for the second pass"))?;
    let mut lines = Lines::new(reader, &caps);
    let mut run = Import {
        store,
        options,
        report: ImportReport {
            distinct_keys: plan.distinct_keys,
            duplicates: plan.duplicates,
            ..ImportReport::default()
        },
        batch: Batch::default(),
        plan,
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
    plan: Plan,
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
            return Err(line_error(
                lines.number,
                "the file ends without its end line: the export is truncated (it changed \
                 after it was checked)",
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
        check_entry(&entry, &self.store.capabilities(), number)?;
        if self.plan.superseded(&entry.key, number) {
            return Ok(());
        }
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
        let most = self
            .store
            .capabilities()
            .max_batch_ops
            .unwrap_or(usize::MAX);
        if self.batch.ops.len() >= self.options.batch_entries.min(most).max(1)
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
        if declared != self.report.lines || declared != self.plan.entries {
            return Err(StoreError::invalid_input(format!(
                "the end line counts {declared} entries but the file has {}: the export \
                 changed after it was checked",
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
