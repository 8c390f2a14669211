//! Prometheus text exposition (format 0.0.4) of a store's pool instruments and
//! operation metrics, encoded with `prometheus-client` at scrape time from live
//! snapshots, so a scrape always sees current values and recording stays lock-free.
//!
//! Pool families keep OpenTelemetry's database-client names translated the way
//! Prometheus translates OTLP (dots to underscores, `_total` on counters, `_seconds` on
//! durations), so `db.client.connection.max` is `db_client_connection_max`. The one
//! exception is `db.client.connection.count`, exported as `db_client_connections`: a
//! gauge ending in `_count` reads as a histogram's count, and `promtool check metrics`
//! refuses it.

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric, MetricEncoder, NoLabelSet};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::Registry;
use storage_api::{CloseReason, HistogramSnapshot, PoolMetrics, PooledStore, Result, StoreError};

use super::instrumented::Instrumented;
use super::labels::Op;
use super::stats::OperationsSnapshot;

/// The `Content-Type` of the rendered text.
pub const CONTENT_TYPE: &str = prometheus_client::encoding::prometheus_text::CONTENT_TYPE;

/// How exported metrics are named and labelled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportOptions {
    /// Prefix joined to every metric name with `_`; empty for none.
    /// `[A-Za-z_][A-Za-z0-9_]{0,63}` or empty. Default: empty.
    pub namespace: String,
    /// The value of the `pool` label on every series. 1..=128 characters, no control
    /// characters. Default: `"default"`.
    pub pool: String,
}

impl Default for ExportOptions {
    fn default() -> Self {
        Self {
            namespace: String::new(),
            pool: "default".into(),
        }
    }
}

impl ExportOptions {
    /// Checks both settings; errors name the configuration key (`metrics_namespace`,
    /// `pool_name`).
    pub fn validate(&self) -> Result<()> {
        let ns = self.namespace.as_bytes();
        let ns_ok = ns.is_empty()
            || (ns.len() <= 64
                && (ns[0].is_ascii_alphabetic() || ns[0] == b'_')
                && ns.iter().all(|b| b.is_ascii_alphanumeric() || *b == b'_'));
        if !ns_ok {
            return Err(StoreError::config(
                "metrics_namespace must be empty or match [A-Za-z_][A-Za-z0-9_]{0,63}",
            ));
        }
        let pool_len = self.pool.chars().count();
        if !(1..=128).contains(&pool_len) || self.pool.chars().any(char::is_control) {
            return Err(StoreError::config(format!(
                "pool_name must be 1..=128 characters without control characters \
                 (got {pool_len} characters)"
            )));
        }
        Ok(())
    }
}

/// Renders the metrics of one [`Instrumented`] store in the Prometheus text format,
/// every family labelled `pool` and `backend`.
#[derive(Debug)]
pub struct PrometheusExporter {
    registry: Registry,
}

impl PrometheusExporter {
    /// An exporter of `store`'s metrics, named and labelled by `options`.
    pub fn new(store: Arc<Instrumented>, options: &ExportOptions) -> Result<Self> {
        options.validate()?;
        let labels = [
            (Cow::Borrowed("pool"), Cow::Owned(options.pool.clone())),
            (
                Cow::Borrowed("backend"),
                Cow::Borrowed(store.inner().backend_name()),
            ),
            (
                Cow::Borrowed("engine"),
                Cow::Borrowed(store.inner().engine_name()),
            ),
        ];
        let mut registry = if options.namespace.is_empty() {
            Registry::with_labels(labels.into_iter())
        } else {
            Registry::with_prefix_and_labels(options.namespace.clone(), labels.into_iter())
        };
        registry.register_collector(Box::new(StoreCollector { store }));
        Ok(Self { registry })
    }

