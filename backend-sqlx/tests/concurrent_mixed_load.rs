//! Many tasks reading, writing, scanning and sampling metrics at once leave a
//! healthy pool whose gauges reconcile.

mod common;

use std::sync::Arc;

use common::{KINDS, assert_reconciles, open, options, settle, temp_dir};
use storage_api::{PooledStore, PutOptions, ScanOptions, WriteOp};

const TASKS: usize = 20;
const ROUNDS: usize = 25;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn twenty_tasks_mixing_operations_leave_a_healthy_reconciled_pool() {
    for kind in KINDS {
        let dir = temp_dir();
        let mut opts = options(kind, &dir);
        opts.max_connections = 5;
        let store: Arc<dyn PooledStore> = Arc::new(open(opts).await);

        let mut tasks = Vec::new();
        for task in 0..TASKS {
            let store = Arc::clone(&store);
            tasks.push(tokio::spawn(async move {
                for round in 0..ROUNDS {
                    let key = format!("t{task:02}/{round:03}").into_bytes();
                    match (task + round) % 5 {
                        0 | 1 => {
                            store.put(&key, &key, PutOptions::default()).await?;
                        }
                        2 => {
                            store.get(&key).await?;
                        }
                        3 => {
                            let page = store
                                .scan(ScanOptions::prefix(b"t".to_vec()).with_limit(20))
                                .await?;
                            assert!(page.windows(2).all(|w| w[0].key < w[1].key));
                        }
                        _ => {
                            let m = store.pool_metrics();
                            assert!(m.size <= m.max, "{m:?}");
                            store
                                .batch(vec![
                                    WriteOp::put(key.clone(), b"b".to_vec()),
                                    WriteOp::delete(key),
                                ])
                                .await?;
                        }
                    }
                }
                Ok::<_, storage_api::StoreError>(())
            }));
        }
        for task in tasks {
            task.await
                .expect("task panicked")
                .expect("operation failed");
        }

        let health = store.health_check().await;
        assert!(health.healthy, "{kind:?}: {health:?}");
        let m = settle(store.as_ref()).await;
        assert_eq!(m.in_use, 0, "{kind:?}: {m:?}");
        assert_eq!(m.pending, 0, "{kind:?}: {m:?}");
        assert_reconciles(&m);
        assert_eq!(m.timeouts, 0);
        // Every put of rounds where (task + round) % 5 is 0 or 1 is visible.
        let all = store
            .scan(ScanOptions::prefix(b"t".to_vec()))
            .await
            .unwrap();
        let expected = (0..TASKS)
            .flat_map(|t| (0..ROUNDS).map(move |r| (t, r)))
            .filter(|(t, r)| (t + r) % 5 <= 1)
            .count();
        assert_eq!(all.len(), expected, "{kind:?}");
        store.close().await;
    }
}
