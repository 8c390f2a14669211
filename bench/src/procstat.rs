//! Process and machine statistics from `/proc`: a sampler of the thread count's peak,
//! the peak resident set size (`VmHWM`), the load average, and how much CPU other
//! processes used while a measurement ran.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

/// How often the sampler looks at the thread count.
const SAMPLE_EVERY: Duration = Duration::from_millis(10);

/// A background thread recording the highest `Threads:` count of this process.
#[derive(Debug)]
pub(crate) struct ThreadSampler {
    stop: Arc<AtomicBool>,
    peak: Arc<AtomicU64>,
    handle: Option<JoinHandle<()>>,
}

impl ThreadSampler {
    /// Starts sampling.
    pub(crate) fn start() -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let peak = Arc::new(AtomicU64::new(0));
        let handle = {
            let (stop, peak) = (stop.clone(), peak.clone());
            std::thread::Builder::new()
                .name("thread-sampler".into())
                .spawn(move || {
                    while !stop.load(Ordering::Relaxed) {
                        if let Some(threads) = status_field("Threads:") {
                            peak.fetch_max(threads, Ordering::Relaxed);
                        }
                        std::thread::sleep(SAMPLE_EVERY);
                    }
                })
                .ok()
        };
        Self { stop, peak, handle }
    }

    /// Stops sampling; the peak thread count, not counting the sampler itself
    /// (`None` where `/proc` is unavailable).
    pub(crate) fn finish(mut self) -> Option<u64> {
        self.stop.store(true, Ordering::Relaxed);
        let handle = self.handle.take()?;
        handle.join().ok()?;
        let peak = self.peak.load(Ordering::Relaxed);
        (peak > 0).then(|| peak - 1)
    }
}

/// The process's peak resident set size in KiB (`VmHWM`).
pub(crate) fn peak_rss_kib() -> Option<u64> {
    status_field("VmHWM:")
}

/// The 1, 5 and 15 minute load averages from `/proc/loadavg`, as printed there.
pub(crate) fn load_average() -> Option<String> {
    let text = std::fs::read_to_string("/proc/loadavg").ok()?;
    let fields: Vec<&str> = text.split_whitespace().take(3).collect();
    (fields.len() == 3).then(|| fields.join(" "))
}

/// The 1 minute load average.
pub(crate) fn load_1m() -> Option<f64> {
    load_average()?.split_whitespace().next()?.parse().ok()
}

/// CPU time counters at one moment, in clock ticks: the whole machine's busy time, its
/// total time over all cores, and this process's own time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct CpuTimes {
    busy: u64,
    total: u64,
    cores: u64,
    own: u64,
}

impl CpuTimes {
    /// The counters now (`None` where `/proc` is unavailable).
    pub(crate) fn now() -> Option<Self> {
        let stat = std::fs::read_to_string("/proc/stat").ok()?;
        let own = std::fs::read_to_string("/proc/self/stat").ok()?;
        parse_cpu_times(&stat, &own)
    }

    /// How many cores' worth of CPU other processes used between `self` and `later`
    /// (0 on a quiet machine; 1.0 is one core kept busy by something else).
    pub(crate) fn others_cores(&self, later: &CpuTimes) -> f64 {
        let total = later.total.saturating_sub(self.total);
        if total == 0 || self.cores == 0 {
            return 0.0;
        }
        let busy = later.busy.saturating_sub(self.busy);
        let own = later.own.saturating_sub(self.own);
        let wall_ticks = total as f64 / self.cores as f64;
        busy.saturating_sub(own) as f64 / wall_ticks
    }
}

/// Machine counters from `/proc/stat` and this process's from `/proc/self/stat`.
fn parse_cpu_times(stat: &str, own_stat: &str) -> Option<CpuTimes> {
    let mut lines = stat.lines();
    let all: Vec<u64> = lines
        .next()?
        .strip_prefix("cpu ")?
        .split_whitespace()
        .filter_map(|n| n.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal: idle and iowait are not busy.
    if all.len() < 8 {
        return None;
    }
    let busy = all[0] + all[1] + all[2] + all[5] + all[6] + all[7];
    let total = busy + all[3] + all[4];
    let cores = lines.filter(|l| l.starts_with("cpu")).count() as u64;
    // Fields after the parenthesised command name: state is the first, utime the
    // 12th and stime the 13th.
    let after_name = &own_stat[own_stat.rfind(')')? + 1..];
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let own = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    Some(CpuTimes {
        busy,
        total,
        cores,
        own,
    })
}

/// The first number after `field` in `/proc/self/status`.
fn status_field(field: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    parse_field(&status, field)
}

fn parse_field(status: &str, field: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with(field))?;
    line[field.len()..].split_whitespace().next()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_status_fields() {
        let status = "Name:\tbench\nVmHWM:\t   12345 kB\nThreads:\t7\n";
        assert_eq!(parse_field(status, "Threads:"), Some(7));
        assert_eq!(parse_field(status, "VmHWM:"), Some(12345));
        assert_eq!(parse_field(status, "VmRSS:"), None);
    }

    #[test]
    fn parses_cpu_times_and_attributes_busy_time() {
        let stat = "cpu  100 0 50 800 10 0 5 5 0 0\ncpu0 50 0 25 400 5 0 3 2 0 0\n\
                    cpu1 50 0 25 400 5 0 2 3 0 0\nintr 1 2 3\n";
        let own = "42 (my (odd) name) S 1 42 42 0 -1 4194560 100 0 0 0 30 10 0 0 20 0 3";
        let before = parse_cpu_times(stat, own).unwrap();
        assert_eq!(
            before,
            CpuTimes {
                busy: 160,
                total: 970,
                cores: 2,
                own: 40
            }
        );
        // 200 ticks of wall time on 2 cores (400 total); 300 busy, 100 of them ours:
        // others kept one core busy.
        let later = CpuTimes {
            busy: 460,
            total: 1370,
            cores: 2,
            own: 140,
        };
        assert!((before.others_cores(&later) - 1.0).abs() < 1e-9);
        assert_eq!(before.others_cores(&before), 0.0);
        assert_eq!(parse_cpu_times("intr 1", own), None);
        let now = CpuTimes::now().unwrap();
        assert!(now.cores >= 1);
    }

    #[test]
    fn sampler_sees_extra_threads() {
        let sampler = ThreadSampler::start();
        let stop = Arc::new(AtomicBool::new(false));
        let workers: Vec<_> = (0..4)
            .map(|_| {
                let stop = stop.clone();
                std::thread::spawn(move || {
                    while !stop.load(Ordering::Relaxed) {
                        std::thread::sleep(Duration::from_millis(5));
                    }
                })
            })
            .collect();
        std::thread::sleep(SAMPLE_EVERY * 10);
        stop.store(true, Ordering::Relaxed);
        for w in workers {
            w.join().unwrap();
        }
        // The test thread plus four workers, whatever else the harness runs.
        let peak = sampler.finish().unwrap();
        assert!(peak >= 5, "{peak}");
        assert!(peak_rss_kib().unwrap() > 0);
        assert_eq!(load_average().unwrap().split_whitespace().count(), 3);
        assert!(load_1m().unwrap() >= 0.0);
    }
}