    /// The current metrics as Prometheus text (format 0.0.4).
    pub fn render(&self) -> String {
        let mut out = String::with_capacity(8 * 1024);
        // Writing into a String cannot fail, and every value we encode is finite.
        if let Err(e) =
            prometheus_client::encoding::prometheus_text::encode(&mut out, &self.registry)
        {
            tracing::warn!(error = %e, "cannot encode metrics");
        }
        out
    }
}

/// Reads the store's snapshots on each scrape.
#[derive(Debug)]
struct StoreCollector {
    store: Arc<Instrumented>,
}

impl Collector for StoreCollector {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> fmt::Result {
        encode_pool(&mut encoder, &self.store.pool_metrics())?;
        encode_operations(&mut encoder, &self.store.operations())
    }
}

fn encode_pool(e: &mut DescriptorEncoder<'_>, pool: &PoolMetrics) -> fmt::Result {
    let mut count = e.encode_descriptor(
        "db_client_connections",
        "Open connections, by state (idle or used); OpenTelemetry db.client.connection.count.",
        None,
        MetricType::Gauge,
    )?;
    for (state, value) in [("idle", pool.idle), ("used", pool.in_use)] {
        ConstGauge::new(value).encode(count.encode_family(&[("state", state)])?)?;
    }
    gauge(
        e,
        "db_client_connection_max",
        "Maximum connections the pool may open (db_pool_size); OpenTelemetry db.client.connection.max.",
        pool.max,
    )?;
    gauge(
        e,
        "db_client_connection_idle_min",
        "Connections the pool keeps open while idle (db_min_idle); OpenTelemetry db.client.connection.idle.min.",
        pool.min_idle,
    )?;
    gauge(
        e,
        "db_client_connection_pending_requests",
        "Callers waiting for a connection now; OpenTelemetry db.client.connection.pending_requests.",
        pool.pending,
    )?;
    counter(
        e,
        "db_client_connection_timeouts",
        "Connection acquisitions that gave up at the acquire timeout; OpenTelemetry db.client.connection.timeouts.",
        pool.timeouts,
    )?;
    let wait = e.encode_descriptor(
        "db_client_connection_wait_time_seconds",
        "Time callers waited to acquire a connection, in seconds; OpenTelemetry db.client.connection.wait_time.",
        None,
        MetricType::Histogram,
    )?;
    histogram(wait, &pool.acquire_wait)?;
    let mut closed = e.encode_descriptor(
        "db_client_connection_closed",
        "Connections closed, by reason.",
        None,
        MetricType::Counter,
    )?;
    for reason in CloseReason::ALL {
        let value = pool.closed.get(reason);
        ConstCounter::new(value).encode(closed.encode_family(&[("reason", reason.as_str())])?)?;
    }
    counter(
        e,
        "pooledstore_connections_created",
        "Connections the pool opened.",
        pool.created,
    )?;
    counter(
        e,
        "pooledstore_connections_acquired",
        "Connections handed out to callers.",
        pool.acquired,
    )?;
    counter(
        e,
        "pooledstore_connection_leaks",
        "Connections or transactions held past db_leak_detection_threshold_secs.",
        pool.leaks,
    )?;
    counter(
        e,
        "pooledstore_sqlite_busy",
        "Operations that failed because the SQLite database stayed locked.",
        pool.busy,
    )
}

fn encode_operations(e: &mut DescriptorEncoder<'_>, ops: &OperationsSnapshot) -> fmt::Result {
    let mut total = e.encode_descriptor(
        "pooledstore_operations",
        "Store operations, by operation and outcome (ok or the error kind).",
        None,
        MetricType::Counter,
    )?;
    for op in Op::ALL {
        // Every op shows its ok series (zero until used); error outcomes appear once seen.
        for (outcome, value) in ops.outcomes(op) {
            if value > 0 || outcome == "ok" {
                let labels = [("op", op.as_str()), ("outcome", outcome)];
                ConstCounter::new(value).encode(total.encode_family(&labels)?)?;
            }
        }
    }
    let mut duration = e.encode_descriptor(
        "pooledstore_operation_duration_seconds",
        "Time store operations took, in seconds, by operation and outcome.",
        None,
        MetricType::Histogram,
    )?;
    // Only the (op, outcome) pairs seen, as for the error outcomes above.
    for op in Op::ALL {
        for (outcome, h) in ops.durations(op) {
            let labels = [("op", op.as_str()), ("outcome", outcome)];
            histogram(duration.encode_family(&labels)?, h)?;
        }
    }
    Ok(())
}

