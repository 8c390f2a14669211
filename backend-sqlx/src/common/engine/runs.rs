//! Runs of single puts of distinct keys, applied together: one read of every key's row,
//! each condition checked against its row, then the puts whose condition holds written
//! in as few statements as the engine allows. The group-commit writer applies
//! consecutive callers' puts this way, and a batch its consecutive puts.

use std::collections::{HashMap, HashSet};
use std::time::SystemTime;

use storage_api::{Condition, ErrorKind, PutOptions, Result, StoreError, Version, WriteOp};

use super::Engine;
use super::conditions::new_row;
use super::lease::Lease;
use super::queries::CurrentRow;
use super::shared::Shared;
use crate::common::rows::version_from;

/// The most bytes of keys and values one run of puts sends in one statement (a lone
/// larger put still goes alone), well within the servers' packet limits.
const RUN_BYTES: usize = 1 << 20;

/// One put of a run, applied at `now`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RunPut<'a> {
    pub(crate) key: &'a [u8],
    pub(crate) value: &'a [u8],
    pub(crate) options: PutOptions,
    pub(crate) now: SystemTime,
}

impl<'a> RunPut<'a> {
    /// `op` at `now`, if it is a put.
    pub(crate) fn of(op: &'a WriteOp, now: SystemTime) -> Option<Self> {
        match op {
            WriteOp::Put {
                key,
                value,
                options,
            } => Some(Self {
                key,
                value,
                options: *options,
                now,
            }),
            WriteOp::Delete { .. } => None,
        }
    }
}

/// How many of `ops` (`None` for what is not a single operation) at the front are
/// puts of distinct keys that [`put_many`] applies together: as many as hold
/// [`RUN_BYTES`] of keys and values (at least one, if the first is a put).
pub(crate) fn run_length<'a>(ops: impl IntoIterator<Item = Option<&'a WriteOp>>) -> usize {
    let mut keys = HashSet::new();
    let mut bytes = 0;
    ops.into_iter()
        .take_while(|op| match op {
            Some(WriteOp::Put { key, value, .. }) => {
                let first = keys.is_empty();
                bytes += key.len() + value.len();
                (first || bytes <= RUN_BYTES) && keys.insert(key.as_slice())
            }
            _ => false,
        })
        .count()
}

/// Applies `puts` (distinct keys) together: one read of every key's row (none for
/// puts without conditions where the engine's write reads the rows itself), each
/// condition checked against its row, then the puts whose condition holds written
/// with [`Engine::write_rows`]. One result per put, a refusal being an error that
/// wrote nothing. Must run inside a read-write serializable transaction, or as the
/// whole of one where the engine's single statements are.
pub(crate) async fn put_many<E: Engine>(
    s: &Shared<E>,
    lease: &mut Lease<E>,
    puts: &[RunPut<'_>],
) -> Result<Vec<Result<Version>>> {
    let unconditional = puts
        .iter()
        .all(|put| put.options.condition == Condition::Any);
    let found: HashMap<Vec<u8>, CurrentRow> = if E::WRITE_READS_ROWS && unconditional {
        HashMap::new()
    } else {
        let keys: Vec<&[u8]> = puts.iter().map(|put| put.key).collect();
        (s.engine.current_rows(lease, &keys).await?)
            .into_iter()
            .map(|(key, version, expires_at)| (key, (version, expires_at)))
            .collect()
    };
    let mut rows = Vec::with_capacity(puts.len());
    let mut refusals = Vec::with_capacity(puts.len());
    for put in puts {
        let current = found.get(put.key).copied();
        match new_row(current, put.key, put.value, put.options, put.now) {
            Ok(row) => {
                rows.push(row);
                refusals.push(None);
            }
            Err(refusal) => refusals.push(Some(refusal)),
        }
    }
    let versions = if rows.is_empty() {
        Vec::new()
    } else {
        s.engine.write_rows(lease, &rows).await?
    };
    let mut versions = versions.into_iter();
    refusals
        .into_iter()
        .map(|refusal| match refusal {
            Some(refusal) => Ok(Err(refusal)),
            None => {
                let version = versions.next().ok_or_else(missing_version)?;
                Ok(Ok(version_from(version)?))
            }
        })
        .collect()
}

/// The error for a put the engine wrote no version for (a bug in an engine).
fn missing_version() -> StoreError {
    StoreError::new(ErrorKind::Backend, "put: no version was written for a row")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn put(key: &[u8], bytes: usize) -> WriteOp {
        WriteOp::Put {
            key: key.to_vec(),
            value: vec![0; bytes],
            options: PutOptions::default(),
        }
    }

    #[test]
    fn a_run_ends_at_a_repeated_key_a_delete_or_its_byte_budget() {
        let ops = [put(b"a", 1), put(b"b", 1), put(b"a", 1)];
        assert_eq!(run_length(ops.iter().map(Some)), 2);
        let delete = WriteOp::Delete {
            key: b"c".to_vec(),
            condition: Condition::Any,
        };
        let ops = [put(b"a", 1), delete, put(b"b", 1)];
        assert_eq!(run_length(ops.iter().map(Some)), 1);
        assert_eq!(run_length([None, Some(&put(b"a", 1))]), 0);
        let big = [put(b"a", RUN_BYTES), put(b"b", RUN_BYTES), put(b"c", 1)];
        assert_eq!(
            run_length(big.iter().map(Some)),
            1,
            "a large put goes alone"
        );
    }
}
