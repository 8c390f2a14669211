//! Compare-and-swap under load: concurrent conditional puts never lose an update.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use storage_api::{ErrorKind, PutOptions, Version};

use crate::check::{CaseResult, Expect, Failure, Verdict, within};
use crate::context::Ctx;

const TASKS: usize = 4;
const ATTEMPTS: usize = 25;

/// Concurrent `if_absent` creation succeeds exactly once; concurrent `if_version`
/// increments never lose an update: the final value equals the number of successful
/// swaps, and every success got its own version.
pub(crate) async fn cas_counter(ctx: Ctx) -> CaseResult {
    let store = ctx.open_default().await?;
    let creators: Vec<_> = (0..TASKS)
        .map(|_| {
            let store = Arc::clone(&store);
            tokio::spawn(async move { store.put(b"counter", b"0", PutOptions::if_absent()).await })
        })
        .collect();
    let mut created = 0;
    for task in creators {
        match within(Duration::from_secs(30), "if_absent creator", task).await? {
            Ok(Ok(_)) => created += 1,
            Ok(Err(e)) if e.kind() == ErrorKind::ConditionFailed => {}
            Ok(Err(e)) => fail!("concurrent put if_absent: unexpected error {e}"),
            Err(e) => fail!("creator task panicked: {e}"),
        }
    }
    ensure_eq!(created, 1, "concurrent if_absent puts that succeeded");

    let workers: Vec<_> = (0..TASKS)
        .map(|_| {
            let store = Arc::clone(&store);
            tokio::spawn(async move {
                let mut won: Vec<Version> = Vec::new();
                for _ in 0..ATTEMPTS {
                    let entry = store.get(b"counter").await.must("get counter")?;
                    let Some(entry) = entry else {
                        fail!("the counter disappeared");
                    };
                    let n: u64 = std::str::from_utf8(&entry.value)
                        .ok()
                        .and_then(|s| s.parse().ok())
                        .ok_or_else(|| Failure::new("the counter is not a number"))?;
                    let next = (n + 1).to_string();
                    // Work between the read and the swap lets other tasks interleave,
                    // as they would in an application.
                    tokio::task::yield_now().await;
                    match store
                        .put(
                            b"counter",
                            next.as_bytes(),
                            PutOptions::if_version(entry.version),
                        )
                        .await
                    {
                        Ok(version) => {
                            if version <= entry.version {
                                fail!(
                                    "a swap from version {} returned version {version}",
                                    entry.version
                                );
                            }
                            won.push(version);
                        }
                        Err(e) if e.kind() == ErrorKind::ConditionFailed => {}
                        Err(e) => fail!("put if_version under contention: unexpected error {e}"),
                    }
                }
                Ok::<_, Failure>(won)
            })
        })
        .collect();
    let mut versions = BTreeSet::new();
    let mut successes = 0usize;
    for task in workers {
        let won = within(Duration::from_secs(60), "compare-and-swap worker", task)
            .await?
            .map_err(|e| Failure::new(format!("worker panicked: {e}")))??;
        successes += won.len();
        versions.extend(won);
    }
    let last = store.get(b"counter").await.must("get counter")?;
    let Some(last) = last else {
        fail!("the counter disappeared");
    };
    let value = String::from_utf8_lossy(&last.value).into_owned();
    ensure_eq!(
        value,
        successes.to_string(),
        "counter value after {successes} successful swaps (a lost update)"
    );
    ensure_eq!(
        versions.len(),
        successes,
        "distinct versions handed to successful swaps"
    );
    ensure_eq!(
        versions.last().copied(),
        Some(last.version),
        "the counter's version is the last successful swap's"
    );
    ensure!(
        successes > 0,
        "no swap succeeded out of {}",
        TASKS * ATTEMPTS
    );
    Ok(Verdict::Passed)
}
