//! `export`: streams every live entry of any store to the portable JSONL format
//! (see [`crate::jsonl`]), one page in memory at a time.

use std::io::{BufWriter, Write};
use std::path::Path;

use storage_api::{PooledStore, Result, StoreError};

use crate::atomic_file::{TempFile, check_overwrite};
use crate::jsonl::{Header, Record, Trailer};
use crate::pages::Pages;
use crate::sqlite_file::io_error;
use crate::target::check_output_path;

/// How to export.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ExportOptions {
    /// Read every page inside one read-only transaction, so the export is a consistent
    /// snapshot even while others write. It holds one connection for the whole export;
    /// with SQLite in rollback-journal mode it blocks writers until done, and in WAL
    /// mode it keeps the WAL from being checkpointed. Without it, each page is current
    /// when read.
    pub snapshot: bool,
    /// Replace an existing output file.
    pub force: bool,
}

/// What an export wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExportReport {
    /// Entry lines written.
    pub entries: u64,
    /// Size of the file in bytes.
    pub bytes: u64,
}

/// Exports `store` to the file at `path`: written under a temporary name beside it,
/// fsynced and renamed into place, so `path` never holds a partial export. Created with
/// owner-only permissions. A `path` that is a database a store of this process has open
/// (or one of its journal files), or not a regular file, is refused (`InvalidInput`)
/// before anything is read; see [`check_output_path`](crate::check_output_path).
pub async fn export_to_file(
    store: &dyn PooledStore,
    path: &Path,
    options: ExportOptions,
) -> Result<ExportReport> {
    check_output_path(path, None)?;
    check_overwrite(path, options.force)?;
    let (temp, file) = TempFile::beside(path, "export")?;
    let mut writer = BufWriter::new(file);
    let entries = export(store, &mut writer, options.snapshot).await?;
    let file = writer
        .into_inner()
        .map_err(|e| io_error(e.into_error(), &format!("writing {}", path.display())))?;
    let bytes = file
        .metadata()
        .map(|m| m.len())
        .map_err(|e| io_error(e, &format!("writing {}", path.display())))?;
    drop(file);
    temp.persist(options.force)?;
    Ok(ExportReport { entries, bytes })
}

/// Writes the header, one line per live entry in key order, and the end line to
/// `writer`; returns the number of entries.
pub async fn export<W: Write>(store: &dyn PooledStore, writer: W, snapshot: bool) -> Result<u64> {
    let mut out = LineWriter { writer };
    out.line(&Header::new(store.backend_name()))?;
    let mut pages = if snapshot {
        Pages::snapshot(store).await?
    } else {
        Pages::live(store)
    };
    let mut entries = 0u64;
    loop {
        let page = pages.next_page().await?;
        if page.is_empty() {
            break;
        }
        for entry in &page {
            out.line(&Record::from_entry(entry))?;
        }
        entries += page.len() as u64;
    }
    pages.finish().await?;
    out.line(&Trailer { end: true, entries })?;
    out.writer
        .flush()
        .map_err(|e| io_error(e, "writing the export"))?;
    Ok(entries)
}

struct LineWriter<W> {
    writer: W,
}

impl<W: Write> LineWriter<W> {
    fn line(&mut self, value: &impl serde::Serialize) -> Result<()> {
        serde_json::to_writer(&mut self.writer, value)
            .map_err(|e| StoreError::new(storage_api::ErrorKind::Backend, e.to_string()))?;
        self.writer
            .write_all(b"\n")
            .map_err(|e| io_error(e, "writing the export"))
    }
}
