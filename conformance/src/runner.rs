//! Running cases: the registry, [`RunOptions`], [`run`] (for binaries) and the test
//! entry point `suite!` expands to.

use std::collections::hash_map::RandomState;
use std::future::Future;
use std::hash::{BuildHasher, Hasher};
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use storage_api::{Result, StoreError};

use crate::check::{CaseResult, Failure, Verdict};
use crate::context::Ctx;
use crate::harness::Harness;
use crate::report::{CaseReport, Outcome, Report};

/// Environment variable fixing the seed of a run (decimal u64).
pub const SEED_ENV: &str = "CONFORMANCE_SEED";
/// Environment variable raising (or lowering) the number of generated property cases.
pub const PROPTEST_CASES_ENV: &str = "CONFORMANCE_PROPTEST_CASES";
/// Environment variable selecting cases: comma-separated substrings of case names.
pub const FILTER_ENV: &str = "CONFORMANCE_FILTER";

type CaseFuture = Pin<Box<dyn Future<Output = CaseResult> + Send>>;

/// One case of the kit.
struct Case {
    name: &'static str,
    run: fn(Ctx) -> CaseFuture,
}

macro_rules! registry {
    (; $($case:ident),* $(,)?) => {
        static CASES: &[Case] = &[
            $(Case {
                name: stringify!($case),
                run: |ctx| Box::pin(crate::cases::$case(ctx)),
            },)*
        ];
    };
}

crate::__cases!([registry]);

/// The names of every case, in run order.
pub fn case_names() -> Vec<&'static str> {
    CASES.iter().map(|c| c.name).collect()
}

/// How [`run`] runs the kit.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct RunOptions {
    /// Run only cases whose name contains one of these strings; empty runs them all.
    pub filter: Vec<String>,
    /// The seed for every random choice; `None` picks a fresh one (printed in the
    /// report).
    pub seed: Option<u64>,
    /// Generated cases per property test (state machine, linearizability). Default: 32.
    pub proptest_cases: u32,
    /// A case still running after this fails as hung. Default: 120 s.
    pub case_timeout: Duration,
    /// Where proptest keeps the seeds of failing cases, replayed first on the next
    /// run; `None` keeps none.
    pub regressions_dir: Option<PathBuf>,
}

impl Default for RunOptions {
    fn default() -> Self {
        Self {
            filter: Vec::new(),
            seed: None,
            proptest_cases: 32,
            case_timeout: Duration::from_secs(120),
            regressions_dir: None,
        }
    }
}

impl RunOptions {
    /// The defaults, overridden by `CONFORMANCE_SEED`, `CONFORMANCE_PROPTEST_CASES` and
    /// `CONFORMANCE_FILTER` where set; a malformed value is a `Config` error.
    pub fn from_env() -> Result<Self> {
        let mut options = Self::default();
        if let Some(seed) = env_number(SEED_ENV)? {
            options.seed = Some(seed);
        }
        if let Some(cases) = env_number(PROPTEST_CASES_ENV)? {
            options.proptest_cases = u32::try_from(cases)
                .map_err(|_| StoreError::config(format!("{PROPTEST_CASES_ENV} is too large")))?;
        }
        if let Ok(filter) = std::env::var(FILTER_ENV) {
            options.filter = filter
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(String::from)
                .collect();
        }
        Ok(options)
    }

    /// The same options, running only cases whose name contains one of `names`.
    pub fn with_filter<S: Into<String>>(mut self, names: impl IntoIterator<Item = S>) -> Self {
        self.filter = names.into_iter().map(Into::into).collect();
        self
    }

    /// The same options with a fixed seed.
    pub fn with_seed(mut self, seed: u64) -> Self {
        self.seed = Some(seed);
        self
    }

    fn selects(&self, name: &str) -> bool {
        self.filter.is_empty() || self.filter.iter().any(|f| name.contains(f.as_str()))
    }
}

fn env_number(name: &str) -> Result<Option<u64>> {
    match std::env::var(name) {
        Ok(value) => value
            .trim()
            .parse()
            .map(Some)
            .map_err(|_| StoreError::config(format!("{name} must be a whole number"))),
        Err(_) => Ok(None),
    }
}

