//! The checking layer's transaction: the same rules as the store's, plus refusing
//! writes in a read-only transaction.

use std::sync::Arc;

use async_trait::async_trait;

use super::Rules;
use crate::error::Result;
use crate::store::Transaction;
use crate::types::{Condition, Entry, PutOptions, ScanOptions, Version};

/// A transaction whose calls pass the contract's checks before reaching the backend's.
#[derive(Debug)]
pub(super) struct CheckedTransaction {
    inner: Box<dyn Transaction>,
    rules: Arc<Rules>,
    read_only: bool,
}

impl CheckedTransaction {
    pub(super) fn new(inner: Box<dyn Transaction>, rules: Arc<Rules>, read_only: bool) -> Self {
        Self {
            inner,
            rules,
            read_only,
        }
    }
}

#[async_trait]
impl Transaction for CheckedTransaction {
    async fn get(&mut self, key: &[u8]) -> Result<Option<Entry>> {
        self.rules.check_key(key)?;
        self.inner.get(key).await
    }

    async fn put(&mut self, key: &[u8], value: &[u8], options: PutOptions) -> Result<Version> {
        self.rules.check_writable(self.read_only, "put")?;
        self.rules.check_put(key, value, &options)?;
        self.inner.put(key, value, options).await
    }

    async fn delete(&mut self, key: &[u8], condition: Condition) -> Result<bool> {
        self.rules.check_writable(self.read_only, "delete")?;
        self.rules.check_key(key)?;
        self.inner.delete(key, condition).await
    }

    async fn scan(&mut self, mut options: ScanOptions) -> Result<Vec<Entry>> {
        options.limit = Some(self.rules.scan_limit(&options)?);
        self.inner.scan(options).await
    }

    async fn commit(self: Box<Self>) -> Result<()> {
        self.inner.commit().await
    }

    async fn rollback(self: Box<Self>) -> Result<()> {
        self.inner.rollback().await
    }
}
