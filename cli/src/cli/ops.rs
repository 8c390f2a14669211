//! Operations commands: backup, restore, export, import, copy. Backup and restore work
//! on the SQLite file with a connection of their own and never open the store (restore
//! must not: the store's own connections would hold the file it replaces).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, Subcommand};
use pooledstore::{Config, StorageConfig, Store, StoreError};
use pooledstore_ops::{ExportOptions, ImportOptions, Progress};

/// Commands on the SQLite database file, run without opening the store.
#[derive(Debug, Subcommand)]
pub(super) enum FileCommand {
    /// Write a consistent snapshot of the SQLite database to FILE, while it is in use.
    Backup(BackupArgs),
    /// Replace the SQLite database with a verified backup. Refuses while another process
    /// has the database open.
    Restore(RestoreArgs),
}

/// Commands on the open store, for any backend.
#[derive(Debug, Subcommand)]
pub(super) enum StoreCommand {
    /// Write every entry to a portable JSON Lines file (any backend).
    Export(ExportArgs),
    /// Load a file written by `export` (any backend), checked whole before any write;
    /// entries are upserts, and of duplicate keys the last line wins.
    Import(ImportArgs),
    /// Copy every entry into the (empty) store another config file describes, e.g. from
    /// SQLite to PostgreSQL.
    Copy(CopyArgs),
}

/// Arguments of `backup`.
#[derive(Debug, Args)]
pub(super) struct BackupArgs {
    /// The backup file to write.
    #[arg(long, value_name = "FILE")]
    output: PathBuf,
    /// Replace FILE if it exists.
    #[arg(long)]
    force: bool,
}

/// Arguments of `restore`.
#[derive(Debug, Args)]
pub(super) struct RestoreArgs {
    /// The backup file to restore.
    #[arg(long, value_name = "FILE")]
    input: PathBuf,
    /// Replace the database even if another process may be using it.
    #[arg(long)]
    force: bool,
}

/// Arguments of `export`.
#[derive(Debug, Args)]
pub(super) struct ExportArgs {
    /// The JSON Lines file to write.
    #[arg(long, value_name = "FILE")]
    output: PathBuf,
    /// Replace FILE if it exists.
    #[arg(long)]
    force: bool,
    /// Read everything in one read-only transaction: a consistent snapshot, holding one
    /// connection (and, with SQLite, delaying checkpoints or writers) until done.
    #[arg(long)]
    snapshot: bool,
}

/// Arguments of `import`.
#[derive(Debug, Args)]
pub(super) struct ImportArgs {
    /// The JSON Lines file to read.
    #[arg(long, value_name = "FILE")]
    input: PathBuf,
    /// Skip keys the store already holds (to finish an interrupted import quickly).
    #[arg(long)]
    resume: bool,
}

/// Arguments of `copy`.
#[derive(Debug, Args)]
pub(super) struct CopyArgs {
    /// Configuration file of the target store, read as is (POOLEDSTORE_* environment
    /// variables apply to --config only).
    #[arg(long, value_name = "OTHER.toml")]
    to: PathBuf,
}

/// Runs `backup` or `restore`, which never open the store.
pub(super) async fn on_file(
    command: FileCommand,
    storage: &StorageConfig,
) -> Result<ExitCode, StoreError> {
    let options = storage.to_options()?;
    match command {
        FileCommand::Backup(args) => {
            let report =
                blocking(move || pooledstore_ops::backup(&options, &args.output, args.force))
                    .await?;
            println!(
                "backup written to {}: {} entries, {} bytes (schema version {})",
                report.path.display(),
                report.entries,
                report.bytes,
                report.schema_version
            );
        }
        FileCommand::Restore(args) => {
            let input = args.input.clone();
            let report =
                blocking(move || pooledstore_ops::restore(&options, &args.input, args.force))
                    .await?;
            if report.forced {
                eprintln!(
                    "pooledstore: warning: the database was replaced although another process \
                     may still use it; restart every process using the store"
                );
            }
            println!(
                "restored {}: {} entries, {} bytes (schema version {})",
                input.display(),
                report.summary.entries,
                report.summary.bytes,
                report.summary.schema_version
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Runs `export`, `import` or `copy` on the open store.
pub(super) async fn on_store(command: StoreCommand, store: &Store) -> Result<ExitCode, StoreError> {
    match command {
        StoreCommand::Export(args) => {
            let options = ExportOptions {
                snapshot: args.snapshot,
                force: args.force,
            };
            let report = pooledstore_ops::export_to_file(&**store, &args.output, options).await?;
            println!(
                "exported {} entries to {} ({} bytes)",
                report.entries,
                args.output.display(),
                report.bytes
            );
        }
        StoreCommand::Import(args) => {
            let options = ImportOptions {
                resume: args.resume,
                ..ImportOptions::default()
            };
            let report = pooledstore_ops::import_from_file(&**store, &args.input, options).await?;
            println!(
                "imported {} of {} entries from {} ({} skipped as present, {} as expired); \
                 {} distinct keys, {} duplicates (the last of each key was kept)",
                report.written,
                report.lines,
                args.input.display(),
                report.skipped_present,
                report.skipped_expired,
                report.distinct_keys,
                report.duplicates
            );
        }
        StoreCommand::Copy(args) => copy(store, &args.to).await?,
    }
    Ok(ExitCode::SUCCESS)
}

async fn copy(source: &Store, to: &Path) -> Result<(), StoreError> {
    let text = std::fs::read_to_string(to).map_err(|e| {
        StoreError::config(format!("cannot read config file {}: {e}", to.display()))
    })?;
    let target_config = Config::from_toml(&text)
        .map_err(|e| StoreError::config(format!("{}: {}", to.display(), e.message())))?;
    pooledstore::validate_config(&target_config.storage)?;
    let target = pooledstore::open(&target_config.storage).await?;
    let outcome = pooledstore_ops::copy(&**source, &*target, &Progress::on_terminal("copy")).await;
    target.close().await;
    let report = outcome?;
    println!(
        "copied {} entries (source {}, target {})",
        report.copied, report.source_count, report.target_count
    );
    Ok(())
}

/// Runs blocking file and SQLite work off the async worker threads.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, StoreError> + Send + 'static,
) -> Result<T, StoreError> {
    tokio::task::spawn_blocking(work).await.map_err(|e| {
        StoreError::new(
            pooledstore::ErrorKind::Backend,
            format!("the task failed: {e}"),
        )
    })?
}
