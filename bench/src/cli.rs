//! Command-line arguments of the parent run and of the hidden child mode.

use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;

/// Measures pooledstore's backends side by side with the raw libraries they wrap.
///
/// Each (configuration, workload, concurrency) runs in its own child process on a fresh
/// copy of a preloaded database; repetitions are interleaved and the median is reported.
#[derive(Debug, Parser)]
#[command(name = "pooledstore-bench")]
pub(crate) struct Cli {
    /// Short run for CI smoke tests: 0.5 s per measurement, one repetition.
    #[arg(long)]
    pub(crate) quick: bool,

    /// Print the results as JSON instead of a table.
    #[arg(long)]
    pub(crate) json: bool,

    /// Also write the JSON report to this file (whatever stdout shows).
    #[arg(long, value_name = "FILE")]
    pub(crate) save: Option<PathBuf>,

    /// Only workloads whose name contains this (point_read, put, batch, scan, ycsb_a,
    /// ycsb_b, ycsb_c, ycsb_f, acquire; "ycsb" selects all four).
    #[arg(long, value_name = "WORKLOAD")]
    pub(crate) filter: Option<String>,

    /// Only configurations whose name contains this (rusqlite, deadpool, sqlx,
    /// pooledstore-deadpool, pooledstore-sqlx, pg-sqlx, pooledstore-pg).
    #[arg(long, value_name = "CONFIG")]
    pub(crate) config: Option<String>,

    /// How cost grows: point reads, puts and scans over data sizes and pool sizes,
    /// written as JSON and SVG pictures (see "How cost grows" in `bench/README.md`).
    #[arg(long)]
    pub(crate) sweep: bool,

    /// Data sizes the sweep preloads; each runs at the pool size `--connections`.
    #[arg(long, value_name = "N,N,...", value_delimiter = ',', default_values_t = crate::plan::SWEEP_KEYS,
          value_parser = clap::value_parser!(u64).range(2..))]
    pub(crate) sweep_keys: Vec<u64>,

    /// Pool sizes the sweep runs at the smallest of `--sweep-keys`.
    #[arg(long, value_name = "N,N,...", value_delimiter = ',', default_values_t = crate::plan::SWEEP_POOLS,
          value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub(crate) sweep_pools: Vec<u32>,

    /// Where the sweep writes its JSON and pictures [default: bench/results].
    #[arg(long, value_name = "DIR")]
    pub(crate) sweep_dir: Option<PathBuf>,

    /// Measured seconds per measurement [default: 3, 1 with --sweep, 0.5 with --quick].
    #[arg(long, value_name = "SECONDS")]
    pub(crate) duration: Option<f64>,

    /// Unrecorded warm-up before each measurement [default: a tenth of --duration].
    #[arg(long, value_name = "SECONDS")]
    pub(crate) warmup: Option<f64>,

    /// Repetitions of every measurement [default: 3, or 1 with --quick].
    #[arg(long, value_name = "N")]
    pub(crate) reps: Option<u32>,

    /// Concurrency levels: every workload runs once at each (`16,256` measures threads
    /// and memory under load and checks that pooledstore's threads do not grow)
    /// [default: 1,16, or 16 with --sweep].
    #[arg(long = "tasks", value_name = "N,N,...", value_delimiter = ',',
          value_parser = clap::value_parser!(u32).range(1..=100_000))]
    tasks_given: Vec<u32>,

    /// Preloaded keys (the sweep takes `--sweep-keys` instead).
    #[arg(long, value_name = "N", default_value_t = 100_000)]
    pub(crate) keys: u64,

    /// Connections in every pool under test (in the sweep, on its data-size axis).
    #[arg(long, value_name = "N", default_value_t = crate::plan::DEFAULT_POOL_SIZE,
          value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub(crate) connections: u32,

    /// Seed of the data and of every worker's key choice.
    #[arg(long, default_value_t = 0x5EED)]
    pub(crate) seed: u64,

    /// Run the fixed single-task workload of the instruction-count guard on this
    /// configuration and print what it ran as JSON (see `bench/PROFILE.md`; meant to run
    /// under `bench/callgrind/check`).
    #[arg(long, value_name = "CONFIG")]
    pub(crate) callgrind_workload: Option<String>,

    /// Internal: run one measurement and print its result as JSON.
    #[arg(long, hide = true, num_args = 2, value_names = ["CONFIG", "WORKLOAD"])]
    pub(crate) child: Option<Vec<String>>,

    /// Internal: concurrency of the child's measurement.
    #[arg(long, hide = true, default_value_t = 1)]
    pub(crate) concurrency: u32,

    /// Internal: the preloaded database the child copies.
    #[arg(long, hide = true)]
    pub(crate) template: Option<PathBuf>,

    /// Internal: a preloaded PostgreSQL or MySQL table the child uses as it is and
    /// leaves in place, instead of preloading and dropping a table of its own.
    #[arg(long, hide = true)]
    pub(crate) table: Option<String>,
}

