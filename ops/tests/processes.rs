//! Tests that need real processes, run by a `main` of their own (`harness = false`): the
//! same binary is started again as a child (chosen by an environment variable) that
//! writes through a real store and is killed, runs without write permission, or runs
//! with a file size limit that makes the disk "full".
//!
//! - crash safety: a child writes under load and prints every acknowledged write; it is
//!   killed with SIGKILL at a random moment, many times; after each kill the store must
//!   reopen, pass `PRAGMA integrity_check` and hold every acknowledged write with its
//!   value (or a later one) and a version no older. Set `POOLEDSTORE_CRASH_SEED` to
//!   replay a run and `POOLEDSTORE_CRASH_ROUNDS` to change the rounds per backend.
//! - read-only: as user `nobody` (`setpriv`), a database it may read but not write.
//! - full disk: the child runs in a private mount namespace (`unshare --mount`) with the
//!   database on a small tmpfs, so writes fail with `ENOSPC` (`SQLITE_FULL`). The mount
//!   is gone with the child. (`PRAGMA max_page_count` cannot stand in for this: it is a
//!   setting of one connection, not of the file, and the backends' connections never
//!   see it.)
//! - file size limit: `RLIMIT_FSIZE` (`prlimit`) makes writes past it fail with `EFBIG`
//!   (`SQLITE_IOERR_WRITE`).

mod common;

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::{BACKENDS, Backend};
use storage_api::{PutOptions, StoreError, WriteOp};

const CHILD_ENV: &str = "POOLEDSTORE_OPS_TEST_CHILD";

fn main() -> ExitCode {
    if let Ok(role) = std::env::var(CHILD_ENV) {
        return child::run(&role);
    }
    let filters: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let tests: [(&str, fn()); 4] = [
        (
            "crash_safety_under_sigkill",
            crash::crash_safety_under_sigkill,
        ),
        (
            "read_only_database_file",
            read_only::read_only_database_file,
        ),
        ("full_disk", full_disk::full_disk),
        ("file_size_limit", full_disk::file_size_limit),
    ];
    let (mut passed, mut failed, mut filtered) = (0, 0, 0);
    for (name, test) in tests {
        if !filters.is_empty() && !filters.iter().any(|f| name.contains(f.as_str())) {
            filtered += 1;
            continue;
        }
        let started = Instant::now();
        let outcome = std::panic::catch_unwind(test);
        let took = started.elapsed().as_secs_f64();
        if outcome.is_ok() {
            println!("test {name} ... ok ({took:.1} s)");
            passed += 1;
        } else {
            println!("test {name} ... FAILED ({took:.1} s)");
            failed += 1;
        }
    }
    let status = if failed == 0 { "ok" } else { "FAILED" };
    println!(
        "\ntest result: {status}. {passed} passed; {failed} failed; 0 ignored; 0 measured; \
         {filtered} filtered out"
    );
    if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// A small deterministic generator (splitmix64), so a seed replays a run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

fn backend_name(backend: Backend) -> &'static str {
    match backend {
        Backend::Sqlx => "sqlx",
        Backend::Deadpool => "deadpool",
    }
}

fn parse_backend(name: &str) -> Backend {
    match name {
        "sqlx" => Backend::Sqlx,
        _ => Backend::Deadpool,
    }
}

/// Starts this binary as a child in `role`, through `wrapper` (a command and its
/// arguments that end by running the program given after them), with `args`.
fn spawn_child(exe: &Path, wrapper: &[&str], role: &str, args: &[String]) -> Child {
    let mut command = match wrapper.split_first() {
        Some((program, rest)) => {
            let mut c = Command::new(program);
            c.args(rest).arg(exe);
            c
        }
        None => Command::new(exe),
    };
    command
        .args(args)
        .env(CHILD_ENV, role)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start the {role} child: {e}"))
}