fn gauge(e: &mut DescriptorEncoder<'_>, name: &str, help: &str, value: u32) -> fmt::Result {
    ConstGauge::new(value).encode(e.encode_descriptor(name, help, None, MetricType::Gauge)?)
}

/// A counter; the encoder appends `_total` to `name`.
fn counter(e: &mut DescriptorEncoder<'_>, name: &str, help: &str, value: u64) -> fmt::Result {
    ConstCounter::new(value).encode(e.encode_descriptor(name, help, None, MetricType::Counter)?)
}

/// Encodes a cumulative snapshot; the encoder wants per-bucket counts and adds `+Inf`.
fn histogram(mut m: MetricEncoder<'_>, h: &HistogramSnapshot) -> fmt::Result {
    let mut previous = 0;
    let buckets: Vec<(f64, u64)> = h
        .bounds
        .iter()
        .zip(&h.counts)
        .map(|(bound, cumulative)| {
            let in_bucket = cumulative.saturating_sub(previous);
            previous = *cumulative;
            (*bound, in_bucket)
        })
        .collect();
    // A scrape racing an observation may see the bucket before the count moves.
    let count = h.count.max(previous);
    m.encode_histogram::<NoLabelSet>(h.sum, count, &buckets, None)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use storage_api::backend::{PoolGauges, PoolInstruments};
    use storage_api::{CloseReason, ErrorKind, PooledStore, PutOptions};

    use super::*;
    use crate::observe::fake::Scripted;

    /// A store whose pool reports 4 max, 3 open (1 idle), 2 waiting, a timeout, two
    /// acquisitions, one broken connection and one busy error.
    fn store() -> Arc<Instrumented> {
        let instruments = PoolInstruments::new();
        instruments.record_acquired(Duration::from_micros(40));
        instruments.record_acquired(Duration::from_millis(3));
        instruments.record_timeout(Duration::from_secs(1));
        instruments.record_closed(CloseReason::Broken);
        instruments.record_busy();
        let _w1 = instruments.waiting();
        let _w2 = instruments.waiting();
        let metrics = instruments.snapshot(PoolGauges {
            max: 4,
            min_idle: 1,
            size: 3,
            idle: 1,
        });
        let inner = Scripted::default();
        *inner.metrics.lock().unwrap() = metrics;
        Arc::new(Instrumented::new(Arc::new(inner)))
    }

    fn parse(text: &str) -> prometheus_parse::Scrape {
        let lines = text.lines().map(|l| Ok(l.to_owned()));
        prometheus_parse::Scrape::parse(lines).expect("valid exposition")
    }

    fn value(scrape: &prometheus_parse::Scrape, name: &str, labels: &[(&str, &str)]) -> f64 {
        let found: Vec<_> = scrape
            .samples
            .iter()
            .filter(|s| s.metric == name && labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
            .collect();
        assert_eq!(found.len(), 1, "{name} {labels:?}: {found:?}");
        match found[0].value {
            prometheus_parse::Value::Counter(v)
            | prometheus_parse::Value::Gauge(v)
            | prometheus_parse::Value::Untyped(v) => v,
            ref other => panic!("{name}: unexpected {other:?}"),
        }
    }

    #[tokio::test]
    async fn renders_every_family_with_pool_and_backend_labels() {
        let store = store();
        store.put(b"k", b"v", PutOptions::default()).await.unwrap();
        store.put(b"k", b"v", PutOptions::default()).await.unwrap();
        let _ = store.put(b"cas", b"v", PutOptions::default()).await;
        let exporter =
            PrometheusExporter::new(Arc::clone(&store), &ExportOptions::default()).unwrap();
        let text = exporter.render();
        let scrape = parse(&text);

        for sample in &scrape.samples {
            assert_eq!(sample.labels.get("pool"), Some("default"), "{sample:?}");
            assert_eq!(sample.labels.get("backend"), Some("scripted"), "{sample:?}");
        }
        assert_eq!(
            value(&scrape, "db_client_connections", &[("state", "idle")]),
            1.0
        );
        assert_eq!(
            value(&scrape, "db_client_connections", &[("state", "used")]),
            2.0
        );
        assert_eq!(value(&scrape, "db_client_connection_max", &[]), 4.0);
        assert_eq!(value(&scrape, "db_client_connection_idle_min", &[]), 1.0);
        assert_eq!(
            value(&scrape, "db_client_connection_pending_requests", &[]),
            2.0
        );
        assert_eq!(
            value(&scrape, "db_client_connection_timeouts_total", &[]),
            1.0
        );
        let broken = [("reason", "broken")];
        assert_eq!(
            value(&scrape, "db_client_connection_closed_total", &broken),
            1.0
        );
        let shutdown = [("reason", "shutdown")];
        assert_eq!(
            value(&scrape, "db_client_connection_closed_total", &shutdown),
            0.0
        );
        assert_eq!(value(&scrape, "pooledstore_sqlite_busy_total", &[]), 1.0);
        assert_eq!(
            value(&scrape, "pooledstore_connections_acquired_total", &[]),
            2.0
        );
        let put_ok = [("op", "put"), ("outcome", "ok")];
        assert_eq!(value(&scrape, "pooledstore_operations_total", &put_ok), 2.0);
        let put_cas = [("op", "put"), ("outcome", "condition_failed")];
        assert_eq!(
            value(&scrape, "pooledstore_operations_total", &put_cas),
            1.0
        );
        let get_ok = [("op", "get"), ("outcome", "ok")];
        assert_eq!(value(&scrape, "pooledstore_operations_total", &get_ok), 0.0);
        assert!(
            !text.contains("outcome=\"busy\""),
            "unseen outcomes are left out"
        );

        // Histograms, in seconds: three acquire waits, one of them within 50 µs.
        assert!(text.contains("# TYPE db_client_connection_wait_time_seconds histogram"));
        let wait = scrape
            .samples
            .iter()
            .find(|s| s.metric == "db_client_connection_wait_time_seconds")
            .expect("wait histogram");
        let prometheus_parse::Value::Histogram(buckets) = &wait.value else {
            panic!("{wait:?}");
        };
        assert_eq!(
            buckets.first().map(|b| (b.less_than, b.count)),
            Some((0.000_05, 1.0))
        );
        assert_eq!(buckets.last().map(|b| b.count), Some(3.0));
        assert!(text.contains(
            "db_client_connection_wait_time_seconds_count{pool=\"default\",backend=\"scripted\",engine=\"scripted\"} 3"
        ));
        assert!(text.contains("pooledstore_operation_duration_seconds_count{pool=\"default\",backend=\"scripted\",engine=\"scripted\",op=\"put\",outcome=\"ok\"} 2"));
        assert!(text.contains("pooledstore_operation_duration_seconds_count{pool=\"default\",backend=\"scripted\",engine=\"scripted\",op=\"put\",outcome=\"condition_failed\"} 1"));
        assert!(
            !text.contains(
                "duration_seconds_bucket{pool=\"default\",backend=\"scripted\",engine=\"scripted\",op=\"get\""
            ),
            "histograms only for ops seen"
        );
        assert!(!text.contains("# EOF"), "Prometheus 0.0.4, not OpenMetrics");
    }

    /// The conventions `promtool check metrics` lints, checked without promtool: counters
    /// end in `_total`, no other family ends in a histogram suffix, durations are seconds.
    #[tokio::test]
    async fn family_names_follow_prometheus_conventions() {
        let store = store();
        store.put(b"k", b"v", PutOptions::default()).await.unwrap();
        let text = PrometheusExporter::new(store, &ExportOptions::default())
            .unwrap()
            .render();
        let families: Vec<(&str, &str)> = text
            .lines()
            .filter_map(|l| l.strip_prefix("# TYPE "))
            .filter_map(|l| l.split_once(' '))
            .collect();
        assert!(families.len() >= 13, "{families:?}");
        for (name, kind) in families {
            match kind {
                "counter" => assert!(name.ends_with("_total"), "{name}"),
                "histogram" => assert!(name.ends_with("_seconds"), "{name}"),
                "gauge" => {}
                other => panic!("{name}: unexpected type {other}"),
            }
            if kind != "histogram" {
                for suffix in ["_count", "_sum", "_bucket"] {
                    assert!(!name.ends_with(suffix), "{name} ends in {suffix}");
                }
            }
        }
    }

    #[test]
    fn namespace_and_pool_name_apply_everywhere() {
        let options = ExportOptions {
            namespace: "app".into(),
            pool: "orders \"eu\"".into(),
        };
        let text = PrometheusExporter::new(store(), &options).unwrap().render();
        let scrape = parse(&text);
        assert!(!scrape.samples.is_empty());
        for sample in &scrape.samples {
            assert!(sample.metric.starts_with("app_"), "{}", sample.metric);
        }
        assert!(
            text.contains(
                "app_db_client_connection_max{pool=\"orders \\\"eu\\\"\",backend=\"scripted\",engine=\"scripted\"} 4"
            ),
            "{text}"
        );
    }

    #[test]
    fn invalid_options_name_the_key() {
        let bad_ns = ExportOptions {
            namespace: "no-dash".into(),
            ..ExportOptions::default()
        };
        let e = PrometheusExporter::new(store(), &bad_ns).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Config);
        assert!(e.message().contains("metrics_namespace"), "{e}");
        let long_pool = ExportOptions {
            pool: "p".repeat(129),
            ..ExportOptions::default()
        };
        let e = long_pool.validate().unwrap_err();
        assert!(e.message().contains("pool_name"), "{e}");
    }

    #[test]
    fn histogram_buckets_are_decumulated_for_the_encoder() {
        let mut h = HistogramSnapshot {
            bounds: vec![0.1, 1.0],
            counts: vec![2, 5],
            count: 7,
            sum: 9.5,
        };
        let mut registry = Registry::default();
        #[derive(Debug)]
        struct One(HistogramSnapshot);
        impl Collector for One {
            fn encode(&self, mut e: DescriptorEncoder<'_>) -> fmt::Result {
                histogram(
                    e.encode_descriptor("h", "h", None, MetricType::Histogram)?,
                    &self.0,
                )
            }
        }
        registry.register_collector(Box::new(One(h.clone())));
        let mut out = String::new();
        prometheus_client::encoding::prometheus_text::encode(&mut out, &registry).unwrap();
        assert!(out.contains("h_bucket{le=\"0.1\"} 2\n"), "{out}");
        assert!(out.contains("h_bucket{le=\"1\"} 5\n"), "{out}");
        assert!(out.contains("h_bucket{le=\"+Inf\"} 7\n"), "{out}");
        assert!(out.contains("h_sum 9.5\n"), "{out}");

        // A count that lags its buckets (a racing scrape) is raised to stay monotonic.
        h.count = 4;
        let mut registry = Registry::default();
        registry.register_collector(Box::new(One(h)));
        let mut out = String::new();
        prometheus_client::encoding::prometheus_text::encode(&mut out, &registry).unwrap();
        assert!(out.contains("h_bucket{le=\"+Inf\"} 5\n"), "{out}");
        assert!(out.contains("h_count 5\n"), "{out}");
    }
}
