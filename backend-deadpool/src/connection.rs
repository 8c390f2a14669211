//! One SQLite connection: opening it with the store's flags and pragmas, running
//! closures on it off the async threads (catching panics), and the cheap state checks
//! the pool relies on to never hand out a connection mid-transaction.

use std::fmt;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::PathBuf;
use std::sync::atomic::{
    AtomicBool, AtomicU8, AtomicU64, AtomicUsize, Ordering::Relaxed, Ordering::SeqCst,
};
use std::sync::{Arc, Mutex, PoisonError, TryLockError, Weak};
use std::time::{Duration, Instant};

use rusqlite::config::DbConfig;
use rusqlite::{Connection, InterruptHandle, OpenFlags};
use storage_api::backend::PoolInstruments;
use storage_api::{CloseReason, StoreError};
use tokio::sync::Notify;

use crate::errors::{DbError, map_error, open_error};
use sqlite_common::wal::{AUTOCHECKPOINT_DEFAULT, AUTOCHECKPOINT_OFF};

/// Prepared statements each connection keeps compiled.
const STATEMENT_CACHE_CAPACITY: usize = 64;

/// How every connection of a store is opened and set up.
#[derive(Debug, Clone)]
pub(crate) struct ConnectSpec {
    /// The database file.
    pub(crate) path: PathBuf,
    /// `busy_timeout`, applied first.
    pub(crate) busy_timeout: Duration,
    /// Switch the database to write-ahead logging.
    pub(crate) wal: bool,
    /// The value for `PRAGMA synchronous`.
    pub(crate) synchronous: &'static str,
}

impl ConnectSpec {
    /// Whether a commit writes to the log without waiting for the disk: WAL mode with
    /// `synchronous` NORMAL or OFF (a checkpoint still syncs, off the writer's way).
    pub(crate) fn commits_in_memory(&self) -> bool {
        self.wal && matches!(self.synchronous, "NORMAL" | "OFF")
    }

    /// Opens and sets up one connection. Blocking: call it off the async threads.
    pub(crate) fn open(&self) -> Result<Connection, StoreError> {
        // No SQLITE_OPEN_URI: a path is a path, never a URI with parameters.
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = Connection::open_with_flags(&self.path, flags)
            .map_err(|e| open_error(&self.path, e))?;
        if conn.is_readonly(rusqlite::MAIN_DB).unwrap_or(false) {
            return Err(StoreError::config(format!(
                "database file {} is not writable",
                self.path.display()
            )));
        }
        self.setup(&conn).map_err(|e| {
            map_error(
                &format!("setting up a connection to {}", self.path.display()),
                e,
            )
        })?;
        Ok(conn)
    }

    fn setup(&self, conn: &Connection) -> rusqlite::Result<()> {
        // Before journal_mode: switching to WAL takes a lock another connection may hold.
        conn.busy_timeout(busy_limit(self.busy_timeout))?;
        if self.wal {
            let mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))?;
            if !mode.eq_ignore_ascii_case("wal") {
                tracing::warn!(journal_mode = %mode, "SQLite refused write-ahead logging");
            }
        }
        // A connection that retires (idle, lifetime, eviction) closes without
        // checkpointing: the last one to close would otherwise run a checkpoint on
        // whichever thread drops it, perhaps an async worker. `close` checkpoints
        // explicitly, and the writer checkpoints beside its groups.
        conn.set_db_config(DbConfig::SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, true)?;
        conn.execute_batch(&format!("PRAGMA synchronous = {}", self.synchronous))?;
        // The writer runs each batch of a group under a savepoint; its statement
        // journal (the pages a batch changes, for rolling back to the savepoint) stays
        // in memory instead of spilling to a temporary file.
        conn.execute_batch("PRAGMA temp_store = MEMORY")?;
        conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE_CAPACITY);
        Ok(())
    }
}

/// `busy_timeout` as SQLite can take it (milliseconds in an `int`).
pub(crate) fn busy_limit(busy_timeout: Duration) -> Duration {
    busy_timeout.min(Duration::from_millis(i32::MAX.unsigned_abs().into()))
}

/// Every connection a pool opened and has not dropped, so `close` can reach the ones
/// still in use when the grace period runs out.
#[derive(Debug, Default)]
pub(crate) struct OpenConnections {
    slots: Mutex<Vec<Weak<Slot>>>,
    /// Connections opened and not yet really closed.
    count: AtomicUsize,
}

