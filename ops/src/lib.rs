//! Operations on a pooledstore, as library functions the `pooledstore` command wires up:
//!
//! - [`backup`]: a consistent, online snapshot of a SQLite store into one file;
//! - [`restore`]: replaces a SQLite store's file with a verified backup, atomically;
//! - [`export_to_file`] / [`import_from_file`]: a portable JSONL format (see [`jsonl`])
//!   over the `PooledStore` trait, for any backend, streaming;
//! - [`copy`]: moves a store into another, empty one (SQLite to PostgreSQL, sqlx to
//!   deadpool), with a final count check;
//! - [`verify`]: checks a SQLite file is a sound pooledstore database;
//! - [`check_output_path`]: the check every command that writes a file runs first;
//! - [`write_file_atomically`]: one owner-only file, whole or not at all, after that check.
//!
//! Files are written under a temporary name, fsynced and renamed into place, so a
//! crash leaves either the old file or the complete new one.

mod atomic_file;
mod backup;
mod copy;
mod export;
mod import;
mod import_check;
pub mod jsonl;
mod pages;
mod paths;
mod progress;
mod restore;
mod sqlite_file;
mod target;

pub use atomic_file::write_file_atomically;
pub use backup::{BackupReport, backup};
pub use copy::{CopyReport, copy};
pub use export::{ExportOptions, ExportReport, export, export_to_file};
pub use import::{ImportOptions, ImportReport, import, import_from_file};
pub use pages::count_entries;
pub use progress::Progress;
pub use restore::{RestoreReport, restore};
pub use sqlite_file::{FileSummary, sqlite_path, verify};
pub use target::check_output_path;
