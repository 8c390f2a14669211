//! `completions` and `man` generate from the command-line definitions, without a store.
#![cfg(any(feature = "sqlx", feature = "deadpool"))]

use std::process::Command;

fn run(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_pooledstore"))
        .args(args)
        .env(
            "POOLEDSTORE_URL",
            "sqlite:///nonexistent/dir/never-opened.db",
        )
        .output()
        .unwrap()
}

#[test]
fn completions_cover_every_command_for_each_shell() {
    for shell in ["bash", "zsh", "fish"] {
        let out = run(&["completions", shell]);
        assert!(out.status.success(), "{shell}: {out:?}");
        let script = String::from_utf8(out.stdout).unwrap();
        assert!(script.len() > 1000, "{shell}: {script}");
        for word in [
            "scan",
            "batch",
            "tx",
            "ttl",
            "purge",
            "if-version",
            "key-encoding",
        ] {
            assert!(script.contains(word), "{shell} completion lacks {word}");
        }
    }
    let out = run(&["completions", "tcsh"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn the_man_page_lists_the_commands() {
    let out = run(&["man"]);
    assert!(out.status.success(), "{out:?}");
    let page = String::from_utf8(out.stdout).unwrap();
    assert!(
        page.starts_with(".ie") || page.contains(".TH pooledstore"),
        "{page}"
    );
    for word in [
        ".TH pooledstore",
        "scan",
        "batch",
        "tx",
        "ttl",
        "purge",
        "completions",
    ] {
        assert!(page.contains(word), "the man page lacks {word}");
    }
}