impl OpenConnections {
    fn add(&self, slot: &Arc<Slot>) {
        self.count.fetch_add(1, SeqCst);
        let mut slots = self.slots.lock().unwrap_or_else(PoisonError::into_inner);
        slots.retain(|s| s.strong_count() > 0);
        slots.push(Arc::downgrade(slot));
    }

    /// How many connections are open right now.
    pub(crate) fn count(&self) -> usize {
        self.count.load(SeqCst)
    }

    /// Refuses further work on every connection and interrupts what runs on them;
    /// returns them for [`Slot::close_now`].
    pub(crate) fn shut_all(&self) -> Vec<Arc<Slot>> {
        let slots = self.slots.lock().unwrap_or_else(PoisonError::into_inner);
        let open: Vec<_> = slots.iter().filter_map(Weak::upgrade).collect();
        for slot in &open {
            slot.shut.store(true, SeqCst);
            slot.interrupt.interrupt();
        }
        open
    }
}

/// SQLite's automatic checkpoint as a closure run on a connection needs it.
///
/// The writer turns it off on the connection it applies a round on (it follows the
/// schedule of [`sqlite_common::wal`] instead) and leaves it off, so a writer that
/// gets the same connection again sets nothing: setting it is a statement SQLite
/// parses, twice a round if every round turned it back on. Code that may commit
/// writes of its own on the connection gets SQLite's default back first; reads,
/// checkpoints and rollbacks commit nothing and take the connection as it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Autocheckpoint {
    /// SQLite's default: read-write transactions, `with_connection`, schema setup.
    Default,
    /// Off: the writer's rounds in WAL mode.
    Off,
    /// Whatever it is: the closure commits no write.
    AsIs,
}

/// The state a worker thread and the pool share for one connection.
pub(crate) struct Slot {
    conn: Mutex<Option<Connection>>,
    /// The writer left SQLite's automatic checkpoint off on the connection; read and
    /// written under `conn`'s lock.
    autocheckpoint_off: AtomicBool,
    /// A short read left the busy handler off: the busy timeout to set again, in
    /// milliseconds plus one, before any other closure runs; 0 while the handler is as
    /// the connection was set up. Read and written under `conn`'s lock.
    busy_restore: AtomicU64,
    broken: AtomicBool,
    /// Set by a forced close: nothing more runs on this connection.
    shut: AtomicBool,
    interrupt: InterruptHandle,
    /// Closures submitted to a worker thread and not yet finished (or dropped unrun).
    queued: AtomicUsize,
    settled: Notify,
    open: Arc<OpenConnections>,
}

/// Counts one submitted closure as queued on its slot until dropped.
struct Ticket(Arc<Slot>);

impl Drop for Ticket {
    fn drop(&mut self) {
        if self.0.queued.fetch_sub(1, SeqCst) == 1 {
            self.0.settled.notify_waiters();
        }
    }
}

impl Slot {
    fn ticket(self: &Arc<Self>) -> Ticket {
        self.queued.fetch_add(1, SeqCst);
        Ticket(Arc::clone(self))
    }

    /// Waits until every closure submitted so far has finished or been dropped.
    async fn settle(&self) {
        loop {
            let settled = self.settled.notified();
            tokio::pin!(settled);
            settled.as_mut().enable();
            if self.queued.load(SeqCst) == 0 {
                return;
            }
            settled.await;
        }
    }

    /// Runs `f` on the connection, on the calling (blocking) thread. A panic in `f` is
    /// caught and marks the connection broken instead of poisoning anything.
    pub(crate) fn run<R>(&self, f: impl FnOnce(&mut Connection) -> R) -> Result<R, DbError> {
        self.run_with(Autocheckpoint::AsIs, f)
    }

    /// [`run`](Self::run), with SQLite's automatic checkpoint set as `autocheckpoint`
    /// says first.
    fn run_with<R>(
        &self,
        autocheckpoint: Autocheckpoint,
        f: impl FnOnce(&mut Connection) -> R,
    ) -> Result<R, DbError> {
        self.run_set_up(
            |conn| {
                self.restore_busy_timeout(conn)?;
                self.set_autocheckpoint(conn, autocheckpoint);
                Ok(())
            },
            f,
        )
    }

