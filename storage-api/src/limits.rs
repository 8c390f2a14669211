//! The size limits a store is configured with (`max_value_bytes`, `max_scan_limit`);
//! backends report them in their [`Capabilities`](crate::Capabilities), which the
//! checking layer enforces (see [`crate::backend::Checked`]).

/// The size limits a store enforces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest value accepted (`max_value_bytes`).
    pub max_value_bytes: usize,
    /// Largest scan limit accepted (`max_scan_limit`).
    pub max_scan_limit: usize,
}

impl Limits {
    /// The number of entries a scan returns: its limit, or `max_scan_limit` when it has
    /// none. (The checking layer has already refused a limit over `max_scan_limit`.)
    pub fn scan_limit(&self, options: &crate::types::ScanOptions) -> usize {
        options.limit.unwrap_or(self.max_scan_limit)
    }
}
