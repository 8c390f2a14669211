//! Leases that let the server clean up: entries with a TTL and tombstones are written
//! with a lease that lives at least as long as they must stay, so the server removes them
//! afterwards. Leases are shared: each lives a bucket longer than needed and serves every
//! write that needs about as long.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use storage_api::Result;

use crate::pool::Lease;

/// The longest lease etcd grants, in seconds.
const MAX_LEASE_TTL_SECS: u64 = 9_000_000_000;

/// One granted lease and the earliest the server can remove it.
#[derive(Debug, Clone, Copy)]
struct Granted {
    id: i64,
    lives_until: Instant,
}

/// The leases a store has granted, reused while they fit.
#[derive(Debug, Default)]
pub(crate) struct Leases {
    granted: Mutex<Vec<Granted>>,
}

/// How much longer than needed a lease may live: a tenth of the need, at least 10 s.
fn bucket(min_life: Duration) -> Duration {
    (min_life / 10).max(Duration::from_secs(10))
}

impl Leases {
    /// A lease the server keeps for at least `min_life` from now and at most about a
    /// tenth longer; `None` when `min_life` is beyond what etcd grants (the entry then
    /// stays until deleted or purged). Grants one when none fits.
    pub(crate) async fn lasting(
        &self,
        lease: &mut Lease,
        min_life: Duration,
    ) -> Result<Option<i64>> {
        let slack = bucket(min_life);
        let now = Instant::now();
        if let Some(found) = self.find(now + min_life, now + min_life + slack) {
            return Ok(Some(found));
        }
        let ttl = (min_life + slack).as_secs().saturating_add(1);
        if ttl > MAX_LEASE_TTL_SECS {
            return Ok(None);
        }
        // Measured from before the request: the server starts the lease later, so it
        // lives at least this long.
        let sent = Instant::now();
        let ttl_i64 = i64::try_from(ttl).unwrap_or(i64::MAX);
        let response = lease
            .request("granting a lease", true, |channel| {
                let mut leases = channel.lease();
                async move { leases.grant(ttl_i64, None).await }
            })
            .await?;
        let granted = Granted {
            id: response.id(),
            lives_until: sent + Duration::from_secs(ttl),
        };
        let mut all = self.granted.lock().unwrap_or_else(|p| p.into_inner());
        all.retain(|g| g.lives_until > sent);
        all.push(granted);
        Ok(Some(granted.id))
    }

    fn find(&self, at_least: Instant, at_most: Instant) -> Option<i64> {
        let all = self.granted.lock().unwrap_or_else(|p| p.into_inner());
        all.iter()
            .filter(|g| g.lives_until >= at_least && g.lives_until <= at_most)
            .map(|g| g.id)
            .next()
    }
}
