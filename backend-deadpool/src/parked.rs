//! The connection given back last, kept beside deadpool while nobody waits for one:
//! the next checkout takes it with one lock, where deadpool's would go through its
//! semaphore, its queue of idle connections and its recycle step, and the next
//! return puts it back the same way.
//!
//! A parked connection is idle: it counts as idle in the metrics, the maintenance
//! task and `validate` see it (they [`flush`](Parked::flush) it into deadpool first),
//! and closing the pool flushes it with the others. It is never parked while a
//! caller waits in deadpool's queue, which would wait beside an idle connection.

use std::sync::{Mutex, MutexGuard, PoisonError};

/// At most one idle connection (a checked-out deadpool object, `T`) outside deadpool's
/// queue.
#[derive(Debug)]
pub(crate) struct Parked<T> {
    slot: Mutex<Option<T>>,
}

impl<T> Default for Parked<T> {
    fn default() -> Self {
        Self {
            slot: Mutex::new(None),
        }
    }
}

impl<T> Parked<T> {
    /// The parked connection, if there is one.
    pub(crate) fn take(&self) -> Option<T> {
        self.lock().take()
    }

    /// Parks `object` if no connection is parked and `may_park()`, asked under the
    /// slot's lock, agrees; otherwise gives it back, for deadpool's queue.
    ///
    /// `may_park` says no while callers wait for a connection. A caller counts itself
    /// as waiting before it looks here: either `may_park` sees it and the connection
    /// goes to deadpool's queue, or its look takes the lock after this and finds the
    /// connection.
    pub(crate) fn park(&self, object: T, may_park: impl FnOnce() -> bool) -> Option<T> {
        let mut slot = self.lock();
        if slot.is_some() || !may_park() {
            return Some(object);
        }
        *slot = Some(object);
        None
    }

    /// Returns the parked connection to deadpool's queue. Closing the pool closes it
    /// first, then flushes: a return after that finds it closed in `may_park`.
    pub(crate) fn flush(&self) {
        let object = self.take();
        drop(object);
    }

    fn lock(&self) -> MutexGuard<'_, Option<T>> {
        self.slot.lock().unwrap_or_else(PoisonError::into_inner)
    }
}
