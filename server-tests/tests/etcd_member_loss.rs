//! An etcd store under member loss, on a private 3-member cluster this test starts (and
//! always stops): concurrent writers and readers while a follower, then the leader, is
//! killed with SIGKILL. Operations resume after at most an election, health reports the
//! cluster degraded, every acknowledged write is there with its value afterwards, and no
//! write reported failed is half-applied. With two members of three killed, writes fail
//! within the acquire timeout with a retryable `Connection`; once they are back, the same
//! store works again.

use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use backend_etcd::EtcdStore;
use server_tests::etcd_cluster::PrivateCluster;
use storage_api::{ErrorKind, PooledStore, PutOptions, ScanOptions, StoreOptions, WriteOp};

const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(3);

/// What the workers saw.
#[derive(Debug, Default)]
struct History {
    /// Puts acknowledged: key, value.
    acknowledged: Vec<(Vec<u8>, Vec<u8>)>,
    /// Batches of three keys reported failed.
    failed_batches: Vec<Vec<Vec<u8>>>,
    /// Batches acknowledged.
    acknowledged_batches: Vec<Vec<Vec<u8>>>,
    /// When each write was acknowledged.
    successes: Vec<Instant>,
    /// When each probe write began and was acknowledged.
    probes: Vec<(Instant, Instant)>,
    /// Errors that were not retryable.
    fatal: Vec<String>,
}

fn options(url: &str) -> StoreOptions {
    let mut options = StoreOptions::new(url);
    options.table = "faults".into();
    options.max_connections = 8;
    options.acquire_timeout = ACQUIRE_TIMEOUT;
    options
}

