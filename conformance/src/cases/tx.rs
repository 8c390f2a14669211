//! Transaction cases: isolation, rollback and drop, read-only transactions,
//! serializability under contention, and the bank-transfer invariant.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::time::{Duration, Instant};

use storage_api::{
    Condition, Entry, ErrorKind, PooledStore, PutOptions, ScanOptions, StoreError, Transaction,
    TxOptions,
};

use super::support::{Need, SplitMix, read, show, wait_quiet};
use crate::check::{CaseResult, Expect, Failure, Verdict, within};
use crate::context::Ctx;

const READ_WRITE: TxOptions = TxOptions { read_only: false };
const READ_ONLY: TxOptions = TxOptions { read_only: true };

fn number(entry: Option<Entry>, what: &str) -> Result<i64, Failure> {
    let Some(entry) = entry else {
        fail!("{what}: the entry is missing");
    };
    std::str::from_utf8(&entry.value)
        .ok()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| Failure::new(format!("{what}: the value is not a number")))
}

/// A transaction error the contract allows under contention.
fn retryable(e: &StoreError) -> bool {
    matches!(
        e.kind(),
        ErrorKind::Conflict | ErrorKind::Busy | ErrorKind::Timeout
    )
}

/// A transaction's writes are invisible to others until commit; it sees its own writes
/// and the data committed before it; a read-only transaction reads repeatably.
pub(crate) async fn tx_isolation(ctx: Ctx) -> CaseResult {
    let store = ctx.open_default().await?;
    require!(store, Need::Transactions);
    let vb = store
        .put(b"base", b"committed", PutOptions::default())
        .await
        .must("put base")?;
    let mut tx = store.begin(READ_WRITE).await.must("begin")?;
    let seen = tx
        .get(b"base")
        .await
        .must("tx get base")?
        .map(|e| e.version);
    ensure_eq!(
        seen,
        Some(vb),
        "a transaction's view of data committed before it"
    );
    let va = tx
        .put(b"a", b"tx", PutOptions::default())
        .await
        .must("tx put a")?;
    let removed = tx
        .delete(b"base", Condition::Any)
        .await
        .must("tx delete base")?;
    ensure!(removed, "tx delete of a live key returned false");

    ensure!(
        read(&store, b"a").await?.is_none(),
        "an uncommitted transaction write is visible outside it"
    );
    ensure_eq!(
        read(&store, b"base").await?.map(|(_, v)| v),
        Some(vb),
        "base outside a transaction that deleted it but has not committed"
    );
    let outside = store
        .scan(ScanOptions::default())
        .await
        .must("scan outside")?;
    let keys: Vec<String> = outside.iter().map(|e| show(&e.key)).collect();
    ensure_eq!(
        keys,
        vec![show(b"base")],
        "scan outside an uncommitted transaction"
    );

    let own = tx.get(b"a").await.must("tx get a")?.map(|e| e.version);
    ensure_eq!(own, Some(va), "a transaction reading its own write");
    let inside = tx.scan(ScanOptions::default()).await.must("tx scan")?;
    let keys: Vec<String> = inside.iter().map(|e| show(&e.key)).collect();
    ensure_eq!(keys, vec![show(b"a")], "scan inside the transaction");
    tx.commit().await.must("commit")?;

    ensure_eq!(
        read(&store, b"a").await?,
        Some((b"tx".to_vec(), va)),
        "a after commit"
    );
    ensure!(
        read(&store, b"base").await?.is_none(),
        "base after a committed delete"
    );

    let v1 = store
        .put(b"r", b"1", PutOptions::default())
        .await
        .must("put r")?;
    let mut reader = store.begin(READ_ONLY).await.must("begin read-only")?;
    let first = reader
        .get(b"r")
        .await
        .must("read-only get r")?
        .map(|e| e.version);
    ensure_eq!(first, Some(v1), "read-only transaction's first read of r");
    match store.put(b"r", b"2", PutOptions::default()).await {
        Ok(_) => {
            let second = reader.get(b"r").await.must("read-only get r again")?;
            ensure!(
                second.as_ref().map(|e| (e.value.as_slice(), e.version)) == Some((b"1", v1)),
                "a read-only transaction saw a write committed after its first read \
                 (non-repeatable read): {second:?}"
            );
        }
        // A lock wait that ran out: `Busy`, or `Conflict` where the engine calls it one.
        Err(e) if matches!(e.kind(), ErrorKind::Busy | ErrorKind::Conflict) => {}
        Err(e) => fail!("put r while a read-only transaction is open: unexpected error {e}"),
    }
    reader.commit().await.must("commit read-only")?;
    Ok(Verdict::Passed)
}