    /// Runs the short `f` on the calling thread with the busy handler off, so a
    /// locked database fails at once with `SQLITE_BUSY`, and SQLite's automatic
    /// checkpoint set as `autocheckpoint` says. The handler stays off for the next
    /// short closure; any other gets `busy_timeout` back first
    /// ([`restore_busy_timeout`](Self::restore_busy_timeout)).
    fn run_unwaiting<R>(
        &self,
        busy_timeout: Duration,
        autocheckpoint: Autocheckpoint,
        f: impl FnOnce(&mut Connection) -> Result<R, DbError>,
    ) -> Result<R, DbError> {
        let set_up = |conn: &Connection| {
            let pending = self.busy_restore.load(Relaxed);
            if pending == 0
                && let Err(e) = conn.busy_timeout(Duration::ZERO)
            {
                self.broken.store(true, SeqCst);
                return Err(e.into());
            }
            let millis = u64::try_from(busy_limit(busy_timeout).as_millis()).unwrap_or(u64::MAX);
            let restore = millis.saturating_add(1);
            if pending != restore {
                self.busy_restore.store(restore, Relaxed);
            }
            self.set_autocheckpoint(conn, autocheckpoint);
            Ok(())
        };
        self.run_set_up(set_up, f)?
    }

    /// Runs `f` on the connection, on the calling thread, once `set_up` has prepared
    /// it (both under the connection's lock). A panic in `f` is caught and marks the
    /// connection broken instead of poisoning anything.
    fn run_set_up<R>(
        &self,
        set_up: impl FnOnce(&Connection) -> Result<(), DbError>,
        f: impl FnOnce(&mut Connection) -> R,
    ) -> Result<R, DbError> {
        let mut guard = self.conn.lock().unwrap_or_else(PoisonError::into_inner);
        if self.shut.load(SeqCst) {
            return Err(StoreError::closed().into());
        }
        let conn = guard.as_mut().ok_or(DbError::Lost)?;
        set_up(conn)?;
        catch_unwind(AssertUnwindSafe(|| f(conn))).map_err(|_| {
            self.broken.store(true, SeqCst);
            DbError::Panicked
        })
    }

    /// Sets the busy timeout a short read left off back on `conn` (held under
    /// `conn`'s lock). A connection whose busy handler cannot be restored is never
    /// reused.
    fn restore_busy_timeout(&self, conn: &Connection) -> Result<(), DbError> {
        let pending = self.busy_restore.load(Relaxed);
        if pending == 0 {
            return Ok(());
        }
        let restored = Duration::from_millis(pending - 1);
        if let Err(e) = conn.busy_timeout(restored) {
            self.broken.store(true, SeqCst);
            return Err(e.into());
        }
        self.busy_restore.store(0, Relaxed);
        Ok(())
    }

    /// Sets SQLite's automatic checkpoint on `conn` (held under `conn`'s lock) unless
    /// it already is as wanted; a failure only costs the checkpoint schedule, and the
    /// next closure that wants it tries again.
    fn set_autocheckpoint(&self, conn: &Connection, wanted: Autocheckpoint) {
        let (off, (name, value)) = match wanted {
            Autocheckpoint::AsIs => return,
            Autocheckpoint::Off => (true, AUTOCHECKPOINT_OFF),
            Autocheckpoint::Default => (false, AUTOCHECKPOINT_DEFAULT),
        };
        if self.autocheckpoint_off.load(SeqCst) == off {
            return;
        }
        match conn.execute_batch(&format!("PRAGMA {name} = {value}")) {
            Ok(()) => self.autocheckpoint_off.store(off, SeqCst),
            Err(error) => {
                tracing::debug!(backend = "deadpool", %error, "could not set PRAGMA {name}");
            }
        }
    }

    /// Whether the connection answers a round trip outside any transaction. Blocking.
    pub(crate) fn probe(&self) -> bool {
        let answered = self.run(|conn| {
            conn.is_autocommit()
                && conn
                    .query_row("SELECT 1", [], |r| r.get::<_, i64>(0))
                    .is_ok_and(|one| one == 1)
        });
        matches!(answered, Ok(true))
    }

