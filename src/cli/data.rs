//! Data commands for poking at a store: get, put, delete, scan. Keys and values are
//! taken as UTF-8 text; output escapes bytes that are not printable.

use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

use clap::Args;
use pooledstore::{Condition, PutOptions, ScanOptions, Store, StoreError, Version};

/// Arguments of `get`.
#[derive(Debug, Args)]
pub(super) struct GetArgs {
    /// The key.
    key: String,
}

/// Arguments of `put`.
#[derive(Debug, Args)]
pub(super) struct PutArgs {
    /// The key.
    key: String,
    /// The value.
    value: String,
    /// Expire the entry after this many seconds.
    #[arg(long, value_name = "SECS")]
    ttl: Option<u64>,
    /// Only write if the key is absent.
    #[arg(long, conflicts_with = "if_version")]
    if_absent: bool,
    /// Only write if the key currently has this version.
    #[arg(long, value_name = "VERSION")]
    if_version: Option<u64>,
}

/// Arguments of `delete`.
#[derive(Debug, Args)]
pub(super) struct DeleteArgs {
    /// The key.
    key: String,
}

/// Arguments of `scan`.
#[derive(Debug, Args)]
pub(super) struct ScanArgs {
    /// Only keys starting with this prefix.
    #[arg(long)]
    prefix: Option<String>,
    /// At most this many entries (default: the configured max_scan_limit).
    #[arg(long)]
    limit: Option<usize>,
}

pub(super) async fn get(store: &Store, args: GetArgs) -> Result<ExitCode, StoreError> {
    match store.get(args.key.as_bytes()).await? {
        Some(entry) => {
            println!("{}", escape(&entry.value));
            Ok(ExitCode::SUCCESS)
        }
        None => {
            eprintln!("not found");
            Ok(ExitCode::from(1))
        }
    }
}

pub(super) async fn put(store: &Store, args: PutArgs) -> Result<ExitCode, StoreError> {
    let condition = match (args.if_absent, args.if_version) {
        (true, _) => Condition::Absent,
        (false, Some(raw)) => Condition::Version(
            Version::new(raw)
                .ok_or_else(|| StoreError::invalid_input("--if-version must be at least 1"))?,
        ),
        (false, None) => Condition::Any,
    };
    let options = PutOptions {
        condition,
        ttl: args.ttl.map(Duration::from_secs),
    };
    let version = store
        .put(args.key.as_bytes(), args.value.as_bytes(), options)
        .await?;
    println!("{version}");
    Ok(ExitCode::SUCCESS)
}

pub(super) async fn delete(store: &Store, args: DeleteArgs) -> Result<ExitCode, StoreError> {
    let deleted = store.delete(args.key.as_bytes(), Condition::Any).await?;
    println!("{}", if deleted { "deleted" } else { "not found" });
    Ok(if deleted {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

pub(super) async fn scan(store: &Store, args: ScanArgs) -> Result<ExitCode, StoreError> {
    let mut options = match args.prefix {
        Some(prefix) => ScanOptions::prefix(prefix.into_bytes()),
        None => ScanOptions::default(),
    };
    options.limit = args.limit;
    let entries = store.scan(options).await?;
    let mut out = std::io::stdout().lock();
    for entry in entries {
        let _ = writeln!(out, "{}\t{}", escape(&entry.key), escape(&entry.value));
    }
    Ok(ExitCode::SUCCESS)
}

/// Printable ASCII as is, everything else as `\xNN` (and `\t`, `\n`, `\\`).
fn escape(bytes: &[u8]) -> String {
    bytes.escape_ascii().to_string()
}
