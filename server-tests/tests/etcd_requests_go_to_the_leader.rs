//! An etcd store sends its requests to the member that leads the cluster
//! `POOLEDSTORE_TEST_ETCD_URL` names, sparing the hop a follower takes to the leader for
//! every write and linearizable read. Counted with each member's own gRPC request counter
//! (`/metrics` on its client port), so run alone on the cluster (each test file runs on
//! its own).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::Duration;

use backend_etcd::EtcdStore;
use server_tests::etcd::{ScratchTable, endpoints};
use storage_api::{PooledStore, PutOptions};

/// What one member's `/metrics` says: whether it leads, and the key-value requests it
/// has handled.
#[derive(Debug, Clone, Copy)]
struct Member {
    leads: bool,
    kv_requests: f64,
}

fn member(endpoint: &str) -> Member {
    let mut stream = TcpStream::connect(endpoint)
        .unwrap_or_else(|e| panic!("connecting to the etcd member {endpoint}: {e}"));
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    // HTTP/1.0: the answer comes whole, not in chunks.
    write!(stream, "GET /metrics HTTP/1.0\r\nHost: {endpoint}\r\n\r\n").unwrap();
    let mut metrics = String::new();
    stream.read_to_string(&mut metrics).unwrap();
    let value = |line: &str| -> f64 {
        let number = line.rsplit(' ').next().unwrap_or_default();
        number
            .parse()
            .unwrap_or_else(|_| panic!("not a number: {line}"))
    };
    let leads = metrics
        .lines()
        .find(|l| l.starts_with("etcd_server_is_leader "))
        .map(value)
        .unwrap_or_else(|| panic!("{endpoint} reports no etcd_server_is_leader"));
    let kv_requests = metrics
        .lines()
        .filter(|l| l.starts_with("grpc_server_handled_total{"))
        .filter(|l| l.contains("grpc_service=\"etcdserverpb.KV\""))
        .map(value)
        .sum();
    Member {
        leads: leads == 1.0,
        kv_requests,
    }
}

fn members(endpoints: &[String]) -> Vec<Member> {
    endpoints.iter().map(|e| member(e)).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_and_writes_go_to_the_leader() {
    let table = ScratchTable::new("leader");
    let endpoints = endpoints(&table.url);
    assert!(endpoints.len() > 1, "needs a cluster of several members");
    let before = members(&endpoints);
    let leader = before.iter().position(|m| m.leads).expect("a leader");

    // Sixteen tasks at once: the pool opens channels for most of them.
    let store = Arc::new(EtcdStore::open(table.options()).await.unwrap());
    let tasks: Vec<_> = (0..16u32)
        .map(|task| {
            let store = Arc::clone(&store);
            tokio::spawn(async move {
                for i in 0..20u32 {
                    let key = format!("k{task}-{}", i % 4);
                    let value = i.to_be_bytes();
                    let options = PutOptions::default();
                    let version = store.put(key.as_bytes(), &value, options).await.unwrap();
                    let read = store.get(key.as_bytes()).await.unwrap().unwrap();
                    assert_eq!(read.version, version);
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    assert!(
        store.pool_metrics().size > 1,
        "the pool opened one channel only"
    );
    store.close().await;

    let after = members(&endpoints);
    assert_eq!(
        after.iter().position(|m| m.leads),
        Some(leader),
        "the leader changed during the test; run it again"
    );
    let handled: Vec<f64> = before
        .iter()
        .zip(&after)
        .map(|(b, a)| a.kv_requests - b.kv_requests)
        .collect();
    let total: f64 = handled.iter().sum();
    assert!(total >= 640.0, "the members handled {handled:?} requests");
    // Spread evenly the leader would take a third; the store's probe at open may go to
    // any member.
    assert!(
        handled[leader] >= 0.9 * total,
        "the leader (member {leader}) handled {} of {total} requests: {handled:?}",
        handled[leader]
    );
}
