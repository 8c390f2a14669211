//! Health: the member list over a pooled channel (the check's round trip, fresh each
//! time) and every member's status from a sweep of the cluster at most
//! [`SWEEP_MAX_AGE`] old, so the report names the members that answer, the leader, and
//! whether a quorum does, while a check costs the cluster one request, not one per
//! member.

use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use storage_api::{ErrorKind, HealthStatus, PoolHealth};

use crate::channel::Channel;
use crate::leader::{FOLLOW_EVERY, leads};
use crate::pool::{Pool, join_all};
use crate::rounds::Rounds;
use crate::timing::PROBE_TIMEOUT;

/// How long before a check the sweep of member statuses it reports may have started;
/// an older one is replaced by a new sweep, which the check waits for.
pub(crate) const SWEEP_MAX_AGE: Duration = Duration::from_secs(1);

/// One channel per member for health probes, outside the pool, and the sweeps of the
/// members' statuses.
#[derive(Debug, Default)]
pub(crate) struct Probes {
    channels: Mutex<Vec<Option<Channel>>>,
    /// Checks needing a new sweep at once share it; the last one serves the checks
    /// that follow within [`SWEEP_MAX_AGE`].
    sweeps: Arc<Rounds<Arc<[MemberStatus]>>>,
}

/// What one member said.
#[derive(Debug, Clone)]
struct MemberStatus {
    endpoint: String,
    answer: Option<(u64, u64, String, Vec<String>)>,
}

impl Probes {
    async fn channel(&self, pool: &Pool, endpoint: usize) -> Option<Channel> {
        {
            let mut channels = self.channels.lock().unwrap_or_else(|p| p.into_inner());
            channels.resize(pool.endpoints().len(), None);
            if let Some(channel) = &channels[endpoint] {
                return Some(channel.clone());
            }
        }
        let opened = Channel::open(
            endpoint,
            &pool.endpoints()[endpoint],
            pool.channel_settings(),
        )
        .await
        .ok()?;
        let mut channels = self.channels.lock().unwrap_or_else(|p| p.into_inner());
        channels[endpoint] = Some(opened.clone());
        Some(opened)
    }

    fn forget(&self, endpoint: usize) {
        let mut channels = self.channels.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(slot) = channels.get_mut(endpoint) {
            *slot = None;
        }
    }

    /// Drops every probe channel.
    pub(crate) fn clear(&self) {
        self.channels
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clear();
    }

    /// Every member's status, from a sweep that started at most [`SWEEP_MAX_AGE`]
    /// before this call. Each sweep tells the pool which member leads.
    async fn statuses(self: &Arc<Self>, pool: &Arc<Pool>) -> Arc<[MemberStatus]> {
        let (probes, pool) = (Arc::clone(self), Arc::clone(pool));
        let sweep = move || {
            let (probes, pool) = (Arc::clone(&probes), Arc::clone(&pool));
            async move {
                let members = (0..pool.endpoints().len()).map(|e| probes.status(&pool, e));
                let statuses: Arc<[MemberStatus]> = join_all(members).await.into();
                let ids = statuses
                    .iter()
                    .map(|s| s.answer.as_ref().map(|a| (a.0, a.1)));
                pool.leader().learn(ids);
                statuses
            }
        };
        self.sweeps.join_recent(SWEEP_MAX_AGE, sweep).await
    }

    /// Asks member `endpoint` for its id, leader, version and alarms.
    async fn status(&self, pool: &Pool, endpoint: usize) -> MemberStatus {
        let answer = async {
            let channel = self.channel(pool, endpoint).await?;
            let mut maintenance = channel.maintenance();
            match tokio::time::timeout(PROBE_TIMEOUT, maintenance.status()).await {
                Ok(Ok(status)) => {
                    let member = status.header().map_or(0, |h| h.member_id());
                    if leads(member, status.leader()) {
                        pool.leader().found(endpoint);
                    }
                    let (version, errors) = (status.version(), status.errors());
                    Some((member, status.leader(), version.to_owned(), errors.to_vec()))
                }
                _ => None,
            }
        }
        .await;
        if answer.is_none() {
            self.forget(endpoint);
        }
        MemberStatus {
            endpoint: pool.endpoints()[endpoint].clone(),
            answer,
        }
    }
}

/// Sweeps the members' statuses every [`FOLLOW_EVERY`] (sharing sweeps with health
/// checks), so the pool knows which member leads, until the pool closes or the store
/// is dropped.
pub(crate) async fn follow_leader(pool: Weak<Pool>, probes: Weak<Probes>) {
    loop {
        {
            let (Some(pool), Some(probes)) = (pool.upgrade(), probes.upgrade()) else {
                return;
            };
            if pool.is_closed() {
                return;
            }
            probes.statuses(&pool).await;
        }
        tokio::time::sleep(FOLLOW_EVERY).await;
    }
}