    /// Closes the connection now (blocking), unless already closed; an open
    /// transaction rolls back.
    pub(crate) fn close_now(&self) {
        let conn = self
            .conn
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(conn) = conn {
            drop(conn);
            self.open.count.fetch_sub(1, SeqCst);
        }
    }
}

impl fmt::Debug for Slot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Slot")
            .field("broken", &self.broken.load(SeqCst))
            .field("shut", &self.shut.load(SeqCst))
            .field("queued", &self.queued.load(SeqCst))
            .finish_non_exhaustive()
    }
}

/// What a cheap look at a connection found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ConnState {
    /// Idle-ready: not running anything and outside any transaction.
    Clean,
    /// Still running a closure, or inside a transaction: needs a rollback before reuse.
    Dirty,
    /// Panicked or failed a reset: must be discarded.
    Broken,
}

/// A pooled connection: the shared slot plus what the pool tracks about it.
///
/// Two pointers wide: deadpool's object and the lease around it move by value on
/// every checkout and return.
pub(crate) struct SqliteConn {
    slot: Arc<Slot>,
    tracked: Box<Tracked>,
}

/// What the pool tracks about a connection.
struct Tracked {
    created: Instant,
    /// When the connection reaches `max_lifetime`; `None` when it never does.
    retire_at: Option<Instant>,
    /// When the connection last went back to the pool, in nanoseconds after `created`.
    returned: AtomicU64,
    retire: AtomicU8,
    instruments: Arc<PoolInstruments>,
}

impl SqliteConn {
    /// Wraps a freshly opened connection, registering it in `open`; it expires after
    /// `max_lifetime`.
    pub(crate) fn new(
        conn: Connection,
        instruments: Arc<PoolInstruments>,
        open: &Arc<OpenConnections>,
        max_lifetime: Option<Duration>,
    ) -> Self {
        let now = Instant::now();
        let slot = Arc::new(Slot {
            interrupt: conn.get_interrupt_handle(),
            conn: Mutex::new(Some(conn)),
            autocheckpoint_off: AtomicBool::new(false),
            busy_restore: AtomicU64::new(0),
            broken: AtomicBool::new(false),
            shut: AtomicBool::new(false),
            queued: AtomicUsize::new(0),
            settled: Notify::new(),
            open: Arc::clone(open),
        });
        open.add(&slot);
        let tracked = Box::new(Tracked {
            created: now,
            retire_at: max_lifetime.and_then(|max| now.checked_add(max)),
            returned: AtomicU64::new(0),
            retire: AtomicU8::new(0),
            instruments,
        });
        Self { slot, tracked }
    }

    /// Runs `f` on a blocking thread, with SQLite's automatic checkpoint set as
    /// `autocheckpoint` says. If the returned future is dropped, `f` still runs to
    /// completion; the caller must then reset the connection before reuse.
    pub(crate) async fn interact<R, F>(
        &self,
        autocheckpoint: Autocheckpoint,
        f: F,
    ) -> Result<R, DbError>
    where
        F: FnOnce(&mut Connection) -> R + Send + 'static,
        R: Send + 'static,
    {
        // Taken before spawning: a closure not yet started already counts as running.
        let ticket = self.slot.ticket();
        let work = move || {
            let result = ticket.0.run_with(autocheckpoint, f);
            drop(ticket);
            result
        };
        match tokio::task::spawn_blocking(work).await {
            Ok(result) => result,
            Err(_) => {
                self.slot.broken.store(true, SeqCst);
                Err(DbError::Lost)
            }
        }
    }

    /// Runs `f` on the calling thread without ever waiting for a lock, with SQLite's
    /// automatic checkpoint set as `autocheckpoint` says: the busy handler is off
    /// while it runs (a locked database fails at once with `SQLITE_BUSY`), and
    /// `busy_timeout` is back before anything else runs on the connection. For work
    /// that takes microseconds (short reads, a lone write that commits without
    /// waiting for the disk), less than the thread switches `interact` costs.
    pub(crate) fn run_here<R>(
        &self,
        busy_timeout: Duration,
        autocheckpoint: Autocheckpoint,
        f: impl FnOnce(&mut Connection) -> Result<R, DbError>,
    ) -> Result<R, DbError> {
        self.slot.run_unwaiting(busy_timeout, autocheckpoint, f)
    }