pub(crate) fn fresh_seed() -> u64 {
    let mut hasher = RandomState::new().build_hasher();
    hasher.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0),
    );
    hasher.finish()
}

/// Runs the selected cases one after another against stores from `harness` and
/// reports each. Needs a tokio runtime (multi-thread recommended); does not need
/// `cargo test`.
pub async fn run(harness: Arc<dyn Harness>, options: &RunOptions) -> Report {
    let seed = options.seed.unwrap_or_else(fresh_seed);
    let mut cases = Vec::new();
    for case in CASES.iter().filter(|c| options.selects(c.name)) {
        cases.push(execute(case, Arc::clone(&harness), seed, options).await);
    }
    Report {
        harness: harness.name(),
        seed,
        cases,
    }
}

/// Runs the one case called `name`; `None` if there is no such case.
pub async fn run_case(
    harness: Arc<dyn Harness>,
    name: &str,
    options: &RunOptions,
) -> Option<CaseReport> {
    let case = CASES.iter().find(|c| c.name == name)?;
    let seed = options.seed.unwrap_or_else(fresh_seed);
    Some(execute(case, harness, seed, options).await)
}

async fn execute(
    case: &Case,
    harness: Arc<dyn Harness>,
    seed: u64,
    options: &RunOptions,
) -> CaseReport {
    let ctx = Ctx::new(
        harness,
        case.name,
        seed,
        options.proptest_cases,
        options.regressions_dir.clone(),
    );
    let started = Instant::now();
    let task = tokio::spawn((case.run)(ctx.clone()));
    let abort = task.abort_handle();
    let result = match tokio::time::timeout(options.case_timeout, task).await {
        Ok(Ok(result)) => result,
        Ok(Err(join)) => Err(Failure::new(panic_message(join))),
        Err(_) => {
            abort.abort();
            Err(Failure::new(format!(
                "the case did not finish within {:?}: an operation hangs",
                options.case_timeout
            )))
        }
    };
    let duration = started.elapsed();
    ctx.close_all().await;
    let (outcome, message) = match result {
        Ok(Verdict::Passed) => (Outcome::Passed, None),
        Ok(Verdict::Skipped(reason)) => (Outcome::Skipped, Some(reason)),
        Err(failure) => (Outcome::Failed, Some(failure.message)),
    };
    CaseReport {
        name: case.name.to_string(),
        outcome,
        duration,
        message,
        seed: ctx.seed_used().then_some(seed),
    }
}

fn panic_message(join: tokio::task::JoinError) -> String {
    if !join.is_panic() {
        return format!("the case was cancelled: {join}");
    }
    let payload = join.into_panic();
    let text = payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a non-string panic".into());
    format!("the case panicked: {text}")
}

/// The body of each test `suite!` generates: runs one case on a fresh two-worker
/// runtime, prints why if it was skipped, panics with the message and seed if it
/// failed.
pub fn run_test<H: Harness>(case: &str, make_harness: impl FnOnce() -> H) {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => panic!("cannot build the tokio runtime for {case}: {e}"),
    };
    let report = runtime.block_on(async {
        let mut options = match RunOptions::from_env() {
            Ok(options) => options,
            Err(e) => panic!("{e}"),
        };
        options.regressions_dir = Some(PathBuf::from("proptest-regressions"));
        let harness: Arc<dyn Harness> = Arc::new(make_harness());
        run_case(harness, case, &options).await
    });
    // A backend's blocking thread stuck in a hung call must not hang the test binary.
    runtime.shutdown_timeout(Duration::from_secs(10));
    let Some(report) = report else {
        panic!("the conformance kit has no case named {case}");
    };
    match report.outcome {
        Outcome::Passed => {}
        Outcome::Skipped => println!(
            "{case}: skipped: {}",
            report.message.as_deref().unwrap_or("")
        ),
        Outcome::Failed => {
            let seed = report
                .seed
                .map(|s| format!("\nseed {s}: replay with {SEED_ENV}={s}"))
                .unwrap_or_default();
            panic!(
                "conformance case {case} failed after {:.1?}: {}{seed}",
                report.duration,
                report.message.as_deref().unwrap_or("")
            );
        }
    }
}