/// Complete lines of the child's stdout, as they come, until it closes (a line cut
/// short by a kill is dropped).
fn read_lines(child: &mut Child) -> std::sync::mpsc::Receiver<String> {
    let stdout = child.stdout.take().expect("piped stdout");
    let (send, receive) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut reader = BufReader::new(stdout);
        let mut buf = Vec::new();
        loop {
            buf.clear();
            match reader.read_until(b'\n', &mut buf) {
                Ok(_) if buf.last() == Some(&b'\n') => {
                    let line = String::from_utf8_lossy(&buf[..buf.len() - 1]).into_owned();
                    if send.send(line).is_err() {
                        return;
                    }
                }
                _ => return,
            }
        }
    });
    receive
}

fn integrity_check(path: &Path) -> String {
    let conn = rusqlite::Connection::open(path).expect("open for integrity_check");
    conn.query_row("PRAGMA integrity_check", [], |r| r.get::<_, String>(0))
        .expect("integrity_check")
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Vec<u8> {
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).expect("hex"))
        .collect()
}

fn describe(e: &StoreError) -> String {
    format!("{} {}", e.kind(), e.message().replace('\n', " "))
}

/// The child processes: each role prints what it saw, one line per event.
mod child {
    use super::*;

    pub(super) fn run(role: &str) -> ExitCode {
        let args: Vec<String> = std::env::args().skip(1).collect();
        let rt = runtime();
        match role {
            "writer" => rt.block_on(writer(&args)),
            "readonly" => rt.block_on(read_only(&args)),
            "diskfull" => rt.block_on(disk_full(&args)),
            _ => {
                eprintln!("unknown child role {role}");
                return ExitCode::FAILURE;
            }
        }
        ExitCode::SUCCESS
    }

    fn say(line: &str) {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{line}");
        let _ = out.flush();
    }

    /// Args: path backend first_seq enable_wal synchronous(normal|full).
    /// Four tasks write their own keys (puts and 3-key batches) until killed, printing
    /// `ack KEYHEX SEQ VERSION` after each acknowledged write.
    async fn writer(args: &[String]) {
        let path = PathBuf::from(&args[0]);
        let backend = parse_backend(&args[1]);
        let first_seq: u64 = args[2].parse().expect("seq");
        let mut options = common::options(&path);
        options.sqlite.enable_wal = args[3] == "true";
        options.sqlite.synchronous = if args[4] == "full" {
            storage_api::Synchronous::Full
        } else {
            storage_api::Synchronous::Normal
        };
        let store = common::open_with(backend, options).await.expect("open");
        say("ready");
        let mut tasks = Vec::new();
        for task in 0..4u64 {
            let store = store.clone();
            tasks.push(tokio::spawn(async move {
                let mut rng = Rng(first_seq ^ (task << 8));
                let mut seq = first_seq;
                loop {
                    seq += 1;
                    let mut keys: Vec<Vec<u8>> = (0..if rng.below(3) == 0 { 3 } else { 1 })
                        .map(|_| format!("t{task}/k{:02}", rng.below(40)).into_bytes())
                        .collect();
                    // Distinct keys: a batch that put one key twice would acknowledge
                    // two versions of one write, and a kill between the two ack lines
                    // would leave the earlier one recorded against the later one stored.
                    keys.sort();
                    keys.dedup();
                    let mut value = format!("{seq}:").into_bytes();
                    value.resize(value.len() + rng.below(3000) as usize, b'x');
                    let acked: Vec<(Vec<u8>, u64)> = if keys.len() == 1 {
                        match store.put(&keys[0], &value, PutOptions::default()).await {
                            Ok(v) => vec![(keys[0].clone(), v.get())],
                            Err(e) => panic!("put failed: {e}"),
                        }
                    } else {
                        let ops = keys
                            .iter()
                            .map(|k| WriteOp::put(k.clone(), value.clone()))
                            .collect();
                        let results = store.batch(ops).await.expect("batch");
                        keys.iter()
                            .zip(results)
                            .filter_map(|(k, r)| match r {
                                storage_api::WriteResult::Put(v) => Some((k.clone(), v.get())),
                                storage_api::WriteResult::Delete(_) => None,
                            })
                            .collect()
                    };
                    let mut out = std::io::stdout().lock();
                    for (key, version) in acked {
                        let _ = writeln!(out, "ack {} {seq} {version}", hex(&key));
                    }
                    let _ = out.flush();
                }
            }));
        }
        for task in tasks {
            let _ = task.await;
        }
    }

