//! How a case passes, skips or fails: [`Verdict`], [`Failure`], the `ensure!` macros,
//! and [`Expect`], which turns a store result into a failure that names the operation.

use std::fmt::{self, Debug, Display};
use std::future::Future;
use std::time::Duration;

use storage_api::{ErrorKind, StoreError};

/// A case that did not fail either passed or was skipped for a stated reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Every check held.
    Passed,
    /// The backend's capabilities exclude the case; the excluded operations were checked
    /// to return `Unsupported` (or there is nothing to check).
    Skipped(String),
}

/// Why a case failed: the property that broke, in words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Failure {
    pub(crate) message: String,
}

impl Failure {
    /// A failure with `message`.
    pub(crate) fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
        }
    }
}

impl Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

/// What every case returns.
pub(crate) type CaseResult = Result<Verdict, Failure>;

/// Fails the case with a formatted message unless `cond` holds.
macro_rules! ensure {
    ($cond:expr, $($arg:tt)+) => {
        if !($cond) {
            return Err($crate::check::Failure::new(format!($($arg)+)));
        }
    };
}

/// Fails the case unless `actual == expected`, showing both.
macro_rules! ensure_eq {
    ($actual:expr, $expected:expr, $($arg:tt)+) => {{
        let (actual, expected) = (&$actual, &$expected);
        if actual != expected {
            return Err($crate::check::Failure::new(format!(
                "{}: expected {:?}, got {:?}",
                format!($($arg)+),
                expected,
                actual
            )));
        }
    }};
}

/// Fails the case with a formatted message.
macro_rules! fail {
    ($($arg:tt)+) => {
        return Err($crate::check::Failure::new(format!($($arg)+)))
    };
}

/// Checks on the result of a store operation.
pub(crate) trait Expect<T> {
    /// The value, or a failure naming `what` and the unexpected error.
    fn must(self, what: impl Display) -> Result<T, Failure>;

    /// The error, which must be of `kind`; success or another kind is a failure.
    fn must_fail(self, kind: ErrorKind, what: impl Display) -> Result<StoreError, Failure>;

    /// The error, which must be of one of `kinds`.
    fn must_fail_with(self, kinds: &[ErrorKind], what: impl Display)
    -> Result<StoreError, Failure>;
}

impl<T: Debug> Expect<T> for Result<T, StoreError> {
    fn must(self, what: impl Display) -> Result<T, Failure> {
        self.map_err(|e| Failure::new(format!("{what}: unexpected error {e}")))
    }

    fn must_fail(self, kind: ErrorKind, what: impl Display) -> Result<StoreError, Failure> {
        self.must_fail_with(&[kind], what)
    }

    fn must_fail_with(
        self,
        kinds: &[ErrorKind],
        what: impl Display,
    ) -> Result<StoreError, Failure> {
        let names: Vec<&str> = kinds.iter().map(|k| k.as_str()).collect();
        match self {
            Err(e) if kinds.contains(&e.kind()) => Ok(e),
            Err(e) => Err(Failure::new(format!(
                "{what}: expected {}, got error {e}",
                names.join(" or ")
            ))),
            Ok(v) => Err(Failure::new(format!(
                "{what}: expected {}, but it succeeded with {v:?}",
                names.join(" or ")
            ))),
        }
    }
}

/// Awaits `fut`, failing if it takes longer than `limit`: how the kit notices an
/// operation that hangs instead of failing.
pub(crate) async fn within<T>(
    limit: Duration,
    what: impl Display,
    fut: impl Future<Output = T>,
) -> Result<T, Failure> {
    tokio::time::timeout(limit, fut)
        .await
        .map_err(|_| Failure::new(format!("{what}: did not finish within {limit:?}")))
}
