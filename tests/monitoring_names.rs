//! The dashboard and the alert rules in `ops/prometheus` query only what the real
//! exposition has: every metric name a panel, a dashboard variable, a rule or a rule
//! unit test names is a sample name of a store's `/metrics` after real work, every label
//! they match or group by is a label of it, and every label value they match exactly is
//! one the store emits. A rename in the exporter therefore fails here instead of
//! leaving a panel empty or an alert silent.
#![cfg(feature = "serve")]
#![cfg(any(feature = "sqlx", feature = "deadpool"))]

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Arc;

use pooledstore::observe::{ExportOptions, Outcome, PrometheusExporter};
use pooledstore::{ErrorKind, PooledStore, StorageConfig};

/// Series Prometheus adds to every target, and the labels it adds to every series.
const SCRAPE_SERIES: &[&str] = &["up"];
const TARGET_LABELS: &[&str] = &["job", "instance"];
/// Labels whose values the operator chooses (`pool_name`), so any value is fine.
const CONFIGURED_LABELS: &[&str] = &["job", "instance", "pool"];

/// What the exposition offers: label names and values by sample name.
#[derive(Debug, Default)]
struct Exposition {
    labels: BTreeMap<String, BTreeMap<String, BTreeSet<String>>>,
}

impl Exposition {
    fn parse(text: &str) -> Self {
        let mut out = Self::default();
        for line in text
            .lines()
            .filter(|l| !l.starts_with('#') && !l.is_empty())
        {
            let end = line.find(['{', ' ']).expect("a sample line");
            let labels = out.labels.entry(line[..end].to_owned()).or_default();
            if line[end..].starts_with('{') {
                for (name, value) in parse_matchers(&line[end + 1..]).0 {
                    labels.entry(name).or_default().insert(value);
                }
            }
        }
        out
    }

    fn has_metric(&self, name: &str) -> bool {
        self.labels.contains_key(name) || SCRAPE_SERIES.contains(&name)
    }

    fn has_label(&self, metric: &str, label: &str) -> bool {
        TARGET_LABELS.contains(&label)
            || self
                .labels
                .get(metric)
                .is_some_and(|l| l.contains_key(label))
    }

    fn any_has_label(&self, label: &str) -> bool {
        TARGET_LABELS.contains(&label) || self.labels.values().any(|l| l.contains_key(label))
    }

    fn has_value(&self, label: &str, value: &str) -> bool {
        let outcomes = error_outcomes();
        (label == "outcome" && outcomes.contains(value))
            || (label == "backend" && pooledstore::BACKENDS.iter().any(|b| b.name == value))
            || self
                .labels
                .values()
                .any(|l| l.get(label).is_some_and(|v| v.contains(value)))
    }
}

/// Every error outcome label, whether or not the run produced it.
fn error_outcomes() -> BTreeSet<String> {
    use ErrorKind::*;
    [
        InvalidInput,
        ConditionFailed,
        Conflict,
        Timeout,
        Busy,
        Closed,
        Connection,
        Unsupported,
        Config,
        Corrupt,
        Backend,
    ]
    .into_iter()
    .map(|k| Outcome::Failed(k).as_str().to_owned())
    .chain([Outcome::Cancelled.as_str().to_owned()])
    .collect()
}

/// A label matcher: name, operator and value.
type Matcher = (String, String, String);

/// Parses `name="value", …}` (the text after `{`) into `(name, value)` pairs with the
/// operator kept aside; returns them and the length consumed, closing brace included.
fn parse_matchers(s: &str) -> (Vec<(String, String)>, usize) {
    let (matchers, used) = parse_matchers_with_ops(s);
    (matchers.into_iter().map(|(n, _, v)| (n, v)).collect(), used)
}

fn parse_matchers_with_ops(s: &str) -> (Vec<Matcher>, usize) {
    let b = s.as_bytes();
    let mut i = 0;
    let mut out = Vec::new();
    loop {
        while i < b.len() && (b[i] == b' ' || b[i] == b',' || b[i] == b'\n') {
            i += 1;
        }
        if i >= b.len() || b[i] == b'}' {
            return (out, i + 1);
        }
        let start = i;
        while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_') {
            i += 1;
        }
        let name = s[start..i].to_owned();
        while b[i] == b' ' {
            i += 1;
        }
        let op_start = i;
        while matches!(b[i], b'=' | b'!' | b'~') {
            i += 1;
        }
        let op = s[op_start..i].to_owned();
        while b[i] == b' ' {
            i += 1;
        }
        let quote = b[i];
        assert!(matches!(quote, b'"' | b'\''), "a quoted value in {s:?}");
        i += 1;
        let mut value = String::new();
        while b[i] != quote {
            if b[i] == b'\\' {
                i += 1;
            }
            value.push(b[i] as char);
            i += 1;
        }
        i += 1;
        assert!(!name.is_empty() && !op.is_empty(), "a matcher in {s:?}");
        out.push((name, op, value));
    }
}

/// What one PromQL expression refers to.
#[derive(Debug, Default)]
struct References {
    /// Metric names, each with the matchers of its selector.
    selectors: Vec<(String, Vec<Matcher>)>,
    /// Labels named by `by`, `without`, `on` and `ignoring`.
    grouping: Vec<String>,
}

