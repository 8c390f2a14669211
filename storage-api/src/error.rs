//! The one error type every backend returns, and its kinds.

use std::fmt;

/// Boxed error used as the cause of a [`StoreError`].
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Result alias used across the contract.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// What went wrong, independent of the backend that noticed it.
///
/// Conformance tests and applications match on the kind, never on message text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The caller passed something the contract rejects (empty key, value over the limit…).
    InvalidInput,
    /// A put or delete condition did not hold; nothing was changed.
    ConditionFailed,
    /// A transaction could not be serialized against a concurrent one; retry it.
    Conflict,
    /// An acquire or operation deadline passed.
    Timeout,
    /// The database stayed locked past `db_busy_timeout_ms`.
    Busy,
    /// The store was closed.
    Closed,
    /// A connection broke or the server could not be reached.
    Connection,
    /// The backend does not offer this operation (see `Capabilities`).
    Unsupported,
    /// The configuration is invalid.
    Config,
    /// The stored data is damaged or not ours.
    Corrupt,
    /// Anything else the backend reported; see the source.
    Backend,
}

impl ErrorKind {
    /// A stable lower-case name, used in logs and metric labels.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InvalidInput => "invalid_input",
            Self::ConditionFailed => "condition_failed",
            Self::Conflict => "conflict",
            Self::Timeout => "timeout",
            Self::Busy => "busy",
            Self::Closed => "closed",
            Self::Connection => "connection",
            Self::Unsupported => "unsupported",
            Self::Config => "config",
            Self::Corrupt => "corrupt",
            Self::Backend => "backend",
        }
    }

    /// Whether an operation that failed this way may succeed if simply tried again.
    pub fn is_retryable(self) -> bool {
        matches!(
            self,
            Self::Conflict | Self::Busy | Self::Timeout | Self::Connection
        )
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The error every [`PooledStore`](crate::PooledStore) operation returns.
///
/// Messages name the setting, operation or key length at fault; they never contain
/// user values, passwords or full connection URLs.
pub struct StoreError {
    kind: ErrorKind,
    message: String,
    batch_index: Option<usize>,
    source: Option<BoxError>,
}

impl StoreError {
    /// Creates an error of `kind` with a human message. Any URL password or
    /// `password=` value in the message is masked (see [`redact_secrets`](crate::redact_secrets)).
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: crate::redact::redact_secrets(&message.into()),
            batch_index: None,
            source: None,
        }
    }

    /// Shorthand for an [`ErrorKind::InvalidInput`] error.
    pub fn invalid_input(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::InvalidInput, message)
    }

    /// Shorthand for an [`ErrorKind::Config`] error.
    pub fn config(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Config, message)
    }

    /// Shorthand for the [`ErrorKind::Closed`] error every operation returns after `close`.
    pub fn closed() -> Self {
        Self::new(ErrorKind::Closed, "the store is closed")
    }

    /// Shorthand for an [`ErrorKind::Unsupported`] error naming the operation.
    pub fn unsupported(operation: &str) -> Self {
        Self::new(
            ErrorKind::Unsupported,
            format!("{operation} is not supported by this backend"),
        )
    }

    /// Attaches the underlying cause.
    pub fn with_source(mut self, source: impl Into<BoxError>) -> Self {
        self.source = Some(source.into());
        self
    }

    /// Records which operation of a batch failed.
    pub fn with_batch_index(mut self, index: usize) -> Self {
        self.batch_index = Some(index);
        self
    }

    /// What went wrong.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The human message, without the kind.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// For a failed batch, the index of the operation that failed.
    pub fn batch_index(&self) -> Option<usize> {
        self.batch_index
    }

    /// Whether retrying the same operation may succeed.
    pub fn is_retryable(&self) -> bool {
        self.kind.is_retryable()
    }
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.kind, self.message)?;
        if let Some(index) = self.batch_index {
            write!(f, " (batch operation {index})")?;
        }
        Ok(())
    }
}

impl fmt::Debug for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut s = f.debug_struct("StoreError");
        s.field("kind", &self.kind).field("message", &self.message);
        if let Some(index) = self.batch_index {
            s.field("batch_index", &index);
        }
        if let Some(source) = &self.source {
            s.field("source", &source.to_string());
        }
        s.finish()
    }
}

impl std::error::Error for StoreError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_deref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retryable_kinds_are_exactly_the_transient_ones() {
        let retryable: Vec<_> = [
            ErrorKind::InvalidInput,
            ErrorKind::ConditionFailed,
            ErrorKind::Conflict,
            ErrorKind::Timeout,
            ErrorKind::Busy,
            ErrorKind::Closed,
            ErrorKind::Connection,
            ErrorKind::Unsupported,
            ErrorKind::Config,
            ErrorKind::Corrupt,
            ErrorKind::Backend,
        ]
        .into_iter()
        .filter(|k| k.is_retryable())
        .collect();
        assert_eq!(
            retryable,
            [
                ErrorKind::Conflict,
                ErrorKind::Timeout,
                ErrorKind::Busy,
                ErrorKind::Connection
            ]
        );
    }

    #[test]
    fn display_names_kind_and_batch_index() {
        let e = StoreError::new(ErrorKind::ConditionFailed, "version mismatch").with_batch_index(3);
        assert_eq!(
            e.to_string(),
            "condition_failed: version mismatch (batch operation 3)"
        );
        assert_eq!(e.batch_index(), Some(3));
    }
}