/// `rollback` discards every write of the transaction and frees its connection.
pub(crate) async fn tx_rollback(ctx: Ctx) -> CaseResult {
    let store = ctx.open_default().await?;
    require!(store, Need::Transactions);
    let vk = store
        .put(b"keep", b"v", PutOptions::default())
        .await
        .must("put keep")?;
    let mut tx = store.begin(READ_WRITE).await.must("begin")?;
    tx.put(b"new", b"v", PutOptions::default())
        .await
        .must("tx put new")?;
    tx.delete(b"keep", Condition::Any)
        .await
        .must("tx delete keep")?;
    tx.put(b"keep2", b"v", PutOptions::if_absent())
        .await
        .must("tx put keep2")?;
    tx.rollback().await.must("rollback")?;
    ensure!(
        read(&store, b"new").await?.is_none(),
        "a rolled-back put is visible"
    );
    ensure!(
        read(&store, b"keep2").await?.is_none(),
        "a rolled-back put is visible"
    );
    ensure_eq!(
        read(&store, b"keep").await?,
        Some((b"v".to_vec(), vk)),
        "keep after a rolled-back delete"
    );
    let quiet = wait_quiet(&store, Duration::from_secs(2), "after rollback").await?;
    ensure_eq!(quiet.in_use, 0, "connections in use after rollback");
    Ok(Verdict::Passed)
}

/// Dropping a transaction without commit rolls it back and returns its connection
/// (and write lock) promptly: a pool of one serves the next caller.
pub(crate) async fn tx_drop_rolls_back(ctx: Ctx) -> CaseResult {
    let store = ctx
        .open(|o| {
            o.max_connections = 1;
            o.acquire_timeout = Duration::from_secs(2);
            o.busy_timeout = Duration::from_secs(1);
        })
        .await?;
    require!(store, Need::Transactions);
    let vk = store
        .put(b"keep", b"v", PutOptions::default())
        .await
        .must("put keep")?;
    let limit = Duration::from_secs(8);
    for round in 0..3 {
        let mut tx = within(limit, "begin", store.begin(READ_WRITE))
            .await?
            .must(format_args!("begin (round {round})"))?;
        tx.put(b"new", b"v", PutOptions::default())
            .await
            .must("tx put new")?;
        tx.delete(b"keep", Condition::Any)
            .await
            .must("tx delete keep")?;
        drop(tx);
        within(limit, "put after dropping a transaction", async {
            store.put(b"other", b"v", PutOptions::default()).await
        })
        .await?
        .must(format_args!(
            "put on a pool of one right after dropping a transaction (round {round})"
        ))?;
        ensure!(
            read(&store, b"new").await?.is_none(),
            "a dropped transaction's put is visible"
        );
        ensure_eq!(
            read(&store, b"keep").await?,
            Some((b"v".to_vec(), vk)),
            "keep after a dropped transaction deleted it"
        );
    }
    let reader = store.begin(READ_ONLY).await.must("begin read-only")?;
    drop(reader);
    let idle = store
        .begin(READ_WRITE)
        .await
        .must("begin after dropping a read-only one")?;
    drop(idle);
    wait_quiet(&store, Duration::from_secs(2), "after dropped transactions").await?;
    Ok(Verdict::Passed)
}

