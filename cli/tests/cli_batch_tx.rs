//! `batch` and `tx` end to end on SQLite: results per operation, a batch that fails as
//! a whole on one condition, and a transaction run again after the database was
//! locked, within the retries the user allows.
#![cfg(any(feature = "sqlx", feature = "deadpool"))]

mod cli_support;

use std::time::Duration;

use cli_support::{Cli, json_lines, stderr};

#[test]
fn a_batch_applies_every_line_or_none() {
    let cli = Cli::new("");
    let v1 = cli.ok(&["put", "a", "1"]).trim().to_owned();
    let good = format!(
        "{{\"op\":\"put\",\"key\":\"a\",\"value\":\"2\",\"if_version\":{v1}}}\n\
         \n\
         {{\"op\":\"put\",\"key\":\"AP8=\",\"value\":\"AAE=\",\"encoding\":\"base64\",\"if_absent\":true}}\n\
         {{\"op\":\"delete\",\"key\":\"nothing\"}}\n"
    );
    let file = cli.file("good.jsonl", good.as_bytes());
    let results = json_lines(&cli.ok(&["batch", &file, "--json"]));
    assert_eq!(results.len(), 3);
    assert_eq!(
        (results[0]["op"].as_str(), results[0]["line"].as_u64()),
        (Some("put"), Some(1))
    );
    let v2 = results[0]["version"].as_u64().unwrap();
    assert!(v2 > v1.parse().unwrap());
    assert_eq!(results[1]["line"], 3);
    assert_eq!(results[1]["key"], "AP8=");
    assert_eq!(results[1]["encoding"], "base64");
    assert_eq!(results[2]["deleted"], false);
    assert_eq!(
        cli.ok(&["get", "AP8=", "--key-encoding", "base64"]),
        "\\x00\\x01\n"
    );

    // The third line's condition is stale: nothing of the batch is applied.
    let bad = format!(
        "{{\"op\":\"put\",\"key\":\"new\",\"value\":\"x\"}}\n\
         {{\"op\":\"delete\",\"key\":\"AP8=\",\"encoding\":\"base64\"}}\n\
         {{\"op\":\"put\",\"key\":\"a\",\"value\":\"3\",\"if_version\":{v1}}}\n"
    );
    let file = cli.file("bad.jsonl", bad.as_bytes());
    let err = cli.fails(3, &["batch", &file]);
    assert!(err.contains("line 3"), "{err}");
    assert!(err.contains(&format!("it is at version {v2}")), "{err}");
    assert!(err.contains("not applied"), "{err}");
    cli.fails(1, &["get", "new"]);
    assert_eq!(cli.ok(&["get", "a"]), "2\n");
    assert_eq!(
        cli.ok(&["get", "AP8=", "--key-encoding", "base64"]),
        "\\x00\\x01\n"
    );

    let malformed = cli.file(
        "malformed.jsonl",
        b"{\"op\":\"put\",\"key\":\"z\",\"value\":\"1\"}\n{\"op\":\"put\"\n",
    );
    let err = cli.fails(2, &["batch", &malformed]);
    assert!(err.contains("line 2"), "{err}");
    cli.fails(1, &["get", "z"]);
    let reads = cli.file("reads.jsonl", b"{\"op\":\"get\",\"key\":\"a\"}\n");
    let err = cli.fails(2, &["batch", &reads]);
    assert!(err.contains("tx"), "{err}");
}

#[test]
fn a_transaction_reads_writes_and_rolls_back_on_a_failed_condition() {
    let cli = Cli::new("");
    let v1 = cli.ok(&["put", "counter", "1"]).trim().to_owned();
    let ops = format!(
        "{{\"op\":\"get\",\"key\":\"counter\"}}\n\
         {{\"op\":\"put\",\"key\":\"counter\",\"value\":\"2\",\"if_version\":{v1}}}\n\
         {{\"op\":\"put\",\"key\":\"log:1\",\"value\":\"bumped\"}}\n\
         {{\"op\":\"scan\",\"prefix\":\"log:\"}}\n\
         {{\"op\":\"get\",\"key\":\"missing\"}}\n"
    );
    let file = cli.file("tx.jsonl", ops.as_bytes());
    let results = json_lines(&cli.ok(&["tx", &file, "--json"]));
    assert_eq!(results.len(), 5);
    assert_eq!(results[0]["value"], "1");
    assert_eq!(results[0]["version"].as_u64().unwrap().to_string(), v1);
    assert_eq!(results[3]["entries"][0]["key"], "log:1");
    assert_eq!(results[4]["found"], false);
    assert_eq!(cli.ok(&["get", "counter"]), "2\n");

    // Run again: the condition now fails, and the put before it is rolled back.
    let ops = ops.replace("log:1", "log:2");
    let file = cli.file("tx2.jsonl", ops.as_bytes());
    let err = cli.fails(3, &["tx", &file]);
    assert!(
        err.contains("line 2") && err.contains("rolled back"),
        "{err}"
    );
    cli.fails(1, &["get", "log:2"]);
    let text = cli.ok(&[
        "tx",
        &cli.file("read.jsonl", b"{\"op\":\"get\",\"key\":\"counter\"}\n"),
    ]);
    assert!(text.starts_with("get counter: 2 (version "), "{text}");
}

#[test]
fn a_transaction_is_retried_while_the_database_is_locked() {
    // A short busy timeout, so the locked database answers Busy quickly.
    let cli = Cli::new("db_busy_timeout_ms = 50");
    cli.ok(&["put", "counter", "1"]);
    let file = cli.file(
        "tx.jsonl",
        b"{\"op\":\"get\",\"key\":\"counter\"}\n{\"op\":\"put\",\"key\":\"counter\",\"value\":\"2\"}\n",
    );
    let holder = rusqlite::Connection::open(cli.db()).unwrap();
    holder.execute_batch("BEGIN IMMEDIATE").unwrap();

    let err = cli.fails(2, &["tx", &file, "--retries", "0"]);
    assert!(
        err.contains("failed 1 times") && err.contains("--retries"),
        "{err}"
    );

    let child = cli
        .command(&["tx", &file, "--retries", "20"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(700));
    holder.execute_batch("COMMIT").unwrap();
    drop(holder);
    let out = child.wait_with_output().unwrap();
    let log = stderr(&out);
    assert!(out.status.success(), "{log}");
    assert!(log.contains("retrying"), "{log}");
    assert!(log.contains("committed on attempt"), "{log}");
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(stdout.contains("put counter: version"), "{stdout}");
    assert_eq!(cli.ok(&["get", "counter"]), "2\n");
}