impl Cli {
    /// The measured window per measurement.
    pub(crate) fn measure(&self) -> Duration {
        let default = if self.quick {
            0.5
        } else if self.sweep {
            1.0
        } else {
            3.0
        };
        seconds(self.duration.unwrap_or(default))
    }

    /// The warm-up per measurement.
    pub(crate) fn warmup(&self) -> Duration {
        self.warmup.map_or_else(|| self.measure() / 10, seconds)
    }

    /// Repetitions per measurement.
    pub(crate) fn reps(&self) -> u32 {
        self.reps.unwrap_or(if self.quick { 1 } else { 3 }).max(1)
    }

    /// Concurrency levels per measurement.
    pub(crate) fn tasks(&self) -> Vec<u32> {
        match (self.tasks_given.is_empty(), self.sweep) {
            (false, _) => self.tasks_given.clone(),
            (true, true) => crate::plan::SWEEP_TASKS.to_vec(),
            (true, false) => crate::plan::CONCURRENCY.to_vec(),
        }
    }
}

/// Seconds as a duration; negative or non-finite values become zero.
fn seconds(s: f64) -> Duration {
    Duration::try_from_secs_f64(s).unwrap_or(Duration::ZERO)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quick_shortens_everything_and_flags_override() {
        let quick = Cli::parse_from(["bench", "--quick"]);
        assert_eq!(quick.measure(), Duration::from_millis(500));
        assert_eq!(quick.warmup(), Duration::from_millis(50));
        assert_eq!(quick.reps(), 1);
        let full = Cli::parse_from(["bench"]);
        assert_eq!(full.measure(), Duration::from_secs(3));
        assert_eq!(full.reps(), 3);
        assert_eq!(full.tasks(), [1, 16]);
        let load = Cli::parse_from(["bench", "--tasks", "16,256"]);
        assert_eq!(load.tasks(), [16, 256]);
        let sweep = Cli::parse_from(["bench", "--sweep"]);
        assert_eq!(sweep.measure(), Duration::from_secs(1));
        assert_eq!(sweep.reps(), 3);
        assert_eq!(sweep.tasks(), [16]);
        assert_eq!(sweep.sweep_keys, [100_000, 1_000_000, 10_000_000]);
        assert_eq!(sweep.sweep_pools, [1, 2, 4, 8, 16, 32]);
        let narrow = Cli::parse_from(["bench", "--sweep", "--sweep-keys", "1000", "--tasks", "4"]);
        assert_eq!((narrow.tasks(), narrow.sweep_keys), (vec![4], vec![1000]));
        let custom = Cli::parse_from(["bench", "--duration", "1", "--warmup", "0", "--reps", "0"]);
        assert_eq!(custom.measure(), Duration::from_secs(1));
        assert_eq!(custom.warmup(), Duration::ZERO);
        assert_eq!(custom.reps(), 1);
        let bad = Cli::parse_from(["bench", "--duration=-1"]);
        assert_eq!(bad.measure(), Duration::ZERO);
    }

    #[test]
    fn child_mode_takes_config_and_workload() {
        let cli = Cli::parse_from([
            "bench",
            "--child",
            "sqlx",
            "put",
            "--concurrency",
            "16",
            "--template",
            "/t.db",
        ]);
        assert_eq!(
            cli.child.as_deref(),
            Some(&["sqlx".to_owned(), "put".to_owned()][..])
        );
        assert_eq!(cli.concurrency, 16);
    }
}
