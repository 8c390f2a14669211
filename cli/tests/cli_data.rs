//! The single-key commands end to end on SQLite: `get --json` gives the version a
//! conditional `put` needs, failed conditions exit 3 naming the current version, keys
//! and values that are not UTF-8 round-trip, values travel through files and standard
//! input, and TTLs show and purge.
#![cfg(any(feature = "sqlx", feature = "deadpool"))]

mod cli_support;

use std::os::unix::fs::PermissionsExt;

use cli_support::{Cli, json_lines, path_str};

#[test]
fn get_json_shows_the_version_a_conditional_put_needs() {
    let cli = Cli::new("");
    cli.ok(&["put", "user:1", "ada"]);
    let entry = &json_lines(&cli.ok(&["get", "user:1", "--json"]))[0];
    assert_eq!(entry["key"], "user:1");
    assert_eq!(entry["value"], "ada");
    assert_eq!(entry["encoding"], "text");
    assert!(entry["expires_at"].is_null(), "{entry}");
    let v1 = entry["version"].as_u64().unwrap().to_string();

    let v2 = cli.ok(&["put", "user:1", "ada lovelace", "--if-version", &v1]);
    let v2 = v2.trim().to_owned();
    assert!(v2.parse::<u64>().unwrap() > v1.parse::<u64>().unwrap());

    let err = cli.fails(3, &["put", "user:1", "lost", "--if-version", &v1]);
    assert!(err.contains(&format!("expected at version {v1}")), "{err}");
    assert!(err.contains(&format!("it is at version {v2}")), "{err}");
    let err = cli.fails(3, &["put", "user:1", "lost", "--if-absent"]);
    assert!(err.contains(&format!("it is at version {v2}")), "{err}");
    let err = cli.fails(3, &["put", "user:9", "x", "--if-version", "1"]);
    assert!(err.contains("it is absent"), "{err}");
    assert_eq!(cli.ok(&["get", "user:1"]), "ada lovelace\n");

    let err = cli.fails(3, &["delete", "user:1", "--if-version", &v1]);
    assert!(err.contains(&format!("it is at version {v2}")), "{err}");
    let table = cli.ok(&["get", "user:1", "--table"]);
    let lines: Vec<_> = table.lines().collect();
    assert!(
        lines[0].starts_with("KEY") && lines[0].contains("VERSION"),
        "{table}"
    );
    assert!(
        lines[1].contains(&v2) && lines[1].contains("ada lovelace"),
        "{table}"
    );
    assert_eq!(
        cli.ok(&["delete", "user:1", "--if-version", &v2]),
        "deleted\n"
    );
    cli.fails(1, &["get", "user:1"]);
}

#[test]
fn keys_and_values_that_are_not_utf8_round_trip() {
    let cli = Cli::new("");
    cli.ok(&[
        "put",
        "AP8=",
        "\\xff\\x00a",
        "--key-encoding",
        "base64",
        "--value-encoding",
        "escape",
    ]);
    let entry =
        &json_lines(&cli.ok(&["get", "\\x00\\xff", "--key-encoding", "escape", "--json"]))[0];
    assert_eq!(entry["encoding"], "base64", "{entry}");
    assert_eq!(entry["key"], "AP8=");
    assert_eq!(entry["value"], "/wBh");
    let escaped = cli.ok(&["get", "AP8=", "--key-encoding", "base64"]);
    assert_eq!(escaped, "\\xff\\x00a\n");

    cli.ok(&["put", "caf\u{e9}", "cr\u{e8}me\n"]);
    let scan = cli.ok(&["scan"]);
    assert_eq!(scan, "\\x00\\xff\t\\xff\\x00a\ncaf\u{e9}\tcr\u{e8}me\\n\n");
    let shown_key = scan.lines().next().unwrap().split('\t').next().unwrap();
    let again = cli.ok(&[
        "get",
        shown_key,
        "--key-encoding",
        "escape",
        "--encoding",
        "base64",
    ]);
    assert_eq!(again, "/wBh\n");

    let err = cli.fails(2, &["scan", "--encoding", "text"]);
    assert!(err.contains("not UTF-8") && err.contains("base64"), "{err}");
    let err = cli.fails(2, &["get", "%%", "--key-encoding", "base64"]);
    assert!(err.contains("KEY is not valid base64"), "{err}");
}

