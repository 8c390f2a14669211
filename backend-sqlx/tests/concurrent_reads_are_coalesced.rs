//! Concurrent point reads are answered together by one multi-key statement; every
//! caller still gets exactly the entry under its own key, absent and expired keys
//! included, with repeated keys and more readers than one statement takes.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{KINDS, open, options_on_manual_clock, temp_dir};
use storage_api::{PooledStore, PutOptions};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_concurrent_reader_gets_its_own_key() {
    for kind in KINDS {
        let dir = temp_dir();
        let (opts, clock) = options_on_manual_clock(kind, &dir);
        let store = Arc::new(open(opts).await);
        // Keys 0..40: multiples of 4 expire, multiples of 5 are never written.
        let mut versions = Vec::new();
        for i in 0..40u32 {
            let key = format!("key/{i}");
            let version = if i % 5 == 0 {
                None
            } else {
                let ttl = (i % 4 == 0).then_some(Duration::from_secs(10));
                let options = PutOptions {
                    ttl,
                    ..PutOptions::default()
                };
                Some(
                    store
                        .put(key.as_bytes(), key.as_bytes(), options)
                        .await
                        .unwrap(),
                )
            };
            versions.push(version);
        }
        clock.advance(Duration::from_secs(60));
        let versions = Arc::new(versions);
        for round in 0..20u32 {
            // 150 readers (more than one statement's 64 keys), each key read by several.
            let readers: Vec<_> = (0..150u32)
                .map(|r| {
                    let (store, versions) = (Arc::clone(&store), Arc::clone(&versions));
                    tokio::spawn(async move {
                        let i = (r * 7 + round) % 40;
                        let key = format!("key/{i}");
                        let got = store.get(key.as_bytes()).await.unwrap();
                        let live = versions[i as usize].filter(|_| i % 4 != 0);
                        match (got, live) {
                            (None, None) => {}
                            (Some(entry), Some(version)) => {
                                assert_eq!(entry.key, key.as_bytes());
                                assert_eq!(entry.value, key.as_bytes());
                                assert_eq!(entry.version, version);
                            }
                            (got, live) => panic!("{key}: got {got:?}, expected {live:?}"),
                        }
                    })
                })
                .collect();
            for reader in readers {
                reader.await.unwrap_or_else(|e| panic!("{kind:?}: {e}"));
            }
        }
        store.close().await;
    }
}
