//! `scan`: entries in key order over a range or prefix, one page (the store's `limit`)
//! or, with `--all` or `--count`, every page through the `after` cursor, holding one
//! page in memory at a time.

use std::process::ExitCode;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use clap::Args;
use pooledstore::{KeyRange, ScanOptions, Store, StoreError};

use super::data::KeyEncodingArg;
use super::show::{Out, OutputArgs, Parts, Printer};

/// Entries per page with `--all` and `--count`, unless `--page-size` says otherwise
/// (never above the store's `max_scan_limit`).
const DEFAULT_PAGE: usize = 1000;

/// Arguments of `scan`.
#[derive(Debug, Args)]
pub(super) struct ScanArgs {
    /// Only keys starting with this prefix.
    #[arg(long, conflicts_with_all = ["start", "end"])]
    prefix: Option<String>,
    /// Only keys at or after this one (inclusive).
    #[arg(long, value_name = "KEY")]
    start: Option<String>,
    /// Only keys before this one (exclusive).
    #[arg(long, value_name = "KEY")]
    end: Option<String>,
    /// Resume after this key (exclusive cursor: the last key of the previous page).
    #[arg(long, value_name = "KEY")]
    after: Option<String>,
    /// At most this many entries: one read of this size, or with --all and --count a
    /// cap on the total (default: one page of the configured max_scan_limit).
    #[arg(long, value_name = "N")]
    limit: Option<usize>,
    /// Read every selected entry, page by page through the cursor.
    #[arg(long)]
    all: bool,
    /// Entries per page with --all and --count (default 1000, at most max_scan_limit).
    #[arg(long, value_name = "N")]
    page_size: Option<usize>,
    /// Print keys (with version and expiry in --table and --json) but not values.
    #[arg(long)]
    keys_only: bool,
    /// Print only how many entries are selected (reads every page).
    #[arg(long, conflicts_with_all = ["keys_only", "json", "table"])]
    count: bool,
    #[command(flatten)]
    keys: KeyEncodingArg,
    #[command(flatten)]
    output: OutputArgs,
}

/// Runs `scan`. Without `--all`, a full page that may not be the last ends with a
/// note on standard error giving the cursor to continue from.
pub(super) async fn scan(store: &Store, args: ScanArgs) -> Result<ExitCode, StoreError> {
    let options = scan_options(&args)?;
    let walk = args.all || args.count;
    let max_page = store.capabilities().max_scan_limit.max(1);
    if args.page_size == Some(0) || args.limit == Some(0) && walk {
        return Err(StoreError::invalid_input(
            "--page-size and --limit are at least 1",
        ));
    }
    let page_size = args.page_size.unwrap_or(DEFAULT_PAGE).min(max_page);
    let mut out = Out::new();
    let parts = if args.keys_only {
        Parts::KeysOnly
    } else {
        Parts::Whole
    };
    let mut printer = Printer::new(args.output, parts);
    if !walk {
        let page = store.scan(options.clone()).await?;
        printer.page(&mut out, &page)?;
        out.flush()?;
        let asked = options.limit.unwrap_or(max_page);
        if page.len() == asked
            && let Some(last) = page.last()
        {
            eprintln!(
                "pooledstore: more entries may follow; continue with --after {} \
                 --key-encoding base64",
                STANDARD.encode(&last.key)
            );
        }
        return Ok(ExitCode::SUCCESS);
    }
    let mut seen: usize = 0;
    let mut cursor = options.after.clone();
    let cap = args.limit.unwrap_or(usize::MAX);
    while seen < cap && !out.closed() {
        let mut page_options = options.clone();
        page_options.after = cursor.take();
        page_options.limit = Some(page_size.min(cap - seen));
        let page = store.scan(page_options).await?;
        let Some(last) = page.last() else { break };
        cursor = Some(last.key.clone());
        seen += page.len();
        if !args.count {
            printer.page(&mut out, &page)?;
            out.flush()?;
        }
        if page.len() < page_size {
            break;
        }
    }
    if args.count {
        out.line(&seen.to_string())?;
        out.flush()?;
    }
    Ok(ExitCode::SUCCESS)
}

/// The range and cursor the flags select (the limit of a single read included).
fn scan_options(args: &ScanArgs) -> Result<ScanOptions, StoreError> {
    let decode = |text: &Option<String>, what: &str| {
        text.as_deref()
            .map(|t| args.keys.key_encoding.decode(t, what))
            .transpose()
    };
    let range = match decode(&args.prefix, "--prefix")? {
        Some(prefix) => KeyRange::prefix(prefix),
        None => KeyRange {
            start: decode(&args.start, "--start")?,
            end: decode(&args.end, "--end")?,
        },
    };
    Ok(ScanOptions {
        range,
        limit: args.limit,
        after: decode(&args.after, "--after")?,
    })
}
