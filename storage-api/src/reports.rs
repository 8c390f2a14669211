//! Pool-level reports: health, validation, metrics snapshot and close report.

use std::time::Duration;

/// Overall state a health check found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum HealthStatus {
    /// A connection was acquired and a round trip succeeded.
    Healthy,
    /// No connection could be acquired within the bound: every connection is busy and
    /// callers are queued.
    Saturated,
    /// A connection was acquired but the round trip failed, or none could be opened.
    Unreachable,
    /// The store was closed.
    Closed,
}

impl HealthStatus {
    /// A stable lower-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Healthy => "healthy",
            Self::Saturated => "saturated",
            Self::Unreachable => "unreachable",
            Self::Closed => "closed",
        }
    }
}

/// What `health_check` found.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct PoolHealth {
    /// `true` only for [`HealthStatus::Healthy`].
    pub healthy: bool,
    /// The state found.
    pub status: HealthStatus,
    /// How long acquiring the connection took (sub-millisecond precision).
    pub acquire_time: Duration,
    /// How long the round trip took.
    pub query_time: Duration,
    /// A human explanation; never contains secrets.
    pub detail: String,
    /// The server or library version, where the backend knows it.
    pub server_version: Option<String>,
}

impl PoolHealth {
    /// A report for `status` with the given timings and detail.
    pub fn new(
        status: HealthStatus,
        acquire_time: Duration,
        query_time: Duration,
        detail: impl Into<String>,
    ) -> Self {
        Self {
            healthy: status == HealthStatus::Healthy,
            status,
            acquire_time,
            query_time,
            detail: detail.into(),
            server_version: None,
        }
    }

    /// The report of a closed store.
    pub fn closed() -> Self {
        Self::new(
            HealthStatus::Closed,
            Duration::ZERO,
            Duration::ZERO,
            "the store is closed",
        )
    }

    /// The same report with a server version.
    pub fn with_server_version(mut self, version: impl Into<String>) -> Self {
        self.server_version = Some(version.into());
        self
    }
}

/// What `validate_connections` found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct ConnectionValidation {
    /// Idle connections checked, each one once.
    pub checked: u32,
    /// Connections that answered.
    pub valid: u32,
    /// Connections that did not, and were evicted.
    pub invalid: u32,
    /// The pool's maximum size.
    pub max_connections: u32,
    /// `true` when no connection was invalid.
    pub passed: bool,
}

impl ConnectionValidation {
    /// A report from counts; `passed` is derived.
    pub fn new(valid: u32, invalid: u32, max_connections: u32) -> Self {
        Self {
            checked: valid + invalid,
            valid,
            invalid,
            max_connections,
            passed: invalid == 0,
        }
    }
}

/// Why a connection left the pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CloseReason {
    /// It failed while in use.
    Broken,
    /// It failed validation.
    Invalid,
    /// It reached `db_max_lifetime_secs`.
    MaxLifetime,
    /// It sat idle past `db_idle_timeout_secs`.
    IdleTimeout,
    /// The store was closed.
    Shutdown,
}

impl CloseReason {
    /// Every reason, in a stable order.
    pub const ALL: [CloseReason; 5] = [
        Self::Broken,
        Self::Invalid,
        Self::MaxLifetime,
        Self::IdleTimeout,
        Self::Shutdown,
    ];

    /// The metric label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Broken => "broken",
            Self::Invalid => "invalid",
            Self::MaxLifetime => "max_lifetime",
            Self::IdleTimeout => "idle_timeout",
            Self::Shutdown => "shutdown",
        }
    }
}

/// Connections closed so far, by reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ClosedCounts {
    /// Failed while in use.
    pub broken: u64,
    /// Failed validation.
    pub invalid: u64,
    /// Reached the maximum lifetime.
    pub max_lifetime: u64,
    /// Idle too long.
    pub idle_timeout: u64,
    /// Closed by `close`.
    pub shutdown: u64,
}

impl ClosedCounts {
    /// The count for one reason.
    pub fn get(&self, reason: CloseReason) -> u64 {
        match reason {
            CloseReason::Broken => self.broken,
            CloseReason::Invalid => self.invalid,
            CloseReason::MaxLifetime => self.max_lifetime,
            CloseReason::IdleTimeout => self.idle_timeout,
            CloseReason::Shutdown => self.shutdown,
        }
    }

    /// All reasons added up.
    pub fn total(&self) -> u64 {
        CloseReason::ALL.iter().map(|r| self.get(*r)).sum()
    }
}

/// A cumulative histogram: `counts[i]` observations were `<= bounds[i]` seconds
/// (Prometheus `le` buckets, without the `+Inf` bucket, which is `count`).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct HistogramSnapshot {
    /// Upper bounds in seconds, ascending.
    pub bounds: Vec<f64>,
    /// Cumulative counts per bound.
    pub counts: Vec<u64>,
    /// Number of observations.
    pub count: u64,
    /// Sum of observations, in seconds.
    pub sum: f64,
}

/// A point-in-time view of a pool. Not atomic across fields, but when no work is in
/// flight `idle + in_use == size <= max` holds.
#[derive(Debug, Clone, PartialEq, Default)]
#[non_exhaustive]
pub struct PoolMetrics {
    /// Maximum connections (`db_pool_size`).
    pub max: u32,
    /// Connections kept warm (`db_min_idle`).
    pub min_idle: u32,
    /// Connections open now.
    pub size: u32,
    /// Open connections not in use.
    pub idle: u32,
    /// Open connections in use.
    pub in_use: u32,
    /// Callers waiting for a connection.
    pub pending: u32,
    /// Successful acquisitions.
    pub acquired: u64,
    /// Acquisitions that timed out.
    pub timeouts: u64,
    /// Connections opened.
    pub created: u64,
    /// Connections closed, by reason.
    pub closed: ClosedCounts,
    /// Operations that failed with `Busy` (database locked).
    pub busy: u64,
    /// Connections or transactions held past `db_leak_detection_threshold_secs`.
    pub leaks: u64,
    /// Time callers waited to acquire a connection.
    pub acquire_wait: HistogramSnapshot,
}

/// What `close` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct CloseReport {
    /// `true` when an earlier call had already closed the store.
    pub already_closed: bool,
    /// Operations and transactions in flight when close began.
    pub in_flight: usize,
    /// Of those, how many were still running when the grace period ended.
    pub forced: usize,
    /// How long close waited for in-flight work.
    pub waited: Duration,
    /// Connections closed.
    pub connections_closed: u32,
}

impl CloseReport {
    /// A report from its parts.
    pub fn new(
        already_closed: bool,
        in_flight: usize,
        forced: usize,
        waited: Duration,
        connections_closed: u32,
    ) -> Self {
        Self {
            already_closed,
            in_flight,
            forced,
            waited,
            connections_closed,
        }
    }
}