    /// Args: path backend. Opens the store without write permission and reports.
    async fn read_only(args: &[String]) {
        let path = PathBuf::from(&args[0]);
        let store = match common::open(parse_backend(&args[1]), &path).await {
            Ok(store) => {
                say("open ok");
                store
            }
            Err(e) => {
                say(&format!("open err {}", describe(&e)));
                return;
            }
        };
        match store.get(b"k/000001").await {
            Ok(Some(entry)) if entry.value == common::value(1) => say("get ok"),
            Ok(other) => say(&format!("get wrong {other:?}")),
            Err(e) => say(&format!("get err {}", describe(&e))),
        }
        match store.put(b"new", b"v", PutOptions::default()).await {
            Ok(_) => say("put ok"),
            Err(e) => say(&format!("put err {}", describe(&e))),
        }
        store.close().await;
    }

    /// Args: path backend [copy_from]. Copies `copy_from` to `path` if given, writes
    /// 16 KiB values until a write fails, checks earlier data, then reopens the store
    /// and checks every acknowledged write and the file's integrity.
    async fn disk_full(args: &[String]) {
        let path = PathBuf::from(&args[0]);
        let backend = parse_backend(&args[1]);
        if let Some(from) = args.get(2) {
            std::fs::copy(from, &path).expect("copy the database");
        }
        let store = common::open(backend, &path)
            .await
            .unwrap_or_else(|e| panic!("open with room to spare: {e}"));
        // Space to give back once the disk is full, to see the store recover in place.
        let ballast = path.with_extension("ballast");
        let _ = std::fs::write(&ballast, vec![0u8; 96 << 10]);
        let mut acked = Vec::new();
        let failure = loop {
            if acked.len() == 2000 {
                break None;
            }
            let key = common::key("big/", acked.len());
            match store
                .put(&key, &[7u8; 16 << 10], PutOptions::default())
                .await
            {
                Ok(_) => acked.push(key),
                Err(e) => break Some(e),
            }
        };
        say(&format!("acked {}", acked.len()));
        match failure {
            Some(e) => say(&format!("full {}", describe(&e))),
            None => say("never full"),
        }
        // A second failing write must fail the same way, not hang or panic.
        match store
            .put(b"big/again", &[7u8; 16 << 10], PutOptions::default())
            .await
        {
            Err(e) => say(&format!("again {}", describe(&e))),
            Ok(_) => {
                acked.push(b"big/again".to_vec());
                say("again ok");
            }
        }
        // With room again, the same store writes again, without a reopen.
        let _ = std::fs::remove_file(&ballast);
        match store
            .put(b"room/again", b"small", PutOptions::default())
            .await
        {
            Ok(_) => {
                acked.push(b"room/again".to_vec());
                say("room ok");
            }
            Err(e) => say(&format!("room {}", describe(&e))),
        }
        say(if earlier_data_intact(&*store).await {
            "earlier ok"
        } else {
            "earlier bad"
        });
        store.close().await;

        let store = match common::open(backend, &path).await {
            Ok(store) => store,
            Err(e) => return say(&format!("reopen err {}", describe(&e))),
        };
        let mut lost = 0;
        for key in &acked {
            if !matches!(store.get(key).await, Ok(Some(_))) {
                lost += 1;
            }
        }
        let earlier = earlier_data_intact(&*store).await;
        store.close().await;
        say(&format!(
            "reopened: {lost} acknowledged writes lost, earlier data intact {earlier}"
        ));
        say(&format!("integrity {}", integrity_check(&path)));
    }

