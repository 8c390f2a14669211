//! Waiting for a lone statement's answer without going to sleep.
//!
//! Every SQLite statement is a hand-off to its connection's worker thread and back. An
//! operation alone in the store otherwise leaves its runtime thread with nothing to do
//! while the worker runs: the thread parks, its core idles, and waking it for the answer
//! (on a virtual machine, waking the idle core) costs about as much as the statement.
//! [`spin`] keeps polling the statement for a short while instead, so the answer is
//! picked up the moment it arrives. Between polls it yields the core to any thread
//! waiting for it (the worker may be one) and the runtime to its other tasks; an
//! operation that is not alone in the store never spins. Statements that stream many
//! rows (scans longer than [`PACKED_ROWS`](super::packed::PACKED_ROWS)) are not spun:
//! the worker sends them one at a time, and a caller polling for each slows the worker
//! down (a 100-row scan streamed ran at 0.8x). Shorter scans come as one packed row.

use std::future::{Future, poll_fn};
use std::pin::pin;
use std::task::Poll;
use std::time::{Duration, Instant};

/// The longest an answer is polled for before the operation waits to be woken, well
/// beyond a point read's round trip to the worker thread.
const SPIN: Duration = Duration::from_micros(200);

/// Runs `statement`, polling it again at once (after the runtime's other tasks) rather
/// than sleeping until woken, for up to [`SPIN`] once it first waits; with `alone`
/// false it simply awaits it.
pub(crate) async fn spin<F: Future>(alone: bool, statement: F) -> F::Output {
    let mut statement = pin!(statement);
    let mut until = None;
    poll_fn(|cx| match statement.as_mut().poll(cx) {
        Poll::Ready(output) => Poll::Ready(output),
        Poll::Pending => {
            if alone {
                let now = Instant::now();
                if now < *until.get_or_insert(now + SPIN) {
                    // Should the worker thread be waiting for this very core, it runs.
                    std::thread::yield_now();
                    cx.waker().wake_by_ref();
                }
            }
            Poll::Pending
        }
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn answers_what_the_statement_answers_alone_or_not() {
        let (sender, receiver) = tokio::sync::oneshot::channel();
        let answer = tokio::spawn(spin(true, receiver));
        sender.send(7).unwrap();
        assert_eq!(answer.await.unwrap(), Ok(7));
        let (sender, receiver) = tokio::sync::oneshot::channel();
        let answer = tokio::spawn(spin(false, receiver));
        sender.send(8).unwrap();
        assert_eq!(answer.await.unwrap(), Ok(8));
    }

    #[tokio::test]
    async fn stops_spinning_and_waits_to_be_woken() {
        // An answer that comes long after the spin ends still arrives.
        let (sender, receiver) = tokio::sync::oneshot::channel();
        let answer = tokio::spawn(spin(true, receiver));
        tokio::time::sleep(SPIN * 10).await;
        sender.send(9).unwrap();
        assert_eq!(answer.await.unwrap(), Ok(9));
    }
}
