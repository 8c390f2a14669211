//! Reading a whole store page by page through `scan` and its `after` cursor, so memory
//! holds one page at a time, optionally inside one read-only transaction (a snapshot).

use storage_api::{Entry, PooledStore, Result, ScanOptions, Transaction, TxOptions};

/// Entries per page, at most; capped by the store's `max_scan_limit`.
pub(crate) const PAGE_SIZE: usize = 1000;

/// Where pages are read from.
#[derive(Debug)]
enum Source<'a> {
    Store(&'a dyn PooledStore),
    Snapshot(Box<dyn Transaction>),
}

/// A cursor over every live entry of a store, in key order.
#[derive(Debug)]
pub(crate) struct Pages<'a> {
    source: Source<'a>,
    page_size: usize,
    after: Option<Vec<u8>>,
    done: bool,
}

impl<'a> Pages<'a> {
    /// Pages read straight from the store: each page is current when read, so writes
    /// made meanwhile may or may not show.
    pub(crate) fn live(store: &'a dyn PooledStore) -> Self {
        Self::new(Source::Store(store), store)
    }

    /// Pages read inside one read-only transaction when the store offers transactions,
    /// so they form a consistent snapshot; otherwise the same as [`Pages::live`].
    pub(crate) async fn snapshot(store: &'a dyn PooledStore) -> Result<Self> {
        if !store.capabilities().transactions {
            return Ok(Self::live(store));
        }
        let tx = store.begin(TxOptions { read_only: true }).await?;
        Ok(Self::new(Source::Snapshot(tx), store))
    }

    fn new(source: Source<'a>, store: &dyn PooledStore) -> Self {
        Self {
            source,
            page_size: PAGE_SIZE.min(store.capabilities().max_scan_limit).max(1),
            after: None,
            done: false,
        }
    }

    /// The next page, or an empty one at the end.
    pub(crate) async fn next_page(&mut self) -> Result<Vec<Entry>> {
        if self.done {
            return Ok(Vec::new());
        }
        let mut options = ScanOptions::default().with_limit(self.page_size);
        options.after = self.after.take();
        let page = match &mut self.source {
            Source::Store(store) => store.scan(options).await?,
            Source::Snapshot(tx) => tx.scan(options).await?,
        };
        self.done = page.len() < self.page_size;
        self.after = page.last().map(|e| e.key.clone());
        Ok(page)
    }

    /// Ends a snapshot transaction (a no-op for live pages).
    pub(crate) async fn finish(self) -> Result<()> {
        match self.source {
            Source::Store(_) => Ok(()),
            Source::Snapshot(tx) => tx.rollback().await,
        }
    }
}

/// Counts the live entries of `store`, page by page.
pub async fn count_entries(store: &dyn PooledStore) -> Result<u64> {
    let mut pages = Pages::live(store);
    let mut count = 0u64;
    loop {
        let page = pages.next_page().await?;
        if page.is_empty() {
            return Ok(count);
        }
        count += page.len() as u64;
    }
}
