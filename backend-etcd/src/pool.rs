//! The pool: `db_pool_size` slots, each request or transaction holding one with its own
//! channel to a member; idle channels kept and retired like connections (idle timeout,
//! maximum lifetime, `db_min_idle` floor); members that failed avoided for a while so new
//! channels go to the others; the shared instruments and the close gate.

use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant};

use storage_api::backend::{Drain, InFlight, Lifecycle, PoolGauges, PoolInstruments};
use storage_api::{CloseReason, ConnectionValidation, ErrorKind, PoolMetrics, Result, StoreError};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::channel::Channel;
use crate::errors::{Failure, Fault};
use crate::leader::Leader;
use crate::settings::{ChannelSettings, PoolSettings};
use crate::timing::PROBE_TIMEOUT;

/// How long a member that failed is passed over when channels are opened.
const AVOID_FOR: Duration = Duration::from_secs(2);
/// How often the maintenance task retires and replenishes channels.
const MAINTENANCE_EVERY: Duration = Duration::from_millis(50);

/// The channels of one store.
#[derive(Debug)]
pub(crate) struct Pool {
    settings: PoolSettings,
    endpoints: Vec<String>,
    channel_settings: ChannelSettings,
    permits: Arc<Semaphore>,
    idle: Mutex<Vec<Channel>>,
    open: AtomicU32,
    instruments: Arc<PoolInstruments>,
    lifecycle: Arc<Lifecycle>,
    next_endpoint: AtomicUsize,
    avoid_until: Mutex<Vec<Option<Instant>>>,
    closed_connections: AtomicU64,
    shut_down: AtomicBool,
    /// The member new channels go to, and idle channels to it are taken first.
    leader: Leader,
}

impl Pool {
    /// A pool over `endpoints`; starts the maintenance task, which opens `db_min_idle`
    /// channels at once.
    pub(crate) fn new(
        settings: PoolSettings,
        endpoints: Vec<String>,
        channel_settings: ChannelSettings,
    ) -> Arc<Self> {
        let pool = Arc::new(Self {
            permits: Arc::new(Semaphore::new(settings.max as usize)),
            idle: Mutex::new(Vec::new()),
            open: AtomicU32::new(0),
            instruments: Arc::new(PoolInstruments::new()),
            lifecycle: Lifecycle::new(),
            next_endpoint: AtomicUsize::new(0),
            avoid_until: Mutex::new(vec![None; endpoints.len()]),
            closed_connections: AtomicU64::new(0),
            shut_down: AtomicBool::new(false),
            leader: Leader::default(),
            settings,
            endpoints,
            channel_settings,
        });
        let weak = Arc::downgrade(&pool);
        tokio::spawn(maintain(weak));
        pool
    }

    fn idle(&self) -> MutexGuard<'_, Vec<Channel>> {
        self.idle.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The endpoints of the URL.
    pub(crate) fn endpoints(&self) -> &[String] {
        &self.endpoints
    }

    /// How each channel connects.
    pub(crate) fn channel_settings(&self) -> &ChannelSettings {
        &self.channel_settings
    }

    /// The instruments, shared with leak timers.
    pub(crate) fn instruments(&self) -> &Arc<PoolInstruments> {
        &self.instruments
    }

    /// The per-request deadline.
    pub(crate) fn request_timeout(&self) -> Duration {
        self.channel_settings.request_timeout
    }

    /// Whether `close` has begun.
    pub(crate) fn is_closed(&self) -> bool {
        self.lifecycle.is_closed()
    }

    /// Admits one unit of work that needs no slot; `Closed` after `close`.
    pub(crate) fn enter(&self) -> Result<InFlight> {
        self.lifecycle.enter()
    }

    /// Which member leads, as the store last found.
    pub(crate) fn leader(&self) -> &Leader {
        &self.leader
    }

    /// The leader's endpoint, unless it failed lately.
    fn leader_endpoint(&self) -> Option<usize> {
        self.leader.endpoint().filter(|&e| !self.avoided(e))
    }

