//! Transactional histories checked for anomalies, the way Elle checks Jepsen histories:
//! concurrent transactions append unique elements to list-valued keys, read them and
//! scan them, commit or abort; the final lists give every key's version order, from
//! which the checker derives write-write, write-read and read-write (anti-)dependency
//! edges between committed transactions and searches the graph for cycles.
//!
//! Found besides cycles (G0 dirty writes, G1c circular information flow, G-single read
//! skew, G2 write skew and phantoms): aborted reads and writes (G1a), intermediate
//! reads (G1b), lost updates, reads that are not a prefix of the final order, and
//! transactions that do not see their own writes.

use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Duration;

use storage_api::{ErrorKind, PooledStore, PutOptions, ScanOptions, StoreError, TxOptions};

use super::support::{Need, SplitMix};
use crate::check::{CaseResult, Expect, Failure, Verdict};
use crate::context::Ctx;

/// Keys the transactions contend on: few, so conflicts are frequent.
const KEYS: usize = 4;
/// Concurrent workers, one connection each.
const WORKERS: usize = 4;
/// Transactions each worker runs.
const TXNS_PER_WORKER: usize = 30;

fn key(index: usize) -> Vec<u8> {
    format!("h/{index}").into_bytes()
}

fn encode(list: &[u32]) -> Vec<u8> {
    let text: Vec<String> = list.iter().map(u32::to_string).collect();
    text.join(",").into_bytes()
}

fn decode(value: &[u8]) -> Result<Vec<u32>, Failure> {
    if value.is_empty() {
        return Ok(Vec::new());
    }
    let text = std::str::from_utf8(value)
        .map_err(|_| Failure::new(format!("a list value is not text: {value:?}")))?;
    text.split(',')
        .map(|n| {
            n.parse()
                .map_err(|_| Failure::new(format!("a list value does not parse: {text:?}")))
        })
        .collect()
}

/// One operation of a recorded transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Op {
    /// A read of one key (also the read half of every append).
    Read { key: usize, seen: Vec<u32> },
    /// An append of a unique element.
    Append { key: usize, element: u32 },
    /// A scan of every key: one list per key, empty when absent.
    Scan { seen: Vec<Vec<u32>> },
}

/// A transaction as recorded: its operations and whether it committed.
#[derive(Debug, Clone)]
struct Txn {
    worker: usize,
    ops: Vec<Op>,
    committed: bool,
}

/// An error a transaction may end with under contention: the transaction aborted.
fn aborts(e: &StoreError) -> bool {
    matches!(e.kind(), ErrorKind::Conflict | ErrorKind::Busy)
}

