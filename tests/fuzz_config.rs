//! Property tests over configuration parsing: arbitrary text, mutations of the shipped
//! example, and well-formed TOML with arbitrary values under the real keys. Parsing,
//! validation, environment overrides and conversion to options never panic, and every
//! error is a `Config` error.
//!
//! 256 cases per property; `PROPTEST_CASES` changes it. Failures are saved in
//! `proptest-regressions/` and replayed first.
#![cfg(feature = "serve")]

use pooledstore::{Config, EMBEDDED_DEFAULT, ErrorKind, StorageConfig};
use proptest::prelude::*;

/// Every key of `[storage]`, as the example file lists them.
const KEYS: [&str; 20] = [
    "backend",
    "url",
    "db_pool_size",
    "db_min_idle",
    "db_connection_timeout_secs",
    "db_idle_timeout_secs",
    "db_max_lifetime_secs",
    "db_enable_wal",
    "db_busy_timeout_ms",
    "db_synchronous",
    "max_value_bytes",
    "max_scan_limit",
    "table",
    "db_leak_detection_threshold_secs",
    "db_close_grace_secs",
    "db_ssl_mode",
    "db_ssl_root_cert",
    "db_ssl_cert",
    "db_ssl_key",
    "db_transaction_pooler",
];

fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(256)
}

/// Checks one document through every entry point that takes configuration text.
fn check_document(text: &str) -> Result<(), TestCaseError> {
    match StorageConfig::from_toml(text) {
        Ok(storage) => check_config(&storage)?,
        Err(e) => prop_assert_eq!(e.kind(), ErrorKind::Config, "{}", e),
    }
    match Config::from_toml(text) {
        Ok(config) => check_config(&config.storage)?,
        Err(e) => prop_assert_eq!(e.kind(), ErrorKind::Config, "{}", e),
    }
    Ok(())
}

/// Validation and conversion of a parsed config: `Config` errors only, and a config
/// that validates converts into options that validate too.
fn check_config(storage: &StorageConfig) -> Result<(), TestCaseError> {
    match storage.validate() {
        Ok(()) => {
            let options = storage.to_options();
            prop_assert!(
                options.is_ok(),
                "valid config, bad options: {:?}",
                options.err()
            );
            if let Ok(options) = options {
                let checked = options.validate();
                prop_assert!(checked.is_ok(), "{:?}", checked.err());
            }
        }
        Err(e) => prop_assert_eq!(e.kind(), ErrorKind::Config, "{}", e),
    }
    Ok(())
}

fn toml_value() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<i64>().prop_map(|n| n.to_string()),
        (0u64..5000).prop_map(|n| n.to_string()),
        any::<f64>().prop_map(|f| format!("{f:?}")),
        any::<bool>().prop_map(|b| b.to_string()),
        "[a-zA-Z0-9_:/.@?=; -]{0,40}".prop_map(|s| format!("{s:?}")),
        Just("\"sqlite::memory:\"".to_owned()),
        Just("\"postgres://u:pw@h/db\"".to_owned()),
        Just("[1, 2]".to_owned()),
        Just("{ a = 1 }".to_owned()),
        Just("1979-05-27T07:32:00Z".to_owned()),
    ]
}

/// One edit of a document: delete a span, insert text, or duplicate a line.
#[derive(Debug, Clone)]
enum Mutation {
    Delete(usize, usize),
    Insert(usize, String),
    DuplicateLine(usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), 1usize..20).prop_map(|(at, len)| Mutation::Delete(at, len)),
        (any::<usize>(), "[\\[\\]=\"'#\\n a-z0-9.{},-]{1,8}")
            .prop_map(|(at, text)| Mutation::Insert(at, text)),
        any::<usize>().prop_map(Mutation::DuplicateLine),
    ]
}

fn mutate(text: &str, mutation: &Mutation) -> String {
    let chars: Vec<char> = text.chars().collect();
    let at = |i: usize| {
        if chars.is_empty() {
            0
        } else {
            i % (chars.len() + 1)
        }
    };
    match mutation {
        Mutation::Delete(start, len) => {
            let start = at(*start);
            let end = (start + len).min(chars.len());
            chars[..start].iter().chain(&chars[end..]).collect()
        }
        Mutation::Insert(i, insert) => {
            let i = at(*i);
            let mut out: String = chars[..i].iter().collect();
            out.push_str(insert);
            out.extend(&chars[i..]);
            out
        }
        Mutation::DuplicateLine(i) => {
            let lines: Vec<&str> = text.lines().collect();
            let Some(line) = lines.get(i % lines.len().max(1)) else {
                return text.to_owned();
            };
            format!("{text}\n{line}\n")
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases()))]

    #[test]
    fn arbitrary_text_is_never_a_panic(text in any::<String>()) {
        check_document(&text)?;
    }

    #[test]
    fn mutations_of_the_example_config_are_never_a_panic(
        mutations in prop::collection::vec(mutation(), 1..6)
    ) {
        let text = mutations.iter().fold(EMBEDDED_DEFAULT.to_owned(), |t, m| mutate(&t, m));
        check_document(&text)?;
    }

    #[test]
    fn arbitrary_values_under_the_real_keys_are_never_a_panic(
        pairs in prop::collection::vec((prop::sample::select(&KEYS[..]), toml_value()), 0..6)
    ) {
        let body: String = pairs.iter().map(|(k, v)| format!("{k} = {v}\n")).collect();
        check_document(&format!("[storage]\n{body}"))?;
    }

    #[test]
    fn arbitrary_environment_overrides_are_never_a_panic(
        vars in prop::collection::vec(
            (prop::sample::select(&KEYS[..]), "[ -~]{0,24}"),
            0..5,
        )
    ) {
        let mut storage = StorageConfig::default();
        let vars = vars
            .into_iter()
            .map(|(k, v)| (format!("POOLEDSTORE_{}", k.to_ascii_uppercase()), v));
        match storage.apply_overrides(vars) {
            Ok(()) => check_config(&storage)?,
            Err(e) => prop_assert_eq!(e.kind(), ErrorKind::Config, "{}", e),
        }
    }
}
