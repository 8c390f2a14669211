//! Differential runs: one seeded random sequence of operations (single keys, scans,
//! batches, transactions, expiry under a manual clock, purges) applied to stores of two
//! backends, every result compared: values, expiry, the order of each key's versions,
//! and errors by kind (and batch index).
//!
//! Versions differ between backends in value but not in order, so each is replaced by
//! its rank among the versions seen for that key; conditions name versions abstractly
//! ("the key's current version", "an older one", "one never issued") and each side
//! resolves them against what it has seen.
//!
//! On a mismatch the report gives the seed, the first step where the backends
//! disagree, and a minimal failing sequence: the prefix up to that step, shrunk by
//! dropping every step the disagreement does not need.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use storage_api::{
    Clock, Condition, Entry, KeyRange, Limits, ManualClock, PooledStore, PutOptions, ScanOptions,
    StoreError, StoreOptions, TxOptions, Version, WriteOp, WriteResult,
};

use crate::cases::SplitMix;
use crate::harness::Harness;

/// The value limit of differential stores; some generated values exceed it.
const VALUE_LIMIT: usize = 64;
/// The scan limit of differential stores.
const SCAN_LIMIT: usize = 20;
/// Keys the operations touch: few, with the bytes that trip ordering bugs.
const KEYS: &[&[u8]] = &[b"a", b"a\0", b"ab", b"b", b"b\xff", b"c", b"\xff"];
/// Scan bounds and cursors.
const BOUNDS: &[&[u8]] = &[b"a", b"a\0", b"b", b"b\0", b"c"];

/// How [`differential`] runs.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct DifferentialOptions {
    /// The seed of the operation sequence; `None` picks one (reported either way).
    pub seed: Option<u64>,
    /// Operations in the sequence. Default: 300.
    pub steps: usize,
    /// At most this many reruns to shrink a failing sequence. Default: 200.
    pub shrink_runs: usize,
}

impl Default for DifferentialOptions {
    fn default() -> Self {
        Self {
            seed: None,
            steps: 300,
            shrink_runs: 200,
        }
    }
}

impl DifferentialOptions {
    /// The defaults, with the seed from `CONFORMANCE_SEED` when set.
    pub fn from_env() -> Self {
        let seed = std::env::var(crate::SEED_ENV)
            .ok()
            .and_then(|s| s.trim().parse().ok());
        Self {
            seed,
            ..Self::default()
        }
    }

    /// The same options with a fixed seed.
    pub fn with_seed(mut self, seed: u64) -> Self {
        self.seed = Some(seed);
        self
    }

    /// The same options with `steps` operations.
    pub fn with_steps(mut self, steps: usize) -> Self {
        self.steps = steps;
        self
    }
}

/// A run in which both backends agreed on every step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DifferentialReport {
    /// The seed of the sequence.
    pub seed: u64,
    /// Steps compared.
    pub steps: usize,
    /// Steps that ended in an error (on both sides, of the same kind).
    pub errors: usize,
}

/// Where two backends disagreed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mismatch {
    /// The harness names, left then right.
    pub backends: (String, String),
    /// The seed of the sequence; replay with `CONFORMANCE_SEED`.
    pub seed: u64,
    /// The index of the first step where the full sequence diverged.
    pub step: usize,
    /// A minimal sequence of steps that still diverges, its last step diverging.
    pub minimal: Vec<String>,
    /// What the left backend gave for the last step of `minimal`.
    pub left: String,
    /// What the right backend gave.
    pub right: String,
}

impl fmt::Display for Mismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{} and {} disagree at step {} of the sequence with seed {} (replay with {}={})",
            self.backends.0,
            self.backends.1,
            self.step,
            self.seed,
            crate::SEED_ENV,
            self.seed
        )?;
        writeln!(
            f,
            "minimal failing sequence ({} steps):",
            self.minimal.len()
        )?;
        for (i, step) in self.minimal.iter().enumerate() {
            writeln!(f, "  {i:>3}: {step}")?;
        }
        writeln!(f, "{}: {}", self.backends.0, self.left)?;
        write!(f, "{}: {}", self.backends.1, self.right)
    }
}

