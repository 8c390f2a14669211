//! `Ctx`: what a case gets — the harness, the kit's default store options, the seed and
//! the property-test budget — and the stores it opened, closed when the case ends.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use storage_api::{Limits, ManualClock, PooledStore, StoreOptions};

use crate::check::{Expect, Failure};
use crate::harness::{Faults, Harness, open_checked};

/// The value limit every kit store opens with.
pub(crate) const VALUE_LIMIT: usize = 4096;
/// The scan limit every kit store opens with.
pub(crate) const SCAN_LIMIT: usize = 100;
/// The acquire timeout of cases that do not test it: long enough never to fire by
/// accident on a loaded machine.
pub(crate) const RELAXED_ACQUIRE: Duration = Duration::from_secs(10);
/// How long the kit waits for a store to close after a case.
const CLEANUP_CLOSE: Duration = Duration::from_secs(10);

/// Everything one case run needs. Cheap to clone.
#[derive(Clone)]
pub(crate) struct Ctx {
    inner: Arc<Inner>,
}

struct Inner {
    harness: Arc<dyn Harness>,
    seed: u64,
    seed_used: AtomicBool,
    proptest_cases: u32,
    regressions: Option<PathBuf>,
    case: &'static str,
    clock: ManualClock,
    opened: Mutex<Vec<Arc<dyn PooledStore>>>,
}

impl Ctx {
    /// A context for running `case` against `harness`.
    pub(crate) fn new(
        harness: Arc<dyn Harness>,
        case: &'static str,
        seed: u64,
        proptest_cases: u32,
        regressions: Option<PathBuf>,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                harness,
                seed,
                seed_used: AtomicBool::new(false),
                proptest_cases,
                regressions,
                case,
                clock: ManualClock::default(),
                opened: Mutex::new(Vec::new()),
            }),
        }
    }

    /// The case's seed; calling this marks the case as seeded in the report.
    pub(crate) fn seed(&self) -> u64 {
        self.inner.seed_used.store(true, Relaxed);
        self.inner.seed
    }

    /// Whether the case asked for its seed.
    pub(crate) fn seed_used(&self) -> bool {
        self.inner.seed_used.load(Relaxed)
    }

    /// How many generated cases property tests run.
    pub(crate) fn proptest_cases(&self) -> u32 {
        self.inner.proptest_cases
    }

    /// Where proptest keeps regression seeds for this case, if anywhere.
    pub(crate) fn regression_file(&self) -> Option<PathBuf> {
        let dir = self.inner.regressions.as_ref()?;
        let harness: String = self
            .inner
            .harness
            .name()
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
            .collect();
        Some(dir.join(format!("{harness}-{}.txt", self.inner.case)))
    }

    /// The manual clock every store of this case reads.
    pub(crate) fn clock(&self) -> &ManualClock {
        &self.inner.clock
    }

    /// The harness's fault injection, if it has any.
    pub(crate) fn faults(&self) -> Option<&dyn Faults> {
        self.inner.harness.faults()
    }

    /// The kit's defaults: 4 connections, a relaxed acquire timeout, a 2 s close grace,
    /// small limits and the case's manual clock.
    pub(crate) fn template(&self) -> StoreOptions {
        let mut options = StoreOptions::new("conformance:unset");
        options.max_connections = 4;
        options.min_idle = 0;
        options.acquire_timeout = RELAXED_ACQUIRE;
        options.busy_timeout = Duration::from_secs(5);
        options.close_grace = Duration::from_secs(2);
        options.limits = Limits {
            max_value_bytes: VALUE_LIMIT,
            max_scan_limit: SCAN_LIMIT,
        };
        options.clock = Arc::new(self.inner.clock.clone());
        options
    }

    /// Options for a fresh store: the template, changed by `tweak`, then isolated by
    /// the harness.
    pub(crate) fn options(&self, tweak: impl FnOnce(&mut StoreOptions)) -> StoreOptions {
        let mut options = self.template();
        tweak(&mut options);
        self.inner.harness.isolate(options)
    }

    /// Opens a store with exactly `options` (again, for persistence cases).
    pub(crate) async fn open_options(
        &self,
        options: &StoreOptions,
    ) -> Result<Arc<dyn PooledStore>, Failure> {
        let store = open_checked(&*self.inner.harness, options.clone())
            .await
            .must("opening a store")?;
        self.inner
            .opened
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(Arc::clone(&store));
        Ok(store)
    }

    /// Opens a store with exactly `options` that the case closes itself (property
    /// tests open one per generated case).
    pub(crate) async fn open_transient(
        &self,
        options: &StoreOptions,
    ) -> Result<Arc<dyn PooledStore>, Failure> {
        open_checked(&*self.inner.harness, options.clone())
            .await
            .must("opening a store")
    }

    /// Opens a fresh store with the template changed by `tweak`.
    pub(crate) async fn open(
        &self,
        tweak: impl FnOnce(&mut StoreOptions),
    ) -> Result<Arc<dyn PooledStore>, Failure> {
        let options = self.options(tweak);
        self.open_options(&options).await
    }

    /// Opens a fresh store with the template.
    pub(crate) async fn open_default(&self) -> Result<Arc<dyn PooledStore>, Failure> {
        self.open(|_| {}).await
    }

    /// Closes every store the case opened (each close bounded), so files and
    /// connections do not outlive the case.
    pub(crate) async fn close_all(&self) {
        let stores: Vec<_> =
            std::mem::take(&mut *self.inner.opened.lock().unwrap_or_else(|p| p.into_inner()));
        let closes = stores.iter().map(|store| async move {
            let _ = tokio::time::timeout(CLEANUP_CLOSE, store.close()).await;
        });
        futures::future::join_all(closes).await;
    }
}