const KEYWORDS: &[&str] = &["and", "or", "unless", "bool", "offset", "inf", "nan"];
/// Aggregation operators, which may take `by (…)` or `without (…)` before `(`.
const AGGREGATORS: &[&str] = &[
    "sum",
    "min",
    "max",
    "avg",
    "group",
    "stddev",
    "stdvar",
    "count",
    "count_values",
    "bottomk",
    "topk",
    "quantile",
];
const GROUPING: &[&str] = &[
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
];

/// Finds the metric names, matchers and grouping labels of a PromQL expression
/// (Grafana variables allowed): identifiers followed by `(` are functions, those after
/// a grouping keyword are labels, and every other identifier outside strings, ranges
/// and braces is a metric name.
fn references(expr: &str) -> References {
    let b = expr.as_bytes();
    let mut refs = References::default();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if c == b'"' || c == b'\'' || c == b'`' {
            i += 1;
            while b[i] != c {
                i += if b[i] == b'\\' { 2 } else { 1 };
            }
            i += 1;
        } else if c == b'[' {
            i += expr[i..].find(']').expect("closed range") + 1;
        } else if c == b'{' {
            let (matchers, used) = parse_matchers_with_ops(&expr[i + 1..]);
            match refs.selectors.last_mut() {
                Some((_, m))
                    if m.is_empty()
                        && expr[..i]
                            .trim_end()
                            .ends_with(|c: char| c.is_ascii_alphanumeric() || c == '_') =>
                {
                    *m = matchers
                }
                _ => panic!("a selector without a metric name in {expr:?}"),
            }
            i += 1 + used;
        } else if c == b'$' {
            i += 1;
            while i < b.len()
                && (b[i].is_ascii_alphanumeric() || b[i] == b'_' || b[i] == b'{' || b[i] == b'}')
            {
                i += 1;
            }
        } else if c.is_ascii_digit() || (c == b'.' && b.get(i + 1).is_some_and(u8::is_ascii_digit))
        {
            while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'.' || b[i] == b'_') {
                i += 1;
            }
        } else if c.is_ascii_alphabetic() || c == b'_' || c == b':' {
            let start = i;
            while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_' || b[i] == b':') {
                i += 1;
            }
            let word = &expr[start..i];
            let next = expr[i..].trim_start();
            if GROUPING.contains(&word) {
                if let Some(list) = next.strip_prefix('(') {
                    let close = list.find(')').expect("closed label list");
                    refs.grouping.extend(
                        list[..close]
                            .split(',')
                            .map(str::trim)
                            .filter(|l| !l.is_empty())
                            .map(str::to_owned),
                    );
                    i = expr.len() - list.len() + close + 1;
                }
            } else if !next.starts_with('(')
                && !KEYWORDS.contains(&word)
                && !(AGGREGATORS.contains(&word)
                    && (next.starts_with("by") || next.starts_with("without")))
            {
                refs.selectors.push((word.to_owned(), Vec::new()));
            }
        } else {
            i += 1;
        }
    }
    refs
}

/// Checks one expression against the exposition; returns its problems.
fn check(exposition: &Exposition, what: &str, expr: &str) -> Vec<String> {
    let refs = references(expr);
    let mut problems = Vec::new();
    if refs.selectors.is_empty() {
        problems.push(format!("{what}: no metric in {expr:?}"));
    }
    for (metric, matchers) in &refs.selectors {
        if !exposition.has_metric(metric) {
            problems.push(format!("{what}: no metric {metric} in the exposition"));
            continue;
        }
        for (label, op, value) in matchers {
            if !exposition.has_label(metric, label) {
                problems.push(format!("{what}: {metric} has no label {label}"));
            } else if CONFIGURED_LABELS.contains(&label.as_str()) || value.contains('$') {
                // Set by the scrape configuration or chosen by the dashboard's user.
            } else if op == "=" || op == "!=" {
                if !exposition.has_value(label, value) {
                    problems.push(format!("{what}: no {label}=\"{value}\" in the exposition"));
                }
            } else {
                for alternative in value.split('|') {
                    let literal = alternative
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '_');
                    if literal && !exposition.has_value(label, alternative) {
                        problems.push(format!(
                            "{what}: no {label}=\"{alternative}\" in the exposition"
                        ));
                    }
                }
            }
        }
    }
    for label in &refs.grouping {
        if !exposition.any_has_label(label) {
            problems.push(format!("{what}: groups by {label}, which no metric has"));
        }
    }
    problems
}

/// A real store's exposition after every kind of operation, failures included.
async fn real_exposition() -> Exposition {
    let dir = tempfile::tempdir().unwrap();
    let config = StorageConfig {
        backend: common::BACKEND.into(),
        url: format!("sqlite://{}", dir.path().join("names.db").display()),
        db_pool_size: 1,
        db_connection_timeout_secs: 1,
        ..StorageConfig::default()
    };
    let store = pooledstore::open_instrumented(&config).await.unwrap();
    assert!(common::exercise(store.as_ref()).await, "an acquire timeout");
    let text = PrometheusExporter::new(Arc::clone(&store), &ExportOptions::default())
        .unwrap()
        .render();
    store.close().await;
    Exposition::parse(&text)
}

