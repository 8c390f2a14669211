//! Copying a store into another through the trait, between the two SQLite backends.

mod common;

use std::time::Duration;

use common::{Backend, assert_filled, fill, open_with, options};
use pooledstore_ops::{Progress, copy, count_entries};
use storage_api::{ErrorKind, PutOptions};

#[tokio::test]
async fn copy_moves_everything_and_checks_the_counts() {
    for (from, to) in [
        (Backend::Sqlx, Backend::Deadpool),
        (Backend::Deadpool, Backend::Sqlx),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let mut source_opts = options(&dir.path().join("a.db"));
        source_opts.limits.max_scan_limit = 50;
        let source = open_with(from, source_opts).await.unwrap();
        fill(&*source, "k/", 1234).await;
        let ttl = PutOptions::default().with_ttl(Duration::from_secs(600));
        source.put(b"session", b"s", ttl).await.unwrap();
        let mut gone = PutOptions::default().with_ttl(Duration::from_millis(1));
        gone.condition = storage_api::Condition::Any;
        source.put(b"expired", b"e", gone).await.unwrap();
        tokio::time::sleep(Duration::from_millis(20)).await;

        let target = open_with(to, options(&dir.path().join("b.db")))
            .await
            .unwrap();
        let report = copy(&*source, &*target, &Progress::hidden()).await.unwrap();
        assert_eq!(
            (report.source_count, report.copied, report.target_count),
            (1235, 1235, 1235),
            "{from:?} -> {to:?}"
        );
        assert_filled(&*target, "k/", 1234).await;
        assert!(
            target
                .get(b"session")
                .await
                .unwrap()
                .unwrap()
                .expires_at
                .is_some()
        );
        assert!(target.get(b"expired").await.unwrap().is_none());

        let e = copy(&*source, &*target, &Progress::hidden())
            .await
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e}");
        assert!(e.message().contains("empty"), "{e}");
        assert_eq!(count_entries(&*target).await.unwrap(), 1235);
        source.close().await;
        target.close().await;
    }
}

/// A store that writes one more entry into itself on its `trigger`-th scan: a writer
/// the copy did not expect.
#[derive(Debug)]
struct GrowsDuringCopy {
    inner: std::sync::Arc<dyn storage_api::PooledStore>,
    scans: std::sync::atomic::AtomicUsize,
    trigger: usize,
}

#[storage_api::async_trait]
impl storage_api::PooledStore for GrowsDuringCopy {
    fn backend_name(&self) -> &'static str {
        self.inner.backend_name()
    }
    fn capabilities(&self) -> storage_api::Capabilities {
        self.inner.capabilities()
    }
    async fn get(&self, key: &[u8]) -> storage_api::Result<Option<storage_api::Entry>> {
        self.inner.get(key).await
    }
    async fn put(
        &self,
        key: &[u8],
        value: &[u8],
        options: PutOptions,
    ) -> storage_api::Result<storage_api::Version> {
        self.inner.put(key, value, options).await
    }
    async fn delete(&self, key: &[u8], c: storage_api::Condition) -> storage_api::Result<bool> {
        self.inner.delete(key, c).await
    }
    async fn scan(
        &self,
        options: storage_api::ScanOptions,
    ) -> storage_api::Result<Vec<storage_api::Entry>> {
        let n = self.scans.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
        if n == self.trigger {
            self.inner
                .put(b"zz-late", b"1", PutOptions::default())
                .await?;
        }
        self.inner.scan(options).await
    }
    async fn batch(
        &self,
        ops: Vec<storage_api::WriteOp>,
    ) -> storage_api::Result<Vec<storage_api::WriteResult>> {
        self.inner.batch(ops).await
    }
    async fn purge_expired(&self) -> storage_api::Result<u64> {
        self.inner.purge_expired().await
    }
    async fn begin(
        &self,
        options: storage_api::TxOptions,
    ) -> storage_api::Result<Box<dyn storage_api::Transaction>> {
        self.inner.begin(options).await
    }
    async fn health_check(&self) -> storage_api::PoolHealth {
        self.inner.health_check().await
    }
    async fn validate_connections(&self) -> storage_api::Result<storage_api::ConnectionValidation> {
        self.inner.validate_connections().await
    }
    fn pool_metrics(&self) -> storage_api::PoolMetrics {
        self.inner.pool_metrics()
    }
    async fn close(&self) -> storage_api::CloseReport {
        self.inner.close().await
    }
}

/// An entry written to the source after it was counted makes the counts disagree,
/// and the copy says so instead of reporting success.
#[tokio::test]
async fn copy_fails_when_the_source_changes_under_it() {
    let dir = tempfile::tempdir().unwrap();
    let mut opts = options(&dir.path().join("a.db"));
    opts.limits.max_scan_limit = 10;
    let inner = open_with(Backend::Sqlx, opts).await.unwrap();
    fill(&*inner, "k/", 95).await;
    // 95 entries in pages of 10: the count pass makes 10 scans; the 12th is in the copy.
    let source = GrowsDuringCopy {
        inner: inner.clone(),
        scans: Default::default(),
        trigger: 12,
    };
    let target = open_with(Backend::Deadpool, options(&dir.path().join("b.db")))
        .await
        .unwrap();
    let e = copy(&source, &*target, &Progress::hidden())
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Conflict, "{e}");
    assert!(
        e.message().contains("source 95, copied 96, target 96"),
        "{e}"
    );
    inner.close().await;
    target.close().await;
}