    /// The next endpoint to open a channel to: the leader, else round robin, passing
    /// over members that failed lately unless every one did.
    fn pick_endpoint(&self) -> usize {
        if let Some(leader) = self.leader_endpoint() {
            return leader;
        }
        let n = self.endpoints.len();
        let start = self.next_endpoint.fetch_add(1, SeqCst);
        let avoid = self.avoid_until.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        (0..n)
            .map(|i| (start + i) % n)
            .find(|&e| avoid[e].is_none_or(|until| until <= now))
            .unwrap_or(start % n)
    }

    fn avoided(&self, endpoint: usize) -> bool {
        let avoid = self.avoid_until.lock().unwrap_or_else(|p| p.into_inner());
        avoid[endpoint].is_some_and(|until| until > Instant::now())
    }

    /// Passes over `endpoint` for a while after a failure.
    pub(crate) fn avoid(&self, endpoint: usize) {
        let mut avoid = self.avoid_until.lock().unwrap_or_else(|p| p.into_inner());
        avoid[endpoint] = Some(Instant::now() + AVOID_FOR);
    }

    /// Opens a channel, trying each member once (the leader first, then in round-robin
    /// order) until one accepts it.
    async fn connect(&self) -> std::result::Result<Channel, Failure> {
        let mut last = None;
        for _ in 0..self.endpoints.len() {
            let endpoint = self.pick_endpoint();
            match Channel::open(endpoint, &self.endpoints[endpoint], &self.channel_settings).await {
                Ok(channel) => {
                    self.open.fetch_add(1, SeqCst);
                    self.instruments.record_created();
                    return Ok(channel);
                }
                Err(failure) if failure.fault != Fault::Answered => {
                    self.avoid(endpoint);
                    last = Some(failure);
                }
                Err(failure) => return Err(failure),
            }
        }
        Err(last.expect("a URL has at least one endpoint"))
    }

    fn discard(&self, _channel: Channel, reason: CloseReason) {
        self.open.fetch_sub(1, SeqCst);
        self.instruments.record_closed(reason);
        self.closed_connections.fetch_add(1, SeqCst);
    }

    /// Waits up to the acquire timeout for a slot, then takes an idle channel to a member
    /// not lately failed, or opens one.
    pub(crate) async fn acquire(self: &Arc<Self>) -> Result<Lease> {
        let work = self.lifecycle.enter()?;
        let started = Instant::now();
        let permit = match Arc::clone(&self.permits).try_acquire_owned() {
            Ok(permit) => permit,
            Err(_) => self.wait_for_permit(started).await?,
        };
        self.instruments.record_acquired(started.elapsed());
        let channel = self.checkout().await.map_err(|failure| failure.error)?;
        Ok(Lease {
            channel: Some(channel),
            pool: Arc::clone(self),
            _permit: permit,
            _work: work,
        })
    }

    async fn wait_for_permit(&self, started: Instant) -> Result<OwnedSemaphorePermit> {
        let _waiting = self.instruments.waiting();
        let wait = Arc::clone(&self.permits).acquire_owned();
        match tokio::time::timeout(self.settings.acquire_timeout, wait).await {
            Ok(Ok(permit)) => Ok(permit),
            Ok(Err(_)) => Err(StoreError::closed()),
            Err(_) => {
                let waited = started.elapsed();
                self.instruments.record_timeout(waited);
                Err(StoreError::new(
                    ErrorKind::Timeout,
                    format!(
                        "no etcd channel became free within the acquire timeout \
                         (db_connection_timeout_secs, waited {waited:?})"
                    ),
                ))
            }
        }
    }

    /// An idle channel that may be used, the last used to the leader first, or a new one.
    async fn checkout(&self) -> std::result::Result<Channel, Failure> {
        loop {
            let next = {
                let mut idle = self.idle();
                let to_leader = self
                    .leader_endpoint()
                    .and_then(|leader| idle.iter().rposition(|c| c.endpoint == leader));
                match to_leader {
                    Some(at) => Some(idle.remove(at)),
                    None => idle.pop(),
                }
            };
            let Some(channel) = next else {
                return self.connect().await;
            };
            if self.avoided(channel.endpoint) {
                self.discard(channel, CloseReason::Broken);
            } else if self.past_idle_timeout(&channel, self.idle().len()) {
                self.discard(channel, CloseReason::IdleTimeout);
            } else {
                return Ok(channel);
            }
        }
    }

