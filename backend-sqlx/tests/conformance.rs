//! The whole conformance kit against this backend on SQLite files, through the kit's
//! shared SQLite harness (`cargo test -p conformance` runs it too, in memory as well).

use std::sync::Arc;

use backend_sqlx::SqlxStore;
use conformance::SqliteHarness;
use storage_api::PooledStore;

fn harness() -> SqliteHarness {
    SqliteHarness::file("sqlx", |options| {
        Box::pin(async move {
            let store: Arc<dyn PooledStore> = Arc::new(SqlxStore::open(options).await?);
            Ok(store)
        })
    })
}

conformance::suite!(harness());