/// A version named by what a side has seen of the key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum VersionRef {
    /// The newest version seen.
    Current,
    /// The oldest version seen (the current one if only one was).
    Oldest,
    /// A version no store ever issues.
    Never,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cond {
    Any,
    Absent,
    Version(VersionRef),
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Write {
    Put {
        key: usize,
        value: Vec<u8>,
        cond: Cond,
        ttl_ms: Option<u64>,
    },
    Delete {
        key: usize,
        cond: Cond,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum TxStep {
    Get(usize),
    Write(Write),
    Scan(ScanOptions),
}

/// One generated step.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Step {
    Get(usize),
    Write(Write),
    Scan(ScanOptions),
    Batch(Vec<Write>),
    Tx { steps: Vec<TxStep>, commit: bool },
    Advance(u64),
    Purge,
}

fn show_key(key: &[u8]) -> String {
    format!("b\"{}\"", key.escape_ascii())
}

impl fmt::Display for Write {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Put {
                key,
                value,
                cond,
                ttl_ms,
            } => write!(
                f,
                "put {} ({} bytes) if {cond:?}{}",
                show_key(KEYS[*key]),
                value.len(),
                ttl_ms.map(|t| format!(" ttl {t} ms")).unwrap_or_default()
            ),
            Self::Delete { key, cond } => write!(f, "delete {} if {cond:?}", show_key(KEYS[*key])),
        }
    }
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Get(k) => write!(f, "get {}", show_key(KEYS[*k])),
            Self::Write(w) => write!(f, "{w}"),
            Self::Scan(o) => write!(f, "scan {o:?}"),
            Self::Batch(ws) => {
                let ws: Vec<String> = ws.iter().map(Write::to_string).collect();
                write!(f, "batch [{}]", ws.join("; "))
            }
            Self::Tx { steps, commit } => {
                let steps: Vec<String> = steps
                    .iter()
                    .map(|s| match s {
                        TxStep::Get(k) => format!("get {}", show_key(KEYS[*k])),
                        TxStep::Write(w) => w.to_string(),
                        TxStep::Scan(o) => format!("scan {o:?}"),
                    })
                    .collect();
                let end = if *commit { "commit" } else { "rollback" };
                write!(f, "transaction [{}] then {end}", steps.join("; "))
            }
            Self::Advance(ms) => write!(f, "advance the clock {ms} ms"),
            Self::Purge => write!(f, "purge_expired"),
        }
    }
}

fn gen_cond(rng: &mut SplitMix) -> Cond {
    match rng.below(8) {
        0 | 1 => Cond::Absent,
        2 | 3 => Cond::Version(VersionRef::Current),
        4 => Cond::Version(VersionRef::Oldest),
        5 => Cond::Version(VersionRef::Never),
        _ => Cond::Any,
    }
}

fn gen_write(rng: &mut SplitMix) -> Write {
    let key = rng.below(KEYS.len());
    if rng.below(4) == 0 {
        return Write::Delete {
            key,
            cond: gen_cond(rng),
        };
    }
    let len = if rng.below(40) == 0 {
        VALUE_LIMIT + 1
    } else {
        rng.below(12)
    };
    let value = (0..len).map(|_| rng.next_u64() as u8).collect();
    let ttl_ms = (rng.below(4) == 0).then(|| 1 + rng.below(3000) as u64);
    Write::Put {
        key,
        value,
        cond: gen_cond(rng),
        ttl_ms,
    }
}

fn gen_bound(rng: &mut SplitMix) -> Option<Vec<u8>> {
    (rng.below(2) == 0).then(|| BOUNDS[rng.below(BOUNDS.len())].to_vec())
}

fn gen_scan(rng: &mut SplitMix) -> ScanOptions {
    let range = if rng.below(3) == 0 {
        KeyRange::prefix(KEYS[rng.below(KEYS.len())][..1].to_vec())
    } else {
        KeyRange {
            start: gen_bound(rng),
            end: gen_bound(rng),
        }
    };
    ScanOptions {
        range,
        limit: (rng.below(2) == 0).then(|| rng.below(5)),
        after: gen_bound(rng),
    }
}

