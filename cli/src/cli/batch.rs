//! `batch FILE`: puts and deletes from a JSON Lines file (see [`super::oplines`]),
//! applied atomically with one `batch` call: every one or none. A failed condition
//! names the line and the key's current version (exit 3).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use pooledstore::{ErrorKind, Store, StoreError, WriteOp, WriteResult};

use super::condition;
use super::encoding::OutputEncoding;
use super::oplines::{self, Op, OpKind};
use super::show::{Out, json_key, shown_key};

/// Arguments of `batch`.
#[derive(Debug, Args)]
pub(super) struct BatchArgs {
    /// The JSON Lines file of operations, or `-` for standard input.
    file: PathBuf,
    /// Print one JSON object per operation instead of text.
    #[arg(long)]
    json: bool,
    /// How keys are shown in the results: auto, text, escape or base64.
    #[arg(long, value_enum, default_value_t = OutputEncoding::Auto, value_name = "ENCODING")]
    encoding: OutputEncoding,
}

/// Runs `batch`; prints what each operation did once all were applied.
pub(super) async fn batch(store: &Store, args: BatchArgs) -> Result<ExitCode, StoreError> {
    let ops = oplines::read(&args.file, false)?;
    let writes: Vec<WriteOp> = ops
        .iter()
        .filter_map(|op| match &op.kind {
            OpKind::Write(write) => Some(write.clone()),
            OpKind::Get(_) | OpKind::Scan(_) => None,
        })
        .collect();
    let results = match store.batch(writes).await {
        Ok(results) => results,
        Err(e) => return Err(explain(store, &ops, e).await),
    };
    let mut out = Out::new();
    for (index, (op, result)) in ops.iter().zip(results).enumerate() {
        let OpKind::Write(write) = &op.kind else {
            continue;
        };
        out.line(&describe(index, op, write, result, &args)?)?;
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

/// One result line.
fn describe(
    index: usize,
    op: &Op,
    write: &WriteOp,
    result: WriteResult,
    args: &BatchArgs,
) -> Result<String, StoreError> {
    let name = op.kind.name();
    if args.json {
        let mut body = json_key(write.key(), args.encoding)?;
        body["index"] = index.into();
        body["line"] = op.line.into();
        body["op"] = name.into();
        match result {
            WriteResult::Put(version) => body["version"] = version.get().into(),
            WriteResult::Delete(deleted) => body["deleted"] = deleted.into(),
        }
        return Ok(body.to_string());
    }
    let outcome = match result {
        WriteResult::Put(version) => format!("version {version}"),
        WriteResult::Delete(true) => "deleted".into(),
        WriteResult::Delete(false) => "not found".into(),
    };
    Ok(format!("{name} {}: {outcome}", shown_key(write.key())))
}

/// Names the line behind a failed batch operation and, for a failed condition, the
/// key's current version.
async fn explain(store: &Store, ops: &[Op], error: StoreError) -> StoreError {
    let Some((op, write)) =
        error
            .batch_index()
            .and_then(|i| ops.get(i))
            .and_then(|op| match &op.kind {
                OpKind::Write(write) => Some((op, write)),
                OpKind::Get(_) | OpKind::Scan(_) => None,
            })
    else {
        return error;
    };
    let context = format!(
        "line {} ({}); the batch was not applied",
        op.line,
        op.kind.name()
    );
    if error.kind() == ErrorKind::ConditionFailed {
        let expected = condition::of_op(write);
        return condition::failed(store, write.key(), expected, &context, error).await;
    }
    StoreError::new(error.kind(), format!("{context}: {}", error.message())).with_source(error)
}