    async fn earlier_data_intact(store: &dyn storage_api::PooledStore) -> bool {
        for i in 0..100 {
            match store.get(&common::key("k/", i)).await {
                Ok(Some(entry)) if entry.value == common::value(i) => {}
                _ => return false,
            }
        }
        true
    }
}

mod crash {
    use super::*;

    /// The last acknowledged write of a key: the writer's sequence number and version.
    #[derive(Debug, Clone, Copy)]
    struct Ack {
        seq: u64,
        version: u64,
    }

    pub(super) fn crash_safety_under_sigkill() {
        let seed = std::env::var("POOLEDSTORE_CRASH_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| {
                SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .map(|d| d.as_nanos() as u64)
                    .unwrap_or(1)
            });
        let rounds: u64 = std::env::var("POOLEDSTORE_CRASH_ROUNDS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(10);
        println!(
            "crash safety: seed {seed} (POOLEDSTORE_CRASH_SEED={seed} replays), {rounds} rounds per backend"
        );
        let exe = std::env::current_exe().expect("current exe");
        let mut rng = Rng(seed);
        for backend in BACKENDS {
            let dir = tempfile::tempdir().expect("tempdir");
            let path = dir.path().join("crash.db");
            let mut acked: HashMap<Vec<u8>, Ack> = HashMap::new();
            let mut total = 0usize;
            for round in 0..rounds {
                let wal = round % 4 != 3;
                let sync = if round % 2 == 0 { "normal" } else { "full" };
                let args = vec![
                    path.display().to_string(),
                    backend_name(backend).to_owned(),
                    ((round + 1) << 32).to_string(),
                    wal.to_string(),
                    sync.to_owned(),
                ];
                let mut child = spawn_child(&exe, &[], "writer", &args);
                let lines = read_lines(&mut child);
                let first = lines.recv_timeout(Duration::from_secs(30));
                let kill_after = Duration::from_millis(50 + rng.below(800));
                std::thread::sleep(kill_after);
                child.kill().expect("SIGKILL");
                let status = child.wait().expect("wait");
                assert_eq!(
                    first.as_deref(),
                    Ok("ready"),
                    "{backend:?} round {round}: the writer never got ready ({status}); seed {seed}"
                );
                let lines: Vec<String> = lines.iter().collect();
                let acks = record_acks(&lines, &mut acked);
                total += acks;
                check_store(backend, &path, &acked, seed, round);
                println!(
                    "  {backend:?} round {round}: killed after {kill_after:?} (wal {wal}, \
                     synchronous {sync}), {acks} acknowledged writes, all present"
                );
            }
            assert!(
                total > 0,
                "{backend:?}: the writer never acknowledged a write"
            );
        }
    }

    fn record_acks(lines: &[String], acked: &mut HashMap<Vec<u8>, Ack>) -> usize {
        let mut count = 0;
        for line in lines {
            let parts: Vec<&str> = line.split(' ').collect();
            let ["ack", key, seq, version] = parts[..] else {
                panic!("unexpected line from the writer: {line}");
            };
            let ack = Ack {
                seq: seq.parse().expect("seq"),
                version: version.parse().expect("version"),
            };
            acked.insert(unhex(key), ack);
            count += 1;
        }
        count
    }

