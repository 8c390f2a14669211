//! Health checks asked for at the same time share their round trips: a check runs in
//! rounds, one at a time, and every caller gets the answer of a round that started
//! after it asked. A caller that arrives while a round runs waits for the next one,
//! which it shares with every caller that arrived meanwhile. Sixteen callers asking
//! together cost the cluster two rounds of status requests, not sixteen. A caller
//! content with a recent answer ([`Rounds::join_recent`]) takes the last round's
//! when that round started recently enough.

use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tokio::sync::watch;
use tokio::time::Instant;

/// Where one round's answer arrives.
type Answer<T> = watch::Sender<Option<T>>;

/// Runs a check in shared rounds (see the module docs).
#[derive(Debug)]
pub(crate) struct Rounds<T> {
    state: Mutex<State<T>>,
}

#[derive(Debug)]
struct State<T> {
    /// A round runs (in its own task).
    running: bool,
    /// The round after it, with the callers waiting for it.
    queued: Option<Answer<T>>,
    /// The last round's answer, and when that round started.
    last: Option<(Instant, T)>,
}

impl<T> Default for Rounds<T> {
    fn default() -> Self {
        Self {
            state: Mutex::new(State {
                running: false,
                queued: None,
                last: None,
            }),
        }
    }
}

impl<T: Clone + Send + Sync + 'static> Rounds<T> {
    /// The answer of a round of `check` that starts after this call. The rounds run
    /// in a task of their own, so a caller that gives up waiting cancels nobody's
    /// check; should that task end without an answer (its runtime shutting down),
    /// the caller runs `check` itself.
    pub(crate) async fn join<F, Fut>(self: &Arc<Self>, check: F) -> T
    where
        F: Fn() -> Fut + Clone + Send + 'static,
        Fut: Future<Output = T> + Send + 'static,
    {
        let mut answer = {
            let mut state = self.lock();
            if state.running {
                match &state.queued {
                    Some(round) => round.subscribe(),
                    None => {
                        let (round, answer) = watch::channel(None);
                        state.queued = Some(round);
                        answer
                    }
                }
            } else {
                state.running = true;
                let (round, answer) = watch::channel(None);
                tokio::spawn(Arc::clone(self).run(round, check.clone()));
                answer
            }
        };
        if let Ok(found) = answer.wait_for(Option::is_some).await
            && let Some(found) = found.clone()
        {
            return found;
        }
        check().await
    }

    /// The last round's answer if that round started at most `max_age` before this
    /// call, else the answer of a round that starts after it (see [`join`](Self::join)).
    pub(crate) async fn join_recent<F, Fut>(self: &Arc<Self>, max_age: Duration, check: F) -> T
    where
        F: Fn() -> Fut + Clone + Send + 'static,
        Fut: Future<Output = T> + Send + 'static,
    {
        let asked = Instant::now();
        if let Some((started, answer)) = &self.lock().last
            && asked.saturating_duration_since(*started) <= max_age
        {
            return answer.clone();
        }
        self.join(check).await
    }

    /// Runs rounds back to back while callers queue for the next one.
    async fn run<F, Fut>(self: Arc<Self>, mut round: Answer<T>, check: F)
    where
        F: Fn() -> Fut,
        Fut: Future<Output = T>,
    {
        let mut reset = Reset(Some(&self));
        loop {
            let started = Instant::now();
            let found = check().await;
            round.send_replace(Some(found.clone()));
            let mut state = self.lock();
            state.last = Some((started, found));
            match state.queued.take() {
                Some(next) => round = next,
                None => {
                    state.running = false;
                    reset.0 = None;
                    return;
                }
            }
        }
    }
}

impl<T> Rounds<T> {
    fn lock(&self) -> MutexGuard<'_, State<T>> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Resets the rounds if their task ends without finishing (dropped by a runtime
/// shutting down): nobody runs any more, and the queued callers, their answer gone,
/// run the check themselves.
struct Reset<'a, T>(Option<&'a Rounds<T>>);

