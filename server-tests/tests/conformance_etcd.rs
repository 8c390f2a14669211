//! The whole kit against the etcd backend on the cluster `POOLEDSTORE_TEST_ETCD_URL`
//! names (`.ci/run` starts a 3-member one and sets it); each test fails, saying how to
//! start the cluster, otherwise.
//!
//! Each store a case opens gets its own table, that is key prefix
//! (`ct_<pid>_<n>_<nanos>/`), whose keys are removed when the case ends.

use std::sync::Arc;
use std::sync::Mutex;

use backend_etcd::EtcdStore;
use conformance::Harness;
use server_tests::etcd::remove_tables;
use server_tests::etcd_url;
use server_tests::postgres::unique;
use storage_api::{PooledStore, StoreError, StoreOptions, async_trait};

/// Opens etcd stores, each under a table of its own.
struct EtcdHarness {
    url: String,
    tables: Mutex<Vec<String>>,
}

#[async_trait]
impl Harness for EtcdHarness {
    fn name(&self) -> String {
        "etcd".into()
    }

    fn isolate(&self, mut options: StoreOptions) -> StoreOptions {
        let table = unique("ct");
        self.tables
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(table.clone());
        options.url = self.url.clone();
        options.table = table;
        options
    }

    async fn open(&self, options: StoreOptions) -> Result<Arc<dyn PooledStore>, StoreError> {
        Ok(Arc::new(EtcdStore::open(options).await?))
    }
}

impl Drop for EtcdHarness {
    /// Removes every table the case used.
    fn drop(&mut self) {
        let tables = self.tables.lock().unwrap_or_else(|p| p.into_inner());
        remove_tables(&self.url, &tables);
    }
}

/// One `#[test]` per case of the kit, each failing when no cluster is configured.
macro_rules! etcd_suite {
    (; $($case:ident),* $(,)?) => {
        $(
            #[test]
            fn $case() {
                let url = etcd_url();
                conformance::__private::run_test(stringify!($case), || EtcdHarness {
                    url,
                    tables: Mutex::new(Vec::new()),
                });
            }
        )*
    };
}

conformance::__cases!([etcd_suite]);
