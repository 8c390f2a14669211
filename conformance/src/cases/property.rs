//! Running proptest from a case: the runner configuration (cases, seed, regression
//! file, shrink budget) and a blocking thread to run it on, since proptest is
//! synchronous and the store is not.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Mutex, OnceLock};

use proptest::test_runner::{Config, FileFailurePersistence, RngSeed};
use tokio::runtime::Handle;

use crate::check::Failure;
use crate::context::Ctx;

/// proptest wants a `&'static str` for the regression file; each distinct path is
/// leaked once.
fn static_path(path: PathBuf) -> &'static str {
    static PATHS: OnceLock<Mutex<HashMap<PathBuf, &'static str>>> = OnceLock::new();
    let mut paths = PATHS
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|p| p.into_inner());
    paths
        .entry(path)
        .or_insert_with_key(|p| Box::leak(p.to_string_lossy().into_owned().into_boxed_str()))
}

/// The proptest configuration of a case: its case count, its seed, its regression file
/// (replayed first), and a bounded shrink.
pub(crate) fn config(ctx: &Ctx) -> Config {
    let failure_persistence = ctx.regression_file().map(|path| {
        let persistence: Box<dyn proptest::test_runner::FailurePersistence> =
            Box::new(FileFailurePersistence::Direct(static_path(path)));
        persistence
    });
    Config {
        cases: ctx.proptest_cases(),
        rng_seed: RngSeed::Fixed(ctx.seed()),
        failure_persistence,
        max_shrink_iters: 512,
        max_shrink_time: 60_000,
        verbose: 0,
        ..Config::default()
    }
}

/// Runs `body` on a blocking thread with a handle to the case's runtime (for
/// `Handle::block_on`), and waits for it.
pub(crate) async fn run_blocking<F>(body: F) -> Result<(), Failure>
where
    F: FnOnce(Handle) -> Result<(), Failure> + Send + 'static,
{
    let handle = Handle::current();
    match tokio::task::spawn_blocking(move || body(handle)).await {
        Ok(result) => result,
        Err(e) => Err(Failure::new(format!("the property test panicked: {e}"))),
    }
}