impl<T> Drop for Reset<'_, T> {
    fn drop(&mut self) {
        if let Some(rounds) = self.0 {
            let mut state = rounds.lock();
            state.running = false;
            state.queued = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
    use std::time::Duration;

    use tokio::time::Instant;

    use super::*;

    /// A check that takes `PAUSE`, numbering its rounds from 1 and saying when each
    /// started.
    fn counted(rounds_run: &Arc<AtomicUsize>) -> impl Fn() -> CheckFuture + Clone + Send + 'static {
        let rounds_run = Arc::clone(rounds_run);
        move || {
            let rounds_run = Arc::clone(&rounds_run);
            Box::pin(async move {
                let started = Instant::now();
                let round = rounds_run.fetch_add(1, SeqCst) + 1;
                tokio::time::sleep(PAUSE).await;
                (round, started)
            })
        }
    }

    type CheckFuture = std::pin::Pin<Box<dyn Future<Output = (usize, Instant)> + Send>>;

    const PAUSE: Duration = Duration::from_millis(100);

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn callers_arriving_during_a_round_share_the_next_one() {
        let rounds = Arc::new(Rounds::default());
        let rounds_run = Arc::new(AtomicUsize::new(0));
        let check = counted(&rounds_run);
        let first = {
            let (rounds, check) = (Arc::clone(&rounds), check.clone());
            tokio::spawn(async move { rounds.join(check).await })
        };
        tokio::time::sleep(PAUSE / 4).await;
        let asked = Instant::now();
        let later: Vec<_> = (0..15)
            .map(|_| {
                let (rounds, check) = (Arc::clone(&rounds), check.clone());
                tokio::spawn(async move { rounds.join(check).await })
            })
            .collect();
        assert_eq!(first.await.unwrap().0, 1);
        for caller in later {
            let (round, started) = caller.await.unwrap();
            assert_eq!(
                round, 2,
                "a caller that asked during round 1 shares round 2"
            );
            assert!(started >= asked, "round 2 started before its callers asked");
        }
        assert_eq!(rounds_run.load(SeqCst), 2);

        // Idle again: the next caller starts a round of its own at once.
        let asked = Instant::now();
        let (round, started) = rounds.join(check).await;
        assert_eq!(round, 3);
        assert!(
            started >= asked && started - asked < PAUSE,
            "{:?}",
            started - asked
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_recent_answer_is_reused_and_an_older_one_replaced() {
        let rounds = Arc::new(Rounds::default());
        let rounds_run = Arc::new(AtomicUsize::new(0));
        let check = counted(&rounds_run);
        let max_age = PAUSE * 3;
        // Nothing answered yet: a round of its own.
        assert_eq!(rounds.join_recent(max_age, check.clone()).await.0, 1);
        // That round started one pause ago: recent enough.
        assert_eq!(rounds.join_recent(max_age, check.clone()).await.0, 1);
        tokio::time::sleep(max_age).await;
        // Now too old: a new round, started after the caller asked.
        let asked = Instant::now();
        let (round, started) = rounds.join_recent(max_age, check).await;
        assert_eq!(round, 2);
        assert!(
            started >= asked,
            "the new round started before its caller asked"
        );
        assert_eq!(rounds_run.load(SeqCst), 2);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_caller_that_stops_waiting_cancels_nobody_else() {
        let rounds = Arc::new(Rounds::default());
        let rounds_run = Arc::new(AtomicUsize::new(0));
        let check = counted(&rounds_run);
        let impatient = tokio::time::timeout(PAUSE / 10, rounds.join(check.clone())).await;
        assert!(impatient.is_err(), "the round takes {PAUSE:?}");
        // The round it started goes on and answers the caller queued behind it with
        // the next one.
        let (round, _) = rounds.join(check.clone()).await;
        assert_eq!(round, 2);
        assert_eq!(rounds.join(check).await.0, 3);
    }
}