    fn past_idle_timeout(&self, channel: &Channel, others_idle: usize) -> bool {
        let above_floor = others_idle >= self.settings.min_idle as usize;
        self.settings
            .idle_timeout
            .is_some_and(|limit| above_floor && channel.idle_since.elapsed() > limit)
    }

    fn past_lifetime(&self, channel: &Channel) -> bool {
        self.settings
            .max_lifetime
            .is_some_and(|limit| channel.created.elapsed() > limit)
    }

    fn check_in(&self, mut channel: Channel) {
        if self.lifecycle.is_closed() || self.shut_down.load(SeqCst) {
            self.discard(channel, CloseReason::Shutdown);
        } else if self.past_lifetime(&channel) {
            self.discard(channel, CloseReason::MaxLifetime);
        } else {
            channel.idle_since = Instant::now();
            self.idle().push(channel);
        }
    }

    /// Retires idle channels past the idle timeout (above the floor) or the maximum
    /// lifetime, then opens channels up to `db_min_idle`.
    async fn maintain_once(&self) {
        let retired: Vec<(Channel, CloseReason)> = {
            let mut idle = self.idle();
            idle.sort_by_key(|c| std::cmp::Reverse(c.idle_since));
            let mut keep = Vec::new();
            let mut retired = Vec::new();
            for channel in idle.drain(..) {
                if self.past_lifetime(&channel) {
                    retired.push((channel, CloseReason::MaxLifetime));
                } else if self.past_idle_timeout(&channel, keep.len()) {
                    retired.push((channel, CloseReason::IdleTimeout));
                } else {
                    keep.push(channel);
                }
            }
            keep.reverse();
            *idle = keep;
            retired
        };
        for (channel, reason) in retired {
            self.discard(channel, reason);
        }
        while self.open.load(SeqCst) < self.settings.min_idle && !self.lifecycle.is_closed() {
            match self.connect().await {
                Ok(channel) => self.check_in(channel),
                Err(_) => break,
            }
        }
    }

    /// Checks every idle channel once (a status round trip to its member) and evicts
    /// those that fail; the maintenance task replaces them up to the floor. The channels
    /// stay in the pool while checked, so a cancelled validation loses none.
    pub(crate) async fn validate(&self) -> ConnectionValidation {
        let channels: Vec<Channel> = self.idle().clone();
        let checks = channels.into_iter().map(|channel| async move {
            let mut maintenance = channel.maintenance();
            let answered = tokio::time::timeout(PROBE_TIMEOUT, maintenance.status()).await;
            (channel, matches!(answered, Ok(Ok(_))))
        });
        let results = join_all(checks).await;
        let failed: Vec<u64> = results
            .iter()
            .filter(|(_, ok)| !ok)
            .map(|(c, _)| c.id)
            .collect();
        let evicted: Vec<Channel> = {
            let mut idle = self.idle();
            let (bad, good): (Vec<Channel>, Vec<Channel>) =
                idle.drain(..).partition(|c| failed.contains(&c.id));
            *idle = good;
            bad
        };
        let invalid = u32::try_from(evicted.len()).unwrap_or(u32::MAX);
        for channel in evicted {
            self.avoid(channel.endpoint);
            self.discard(channel, CloseReason::Invalid);
        }
        let checked = u32::try_from(results.len()).unwrap_or(u32::MAX);
        ConnectionValidation::new(checked.saturating_sub(invalid), invalid, self.settings.max)
    }

    /// A snapshot of the gauges and counters.
    pub(crate) fn metrics(&self) -> PoolMetrics {
        let idle = u32::try_from(self.idle().len()).unwrap_or(u32::MAX);
        self.instruments.snapshot(PoolGauges {
            max: self.settings.max,
            min_idle: self.settings.min_idle,
            size: self.open.load(SeqCst),
            idle,
        })
    }

    /// Refuses new work and wakes waiters with `Closed`, waits for in-flight work up to
    /// the grace period, then closes every idle channel (held ones close when returned).
    pub(crate) async fn close(&self) -> (Drain, u32) {
        self.permits.close();
        let before = self.closed_connections.load(SeqCst);
        let drain = self.lifecycle.close(self.settings.close_grace).await;
        self.shut_down.store(true, SeqCst);
        let idle: Vec<Channel> = self.idle().drain(..).collect();
        for channel in idle {
            self.discard(channel, CloseReason::Shutdown);
        }
        let closed = self.closed_connections.load(SeqCst) - before;
        (drain, u32::try_from(closed).unwrap_or(u32::MAX))
    }
}

