//! `tx FILE`: gets, scans, puts and deletes from a JSON Lines file (see
//! [`super::oplines`]) in one serializable transaction. A transaction that fails with a
//! retryable `Conflict` or `Busy` is rolled back and run again from the start, up to
//! `--retries` times; results are printed once it commits.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Args;
use pooledstore::{ErrorKind, Store, StoreError, Transaction, TxOptions, WriteOp};
use serde_json::{Value, json};

use super::condition;
use super::encoding::OutputEncoding;
use super::oplines::{self, Op, OpKind};
use super::show::{json_entry, json_key};

/// Arguments of `tx`.
#[derive(Debug, Args)]
pub(super) struct TxArgs {
    /// The JSON Lines file of operations, or `-` for standard input.
    file: PathBuf,
    /// Run the transaction again this many times after a `Conflict` or `Busy`.
    #[arg(long, value_name = "N", default_value_t = 3)]
    retries: u32,
    /// Print one JSON object per operation instead of text.
    #[arg(long)]
    json: bool,
    /// How keys and values are shown: auto, text, escape or base64.
    #[arg(long, value_enum, default_value_t = OutputEncoding::Auto, value_name = "ENCODING")]
    encoding: OutputEncoding,
}

/// What one operation returned: a JSON object (`index`, `line`, `op` and the result).
type Outcome = Value;

/// Runs `tx`; exit 3 when a condition fails (never retried), 2 when the retries ran out.
pub(super) async fn tx(store: &Store, args: TxArgs) -> Result<ExitCode, StoreError> {
    let ops = oplines::read(&args.file, true)?;
    let read_only = ops.iter().all(|op| !matches!(op.kind, OpKind::Write(_)));
    // Text output shows keys and values escaped, as every other command does.
    let encoding = match args.encoding {
        OutputEncoding::Auto if !args.json => OutputEncoding::Escape,
        chosen => chosen,
    };
    let mut attempt: u32 = 0;
    let outcomes = loop {
        attempt += 1;
        match run_once(store, &ops, read_only, encoding).await {
            Ok(outcomes) => break outcomes,
            Err(e) if retryable(&e) && attempt <= args.retries => {
                eprintln!(
                    "pooledstore: attempt {attempt} failed ({}); retrying",
                    e.kind()
                );
                tokio::time::sleep(backoff(attempt)).await;
            }
            Err(e) if retryable(&e) => {
                return Err(StoreError::new(
                    e.kind(),
                    format!(
                        "the transaction failed {attempt} times, the last with: {}; \
                         raise --retries or try again later",
                        e.message()
                    ),
                )
                .with_source(e));
            }
            Err(e) => return Err(e),
        }
    };
    if attempt > 1 {
        eprintln!("pooledstore: committed on attempt {attempt}");
    }
    for outcome in outcomes {
        println!(
            "{}",
            if args.json {
                outcome.to_string()
            } else {
                text(&outcome)
            }
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn retryable(error: &StoreError) -> bool {
    matches!(error.kind(), ErrorKind::Conflict | ErrorKind::Busy)
}

/// 20 ms doubling per attempt, at most 1 s, with up to 50% jitter.
fn backoff(attempt: u32) -> Duration {
    let base = 20u64.saturating_mul(1 << attempt.min(6)).min(1000);
    let jitter = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| u64::from(d.subsec_nanos()))
        .unwrap_or(0)
        % (base / 2 + 1);
    Duration::from_millis(base + jitter)
}

/// One attempt: begin, every operation in order, commit. The transaction rolls back
/// when dropped on an error.
async fn run_once(
    store: &Store,
    ops: &[Op],
    read_only: bool,
    encoding: OutputEncoding,
) -> Result<Vec<Outcome>, StoreError> {
    let mut tx = store.begin(TxOptions { read_only }).await?;
    let mut outcomes = Vec::with_capacity(ops.len());
    for (index, op) in ops.iter().enumerate() {
        let mut outcome = match apply(tx.as_mut(), op, encoding).await {
            Ok(outcome) => outcome,
            Err(e) => {
                drop(tx);
                return Err(explain(store, op, e).await);
            }
        };
        outcome["index"] = index.into();
        outcome["line"] = op.line.into();
        outcome["op"] = op.kind.name().into();
        outcomes.push(outcome);
    }
    tx.commit().await?;
    Ok(outcomes)
}

async fn apply(
    tx: &mut dyn Transaction,
    op: &Op,
    encoding: OutputEncoding,
) -> Result<Outcome, StoreError> {
    Ok(match &op.kind {
        OpKind::Get(key) => match tx.get(key).await? {
            Some(entry) => json_entry(&entry, encoding, true)?,
            None => {
                let mut body = json_key(key, encoding)?;
                body["found"] = false.into();
                body
            }
        },
        OpKind::Scan(options) => {
            let entries = tx.scan(options.clone()).await?;
            let shown = entries
                .iter()
                .map(|e| json_entry(e, encoding, true))
                .collect::<Result<Vec<_>, _>>()?;
            json!({ "entries": shown })
        }
        OpKind::Write(WriteOp::Put {
            key,
            value,
            options,
        }) => {
            let version = tx.put(key, value, *options).await?;
            let mut body = json_key(key, encoding)?;
            body["version"] = version.get().into();
            body
        }
        OpKind::Write(WriteOp::Delete { key, condition }) => {
            let deleted = tx.delete(key, *condition).await?;
            let mut body = json_key(key, encoding)?;
            body["deleted"] = deleted.into();
            body
        }
    })
}

/// Names the line that failed and, for a failed condition, the key's current version.
async fn explain(store: &Store, op: &Op, error: StoreError) -> StoreError {
    let context = format!(
        "line {} ({}); the transaction was rolled back",
        op.line,
        op.kind.name()
    );
    match &op.kind {
        OpKind::Write(write) if error.kind() == ErrorKind::ConditionFailed => {
            condition::failed(store, write.key(), condition::of_op(write), &context, error).await
        }
        _ if retryable(&error) => error,
        _ => StoreError::new(error.kind(), format!("{context}: {}", error.message()))
            .with_source(error),
    }
}

/// A result for people: `op key: outcome`, one line per operation (scans one per entry).
fn text(outcome: &Value) -> String {
    let op = outcome["op"].as_str().unwrap_or_default();
    let key = || outcome["key"].as_str().unwrap_or_default().to_owned();
    match op {
        "get" if outcome["found"] == false => format!("get {}: not found", key()),
        "get" => format!(
            "get {}: {} (version {})",
            key(),
            outcome["value"].as_str().unwrap_or_default(),
            outcome["version"]
        ),
        "put" => format!("put {}: version {}", key(), outcome["version"]),
        "delete" if outcome["deleted"] == true => format!("delete {}: deleted", key()),
        "delete" => format!("delete {}: not found", key()),
        _ => {
            let entries = outcome["entries"]
                .as_array()
                .map(Vec::as_slice)
                .unwrap_or(&[]);
            let mut lines = vec![format!("scan: {} entries", entries.len())];
            lines.extend(entries.iter().map(|e| {
                format!(
                    "  {}\t{}",
                    e["key"].as_str().unwrap_or_default(),
                    e["value"].as_str().unwrap_or_default()
                )
            }));
            lines.join("\n")
        }
    }
}