/// Runs one worker's transactions and records them.
async fn worker(
    store: Arc<dyn PooledStore>,
    worker: usize,
    seed: u64,
) -> Result<Vec<Txn>, Failure> {
    let mut rng = SplitMix::new(seed ^ (worker as u64).wrapping_mul(0x9E37_79B9));
    let mut txns = Vec::new();
    for n in 0..TXNS_PER_WORKER {
        let read_only = rng.below(6) == 0;
        let mut txn = Txn {
            worker,
            ops: Vec::new(),
            committed: false,
        };
        let mut tx = match store.begin(TxOptions { read_only }).await {
            Ok(tx) => tx,
            Err(e) if aborts(&e) => continue,
            Err(e) => fail!("worker {worker}: begin: unexpected error {e}"),
        };
        let mut aborted = false;
        for _ in 0..2 + rng.below(3) {
            let choice = rng.below(10);
            let result: Result<(), StoreError> = async {
                if choice < 3 {
                    let k = rng.below(KEYS);
                    let seen = tx.get(&key(k)).await?.map(|e| e.value).unwrap_or_default();
                    txn.ops.push(Op::Read {
                        key: k,
                        seen: decode(&seen)
                            .map_err(|f| StoreError::new(ErrorKind::Corrupt, f.message))?,
                    });
                } else if choice < 5 || read_only {
                    let entries = tx.scan(ScanOptions::prefix("h/")).await?;
                    let mut seen = vec![Vec::new(); KEYS];
                    for entry in entries {
                        let index = std::str::from_utf8(&entry.key[2..])
                            .ok()
                            .and_then(|i| i.parse::<usize>().ok())
                            .filter(|i| *i < KEYS && entry.key.starts_with(b"h/"))
                            .ok_or_else(|| {
                                StoreError::new(ErrorKind::Corrupt, "a scan returned a stray key")
                            })?;
                        seen[index] = decode(&entry.value)
                            .map_err(|f| StoreError::new(ErrorKind::Corrupt, f.message))?;
                    }
                    txn.ops.push(Op::Scan { seen });
                } else {
                    let k = rng.below(KEYS);
                    let element = (worker * 100_000 + n * 10 + txn.ops.len()) as u32 + 1;
                    let current = tx.get(&key(k)).await?.map(|e| e.value).unwrap_or_default();
                    let mut list = decode(&current)
                        .map_err(|f| StoreError::new(ErrorKind::Corrupt, f.message))?;
                    txn.ops.push(Op::Read {
                        key: k,
                        seen: list.clone(),
                    });
                    list.push(element);
                    tx.put(&key(k), &encode(&list), PutOptions::default())
                        .await?;
                    txn.ops.push(Op::Append { key: k, element });
                }
                Ok(())
            }
            .await;
            match result {
                Ok(()) => {}
                Err(e) if aborts(&e) => {
                    aborted = true;
                    break;
                }
                Err(e) => fail!("worker {worker}, transaction {n}: unexpected error {e}"),
            }
            if rng.below(3) == 0 {
                tokio::time::sleep(Duration::from_millis(1)).await;
            } else {
                tokio::task::yield_now().await;
            }
        }
        if aborted {
            drop(tx);
        } else if rng.below(10) == 0 {
            tx.rollback()
                .await
                .must(format_args!("worker {worker}: rollback"))?;
        } else {
            match tx.commit().await {
                Ok(()) => txn.committed = true,
                Err(e) if aborts(&e) => {}
                Err(e) => fail!("worker {worker}, transaction {n}: commit: unexpected error {e}"),
            }
        }
        txns.push(txn);
    }
    Ok(txns)
}

/// Concurrent transactions of reads, scans and appends, committed or aborted, form a
/// history with no anomaly: no aborted or intermediate read, no lost update, and no
/// cycle of ww, wr and rw dependencies among committed transactions (serializable).
pub(crate) async fn tx_histories(ctx: Ctx) -> CaseResult {
    let store = ctx.open(|o| o.max_connections = 2 * WORKERS as u32).await?;
    require!(store, Need::Transactions);
    let seed = ctx.seed();
    let tasks: Vec<_> = (0..WORKERS)
        .map(|w| tokio::spawn(worker(Arc::clone(&store), w, seed)))
        .collect();
    let mut txns = Vec::new();
    for task in tasks {
        let recorded = task
            .await
            .map_err(|e| Failure::new(format!("a worker panicked: {e}")))??;
        txns.extend(recorded);
    }
    let mut finals = Vec::new();
    for k in 0..KEYS {
        let value = store.get(&key(k)).await.must("final read")?;
        finals.push(decode(&value.map(|e| e.value).unwrap_or_default())?);
    }
    let committed = txns.iter().filter(|t| t.committed).count();
    ensure!(
        committed >= TXNS_PER_WORKER,
        "only {committed} of {} transactions committed: the history is too thin to check",
        txns.len()
    );
    match check_history(&txns, &finals) {
        Ok(()) => Ok(Verdict::Passed),
        Err(anomaly) => fail!(
            "transactional history anomaly ({} transactions, {committed} committed): {anomaly}",
            txns.len()
        ),
    }
}

/// The kind of a dependency edge.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Dep {
    /// T1 wrote a version T2 overwrote.
    Ww,
    /// T2 read a version T1 wrote.
    Wr,
    /// T1 read a version T2 overwrote (anti-dependency); `scan` when seen by a scan.
    Rw { scan: bool },
}

