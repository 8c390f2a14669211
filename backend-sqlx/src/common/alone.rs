//! Waiting for a lone operation's answers without going to sleep.
//!
//! An operation waits for answers from elsewhere: a SQLite connection's worker thread,
//! or a server over a socket. Alone in the store, it leaves its runtime thread with
//! nothing to do meanwhile: the thread parks, its core idles, and waking it when the
//! answer arrives (on a virtual machine, waking the idle core) costs as much as the
//! statement itself, or more than a loopback round trip (a MariaDB `SELECT 1` health
//! check took 76 us at the median that way and 14 us polled; a SQLite point read alone
//! ran at 26k/s parked and 50-60k/s polled, on 2 shared cores). [`spin`] keeps a lone
//! operation polled instead, for a while: between polls it yields the core to any thread
//! waiting for it (SQLite's worker may be one), then yields to the runtime, which runs
//! its other ready tasks and asks the I/O driver for ready sockets without sleeping, so
//! an answer is picked up as it arrives. An operation that is not alone never spins: the
//! others keep the thread busy, and their answers wake it. The price is CPU: up to one
//! core busy while a lone operation waits.

use std::future::{Future, poll_fn};
use std::pin::pin;
use std::task::Poll;
use std::time::{Duration, Instant};

/// Runs `work`; with `alone`, polls it again after yielding (see the module docs)
/// rather than sleeping until woken, for up to `limit` once it first waits.
pub(crate) async fn spin<F: Future>(alone: bool, limit: Duration, work: F) -> F::Output {
    let mut work = pin!(work);
    if !alone {
        return work.await;
    }
    let mut until = None;
    loop {
        if let Poll::Ready(output) = poll_fn(|cx| Poll::Ready(work.as_mut().poll(cx))).await {
            return output;
        }
        let now = Instant::now();
        if now >= *until.get_or_insert(now + limit) {
            return work.await;
        }
        std::thread::yield_now();
        tokio::task::yield_now().await;
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering::SeqCst};

    use super::*;

    const LIMIT: Duration = Duration::from_micros(200);

    #[tokio::test]
    async fn answers_what_the_work_answers_alone_or_not() {
        for alone in [true, false] {
            let (sender, receiver) = tokio::sync::oneshot::channel();
            let answer = tokio::spawn(spin(alone, LIMIT, receiver));
            sender.send(7).unwrap();
            assert_eq!(answer.await.unwrap(), Ok(7));
        }
    }

    #[tokio::test]
    async fn stops_polling_and_waits_to_be_woken() {
        // An answer that comes long after the spin ends still arrives.
        let (sender, receiver) = tokio::sync::oneshot::channel();
        let answer = tokio::spawn(spin(true, LIMIT, receiver));
        tokio::time::sleep(LIMIT * 10).await;
        sender.send(9).unwrap();
        assert_eq!(answer.await.unwrap(), Ok(9));
    }

    #[tokio::test(flavor = "current_thread")]
    async fn polls_again_unwoken_while_other_tasks_run() {
        // The work never wakes its task: only polling it again finds it done, and
        // only another task on this one thread, run between the polls, makes it done.
        let done = Arc::new(AtomicBool::new(false));
        let finisher = tokio::spawn({
            let done = Arc::clone(&done);
            async move { done.store(true, SeqCst) }
        });
        let work = poll_fn(|_| {
            if done.load(SeqCst) {
                Poll::Ready(1)
            } else {
                Poll::Pending
            }
        });
        assert_eq!(spin(true, LIMIT, work).await, 1);
        finisher.await.unwrap();
    }
}
