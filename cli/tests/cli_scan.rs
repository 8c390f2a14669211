//! `scan` end to end on SQLite: ranges, prefixes, a cursor walk over more than one
//! page (by hand and with `--all`), keys only, counts, and the JSON form.
#![cfg(any(feature = "sqlx", feature = "deadpool"))]

mod cli_support;

use cli_support::{Cli, json_lines};

/// A store whose pages hold at most 10 entries, with keys k00..k24 (value = key).
fn store_of_25() -> Cli {
    let cli = Cli::new("max_scan_limit = 10");
    let lines: String = (0..25)
        .map(|i| format!("{{\"op\":\"put\",\"key\":\"k{i:02}\",\"value\":\"v{i:02}\"}}\n"))
        .collect();
    let file = cli.file("load.jsonl", lines.as_bytes());
    assert_eq!(cli.ok(&["batch", &file]).lines().count(), 25);
    cli
}

fn keys(text: &str) -> Vec<String> {
    text.lines()
        .map(|l| l.split('\t').next().unwrap().to_owned())
        .collect()
}

fn expected(range: std::ops::Range<usize>) -> Vec<String> {
    range.map(|i| format!("k{i:02}")).collect()
}

#[test]
fn a_cursor_walk_pages_through_every_key() {
    let cli = store_of_25();
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let mut args = vec!["scan", "--limit", "10", "--key-encoding", "base64"];
        if let Some(after) = &cursor {
            args.extend(["--after", after.as_str()]);
        }
        let out = cli.run(&args);
        assert!(out.status.success(), "{}", cli_support::stderr(&out));
        pages += 1;
        let note = cli_support::stderr(&out);
        seen.extend(keys(&String::from_utf8(out.stdout).unwrap()));
        match note.split("--after ").nth(1) {
            Some(rest) => cursor = Some(rest.split_whitespace().next().unwrap().to_owned()),
            None => break,
        }
        assert!(pages < 10, "the walk does not end");
    }
    assert_eq!(seen, expected(0..25));
    assert_eq!(pages, 3);

    // One read cannot be larger than max_scan_limit; --all pages through instead.
    let err = cli.fails(2, &["scan", "--limit", "25"]);
    assert!(err.contains("max_scan_limit"), "{err}");
    assert_eq!(keys(&cli.ok(&["scan", "--all"])), expected(0..25));
    assert_eq!(
        keys(&cli.ok(&["scan", "--all", "--page-size", "4", "--limit", "13"])),
        expected(0..13)
    );
    assert_eq!(cli.ok(&["scan", "--count"]), "25\n");
    assert_eq!(
        cli.ok(&["scan", "--count", "--page-size", "3", "--prefix", "k1"]),
        "10\n"
    );
}

#[test]
fn ranges_prefixes_cursors_and_output_forms() {
    let cli = store_of_25();
    let range = cli.ok(&["scan", "--start", "k05", "--end", "k10"]);
    assert_eq!(keys(&range), expected(5..10));
    assert_eq!(range.lines().next().unwrap(), "k05\tv05");
    assert_eq!(keys(&cli.ok(&["scan", "--after", "k20"])), expected(21..25));
    assert_eq!(
        keys(&cli.ok(&["scan", "--prefix", "k2", "--after", "k21", "--all"])),
        expected(22..25)
    );
    assert_eq!(
        cli.ok(&["scan", "--prefix", "k0", "--keys-only", "--limit", "2"]),
        "k00\nk01\n"
    );

    let entries = json_lines(&cli.ok(&["scan", "--all", "--page-size", "4", "--json"]));
    assert_eq!(entries.len(), 25);
    for (i, entry) in entries.iter().enumerate() {
        assert_eq!(entry["key"], format!("k{i:02}"));
        assert_eq!(entry["value"], format!("v{i:02}"));
        assert!(entry["version"].as_u64().unwrap() > 0, "{entry}");
        assert!(entry["expires_at"].is_null(), "{entry}");
    }
    let keys_only = json_lines(&cli.ok(&["scan", "--prefix", "k1", "--keys-only", "--json"]));
    assert!(
        keys_only.iter().all(|e| e.get("value").is_none()),
        "{keys_only:?}"
    );

    let table = cli.ok(&["scan", "--all", "--page-size", "7", "--table"]);
    let header: Vec<_> = table.lines().filter(|l| l.starts_with("KEY")).collect();
    assert_eq!(header.len(), 1, "{table}");
    assert_eq!(table.lines().count(), 26);

    let err = cli.fails(2, &["scan", "--prefix", "k", "--start", "k1"]);
    assert!(err.contains("--prefix"), "{err}");
}