    fn check_store(
        backend: Backend,
        path: &Path,
        acked: &HashMap<Vec<u8>, Ack>,
        seed: u64,
        round: u64,
    ) {
        runtime().block_on(async {
            let store = common::open(backend, path)
                .await
                .unwrap_or_else(|e| panic!("{backend:?} round {round}: reopen failed: {e}; seed {seed}"));
            for (key, ack) in acked {
                let entry = store
                    .get(key)
                    .await
                    .unwrap_or_else(|e| panic!("get failed: {e}; seed {seed}"))
                    .unwrap_or_else(|| {
                        panic!(
                            "{backend:?} round {round}: acknowledged key {} lost; seed {seed}",
                            String::from_utf8_lossy(key)
                        )
                    });
                let text = String::from_utf8_lossy(&entry.value);
                let seq: u64 = text
                    .split(':')
                    .next()
                    .and_then(|s| s.parse().ok())
                    .unwrap_or_else(|| panic!("value of unknown shape; seed {seed}"));
                let version = entry.version.get();
                let context = format!(
                    "{backend:?} round {round}, key {}: acked seq {} v{}, found seq {seq} v{version}; seed {seed}",
                    String::from_utf8_lossy(key),
                    ack.seq,
                    ack.version
                );
                assert!(seq >= ack.seq, "an older value came back: {context}");
                assert!(version >= ack.version, "an older version came back: {context}");
                if seq == ack.seq {
                    assert_eq!(version, ack.version, "same write, other version: {context}");
                }
            }
            store.close().await;
        });
        assert_eq!(
            integrity_check(path),
            "ok",
            "{backend:?} round {round}; seed {seed}"
        );
    }
}

/// A copy of this binary that any user may run, in `dir`.
fn shared_copy_of_self(dir: &Path) -> PathBuf {
    let exe = dir.join("child");
    std::fs::copy(std::env::current_exe().expect("exe"), &exe).expect("copy exe");
    std::fs::set_permissions(&exe, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    exe
}

/// A store file holding `k/000000..k/000099`, closed.
fn prepared_store(backend: Backend, path: &Path) {
    runtime().block_on(async {
        let store = common::open(backend, path).await.expect("open");
        common::fill(&*store, "k/", 100).await;
        store.close().await;
    });
}

fn kind_of(line: &str) -> Option<&str> {
    line.split(' ').nth(2)
}

mod read_only {
    use super::*;

    /// As root, permission bits do not stop writes, so the child drops to `nobody`:
    /// the file (0644, root's) and its directory (0755) are readable, not writable.
    /// The store must refuse with `Config` (a deployment mistake that no retry mends,
    /// naming the file), write nothing, and leave the file as it was.
    pub(super) fn read_only_database_file() {
        for backend in BACKENDS {
            let dir = tempfile::tempdir().expect("tempdir");
            let path = dir.path().join("ro.db");
            prepared_store(backend, &path);
            let exe = shared_copy_of_self(dir.path());
            std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755))
                .expect("chmod dir");
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644))
                .expect("chmod db");
            let before = std::fs::read(&path).expect("read db");

            let wrapper = [
                "setpriv",
                "--reuid=65534",
                "--regid=65534",
                "--clear-groups",
                "--",
            ];
            let args = vec![path.display().to_string(), backend_name(backend).to_owned()];
            let mut child = spawn_child(&exe, &wrapper, "readonly", &args);
            let lines = read_lines(&mut child);
            let status = child.wait().expect("wait");
            let lines: Vec<String> = lines.iter().collect();
            println!("  {backend:?} as nobody: {lines:?}");
            assert!(status.success(), "{backend:?}: child failed: {status}");
            let failure = lines
                .iter()
                .find(|l| l.contains(" err "))
                .unwrap_or_else(|| panic!("{backend:?}: nothing failed: {lines:?}"));
            common::expect(
                backend_name(backend),
                "read-only database file",
                kind_of(failure).unwrap_or("none"),
                "config",
                failure,
            );
            assert!(
                !lines.iter().any(|l| l == "put ok"),
                "{backend:?}: wrote: {lines:?}"
            );
            assert!(
                !lines.iter().any(|l| l.starts_with("get wrong")),
                "{backend:?}: read wrong data: {lines:?}"
            );
            assert_eq!(
                std::fs::read(&path).expect("read db"),
                before,
                "{backend:?}: file changed"
            );
        }
    }
}

mod full_disk {
    use super::*;

