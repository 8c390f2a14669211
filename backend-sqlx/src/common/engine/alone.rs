//! Waiting for a lone operation's answers from the server without going to sleep.
//!
//! Once a statement is sent, an operation alone in the store leaves its runtime thread
//! with nothing to do: the thread parks in the runtime's I/O driver, its core idles,
//! and waking it when the answer arrives (on a virtual machine, waking the idle core)
//! costs more than a loopback round trip itself: a MariaDB `SELECT 1` took 76 us at the
//! median that way and 14 us polled. [`spin`] keeps a lone operation polled instead,
//! for up to [`SPIN`]: between polls it yields to the runtime, which then asks the
//! I/O driver for ready sockets without sleeping and runs any other task first, so an
//! answer is picked up as it arrives. An operation that is not alone never spins: the
//! others keep the thread busy, and their answers wake it. (SQLite statements run on a
//! worker thread instead, and the SQLite engine polls its answer in
//! `sqlite::spin`, yielding the core to that thread.)

use std::future::{Future, poll_fn};
use std::pin::pin;
use std::task::Poll;
use std::time::{Duration, Instant};

use storage_api::Result;

use super::Engine;
use super::shared::Shared;

/// The longest a lone operation is polled before it waits to be woken: several round
/// trips and a commit's flush to disk.
const SPIN: Duration = Duration::from_millis(1);

impl<E: Engine> Shared<E> {
    /// Admits one operation (or fails with `Closed`) and runs `work`, polling it
    /// without sleeping while it is alone in the store ([`spin`]).
    pub(crate) async fn admitted<T>(&self, work: impl Future<Output = Result<T>>) -> Result<T> {
        let _work = self.enter()?;
        spin(self.gate.lifecycle.in_flight() == 1, work).await
    }

    /// Whether no operation is in flight, for work that admits itself.
    pub(crate) fn idle(&self) -> bool {
        self.gate.lifecycle.in_flight() == 0
    }
}

/// Runs `work`; with `alone`, polls it again after every other ready task and a look
/// at the sockets, rather than sleeping until woken, for up to [`SPIN`].
pub(crate) async fn spin<F: Future>(alone: bool, work: F) -> F::Output {
    let mut work = pin!(work);
    if !alone {
        return work.await;
    }
    let until = Instant::now() + SPIN;
    loop {
        if let Poll::Ready(output) = poll_fn(|cx| Poll::Ready(work.as_mut().poll(cx))).await {
            return output;
        }
        if Instant::now() >= until {
            return work.await;
        }
        tokio::task::yield_now().await;
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering::SeqCst};

    use super::*;

    #[tokio::test]
    async fn answers_what_the_work_answers_alone_or_not() {
        for alone in [true, false] {
            let (sender, receiver) = tokio::sync::oneshot::channel();
            let answer = tokio::spawn(spin(alone, receiver));
            sender.send(7).unwrap();
            assert_eq!(answer.await.unwrap(), Ok(7));
        }
    }

    #[tokio::test]
    async fn stops_polling_and_waits_to_be_woken() {
        // An answer that comes long after the spin ends still arrives.
        let (sender, receiver) = tokio::sync::oneshot::channel();
        let answer = tokio::spawn(spin(true, receiver));
        tokio::time::sleep(SPIN * 10).await;
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
        assert_eq!(spin(true, work).await, 1);
        finisher.await.unwrap();
    }
}