fn ops_file(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("ops/prometheus")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The `expr:` values of a rule file, inline or as a block scalar (`|`, `>`).
fn rule_exprs(yaml: &str) -> Vec<String> {
    let lines: Vec<&str> = yaml.lines().collect();
    let mut out = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let Some((indent, value)) = line.split_once("expr:") else {
            continue;
        };
        if !indent.trim().is_empty() {
            continue;
        }
        let value = value.trim();
        if !value.starts_with(['|', '>']) {
            out.push(value.trim_matches(['\'', '"']).to_owned());
            continue;
        }
        let block: Vec<&str> = lines[i + 1..]
            .iter()
            .take_while(|l| l.trim().is_empty() || l.len() - l.trim_start().len() > indent.len())
            .map(|l| l.trim())
            .collect();
        out.push(block.join("\n"));
    }
    out
}

#[tokio::test]
async fn dashboard_queries_only_exported_metrics_and_labels() {
    let exposition = real_exposition().await;
    let dashboard: serde_json::Value =
        serde_json::from_str(&ops_file("grafana-dashboard.json")).expect("the dashboard is JSON");
    let mut problems = Vec::new();
    let panels = dashboard["panels"].as_array().expect("panels");
    let mut queries = 0;
    for panel in panels.iter().filter(|p| p["type"] != "row") {
        let title = panel["title"].as_str().expect("a panel title");
        let targets = panel["targets"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default();
        assert!(!targets.is_empty(), "panel {title:?} queries nothing");
        for target in targets {
            let expr = target["expr"].as_str().expect("a PromQL expr");
            problems.extend(check(&exposition, &format!("panel {title:?}"), expr));
            queries += 1;
        }
    }
    assert!(queries >= 15, "{queries} queries");
    // Variables: label_values(selector, label).
    for var in dashboard["templating"]["list"]
        .as_array()
        .expect("templating")
    {
        let Some(query) = var["query"]["query"].as_str() else {
            continue;
        };
        let inner = query
            .strip_prefix("label_values(")
            .and_then(|q| q.strip_suffix(')'))
            .unwrap_or_else(|| panic!("unexpected variable query {query:?}"));
        let (selector, label) = inner
            .rsplit_once(',')
            .expect("label_values(selector, label)");
        let what = format!("variable {}", var["name"]);
        problems.extend(check(&exposition, &what, selector));
        let metric = &references(selector).selectors[0].0;
        if !exposition.has_label(metric, label.trim()) {
            problems.push(format!("{what}: {metric} has no label {}", label.trim()));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[tokio::test]
async fn alert_rules_and_their_tests_use_exported_metrics_and_labels() {
    let exposition = real_exposition().await;
    let rules = ops_file("alerts.yml");
    let exprs = rule_exprs(&rules);
    let alerts = rules
        .lines()
        .filter(|l| l.trim_start().starts_with("- alert:"))
        .count();
    assert_eq!(exprs.len(), alerts, "one expr per alert: {exprs:#?}");
    assert!(alerts >= 8);
    let mut problems = Vec::new();
    for expr in &exprs {
        problems.extend(check(&exposition, "alerts.yml", expr));
    }
    // The unit tests' input series are selectors too.
    let tests = ops_file("alerts_test.yml");
    let series: Vec<&str> = tests
        .lines()
        .filter_map(|l| l.trim().strip_prefix("- series:"))
        .map(|s| s.trim().trim_matches('\''))
        .collect();
    assert!(series.len() >= 20, "{series:?}");
    for s in series {
        problems.extend(check(&exposition, "alerts_test.yml series", s));
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn the_reference_finder_sees_names_labels_and_values() {
    let refs = references(
        r#"histogram_quantile(0.99, sum by (pool, le) (rate(a_bucket{x="1", y=~"$v"}[$__rate_interval])))
           / ignoring (state) b offset 5m and on(pool) c{z!~"p|q"} > 0.9"#,
    );
    let names: Vec<&str> = refs.selectors.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["a_bucket", "b", "c"]);
    assert_eq!(refs.selectors[0].1.len(), 2);
    assert_eq!(
        refs.selectors[2].1[0],
        ("z".into(), "!~".into(), "p|q".into())
    );
    assert_eq!(refs.grouping, ["pool", "le", "state", "pool"]);

    let text = "m_total{pool=\"a,b\",outcome=\"ok\"} 1\nm_total{pool=\"c\",outcome=\"busy\"} 2\n";
    let exposition = Exposition::parse(text);
    assert!(
        check(
            &exposition,
            "t",
            r#"sum by (pool) (m_total{outcome="busy"})"#
        )
        .is_empty()
    );
    let wrong = check(
        &exposition,
        "t",
        r#"n_total{color="red"} + m_total{outcome="okay"} + m_total{reason="x"}"#,
    );
    assert_eq!(wrong.len(), 3, "{wrong:?}");
    assert!(!check(&exposition, "t", "sum by (shard) (m_total)").is_empty());
}