/// Checks a recorded history against the final list of every key; `Err` describes the
/// first anomaly found.
fn check_history(txns: &[Txn], finals: &[Vec<u32>]) -> Result<(), String> {
    // Who wrote each element, and each transaction's appends per key in order.
    let mut writer: HashMap<u32, usize> = HashMap::new();
    let mut appends: Vec<HashMap<usize, Vec<u32>>> = vec![HashMap::new(); txns.len()];
    for (t, txn) in txns.iter().enumerate() {
        for op in &txn.ops {
            if let Op::Append { key, element } = op {
                writer.insert(*element, t);
                appends[t].entry(*key).or_default().push(*element);
            }
        }
    }
    for (k, list) in finals.iter().enumerate() {
        let mut seen = HashSet::new();
        for e in list {
            if !seen.insert(*e) {
                return Err(format!("element {e} appears twice in key {k}: {list:?}"));
            }
            match writer.get(e) {
                None => return Err(format!("key {k} holds element {e} nobody appended")),
                Some(&t) if !txns[t].committed => {
                    return Err(format!(
                        "G1a aborted write: key {k} holds element {e} of aborted {}",
                        describe(txns, t)
                    ));
                }
                Some(_) => {}
            }
        }
    }
    for t in (0..txns.len()).filter(|t| txns[*t].committed) {
        for (k, elements) in &appends[t] {
            if let Some(e) = elements.iter().find(|e| !finals[*k].contains(e)) {
                return Err(format!(
                    "lost update: element {e} appended to key {k} by committed {} is missing \
                     from the final list {:?}",
                    describe(txns, t),
                    finals[*k]
                ));
            }
        }
    }

    let mut edges: HashMap<(usize, usize), Dep> = HashMap::new();
    let mut add = |from: usize, to: usize, dep: Dep| {
        if from != to {
            edges.entry((from, to)).or_insert(dep);
        }
    };
    for list in finals {
        for pair in list.windows(2) {
            add(writer[&pair[0]], writer[&pair[1]], Dep::Ww);
        }
    }
    for (t, txn) in txns.iter().enumerate().filter(|(_, t)| t.committed) {
        let mut own: HashMap<usize, Vec<u32>> = HashMap::new();
        for op in &txn.ops {
            let reads: Vec<(usize, &Vec<u32>, bool)> = match op {
                Op::Read { key, seen } => vec![(*key, seen, false)],
                Op::Scan { seen } => seen.iter().enumerate().map(|(k, s)| (k, s, true)).collect(),
                Op::Append { key, element } => {
                    own.entry(*key).or_default().push(*element);
                    continue;
                }
            };
            for (k, seen, scan) in reads {
                let what = if scan { "scan" } else { "read" };
                let final_list = &finals[k];
                if !final_list.starts_with(seen) {
                    if let Some(e) = seen.iter().find(|e| {
                        writer
                            .get(e)
                            .is_some_and(|w| !txns[*w].committed && *w != t)
                    }) {
                        return Err(format!(
                            "G1a aborted read: {} {what} key {k} = {seen:?}, with element {e} \
                             of aborted {}",
                            describe(txns, t),
                            describe(txns, writer[e])
                        ));
                    }
                    return Err(format!(
                        "{} {what} key {k} = {seen:?}, not a prefix of its final order \
                         {final_list:?}",
                        describe(txns, t)
                    ));
                }
                if let Some(mine) = own.get(&k)
                    && seen.last() != mine.last()
                {
                    return Err(format!(
                        "{} {what} key {k} = {seen:?} after appending {mine:?}: it does not \
                         see its own writes",
                        describe(txns, t)
                    ));
                }
                if let Some(last) = seen.last() {
                    let w = writer[last];
                    if w != t {
                        let theirs = &appends[w][&k];
                        if theirs.last() != Some(last) {
                            return Err(format!(
                                "G1b intermediate read: {} {what} key {k} = {seen:?}, ending in \
                                 {last}, which {} overwrote with {theirs:?}",
                                describe(txns, t),
                                describe(txns, w)
                            ));
                        }
                        add(w, t, Dep::Wr);
                    }
                }
                if let Some(next) = final_list.get(seen.len()) {
                    add(t, writer[next], Dep::Rw { scan });
                }
            }
        }
    }
    match find_cycle(txns.len(), &edges) {
        None => Ok(()),
        Some(cycle) => Err(describe_cycle(txns, &cycle, &edges)),
    }
}

/// A cycle in the dependency graph, as the list of its transactions, if there is one.
fn find_cycle(nodes: usize, edges: &HashMap<(usize, usize), Dep>) -> Option<Vec<usize>> {
    let mut out: Vec<Vec<usize>> = vec![Vec::new(); nodes];
    for &(from, to) in edges.keys() {
        out[from].push(to);
    }
    for list in &mut out {
        list.sort_unstable();
    }
    // Iterative depth-first search with colours; a grey target closes a cycle.
    let mut colour = vec![0u8; nodes];
    let mut parent = vec![usize::MAX; nodes];
    for root in 0..nodes {
        if colour[root] != 0 {
            continue;
        }
        let mut stack = vec![(root, 0usize)];
        colour[root] = 1;
        while let Some((node, next)) = stack.last_mut() {
            let node = *node;
            if let Some(&to) = out[node].get(*next) {
                *next += 1;
                match colour[to] {
                    0 => {
                        colour[to] = 1;
                        parent[to] = node;
                        stack.push((to, 0));
                    }
                    1 => {
                        let mut cycle = vec![node];
                        let mut at = node;
                        while at != to {
                            at = parent[at];
                            cycle.push(at);
                        }
                        cycle.reverse();
                        return Some(cycle);
                    }
                    _ => {}
                }
            } else {
                colour[node] = 2;
                stack.pop();
            }
        }
    }
    None
}

