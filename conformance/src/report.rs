//! The result of a run: one [`CaseReport`] per case, a human table (`Display`) and a
//! JSON form (serde).

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// How a case ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// Every check held.
    Passed,
    /// A check failed; the message says which property broke.
    Failed,
    /// The backend's capabilities (or the harness) exclude the case; the message says why.
    Skipped,
}

impl Outcome {
    /// `"passed"`, `"failed"` or `"skipped"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Passed => "passed",
            Self::Failed => "failed",
            Self::Skipped => "skipped",
        }
    }
}

/// What one case did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CaseReport {
    /// The case name, as in the contract (`scan_order`, `acquire_timeout`…).
    pub name: String,
    /// How it ended.
    pub outcome: Outcome,
    /// How long it ran (serialized as `duration_ms`, a float).
    #[serde(rename = "duration_ms", with = "millis")]
    pub duration: Duration,
    /// Why it failed or was skipped.
    pub message: Option<String>,
    /// The seed of its random choices, for cases that make any; rerun with
    /// `CONFORMANCE_SEED=<seed>` to replay them.
    pub seed: Option<u64>,
}

/// The outcome of [`run`](crate::run): every selected case, in kit order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// The harness name.
    pub harness: String,
    /// The seed the run used.
    pub seed: u64,
    /// One entry per case run.
    pub cases: Vec<CaseReport>,
}

impl Report {
    /// How many cases ended with `outcome`.
    pub fn count(&self, outcome: Outcome) -> usize {
        self.cases.iter().filter(|c| c.outcome == outcome).count()
    }

    /// `true` when no case failed.
    pub fn is_success(&self) -> bool {
        self.count(Outcome::Failed) == 0
    }

    /// The report of the case called `name`.
    pub fn case(&self, name: &str) -> Option<&CaseReport> {
        self.cases.iter().find(|c| c.name == name)
    }

    /// The cases that failed.
    pub fn failures(&self) -> impl Iterator<Item = &CaseReport> {
        self.cases.iter().filter(|c| c.outcome == Outcome::Failed)
    }

    /// The `n` slowest cases, slowest first.
    pub fn slowest(&self, n: usize) -> Vec<&CaseReport> {
        let mut cases: Vec<&CaseReport> = self.cases.iter().collect();
        cases.sort_by_key(|c| std::cmp::Reverse(c.duration));
        cases.truncate(n);
        cases
    }

    /// The time every case took, added up.
    pub fn total_duration(&self) -> Duration {
        self.cases.iter().map(|c| c.duration).sum()
    }

    /// The report as pretty-printed JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "conformance of {}: {} passed, {} failed, {} skipped (seed {})",
            self.harness,
            self.count(Outcome::Passed),
            self.count(Outcome::Failed),
            self.count(Outcome::Skipped),
            self.seed
        )?;
        let slowest: Vec<String> = self
            .slowest(5)
            .iter()
            .map(|c| format!("{} {:.1?}", c.name, c.duration))
            .collect();
        writeln!(
            f,
            "total {:.1?}; slowest: {}",
            self.total_duration(),
            slowest.join(", ")
        )?;
        let width = self.cases.iter().map(|c| c.name.len()).max().unwrap_or(4);
        writeln!(
            f,
            "{:<width$}  {:<7}  {:>10}  detail",
            "case", "outcome", "time"
        )?;
        for case in &self.cases {
            let detail = case.message.as_deref().unwrap_or("");
            let first_line = detail.lines().next().unwrap_or("");
            writeln!(
                f,
                "{:<width$}  {:<7}  {:>10}  {first_line}",
                case.name,
                case.outcome.as_str(),
                format!("{:.1?}", case.duration),
            )?;
        }
        Ok(())
    }
}

/// Serializes a `Duration` as fractional milliseconds.
mod millis {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64(d.as_secs_f64() * 1000.0)
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let ms = f64::deserialize(d)?;
        Duration::try_from_secs_f64(ms / 1000.0).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Report {
        Report {
            harness: "memory".into(),
            seed: 7,
            cases: vec![
                CaseReport {
                    name: "get_absent".into(),
                    outcome: Outcome::Passed,
                    duration: Duration::from_micros(1500),
                    message: None,
                    seed: None,
                },
                CaseReport {
                    name: "ttl_expiry".into(),
                    outcome: Outcome::Skipped,
                    duration: Duration::from_millis(2),
                    message: Some("backend reports ttl = false".into()),
                    seed: None,
                },
            ],
        }
    }

    #[test]
    fn json_round_trips_with_millisecond_durations() {
        let report = sample();
        let json = report.to_json();
        assert!(json.contains("\"duration_ms\": 1.5"), "{json}");
        assert!(json.contains("\"outcome\": \"skipped\""), "{json}");
        let back: Report = serde_json::from_str(&json).unwrap();
        assert_eq!(back, report);
    }

    #[test]
    fn table_lists_every_case_and_the_totals() {
        let table = sample().to_string();
        assert!(table.starts_with("conformance of memory: 1 passed, 0 failed, 1 skipped"));
        assert!(table.contains("ttl_expiry"));
        assert!(table.contains("backend reports ttl = false"));
        assert!(
            table.contains("slowest: ttl_expiry 2.0ms, get_absent 1.5ms"),
            "{table}"
        );
        assert!(sample().is_success());
    }
}