/// Writes `w<worker>/<n>` keys (and every third round a batch) until told to stop.
async fn writer(
    store: Arc<EtcdStore>,
    worker: usize,
    stop: Arc<AtomicBool>,
    history: Arc<Mutex<History>>,
) {
    let mut n = 0u64;
    while !stop.load(Ordering::Relaxed) {
        n += 1;
        let key = format!("w{worker}/{n:06}").into_bytes();
        let value = format!("value {worker}-{n}").into_bytes();
        let put = store.put(&key, &value, PutOptions::default()).await;
        let batch_keys: Vec<Vec<u8>> = ["a", "b", "c"]
            .iter()
            .map(|s| format!("b{worker}/{n:06}/{s}").into_bytes())
            .collect();
        let batch = if n.is_multiple_of(3) {
            let ops = batch_keys
                .iter()
                .map(|k| WriteOp::put(k.clone(), b"batch".to_vec()))
                .collect();
            Some(store.batch(ops).await)
        } else {
            None
        };
        {
            let mut h = history.lock().unwrap();
            match put {
                Ok(_) => {
                    h.acknowledged.push((key, value));
                    h.successes.push(Instant::now());
                }
                Err(e) if e.is_retryable() => {}
                Err(e) => h.fatal.push(format!("put: {e}")),
            }
            match batch {
                Some(Ok(_)) => h.acknowledged_batches.push(batch_keys),
                Some(Err(e)) if e.is_retryable() => h.failed_batches.push(batch_keys),
                Some(Err(e)) => h.fatal.push(format!("batch: {e}")),
                None => {}
            }
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Writes `probe/<n>` every 20 ms, giving up on each after 300 ms (dropping it), so a
/// write hung on a dying member does not hide when the cluster serves again.
async fn prober(store: Arc<EtcdStore>, stop: Arc<AtomicBool>, history: Arc<Mutex<History>>) {
    let mut n = 0u64;
    while !stop.load(Ordering::Relaxed) {
        n += 1;
        let key = format!("probe/{n:06}").into_bytes();
        let started = Instant::now();
        let put = store.put(&key, b"probe", PutOptions::default());
        if let Ok(Ok(_)) = tokio::time::timeout(Duration::from_millis(300), put).await {
            let mut h = history.lock().unwrap();
            h.probes.push((started, Instant::now()));
            h.acknowledged.push((key, b"probe".to_vec()));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// How long after `from` the first write begun after it was acknowledged.
fn resumed_after(probes: &[(Instant, Instant)], from: Instant) -> Option<Duration> {
    probes
        .iter()
        .filter(|(began, _)| *began >= from)
        .map(|(_, acknowledged)| *acknowledged - from)
        .min()
}

/// Reads and scans until told to stop, recording errors that are not retryable.
async fn reader(store: Arc<EtcdStore>, stop: Arc<AtomicBool>, history: Arc<Mutex<History>>) {
    while !stop.load(Ordering::Relaxed) {
        let read = store.get(b"w0/000001").await.map(|_| ());
        let scan = store
            .scan(ScanOptions::prefix("w1/").with_limit(20))
            .await
            .map(|_| ());
        for result in [read, scan] {
            if let Err(e) = result
                && !e.is_retryable()
            {
                history.lock().unwrap().fatal.push(format!("read: {e}"));
            }
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// The longest stretch after `from` without an acknowledged write.
fn longest_gap_after(successes: &[Instant], from: Instant) -> Duration {
    let mut times: Vec<Instant> = successes.iter().copied().filter(|t| *t >= from).collect();
    times.sort();
    let mut previous = from;
    let mut longest = Duration::ZERO;
    for t in times {
        longest = longest.max(t - previous);
        previous = t;
    }
    longest
}

async fn wait_health(store: &EtcdStore, what: &str, done: impl Fn(&str, bool) -> bool) -> String {
    let started = Instant::now();
    loop {
        let health = store.health_check().await;
        if done(&health.detail, health.healthy) {
            return health.detail;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "{what}: health still says {health:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_store_survives_losing_a_follower_then_the_leader_and_recovers_from_losing_quorum() {
    let mut cluster = PrivateCluster::start(None).await;
    let store = Arc::new(EtcdStore::open(options(&cluster.url())).await.unwrap());
    let stop = Arc::new(AtomicBool::new(false));
    let history = Arc::new(Mutex::new(History::default()));
    let mut tasks = Vec::new();
    for worker in 0..3 {
        tasks.push(tokio::spawn(writer(
            Arc::clone(&store),
            worker,
            Arc::clone(&stop),
            Arc::clone(&history),
        )));
    }
    tasks.push(tokio::spawn(reader(
        Arc::clone(&store),
        Arc::clone(&stop),
        Arc::clone(&history),
    )));
    tasks.push(tokio::spawn(prober(
        Arc::clone(&store),
        Arc::clone(&stop),
        Arc::clone(&history),
    )));
    tokio::time::sleep(Duration::from_secs(1)).await;

    // A follower dies: writes go on; health says degraded.
    let leader = cluster.leader().await.expect("a leader");
    let follower = (leader + 1) % 3;
    let killed_follower = Instant::now();
    cluster.kill(follower);
    let detail = wait_health(&store, "after killing a follower", |d, healthy| {
        healthy && d.starts_with("degraded: 2/3 members answer")
    })
    .await;
    println!("health with a follower down: {detail}");
    tokio::time::sleep(Duration::from_secs(2)).await;
    let follower_gap = longest_gap_after(&history.lock().unwrap().successes, killed_follower);
    println!(
        "longest stretch without an acknowledged write after the follower died: {follower_gap:?}"
    );
    assert!(
        follower_gap < Duration::from_secs(2),
        "writes stalled {follower_gap:?} with a follower down"
    );
    cluster.restart(follower).await;
    wait_health(&store, "after restarting the follower", |d, healthy| {
        healthy && d.starts_with("3/3 members answer")
    })
    .await;

    // The leader dies: writes resume after an election.
    let leader = cluster.leader().await.expect("a leader");
    let killed_leader = Instant::now();
    cluster.kill(leader);
    tokio::time::sleep(Duration::from_secs(5)).await;
    let (resumed, leader_gap) = {
        let h = history.lock().unwrap();
        (
            resumed_after(&h.probes, killed_leader),
            longest_gap_after(&h.successes, killed_leader),
        )
    };
    let resumed = resumed.expect("no write succeeded within 5 s of the leader's death");
    println!(
        "unavailability window after the leader was killed: {resumed:?} (first write begun after the kill acknowledged)"
    );
    println!(
        "longest stretch without an acknowledged write by the steady writers: {leader_gap:?} (writes in flight on the dying leader wait for the request deadline)"
    );
    assert!(
        resumed < Duration::from_secs(4),
        "writes resumed only {resumed:?} after the leader died (election timeout 1 s)"
    );
    assert!(
        leader_gap <= ACQUIRE_TIMEOUT + Duration::from_millis(1500),
        "writers stalled {leader_gap:?}, past the request deadline"
    );
    let detail = wait_health(&store, "after killing the leader", |d, healthy| {
        healthy && d.starts_with("degraded: 2/3 members answer")
    })
    .await;
    println!("health with the old leader down: {detail}");
    cluster.restart(leader).await;

    stop.store(true, Ordering::Relaxed);
    for task in tasks {
        task.await.unwrap();
    }
    let history = Arc::try_unwrap(history).unwrap().into_inner().unwrap();
    assert!(
        history.fatal.is_empty(),
        "errors that are not retryable: {:?}",
        history.fatal
    );
    assert!(
        history.acknowledged.len() > 100,
        "only {} writes acknowledged",
        history.acknowledged.len()
    );
    for (key, value) in &history.acknowledged {
        let entry = store.get(key).await.unwrap();
        assert_eq!(
            entry.map(|e| e.value).as_deref(),
            Some(&value[..]),
            "acknowledged write of {} lost or changed",
            String::from_utf8_lossy(key)
        );
    }
    for keys in history
        .acknowledged_batches
        .iter()
        .chain(&history.failed_batches)
    {
        let mut present = 0;
        for key in keys {
            present += usize::from(store.get(key).await.unwrap().is_some());
        }
        let acknowledged = history.acknowledged_batches.contains(keys);
        assert!(
            present == 3 || (present == 0 && !acknowledged),
            "batch {} half-applied ({present} of 3 keys; acknowledged: {acknowledged})",
            String::from_utf8_lossy(&keys[0])
        );
    }
    println!(
        "{} puts and {} batches acknowledged, {} batches failed, none lost or half-applied",
        history.acknowledged.len(),
        history.acknowledged_batches.len(),
        history.failed_batches.len()
    );

    // Two of three die: writes fail within the acquire timeout, retryably.
    let survivor = cluster.leader().await.unwrap_or(0);
    let victims: Vec<usize> = (0..3).filter(|i| *i != survivor).collect();
    for victim in &victims {
        cluster.kill(*victim);
    }
    for attempt in 0..3 {
        let started = Instant::now();
        let result = tokio::time::timeout(
            ACQUIRE_TIMEOUT * 3,
            store.put(
                format!("noquorum/{attempt}").as_bytes(),
                b"v",
                PutOptions::default(),
            ),
        )
        .await
        .expect("a write without quorum hung");
        let waited = started.elapsed();
        let error = result.expect_err("a write succeeded without a quorum");
        assert_eq!(error.kind(), ErrorKind::Connection, "{error}");
        assert!(error.is_retryable());
        assert!(
            waited <= ACQUIRE_TIMEOUT + Duration::from_millis(1500),
            "a write without quorum failed only after {waited:?}"
        );
        println!("write without quorum failed after {waited:?}: {error}");
    }
    let health = store.health_check().await;
    assert!(!health.healthy, "health without quorum: {health:?}");
    println!("health without quorum: {}", health.detail);

    // They come back: the same store recovers.
    for victim in &victims {
        cluster.restart(*victim).await;
    }
    let started = Instant::now();
    loop {
        match store.put(b"recovered", b"yes", PutOptions::default()).await {
            Ok(_) => break,
            Err(e) => {
                assert!(e.is_retryable(), "{e}");
                assert!(
                    started.elapsed() < Duration::from_secs(30),
                    "no recovery: {e}"
                );
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }
    println!(
        "writes recovered {:?} after the members were back",
        started.elapsed()
    );
    assert_eq!(
        store.get(b"recovered").await.unwrap().unwrap().value,
        b"yes"
    );
    wait_health(&store, "after the members came back", |d, healthy| {
        healthy && d.starts_with("3/3 members answer")
    })
    .await;
    store.close().await;
}
