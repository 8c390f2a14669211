//! The bundled SQLite is one past the 3.51.x WAL bugs (a unix-VFS deadlock between a
//! closing and an opening connection, fixed in 3.51.2; a WAL-reset race that could
//! corrupt a database, fixed in 3.51.3), and health says which it is.

mod common;

use common::{KINDS, open, options, temp_dir};
use storage_api::PooledStore;

#[tokio::test]
async fn health_reports_a_sqlite_past_the_wal_fixes() {
    for kind in KINDS {
        let dir = temp_dir();
        let store = open(options(kind, &dir)).await;
        assert_eq!(store.engine_name(), "sqlite");
        let health = store.health_check().await;
        let version = health
            .server_version
            .clone()
            .expect("health names the version");
        let parts: Vec<u32> = version.split('.').map(|p| p.parse().unwrap()).collect();
        assert!(
            parts >= vec![3, 51, 3],
            "{kind:?}: SQLite {version} is older than 3.51.3"
        );
        store.close().await;
    }
}