#[test]
fn values_travel_through_files_and_standard_input() {
    let cli = Cli::new("");
    // Over the 128 KiB a single command-line argument can carry, up to the store's
    // default limit of 1 MiB.
    let big: Vec<u8> = (0..1_048_576u32).map(|i| (i * 7 % 251) as u8).collect();
    let input = cli.file("big.bin", &big);
    cli.ok(&["put", "big", "--value-file", &input]);
    let output = path_str(&cli.path("out.bin"));
    let said = cli.ok(&["get", "big", "--output", &output]);
    assert!(said.contains("1048576 bytes"), "{said}");
    assert_eq!(std::fs::read(&output).unwrap(), big);
    let mode = std::fs::metadata(&output).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "mode {:o}", mode & 0o777);

    let err = cli.fails(2, &["get", "big", "--output", &output]);
    assert!(err.contains("--force"), "{err}");
    let out = cli.run_with_input(&["put", "big", "--value-file", "-"], b"\x00from stdin\xff");
    assert!(out.status.success(), "{}", cli_support::stderr(&out));
    cli.ok(&["get", "big", "--output", &output, "--force"]);
    assert_eq!(std::fs::read(&output).unwrap(), b"\x00from stdin\xff");

    let mut too_big = big.clone();
    too_big.push(0);
    let input = cli.file("too-big.bin", &too_big);
    let err = cli.fails(2, &["put", "big", "--value-file", &input]);
    assert!(
        err.contains("too-big.bin") && err.contains("max_value_bytes"),
        "{err}"
    );

    let db = path_str(&cli.db());
    let err = cli.fails(2, &["get", "big", "--output", &db]);
    assert!(err.contains("live database"), "{err}");
    let wal = format!("{db}-wal");
    let err = cli.fails(2, &["get", "big", "--output", &wal]);
    assert!(err.contains("journal file"), "{err}");
    for target in ["/dev/null", cli.dir.path().to_str().unwrap()] {
        let err = cli.fails(2, &["get", "big", "--output", target, "--force"]);
        assert!(err.contains("only regular files"), "{err}");
    }
    let link = cli.path("link");
    std::os::unix::fs::symlink(&output, &link).unwrap();
    let err = cli.fails(2, &["get", "big", "--output", &path_str(&link), "--force"]);
    assert!(err.contains("symbolic link"), "{err}");
}

#[test]
fn ttls_show_and_expired_entries_purge() {
    let cli = Cli::new("");
    cli.ok(&["put", "session", "s", "--ttl", "1"]);
    cli.ok(&["put", "forever", "f"]);
    let shown = cli.ok(&["ttl", "session"]);
    assert!(shown.contains("s (expires 20"), "{shown}");
    let body = &json_lines(&cli.ok(&["ttl", "session", "--json"]))[0];
    let left = body["ttl_ms"].as_u64().unwrap();
    assert!(left > 0 && left <= 1000, "{body}");
    let entry = &json_lines(&cli.ok(&["get", "session", "--json"]))[0];
    assert_eq!(entry["expires_at"], body["expires_at"]);
    assert_eq!(cli.ok(&["ttl", "forever"]), "no expiry\n");
    cli.fails(1, &["ttl", "missing"]);

    std::thread::sleep(std::time::Duration::from_millis(1100));
    cli.fails(1, &["ttl", "session"]);
    assert_eq!(cli.ok(&["purge"]), "1 expired entries removed\n");
    assert_eq!(cli.ok(&["purge"]), "0 expired entries removed\n");
    assert_eq!(cli.ok(&["get", "forever"]), "f\n");
}