/// A read-only transaction rejects writes with `InvalidInput`, reads normally, and does
/// not take the write lock at `begin`.
pub(crate) async fn tx_read_only(ctx: Ctx) -> CaseResult {
    let store = ctx
        .open(|o| o.busy_timeout = Duration::from_secs(2))
        .await?;
    require!(store, Need::Transactions);
    let vk = store
        .put(b"k", b"v", PutOptions::default())
        .await
        .must("put k")?;
    let mut tx = store.begin(READ_ONLY).await.must("begin read-only")?;
    let started = Instant::now();
    store
        .put(b"w", b"x", PutOptions::default())
        .await
        .must("put while a read-only transaction is open (it must not hold the write lock)")?;
    ensure!(
        started.elapsed() < Duration::from_secs(1),
        "a put waited {:?} behind a read-only transaction",
        started.elapsed()
    );
    tx.put(b"ro", b"v", PutOptions::default())
        .await
        .must_fail(ErrorKind::InvalidInput, "put in a read-only transaction")?;
    tx.delete(b"k", Condition::Any)
        .await
        .must_fail(ErrorKind::InvalidInput, "delete in a read-only transaction")?;
    let seen = tx.get(b"k").await.must("read-only get")?.map(|e| e.version);
    ensure_eq!(seen, Some(vk), "read-only get k");
    let scanned = tx
        .scan(ScanOptions::prefix("k"))
        .await
        .must("read-only scan")?;
    ensure_eq!(scanned.len(), 1, "read-only scan of prefix k");
    tx.commit().await.must("commit read-only")?;
    ensure!(
        read(&store, b"ro").await?.is_none(),
        "a read-only transaction wrote"
    );
    ensure_eq!(
        read(&store, b"k").await?,
        Some((b"v".to_vec(), vk)),
        "k after a read-only transaction tried to delete it"
    );
    Ok(Verdict::Passed)
}

/// One read-modify-write increment in a transaction: `Ok(true)` committed,
/// `Ok(false)` failed retryably (nothing applied).
async fn increment(store: &Arc<dyn PooledStore>, key: &[u8]) -> Result<bool, Failure> {
    let attempt = async {
        let mut tx = store.begin(READ_WRITE).await?;
        let current = tx.get(key).await?;
        let value = number(current, "counter")
            .map_err(|f| StoreError::new(ErrorKind::Corrupt, f.message))?;
        // Application work between the read and the write lets transactions overlap.
        tokio::task::yield_now().await;
        tx.put(
            key,
            (value + 1).to_string().as_bytes(),
            PutOptions::default(),
        )
        .await?;
        tx.commit().await
    };
    match attempt.await {
        Ok(()) => Ok(true),
        Err(e) if retryable(&e) => Ok(false),
        Err(e) => fail!("transactional increment: unexpected error {e}"),
    }
}

/// Concurrent read-modify-write transactions never lose an update, and write skew is
/// impossible: transactions are serializable or fail with a retryable error.
pub(crate) async fn tx_serializable(ctx: Ctx) -> CaseResult {
    let store = ctx.open_default().await?;
    require!(store, Need::Transactions);
    store
        .put(b"counter", b"0", PutOptions::default())
        .await
        .must("put counter")?;
    let tasks: Vec<_> = (0..4)
        .map(|_| {
            let store = Arc::clone(&store);
            tokio::spawn(async move {
                let mut committed = 0u32;
                for _ in 0..10 {
                    if increment(&store, b"counter").await? {
                        committed += 1;
                    }
                }
                Ok::<u32, Failure>(committed)
            })
        })
        .collect();
    let mut committed = 0;
    for task in tasks {
        committed += within(Duration::from_secs(60), "increment task", task)
            .await?
            .map_err(|e| Failure::new(format!("increment task panicked: {e}")))??;
    }
    let value = number(store.get(b"counter").await.must("get counter")?, "counter")?;
    ensure_eq!(
        value,
        i64::from(committed),
        "counter after {committed} committed transactional increments (lost update)"
    );
    ensure!(
        committed > 0,
        "no transactional increment committed out of 40"
    );

    for round in 0..4 {
        write_skew_round(&store, round).await?;
    }
    Ok(Verdict::Passed)
}