    /// Runs the `diskfull` child through `wrapper` and checks what it saw: writes fail
    /// with kind `kind` (see [`common::expect`] for `case`) and a message containing
    /// `says`, earlier data stays readable, and after a reopen no acknowledged write is
    /// missing and the file is sound.
    fn run(backend: Backend, wrapper: &[&str], args: Vec<String>, case: &str, says: &str) {
        let exe = std::env::current_exe().expect("exe");
        let mut child = spawn_child(&exe, wrapper, "diskfull", &args);
        let lines = read_lines(&mut child);
        let status = child.wait().expect("wait");
        let lines: Vec<String> = lines.iter().collect();
        println!("  {backend:?}: {lines:?}");
        assert!(status.success(), "{backend:?}: child failed: {status}");
        let line = |prefix: &str| {
            lines
                .iter()
                .find(|l| l.starts_with(prefix))
                .unwrap_or_else(|| panic!("{backend:?}: no {prefix:?} line: {lines:?}"))
                .clone()
        };
        let acked: usize = line("acked ")[6..].parse().expect("count");
        assert!(acked > 0, "{backend:?}: no room at all: {lines:?}");
        let full = line("full ");
        let found = full.split(' ').nth(1).unwrap_or("none");
        common::expect(backend_name(backend), case, found, "backend", &full);
        assert!(full.contains(says), "{backend:?}: unclear: {full}");
        // The next write after a failure names the same cause, not a generic failure.
        let again = line("again ");
        assert!(
            again.contains(says),
            "{backend:?}: the next write said: {again}"
        );
        assert_eq!(
            line("room "),
            "room ok",
            "{backend:?}: after space came back"
        );
        assert_eq!(line("earlier "), "earlier ok", "{backend:?}");
        assert_eq!(
            line("reopened: "),
            "reopened: 0 acknowledged writes lost, earlier data intact true",
            "{backend:?}"
        );
        assert_eq!(line("integrity "), "integrity ok", "{backend:?}");
    }

    /// ENOSPC on a 768 KiB tmpfs: SQLite's `SQLITE_FULL`, reported as `Backend` with
    /// SQLite's "database or disk is full".
    pub(super) fn full_disk() {
        for backend in BACKENDS {
            let dir = tempfile::tempdir().expect("tempdir");
            let source = dir.path().join("source.db");
            prepared_store(backend, &source);
            let mount = dir.path().join("small");
            std::fs::create_dir(&mount).expect("mkdir");
            let script = "mount -t tmpfs -o size=768k pooledstore-test \"$(dirname \"$1\")\" \
                          && exec \"$0\" \"$@\"";
            let wrapper = [
                "unshare",
                "--mount",
                "--propagation",
                "private",
                "--",
                "sh",
                "-c",
                script,
            ];
            let args = vec![
                mount.join("full.db").display().to_string(),
                backend_name(backend).to_owned(),
                source.display().to_string(),
            ];
            run(backend, &wrapper, args, "disk full", "full");
            assert!(
                std::fs::read_dir(&mount).expect("ls").next().is_none(),
                "the tmpfs leaked out of the child's mount namespace"
            );
        }
    }

    /// `RLIMIT_FSIZE` about 600 KiB past the database: writes fail with `EFBIG`, which
    /// SQLite reports as a disk I/O error (`SQLITE_IOERR_WRITE`): `Backend`, like any
    /// failure of the file underneath that retrying does not mend.
    pub(super) fn file_size_limit() {
        for backend in BACKENDS {
            let dir = tempfile::tempdir().expect("tempdir");
            let path = dir.path().join("limited.db");
            prepared_store(backend, &path);
            let limit = std::fs::metadata(&path).expect("size").len() + (600 << 10) + 123;
            let fsize = format!("--fsize={limit}:{limit}");
            // SIGXFSZ would kill the child; ignored by the shell, it stays ignored
            // across exec.
            let wrapper = [
                "prlimit",
                fsize.as_str(),
                "--",
                "sh",
                "-c",
                "trap '' XFSZ; exec \"$0\" \"$@\"",
            ];
            let args = vec![path.display().to_string(), backend_name(backend).to_owned()];
            run(backend, &wrapper, args, "write I/O error", "I/O error");
        }
    }
}
