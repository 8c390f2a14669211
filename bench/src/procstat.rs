//! Process statistics from `/proc/self/status`: a sampler of the thread count's peak,
//! and the peak resident set size (`VmHWM`).

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