/// The store's health: `Saturated` when no slot frees up within the acquire timeout,
/// `Unreachable` without a quorum and leader (or with a space alarm), else `Healthy`,
/// the detail saying how many members answer ("degraded: 2/3 members answer").
pub(crate) async fn check(pool: &Arc<Pool>, probes: &Arc<Probes>) -> PoolHealth {
    if pool.is_closed() {
        return PoolHealth::closed();
    }
    let started = Instant::now();
    let mut lease = match pool.acquire().await {
        Ok(lease) => lease,
        Err(e) if e.kind() == ErrorKind::Closed => return PoolHealth::closed(),
        Err(e) if e.kind() == ErrorKind::Timeout => {
            return PoolHealth::new(
                HealthStatus::Saturated,
                started.elapsed(),
                Duration::ZERO,
                "no etcd channel became free within the acquire timeout",
            );
        }
        Err(e) => {
            return PoolHealth::new(
                HealthStatus::Unreachable,
                started.elapsed(),
                Duration::ZERO,
                format!("no etcd member could be reached: {e}"),
            );
        }
    };
    let acquire_time = started.elapsed();
    // The member list, with the statuses if a new sweep is due; the pooled channel
    // goes back as soon as the member list is in (the statuses go out on channels of
    // their own).
    let member_list = async move {
        let round_trip = Instant::now();
        let members = lease
            .request("member list", true, |channel| {
                let mut cluster = channel.cluster();
                async move { cluster.member_list().await }
            })
            .await;
        let query_time = round_trip.elapsed();
        drop(lease);
        (members, query_time)
    };
    let ((members, query_time), statuses) = tokio::join!(member_list, probes.statuses(pool));
    let members = match members {
        Ok(list) => list
            .members()
            .iter()
            .map(|m| (m.id(), m.name().to_owned()))
            .collect::<Vec<_>>(),
        Err(e) => {
            return PoolHealth::new(
                HealthStatus::Unreachable,
                acquire_time,
                query_time,
                format!("no etcd member answered: {e}"),
            );
        }
    };
    let report = describe(&members, &statuses);
    let mut health = PoolHealth::new(report.status, acquire_time, query_time, report.detail);
    if let Some(version) = report.version {
        health = health.with_server_version(version);
    }
    health
}

struct Report {
    status: HealthStatus,
    detail: String,
    version: Option<String>,
}

fn describe(members: &[(u64, String)], statuses: &[MemberStatus]) -> Report {
    let total = members.len().max(statuses.len());
    let answered: Vec<_> = statuses.iter().filter_map(|s| s.answer.as_ref()).collect();
    let name = |id: u64| {
        members
            .iter()
            .find(|(m, _)| *m == id)
            .map_or_else(|| format!("{id:x}"), |(_, n)| n.clone())
    };
    let leader = answered
        .iter()
        .map(|(_, leader, _, _)| *leader)
        .find(|l| *l != 0);
    let silent: Vec<&str> = statuses
        .iter()
        .filter(|s| s.answer.is_none())
        .map(|s| s.endpoint.as_str())
        .collect();
    let alarms: Vec<&String> = answered.iter().flat_map(|(_, _, _, e)| e.iter()).collect();
    let quorum = answered.len() * 2 > total;
    let mut detail = if answered.len() == total {
        format!("{}/{total} members answer", answered.len())
    } else if quorum {
        format!("degraded: {}/{total} members answer", answered.len())
    } else {
        format!("no quorum: {}/{total} members answer", answered.len())
    };
    match leader {
        Some(id) => detail.push_str(&format!(", leader {}", name(id))),
        None => detail.push_str(", no leader"),
    }
    if !silent.is_empty() {
        detail.push_str(&format!("; not answering: {}", silent.join(", ")));
    }
    let nospace = alarms.iter().any(|a| a.contains("NOSPACE"));
    if !alarms.is_empty() {
        let list: Vec<&str> = alarms.iter().map(|a| a.as_str()).collect();
        detail.push_str(&format!("; member errors: {}", list.join(", ")));
    }
    if nospace {
        detail.push_str(" (writes are refused: compact, defragment, then `etcdctl alarm disarm`)");
    }
    let status = if quorum && leader.is_some() && !nospace {
        HealthStatus::Healthy
    } else {
        HealthStatus::Unreachable
    };
    Report {
        status,
        detail,
        version: answered.first().map(|(_, _, v, _)| v.clone()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(endpoint: &str, answer: Option<(u64, u64)>) -> MemberStatus {
        MemberStatus {
            endpoint: endpoint.into(),
            answer: answer.map(|(id, leader)| (id, leader, "3.4.23".into(), Vec::new())),
        }
    }

    #[test]
    fn reports_degraded_and_lost_quorum() {
        let members = vec![(1, "m1".into()), (2, "m2".into()), (3, "m3".into())];
        let all = describe(
            &members,
            &[
                status("a", Some((1, 2))),
                status("b", Some((2, 2))),
                status("c", Some((3, 2))),
            ],
        );
        assert_eq!(all.status, HealthStatus::Healthy);
        assert_eq!(all.detail, "3/3 members answer, leader m2");
        let two = describe(
            &members,
            &[
                status("a", Some((1, 2))),
                status("b", Some((2, 2))),
                status("c", None),
            ],
        );
        assert_eq!(two.status, HealthStatus::Healthy);
        assert!(
            two.detail
                .starts_with("degraded: 2/3 members answer, leader m2"),
            "{}",
            two.detail
        );
        let one = describe(
            &members,
            &[
                status("a", Some((1, 0))),
                status("b", None),
                status("c", None),
            ],
        );
        assert_eq!(one.status, HealthStatus::Unreachable);
        assert!(one.detail.starts_with("no quorum: 1/3"), "{}", one.detail);
    }
}
