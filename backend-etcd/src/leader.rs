//! Which member leads the cluster, so that channels go to it. A follower passes every
//! write on to the leader and waits to apply it itself before it answers, and asks the
//! leader before every linearizable read: a request sent to a follower costs a round
//! trip between members that one sent to the leader does not (measured on three members
//! on two cores: 1.5-2x the requests a second on the leader alone).
//!
//! The leader is the member whose status names itself as leader: taken as soon as it
//! answers ([`Leader::found`]), and checked against the whole sweep of member statuses
//! when it ends ([`Leader::learn`]). Sweeps run when the store opens, every
//! [`FOLLOW_EVERY`] after, and for health checks. A stale answer costs speed, never
//! correctness: any member serves every request.

use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::time::Duration;

use tokio::sync::watch;

/// How often the store looks for the leader again (a status request to each member).
pub(crate) const FOLLOW_EVERY: Duration = Duration::from_secs(2);

/// No leader known.
const UNKNOWN: usize = usize::MAX;

/// The endpoint of the member that leads, as last seen.
#[derive(Debug)]
pub(crate) struct Leader {
    endpoint: AtomicUsize,
    /// Whether the leader answered or a sweep ended yet.
    told: watch::Sender<bool>,
}

impl Default for Leader {
    fn default() -> Self {
        Self {
            endpoint: AtomicUsize::new(UNKNOWN),
            told: watch::Sender::new(false),
        }
    }
}

impl Leader {
    /// The leader's endpoint, if the last sweep found one.
    pub(crate) fn endpoint(&self) -> Option<usize> {
        let endpoint = self.endpoint.load(SeqCst);
        (endpoint != UNKNOWN).then_some(endpoint)
    }

    /// The member at `endpoint` says it leads.
    pub(crate) fn found(&self, endpoint: usize) {
        self.endpoint.store(endpoint, SeqCst);
        self.told.send_replace(true);
    }

    /// Takes in a whole sweep: each endpoint's `(member id, leader id)`, `None` for a member
    /// that did not answer. The leader is the member naming itself; none (an election
    /// under way, the leader not answering) leaves it unknown.
    pub(crate) fn learn(&self, answers: impl IntoIterator<Item = Option<(u64, u64)>>) {
        let leader = answers
            .into_iter()
            .position(|answer| answer.is_some_and(|(member, leader)| leads(member, leader)))
            .unwrap_or(UNKNOWN);
        self.endpoint.store(leader, SeqCst);
        self.told.send_replace(true);
    }

    /// Waits, at most `limit`, until the leader has answered or a sweep has ended.
    pub(crate) async fn first_word(&self, limit: Duration) {
        let mut told = self.told.subscribe();
        let _ = tokio::time::timeout(limit, told.wait_for(|told| *told)).await;
    }
}

/// Whether a member whose status names `leader` as leader (0: none, during an election)
/// is it.
pub(crate) fn leads(member: u64, leader: u64) -> bool {
    leader != 0 && member == leader
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_leader_is_the_member_that_names_itself() {
        let leader = Leader::default();
        assert_eq!(leader.endpoint(), None);
        leader.learn([Some((7, 9)), None, Some((9, 9))]);
        assert_eq!(leader.endpoint(), Some(2));
        // A sweep finding no leader (an election, the leader silent) forgets it, and a
        // status without ids (0) names no leader.
        leader.learn([Some((7, 0)), Some((8, 0)), None]);
        assert_eq!(leader.endpoint(), None);
        leader.learn([Some((0, 0)), None, None]);
        assert_eq!(leader.endpoint(), None);
        leader.learn([Some((7, 7)), Some((8, 7)), Some((9, 7))]);
        assert_eq!(leader.endpoint(), Some(0));
    }

    #[test]
    fn a_leader_found_before_the_sweep_ends_is_taken_at_once() {
        let leader = Leader::default();
        leader.found(1);
        assert_eq!(leader.endpoint(), Some(1));
    }

    #[tokio::test]
    async fn the_first_word_is_waited_for_and_no_longer() {
        let leader = Leader::default();
        let started = std::time::Instant::now();
        leader.first_word(Duration::from_millis(50)).await;
        assert!(started.elapsed() >= Duration::from_millis(50));
        leader.found(0);
        let started = std::time::Instant::now();
        leader.first_word(Duration::from_secs(30)).await;
        assert!(started.elapsed() < Duration::from_secs(5));
    }
}