/// Two transactions each read `x` and `y` (both 1) and zero their own key only if the
/// sum is 2; serializable execution leaves at least one of them at 1.
async fn write_skew_round(store: &Arc<dyn PooledStore>, round: usize) -> Result<(), Failure> {
    let x = format!("skew/{round}/x").into_bytes();
    let y = format!("skew/{round}/y").into_bytes();
    for key in [&x, &y] {
        store
            .put(key, b"1", PutOptions::default())
            .await
            .must("put skew key")?;
    }
    let reads_done = Arc::new(AtomicUsize::new(0));
    let run = |mine: Vec<u8>| {
        let store = Arc::clone(store);
        let (x, y) = (x.clone(), y.clone());
        let reads_done = Arc::clone(&reads_done);
        tokio::spawn(async move {
            let attempt = async {
                let mut tx = store.begin(READ_WRITE).await?;
                let sum = count(&mut tx, &x).await? + count(&mut tx, &y).await?;
                reads_done.fetch_add(1, SeqCst);
                let waited = Instant::now();
                while reads_done.load(SeqCst) < 2 && waited.elapsed() < Duration::from_millis(300) {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                if sum == 2 {
                    tx.put(&mine, b"0", PutOptions::default()).await?;
                }
                tx.commit().await
            };
            attempt.await
        })
    };
    let first = run(x.clone());
    let second = run(y.clone());
    for task in [first, second] {
        match within(Duration::from_secs(30), "write-skew transaction", task).await? {
            Ok(Ok(())) => {}
            Ok(Err(e)) if retryable(&e) => {}
            Ok(Err(e)) => fail!("write-skew transaction: unexpected error {e}"),
            Err(e) => fail!("write-skew transaction panicked: {e}"),
        }
    }
    let total = number(store.get(&x).await.must("get x")?, "x")?
        + number(store.get(&y).await.must("get y")?, "y")?;
    ensure!(
        total >= 1,
        "write skew in round {round}: two transactions that each saw x + y = 2 both \
         committed a zero, leaving x + y = {total}"
    );
    Ok(())
}

async fn count(tx: &mut Box<dyn Transaction>, key: &[u8]) -> Result<i64, StoreError> {
    let entry = tx.get(key).await?;
    number(entry, "skew key").map_err(|f| StoreError::new(ErrorKind::Corrupt, f.message))
}

const ACCOUNTS: usize = 4;
const OPENING_BALANCE: i64 = 1_000;

fn account(i: usize) -> Vec<u8> {
    format!("acct/{i}").into_bytes()
}

/// Moves `amount` from `from` to `to` in one transaction: `Ok(true)` committed,
/// `Ok(false)` failed retryably.
async fn transfer(
    store: &Arc<dyn PooledStore>,
    from: usize,
    to: usize,
    amount: i64,
) -> Result<bool, Failure> {
    let attempt = async {
        let mut tx = store.begin(READ_WRITE).await?;
        let from_balance = count(&mut tx, &account(from)).await?;
        let to_balance = count(&mut tx, &account(to)).await?;
        tokio::task::yield_now().await;
        let plain = PutOptions::default();
        tx.put(
            &account(from),
            (from_balance - amount).to_string().as_bytes(),
            plain,
        )
        .await?;
        tx.put(
            &account(to),
            (to_balance + amount).to_string().as_bytes(),
            plain,
        )
        .await?;
        tx.commit().await
    };
    match attempt.await {
        Ok(()) => Ok(true),
        Err(e) if retryable(&e) => Ok(false),
        Err(e) => fail!("transfer: unexpected error {e}"),
    }
}

/// Reads every balance in one read-only transaction; `None` if it failed retryably.
async fn audit(store: &Arc<dyn PooledStore>) -> Result<Option<Vec<i64>>, Failure> {
    let attempt = async {
        let mut tx = store.begin(READ_ONLY).await?;
        let mut balances = Vec::new();
        for i in 0..ACCOUNTS {
            balances.push(count(&mut tx, &account(i)).await?);
        }
        tx.commit().await?;
        Ok::<_, StoreError>(balances)
    };
    match attempt.await {
        Ok(balances) => Ok(Some(balances)),
        Err(e) if retryable(&e) => Ok(None),
        Err(e) => fail!("audit: unexpected error {e}"),
    }
}

/// Concurrent transfers between accounts preserve the total, every read-only audit
/// sees it whole, and the final balances are exactly what the committed transfers add
/// up to.
pub(crate) async fn tx_bank_transfer(ctx: Ctx) -> CaseResult {
    let store = ctx.open_default().await?;
    require!(store, Need::Transactions);
    for i in 0..ACCOUNTS {
        store
            .put(
                &account(i),
                OPENING_BALANCE.to_string().as_bytes(),
                PutOptions::default(),
            )
            .await
            .must("open account")?;
    }
    let total = OPENING_BALANCE * ACCOUNTS as i64;
    let seed = ctx.seed();
    let tellers: Vec<_> = (0..3u64)
        .map(|teller| {
            let store = Arc::clone(&store);
            tokio::spawn(async move {
                let mut rng = SplitMix::new(seed ^ (teller + 1).wrapping_mul(0x9E37_79B9));
                let mut deltas = [0i64; ACCOUNTS];
                let mut committed = 0;
                for _ in 0..12 {
                    let from = rng.below(ACCOUNTS);
                    let to = (from + 1 + rng.below(ACCOUNTS - 1)) % ACCOUNTS;
                    let amount = 1 + rng.below(50) as i64;
                    if transfer(&store, from, to, amount).await? {
                        deltas[from] -= amount;
                        deltas[to] += amount;
                        committed += 1;
                    }
                }
                Ok::<_, Failure>((deltas, committed))
            })
        })
        .collect();
    let auditor = {
        let store = Arc::clone(&store);
        tokio::spawn(async move {
            let mut audits = 0;
            for _ in 0..10 {
                if let Some(balances) = audit(&store).await? {
                    let sum: i64 = balances.iter().sum();
                    ensure!(
                        sum == total,
                        "a read-only audit saw balances {balances:?} summing to {sum}, not \
                         {total}: a transfer was lost or visible half-applied"
                    );
                    audits += 1;
                }
                tokio::time::sleep(Duration::from_millis(3)).await;
            }
            Ok::<_, Failure>(audits)
        })
    };
    let mut expected = [OPENING_BALANCE; ACCOUNTS];
    let mut committed = 0;
    for teller in tellers {
        let (deltas, done) = within(Duration::from_secs(60), "teller", teller)
            .await?
            .map_err(|e| Failure::new(format!("teller panicked: {e}")))??;
        for (balance, delta) in expected.iter_mut().zip(deltas) {
            *balance += delta;
        }
        committed += done;
    }
    within(Duration::from_secs(60), "auditor", auditor)
        .await?
        .map_err(|e| Failure::new(format!("auditor panicked: {e}")))??;
    let mut actual = Vec::new();
    for i in 0..ACCOUNTS {
        actual.push(number(
            store.get(&account(i)).await.must("get account")?,
            "account",
        )?);
    }
    ensure_eq!(
        actual,
        expected.to_vec(),
        "final balances after {committed} committed transfers"
    );
    ensure!(committed > 0, "no transfer committed out of 36");
    Ok(Verdict::Passed)
}