fn generate(seed: u64, steps: usize) -> Vec<Step> {
    let mut rng = SplitMix::new(seed);
    (0..steps)
        .map(|_| match rng.below(20) {
            0..=3 => Step::Get(rng.below(KEYS.len())),
            4..=9 => Step::Write(gen_write(&mut rng)),
            10..=12 => Step::Scan(gen_scan(&mut rng)),
            13 | 14 => Step::Batch((0..1 + rng.below(4)).map(|_| gen_write(&mut rng)).collect()),
            15 | 16 => Step::Tx {
                steps: (0..1 + rng.below(4))
                    .map(|_| match rng.below(4) {
                        0 => TxStep::Get(rng.below(KEYS.len())),
                        1 => TxStep::Scan(gen_scan(&mut rng)),
                        _ => TxStep::Write(gen_write(&mut rng)),
                    })
                    .collect(),
                commit: rng.below(4) != 0,
            },
            17 | 18 => Step::Advance(1 + rng.below(2000) as u64),
            _ => Step::Purge,
        })
        .collect()
}

/// One side of a run: its store, clock and what it has seen of each key's versions.
struct Side {
    store: Arc<dyn PooledStore>,
    clock: ManualClock,
    start: SystemTime,
    /// Per key, every distinct version seen, ascending as observed.
    versions: HashMap<Vec<u8>, Vec<Version>>,
}

impl Side {
    fn resolve(&self, key: usize, cond: Cond) -> Condition {
        let seen = self.versions.get(KEYS[key]);
        let never = Version::new(u64::MAX >> 3).unwrap_or(Version::new(1).expect("non-zero"));
        match cond {
            Cond::Any => Condition::Any,
            Cond::Absent => Condition::Absent,
            Cond::Version(r) => Condition::Version(match r {
                VersionRef::Current => seen.and_then(|v| v.last().copied()).unwrap_or(never),
                VersionRef::Oldest => seen.and_then(|v| v.first().copied()).unwrap_or(never),
                VersionRef::Never => never,
            }),
        }
    }

    /// The rank of `version` among the versions seen for `key`, recording it.
    fn rank(&mut self, key: &[u8], version: Version) -> String {
        let seen = self.versions.entry(key.to_vec()).or_default();
        let index = match seen.iter().position(|v| *v == version) {
            Some(i) => i,
            None => {
                let at = seen.partition_point(|v| *v < version);
                seen.insert(at, version);
                if at + 1 < seen.len() {
                    return format!(
                        "v{at} (issued below {} earlier versions)",
                        seen.len() - at - 1
                    );
                }
                at
            }
        };
        format!("v{index}")
    }

    fn write_op(&self, write: &Write) -> WriteOp {
        match write {
            Write::Put {
                key,
                value,
                cond,
                ttl_ms,
            } => WriteOp::Put {
                key: KEYS[*key].to_vec(),
                value: value.clone(),
                options: PutOptions {
                    condition: self.resolve(*key, *cond),
                    ttl: ttl_ms.map(Duration::from_millis),
                },
            },
            Write::Delete { key, cond } => WriteOp::Delete {
                key: KEYS[*key].to_vec(),
                condition: self.resolve(*key, *cond),
            },
        }
    }

    fn entry(&mut self, e: &Entry) -> String {
        let rank = self.rank(&e.key, e.version);
        let expiry = e.expires_at.map(|t| {
            t.duration_since(self.start)
                .map(|d| format!(" expires +{}ms", d.as_millis()))
                .unwrap_or_else(|_| " expires before the start".into())
        });
        format!(
            "{}={:?} {rank}{}",
            show_key(&e.key),
            e.value.escape_ascii().to_string(),
            expiry.unwrap_or_default()
        )
    }

    fn entries(&mut self, entries: &[Entry]) -> String {
        let shown: Vec<String> = entries.iter().map(|e| self.entry(e)).collect();
        format!("[{}]", shown.join(", "))
    }

    fn write_result(&mut self, key: &[u8], result: &WriteResult) -> String {
        match result {
            WriteResult::Put(v) => format!("put {}", self.rank(key, *v)),
            WriteResult::Delete(b) => format!("deleted {b}"),
        }
    }

