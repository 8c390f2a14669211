//! `MemoryTransaction`: a private copy of the data, taken at `begin` under the write
//! lock (read-write) or as a snapshot (read-only), swapped in at commit.

use std::sync::Arc;

use storage_api::{
    Condition, Entry, PutOptions, Result, ScanOptions, Transaction, Version, async_trait,
};
use tokio::sync::OwnedMutexGuard;

use crate::data::Data;
use crate::pool::Lease;
use crate::store::Shared;

/// A transaction holding a leased connection (and, when read-write, the write lock)
/// until commit, rollback or drop; dropping it discards the copy and returns both.
#[derive(Debug)]
pub(crate) struct MemoryTransaction {
    shared: Arc<Shared>,
    lease: Lease,
    /// `None` for a read-only transaction.
    writer: Option<OwnedMutexGuard<()>>,
    view: Data,
}

impl MemoryTransaction {
    /// A transaction over `view`, a copy of the committed data.
    pub(crate) fn new(
        shared: Arc<Shared>,
        lease: Lease,
        writer: Option<OwnedMutexGuard<()>>,
        view: Data,
    ) -> Self {
        Self {
            shared,
            lease,
            writer,
            view,
        }
    }
}

#[async_trait]
impl Transaction for MemoryTransaction {
    async fn get(&mut self, key: &[u8]) -> Result<Option<Entry>> {
        self.lease.check_usable()?;
        Ok(self.view.get(key, self.shared.now()))
    }

    async fn put(&mut self, key: &[u8], value: &[u8], options: PutOptions) -> Result<Version> {
        self.lease.check_usable()?;
        self.view.put(key, value, options, self.shared.now())
    }

    async fn delete(&mut self, key: &[u8], condition: Condition) -> Result<bool> {
        self.lease.check_usable()?;
        self.view.delete(key, condition, self.shared.now())
    }

    async fn scan(&mut self, options: ScanOptions) -> Result<Vec<Entry>> {
        let limit = self.shared.limits.scan_limit(&options);
        self.lease.check_usable()?;
        Ok(self.view.scan(&options, limit, self.shared.now()))
    }

    async fn commit(self: Box<Self>) -> Result<()> {
        self.lease.check_usable()?;
        if self.writer.is_some() {
            *self.shared.data() = self.view;
        }
        Ok(())
    }

    async fn rollback(self: Box<Self>) -> Result<()> {
        Ok(())
    }
}
