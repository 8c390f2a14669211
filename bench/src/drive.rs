//! The measuring loop: workers issue operations back to back through a warm-up and then
//! a fixed measured window; only operations that start inside the window count.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::ops::{Op, OpGen, OpResult};
use crate::outcome::Tally;

/// The phases of one measurement.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Window {
    /// Run, unrecorded, for this long first (pools fill, statements get prepared).
    pub(crate) warmup: Duration,
    /// Then record for this long.
    pub(crate) measure: Duration,
}

/// The merged tallies and the measured window's real length.
#[derive(Debug)]
pub(crate) struct Measured {
    /// Every worker's counts, merged.
    pub(crate) tally: Tally,
    /// From the end of warm-up until the last recorded operation finished (at least
    /// the nominal window).
    pub(crate) seconds: f64,
}

/// Something an async worker can run operations against.
pub(crate) trait Target: Send + Sync + 'static {
    /// Runs one operation.
    fn run(&self, op: Op) -> impl Future<Output = OpResult> + Send;
}

/// A connection a thread owns and runs operations on synchronously.
pub(crate) trait SyncTarget: Send {
    /// Runs one operation.
    fn run(&mut self, op: Op) -> OpResult;
}

/// Timestamps of one measurement, shared by every worker.
#[derive(Debug, Clone, Copy)]
struct Deadlines {
    record_from: Instant,
    end: Instant,
}

impl Deadlines {
    fn starting_now(window: Window) -> Self {
        let record_from = Instant::now() + window.warmup;
        Self {
            record_from,
            end: record_from + window.measure,
        }
    }

    fn finish(self, tallies: impl IntoIterator<Item = Tally>) -> Measured {
        let mut tally = Tally::default();
        for t in tallies {
            tally.merge(&t);
        }
        let until = tally.last_finish.map_or(self.end, |t| t.max(self.end));
        Measured {
            tally,
            seconds: (until - self.record_from).as_secs_f64(),
        }
    }
}

/// Runs one tokio task per generator against `target` and measures them.
pub(crate) async fn drive_tasks<T: Target>(
    target: Arc<T>,
    generators: Vec<OpGen>,
    window: Window,
) -> Measured {
    let deadlines = Deadlines::starting_now(window);
    let tasks: Vec<_> = generators
        .into_iter()
        .map(|mut generator| {
            let target = target.clone();
            tokio::spawn(async move {
                let mut tally = Tally::default();
                loop {
                    let started = Instant::now();
                    if started >= deadlines.end {
                        break tally;
                    }
                    let result = target.run(generator.next_op()).await;
                    let finished = Instant::now();
                    if started >= deadlines.record_from {
                        tally.record(result, finished - started, finished);
                    }
                }
            })
        })
        .collect();
    let mut tallies = Vec::with_capacity(tasks.len());
    for task in tasks {
        match task.await {
            Ok(tally) => tallies.push(tally),
            Err(_) => {
                let mut failed = Tally::default();
                failed.errors.insert("worker_panicked", 1);
                tallies.push(failed);
            }
        }
    }
    deadlines.finish(tallies)
}

/// Runs one OS thread per (connection, generator) pair and measures them.
pub(crate) fn drive_threads<C: SyncTarget>(workers: Vec<(C, OpGen)>, window: Window) -> Measured {
    let deadlines = Deadlines::starting_now(window);
    let tallies = std::thread::scope(|scope| {
        let handles: Vec<_> = workers
            .into_iter()
            .map(|(mut conn, mut generator)| {
                scope.spawn(move || {
                    let mut tally = Tally::default();
                    loop {
                        let started = Instant::now();
                        if started >= deadlines.end {
                            break tally;
                        }
                        let result = conn.run(generator.next_op());
                        let finished = Instant::now();
                        if started >= deadlines.record_from {
                            tally.record(result, finished - started, finished);
                        }
                    }
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join().unwrap_or_else(|_| {
                    let mut failed = Tally::default();
                    failed.errors.insert("worker_panicked", 1);
                    failed
                })
            })
            .collect::<Vec<_>>()
    });
    deadlines.finish(tallies)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::Workload;

    /// Sleeps 1 ms per operation and fails every tenth.
    #[derive(Debug, Default)]
    struct Sleepy {
        calls: std::sync::atomic::AtomicU64,
    }

    impl Target for Sleepy {
        async fn run(&self, _op: Op) -> OpResult {
            let n = self
                .calls
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            tokio::time::sleep(Duration::from_millis(1)).await;
            if n % 10 == 9 { Err("busy") } else { Ok(0) }
        }
    }

    impl SyncTarget for Sleepy {
        fn run(&mut self, _op: Op) -> OpResult {
            std::thread::sleep(Duration::from_millis(1));
            Ok(1)
        }
    }

    const WINDOW: Window = Window {
        warmup: Duration::from_millis(50),
        measure: Duration::from_millis(300),
    };

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn tasks_are_measured_only_inside_the_window() {
        let target = Arc::new(Sleepy::default());
        let generators = OpGen::for_workers(Workload::PointRead, 100, 1, 4);
        let started = Instant::now();
        let measured = drive_tasks(target.clone(), generators, WINDOW).await;
        assert!(started.elapsed() >= WINDOW.warmup + WINDOW.measure);
        let recorded = measured.tally.ops() + measured.tally.error_count();
        let issued = target.calls.load(std::sync::atomic::Ordering::Relaxed);
        // Four tasks at ~1 ms each for 300 ms: at most 1200 recorded (sleep never
        // undershoots), and the warm-up's operations are not among them.
        assert!(recorded > 100 && recorded <= 1_200, "{recorded}");
        assert!(issued > recorded, "{issued} {recorded}");
        assert!(measured.tally.errors["busy"] > 0);
        assert!(
            measured.seconds >= 0.3 && measured.seconds < 1.5,
            "{}",
            measured.seconds
        );
        assert!(measured.tally.latencies.quantile(0.5) >= Duration::from_millis(1));
    }

    #[test]
    fn threads_are_measured_and_retries_counted() {
        let workers = OpGen::for_workers(Workload::PointRead, 100, 1, 2)
            .into_iter()
            .map(|g| (Sleepy::default(), g))
            .collect();
        let measured = drive_threads(workers, WINDOW);
        let ops = measured.tally.ops();
        assert!(ops > 50 && ops <= 600, "{ops}");
        assert_eq!(measured.tally.cas_retries, ops);
        assert_eq!(measured.tally.error_count(), 0);
    }
}