    /// Rolls back whatever transaction the connection is in, once every closure
    /// submitted on it has finished; marks it broken if that fails.
    pub(crate) async fn reset(&self) {
        self.slot.settle().await;
        let rolled_back = self
            .interact(Autocheckpoint::AsIs, |conn| {
                if conn.is_autocommit() {
                    Ok(())
                } else {
                    conn.execute_batch("ROLLBACK")
                }
            })
            .await;
        if !matches!(rolled_back, Ok(Ok(()))) {
            self.slot.broken.store(true, SeqCst);
        }
    }

    /// Looks at the connection without blocking or leaving the current thread.
    pub(crate) fn state(&self) -> ConnState {
        if self.slot.broken.load(SeqCst) {
            return ConnState::Broken;
        }
        if self.slot.queued.load(SeqCst) > 0 {
            return ConnState::Dirty;
        }
        match self.slot.conn.try_lock() {
            Ok(guard) => match guard.as_ref() {
                Some(conn) if conn.is_autocommit() => ConnState::Clean,
                Some(_) => ConnState::Dirty,
                None => ConnState::Broken,
            },
            Err(TryLockError::WouldBlock) => ConnState::Dirty,
            Err(TryLockError::Poisoned(_)) => ConnState::Broken,
        }
    }

    /// The shared slot, for running checks on a blocking thread.
    pub(crate) fn slot(&self) -> Arc<Slot> {
        Arc::clone(&self.slot)
    }

    /// How long ago the connection was opened.
    pub(crate) fn age(&self) -> Duration {
        self.tracked.created.elapsed()
    }

    /// Whether the connection has reached `max_lifetime` as of `now`.
    pub(crate) fn expired_at(&self, now: Instant) -> bool {
        self.tracked.retire_at.is_some_and(|at| now >= at)
    }

    /// How long the connection has been back in the pool as of `now`.
    pub(crate) fn idle_for(&self, now: Instant) -> Duration {
        let returned = Duration::from_nanos(self.tracked.returned.load(Relaxed));
        match self.tracked.created.checked_add(returned) {
            Some(returned) => now.saturating_duration_since(returned),
            None => Duration::ZERO,
        }
    }

    /// Notes that the connection just went back to the pool.
    pub(crate) fn mark_returned(&self) {
        self.mark_returned_at(Instant::now());
    }

    /// Notes that the connection went back to the pool at `now`.
    pub(crate) fn mark_returned_at(&self, now: Instant) {
        let since = now
            .saturating_duration_since(self.tracked.created)
            .as_nanos();
        let since = u64::try_from(since).unwrap_or(u64::MAX);
        self.tracked.returned.store(since, Relaxed);
    }

    /// Records why the connection is leaving the pool (counted when it drops). The
    /// first reason given wins.
    pub(crate) fn retire(&self, reason: CloseReason) {
        let code = reason_code(reason);
        let _ = self
            .tracked
            .retire
            .compare_exchange(0, code, SeqCst, SeqCst);
    }

    fn retire_reason(&self) -> CloseReason {
        if self.slot.shut.load(SeqCst) {
            return CloseReason::Shutdown;
        }
        let code = usize::from(self.tracked.retire.load(SeqCst));
        match code.checked_sub(1).and_then(|i| CloseReason::ALL.get(i)) {
            Some(reason) => *reason,
            None if self.slot.broken.load(SeqCst) => CloseReason::Broken,
            None => CloseReason::Shutdown,
        }
    }
}

fn reason_code(reason: CloseReason) -> u8 {
    let index = CloseReason::ALL.iter().position(|r| *r == reason);
    index.map_or(0, |i| u8::try_from(i + 1).unwrap_or(0))
}

impl Drop for SqliteConn {
    fn drop(&mut self) {
        self.tracked.instruments.record_closed(self.retire_reason());
        let slot = Arc::clone(&self.slot);
        let close = move || slot.close_now();
        // Closing may block (it can checkpoint the WAL): keep it off the async threads.
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => drop(runtime.spawn_blocking(close)),
            Err(_) => close(),
        }
    }
}

impl fmt::Debug for SqliteConn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqliteConn")
            .field("state", &self.state())
            .field("age", &self.age())
            .finish_non_exhaustive()
    }
}