fn describe(txns: &[Txn], t: usize) -> String {
    let txn = &txns[t];
    let status = if txn.committed {
        "committed"
    } else {
        "aborted"
    };
    format!("T{t} (worker {}, {status}, ops {:?})", txn.worker, txn.ops)
}

/// Names a cycle after the anomaly it shows and lists its transactions and edges.
fn describe_cycle(txns: &[Txn], cycle: &[usize], edges: &HashMap<(usize, usize), Dep>) -> String {
    let deps: Vec<Dep> = (0..cycle.len())
        .map(|i| edges[&(cycle[i], cycle[(i + 1) % cycle.len()])])
        .collect();
    let rw = deps.iter().filter(|d| matches!(d, Dep::Rw { .. })).count();
    let phantom = deps.contains(&Dep::Rw { scan: true });
    let kind = match (rw, deps.iter().all(|d| *d == Dep::Ww)) {
        (_, true) => "G0 dirty write (a cycle of write-write dependencies)",
        (0, false) => "G1c circular information flow (ww/wr cycle)",
        (1, _) => "G-single read skew (a cycle with one anti-dependency)",
        _ if phantom => "G2 phantom / write skew (anti-dependency cycle through a scan)",
        _ => "G2 write skew (a cycle of anti-dependencies)",
    };
    let mut text = format!("{kind}: not serializable.");
    for (i, t) in cycle.iter().enumerate() {
        let dep = match deps[i] {
            Dep::Ww => "ww",
            Dep::Wr => "wr",
            Dep::Rw { scan: false } => "rw",
            Dep::Rw { scan: true } => "rw (scan)",
        };
        let _ = write!(
            text,
            "\n  {} -{dep}-> T{}",
            describe(txns, *t),
            cycle[(i + 1) % cycle.len()]
        );
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn txn(ops: Vec<Op>, committed: bool) -> Txn {
        Txn {
            worker: 0,
            ops,
            committed,
        }
    }

    fn read(key: usize, seen: &[u32]) -> Op {
        Op::Read {
            key,
            seen: seen.to_vec(),
        }
    }

    #[test]
    fn serial_history_passes() {
        let txns = vec![
            txn(vec![read(0, &[]), Op::Append { key: 0, element: 1 }], true),
            txn(vec![read(0, &[1]), Op::Append { key: 0, element: 2 }], true),
        ];
        assert_eq!(
            check_history(&txns, &[vec![1, 2], vec![], vec![], vec![]]),
            Ok(())
        );
    }

    #[test]
    fn write_skew_is_a_g2_cycle() {
        let txns = vec![
            txn(vec![read(1, &[]), Op::Append { key: 0, element: 1 }], true),
            txn(vec![read(0, &[]), Op::Append { key: 1, element: 2 }], true),
        ];
        let err = check_history(&txns, &[vec![1], vec![2], vec![], vec![]]).unwrap_err();
        assert!(err.starts_with("G2 write skew"), "{err}");
    }

    #[test]
    fn lost_update_and_aborted_read_are_found() {
        let lost = vec![
            txn(vec![read(0, &[]), Op::Append { key: 0, element: 1 }], true),
            txn(vec![read(0, &[]), Op::Append { key: 0, element: 2 }], true),
        ];
        let err = check_history(&lost, &[vec![2], vec![], vec![], vec![]]).unwrap_err();
        assert!(err.starts_with("lost update"), "{err}");
        let dirty = vec![
            txn(vec![Op::Append { key: 0, element: 1 }], false),
            txn(vec![read(0, &[1])], true),
        ];
        let err = check_history(&dirty, &[vec![], vec![], vec![], vec![]]).unwrap_err();
        assert!(err.starts_with("G1a aborted read"), "{err}");
    }
}