    /// Applies one step and describes its outcome in backend-neutral terms.
    async fn apply(&mut self, step: &Step) -> String {
        match step {
            Step::Get(k) => match self.store.get(KEYS[*k]).await {
                Ok(Some(e)) => self.entry(&e),
                Ok(None) => "absent".into(),
                Err(e) => error(&e),
            },
            Step::Write(w) => {
                let op = self.write_op(w);
                let key = op.key().to_vec();
                let result = match op {
                    WriteOp::Put {
                        key,
                        value,
                        options,
                    } => self
                        .store
                        .put(&key, &value, options)
                        .await
                        .map(WriteResult::Put),
                    WriteOp::Delete { key, condition } => self
                        .store
                        .delete(&key, condition)
                        .await
                        .map(WriteResult::Delete),
                };
                match result {
                    Ok(r) => self.write_result(&key, &r),
                    Err(e) => error(&e),
                }
            }
            Step::Scan(o) => match self.store.scan(o.clone()).await {
                Ok(entries) => self.entries(&entries),
                Err(e) => error(&e),
            },
            Step::Batch(ws) => {
                let ops: Vec<WriteOp> = ws.iter().map(|w| self.write_op(w)).collect();
                let keys: Vec<Vec<u8>> = ops.iter().map(|o| o.key().to_vec()).collect();
                match self.store.batch(ops).await {
                    Ok(results) => {
                        let shown: Vec<String> = keys
                            .iter()
                            .zip(&results)
                            .map(|(k, r)| self.write_result(k, r))
                            .collect();
                        format!("[{}]", shown.join(", "))
                    }
                    Err(e) => error(&e),
                }
            }
            Step::Tx { steps, commit } => self.transaction(steps, *commit).await,
            Step::Advance(ms) => {
                self.clock.advance(Duration::from_millis(*ms));
                "ok".into()
            }
            Step::Purge => match self.store.purge_expired().await {
                Ok(n) => format!("purged {n}"),
                Err(e) => error(&e),
            },
        }
    }

    /// Runs a transaction; its versions are ranked only once it committed (a rolled
    /// back transaction's versions may legitimately be issued again).
    async fn transaction(&mut self, steps: &[TxStep], commit: bool) -> String {
        let mut tx = match self.store.begin(TxOptions::default()).await {
            Ok(tx) => tx,
            Err(e) => return format!("begin: {}", error(&e)),
        };
        let mut raw: Vec<Result<Vec<Entry>, String>> = Vec::new();
        let mut puts: Vec<(Vec<u8>, Option<Version>, String)> = Vec::new();
        let mut failed = false;
        for step in steps {
            let shown = match step {
                TxStep::Get(k) => tx
                    .get(KEYS[*k])
                    .await
                    .map(|e| e.into_iter().collect())
                    .map_err(|e| error(&e)),
                TxStep::Scan(o) => tx.scan(o.clone()).await.map_err(|e| error(&e)),
                TxStep::Write(w) => {
                    let op = self.write_op(w);
                    let key = op.key().to_vec();
                    let outcome = match op {
                        WriteOp::Put {
                            key,
                            value,
                            options,
                        } => tx
                            .put(&key, &value, options)
                            .await
                            .map(|v| (Some(v), String::new())),
                        WriteOp::Delete { key, condition } => tx
                            .delete(&key, condition)
                            .await
                            .map(|b| (None, format!("deleted {b}"))),
                    };
                    match outcome {
                        Ok((version, text)) => {
                            puts.push((key, version, text));
                            Ok(Vec::new())
                        }
                        Err(e) => Err(error(&e)),
                    }
                }
            };
            let stop = shown.is_err();
            raw.push(shown);
            if stop {
                failed = true;
                break;
            }
        }
        let end = if failed {
            drop(tx);
            "dropped after an error".to_string()
        } else if commit {
            match tx.commit().await {
                Ok(()) => "committed".into(),
                Err(e) => format!("commit: {}", error(&e)),
            }
        } else {
            match tx.rollback().await {
                Ok(()) => "rolled back".into(),
                Err(e) => format!("rollback: {}", error(&e)),
            }
        };
        let committed = end == "committed";
        let mut shown = Vec::new();
        let mut put_iter = puts.into_iter();
        for (step, result) in steps.iter().zip(raw) {
            let text = match (step, result) {
                (_, Err(e)) => e,
                (TxStep::Write(_), Ok(_)) => {
                    let (key, version, text) = put_iter.next().unwrap_or_default();
                    match version {
                        Some(v) if committed => format!("put {}", self.rank(&key, v)),
                        Some(_) => "put (rolled back)".into(),
                        None => text,
                    }
                }
                (_, Ok(entries)) if committed => self.entries(&entries),
                (_, Ok(entries)) => {
                    let keys: Vec<String> = entries
                        .iter()
                        .map(|e| {
                            format!(
                                "{}={:?}",
                                show_key(&e.key),
                                e.value.escape_ascii().to_string()
                            )
                        })
                        .collect();
                    format!("[{}]", keys.join(", "))
                }
            };
            shown.push(text);
        }
        format!("[{}] {end}", shown.join("; "))
    }
}