/// Runs the pool's maintenance until the pool closes or is dropped. The first channels
/// wait (briefly) for the store to find the leader, so they open to it.
async fn maintain(pool: Weak<Pool>) {
    if let Some(pool) = pool.upgrade() {
        pool.leader.first_word(PROBE_TIMEOUT).await;
    }
    loop {
        {
            let Some(pool) = pool.upgrade() else { return };
            if pool.is_closed() {
                return;
            }
            pool.maintain_once().await;
        }
        tokio::time::sleep(MAINTENANCE_EVERY).await;
    }
}

/// Awaits every future, polled together (each waits on the network, not on the
/// others), and returns their outputs in order.
pub(crate) async fn join_all<F: Future>(futures: impl IntoIterator<Item = F>) -> Vec<F::Output> {
    let mut pending: Vec<_> = futures.into_iter().map(|f| Some(Box::pin(f))).collect();
    let mut results: Vec<Option<F::Output>> = pending.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut done = true;
        for (slot, result) in pending.iter_mut().zip(results.iter_mut()) {
            if let Some(future) = slot {
                match future.as_mut().poll(cx) {
                    std::task::Poll::Ready(value) => {
                        *result = Some(value);
                        *slot = None;
                    }
                    std::task::Poll::Pending => done = false,
                }
            }
        }
        if done {
            std::task::Poll::Ready(())
        } else {
            std::task::Poll::Pending
        }
    })
    .await;
    results.into_iter().flatten().collect()
}

/// One slot of the pool and its channel (replaced when it cannot reach its member); both
/// return to the pool when dropped, whatever future held them.
#[derive(Debug)]
pub(crate) struct Lease {
    channel: Option<Channel>,
    pool: Arc<Pool>,
    _permit: OwnedSemaphorePermit,
    _work: InFlight,
}

impl Lease {
    /// Runs one request on the lease's channel within the request deadline. A channel
    /// that cannot reach its member is retired; an `idempotent` request, or one that was
    /// never sent (connection refused), is then tried again on a channel to another
    /// member while the deadline lasts.
    pub(crate) async fn request<T, F, Fut>(
        &mut self,
        operation: &str,
        idempotent: bool,
        mut call: F,
    ) -> Result<T>
    where
        F: FnMut(&Channel) -> Fut,
        Fut: Future<Output = std::result::Result<T, etcd_client::Error>>,
    {
        let timeout = self.pool.request_timeout();
        let started = Instant::now();
        loop {
            if self.pool.shut_down.load(SeqCst) {
                return Err(StoreError::closed());
            }
            let failure = match self.attempt(operation, timeout, started, &mut call).await {
                Ok(value) => return Ok(value),
                Err(failure) => failure,
            };
            if failure.fault != Fault::Answered {
                if let Some(channel) = self.channel.take() {
                    self.pool.avoid(channel.endpoint);
                    self.pool.discard(channel, CloseReason::Broken);
                }
                let may_retry = idempotent || failure.fault == Fault::Refused;
                if may_retry && started.elapsed() < timeout {
                    continue;
                }
            }
            return Err(failure.error);
        }
    }

    async fn attempt<T, F, Fut>(
        &mut self,
        operation: &str,
        timeout: Duration,
        started: Instant,
        call: &mut F,
    ) -> std::result::Result<T, Failure>
    where
        F: FnMut(&Channel) -> Fut,
        Fut: Future<Output = std::result::Result<T, etcd_client::Error>>,
    {
        let left = timeout.saturating_sub(started.elapsed());
        let work = async {
            if self.channel.is_none() {
                self.channel = Some(self.pool.checkout().await?);
            }
            let channel = self.channel.as_ref().expect("set above");
            call(channel)
                .await
                .map_err(|e| crate::errors::map(operation, e))
        };
        match tokio::time::timeout(left, work).await {
            Ok(result) => result,
            Err(_) => Err(crate::errors::deadline(operation, timeout)),
        }
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        if let Some(channel) = self.channel.take() {
            self.pool.check_in(channel);
        }
    }
}