fn error(e: &StoreError) -> String {
    match e.batch_index() {
        Some(i) => format!("error {} at op {i}", e.kind().as_str()),
        None => format!("error {}", e.kind().as_str()),
    }
}

async fn open_side(harness: &dyn Harness) -> Result<Side, String> {
    let clock = ManualClock::default();
    let mut options = StoreOptions::new("differential:unset");
    options.max_connections = 2;
    options.acquire_timeout = Duration::from_secs(10);
    options.limits = Limits {
        max_value_bytes: VALUE_LIMIT,
        max_scan_limit: SCAN_LIMIT,
    };
    options.clock = Arc::new(clock.clone());
    let options = harness.isolate(options);
    let store = crate::harness::open_checked(harness, options)
        .await
        .map_err(|e| format!("{}: opening a store failed: {e}", harness.name()))?;
    Ok(Side {
        start: clock.now(),
        store,
        clock,
        versions: HashMap::new(),
    })
}

/// Runs `steps` on fresh stores of both backends; the index and outcomes of the first
/// step they disagree on, if any, and how many steps failed alike.
async fn compare(
    left: &dyn Harness,
    right: &dyn Harness,
    steps: &[Step],
) -> Result<Result<usize, (usize, String, String)>, String> {
    let mut a = open_side(left).await?;
    let mut b = open_side(right).await?;
    let mut errors = 0;
    let mut verdict = Ok(0);
    for (i, step) in steps.iter().enumerate() {
        let (x, y) = (a.apply(step).await, b.apply(step).await);
        if x != y {
            verdict = Err((i, x, y));
            break;
        }
        errors += usize::from(x.contains("error "));
        verdict = Ok(errors);
    }
    a.store.close().await;
    b.store.close().await;
    Ok(verdict)
}

/// Applies the same seeded random sequence of operations to a fresh store of `left`
/// and of `right` and compares every result. `Err` describes the first disagreement
/// with a minimal failing sequence; a store that cannot be opened is a mismatch too.
pub async fn differential(
    left: Arc<dyn Harness>,
    right: Arc<dyn Harness>,
    options: &DifferentialOptions,
) -> Result<DifferentialReport, Mismatch> {
    let seed = options.seed.unwrap_or_else(crate::runner::fresh_seed);
    let steps = generate(seed, options.steps);
    let mismatch = |step, minimal: &[Step], left_out, right_out| Mismatch {
        backends: (left.name(), right.name()),
        seed,
        step,
        minimal: minimal.iter().map(Step::to_string).collect(),
        left: left_out,
        right: right_out,
    };
    let (first, x, y) = match compare(&*left, &*right, &steps).await {
        Ok(Ok(errors)) => {
            return Ok(DifferentialReport {
                seed,
                steps: steps.len(),
                errors,
            });
        }
        Ok(Err(found)) => found,
        Err(open) => return Err(mismatch(0, &[], open.clone(), open)),
    };
    // Shrink: the prefix up to the divergence, then drop steps one at a time while the
    // backends still disagree somewhere.
    let mut minimal: Vec<Step> = steps[..=first].to_vec();
    let mut outcome = (x, y);
    let mut runs = 0;
    let mut i = 0;
    while i < minimal.len() && runs < options.shrink_runs {
        let mut candidate = minimal.clone();
        candidate.remove(i);
        runs += 1;
        match compare(&*left, &*right, &candidate).await {
            Ok(Err((at, x, y))) => {
                candidate.truncate(at + 1);
                minimal = candidate;
                outcome = (x, y);
            }
            _ => i += 1,
        }
    }
    Err(mismatch(first, &minimal, outcome.0, outcome.1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sequences_are_reproducible_and_mixed() {
        let a = generate(7, 300);
        assert_eq!(a, generate(7, 300));
        assert_ne!(a, generate(8, 300));
        assert!(a.iter().any(|s| matches!(s, Step::Tx { .. })));
        assert!(a.iter().any(|s| matches!(s, Step::Batch(_))));
        assert!(a.iter().any(|s| matches!(s, Step::Advance(_))));
        assert!(a.iter().any(|s| matches!(s, Step::Purge)));
    }
}
