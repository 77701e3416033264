//! The metrics every role exports, in the Prometheus text format: one registry per process
//! (`prometheus-client`), which each role's library registers its counters, gauges and
//! histograms in, and `GET /metrics` on whichever server the process runs.
//!
//! `livescore up` runs every role in one process: they share one `Telemetry`, and its
//! `/metrics` shows them all.

use std::sync::{Arc, Mutex, MutexGuard};

use axum::Router;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use prometheus_client::registry::Registry;

/// Called before each scrape: for gauges read from state rather than kept up to date.
type Refresh = Box<dyn Fn() + Send + Sync>;

#[derive(Default)]
pub struct Telemetry {
    registry: Mutex<Registry>,
    refreshes: Mutex<Vec<Refresh>>,
}

impl std::fmt::Debug for Telemetry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Telemetry").finish_non_exhaustive()
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Telemetry {
    pub fn new() -> Arc<Telemetry> {
        Arc::new(Telemetry::default())
    }

    /// Lets a role register its metrics.
    pub fn register<T>(&self, register: impl FnOnce(&mut Registry) -> T) -> T {
        register(&mut lock(&self.registry))
    }

    /// Runs `refresh` before each scrape.
    pub fn on_scrape(&self, refresh: impl Fn() + Send + Sync + 'static) {
        lock(&self.refreshes).push(Box::new(refresh));
    }

    /// Every registered metric, in the Prometheus text format (see [`CONTENT_TYPE`]).
    pub fn encode(&self) -> String {
        for refresh in lock(&self.refreshes).iter() {
            refresh();
        }
        let mut text = String::new();
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut text, &lock(&self.registry));
        prometheus_text(&text)
    }

    /// `GET /metrics`.
    pub fn router(self: &Arc<Self>) -> Router {
        let telemetry = Arc::clone(self);
        Router::new().route(
            "/metrics",
            get(move || {
                let text = telemetry.encode();
                async move { ([(header::CONTENT_TYPE, CONTENT_TYPE)], text).into_response() }
            }),
        )
    }
}

/// What `/metrics` answers with: the Prometheus text format (0.0.4), which every scraper reads,
/// and which `promtool check metrics` checks.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// OpenMetrics text, as `prometheus-client` writes it, in the Prometheus text format 0.0.4. The
/// two differ, for what is written here, only in this: OpenMetrics names a counter's family
/// without the `_total` its samples carry (0.0.4 names it after them, or the samples have no
/// help and no type), and ends with `# EOF`.
fn prometheus_text(openmetrics: &str) -> String {
    let counters: std::collections::HashSet<&str> = openmetrics
        .lines()
        .filter_map(|line| line.strip_prefix("# TYPE ")?.strip_suffix(" counter"))
        .collect();
    let mut text = String::with_capacity(openmetrics.len() + 16 * counters.len());
    for line in openmetrics.lines() {
        if line == "# EOF" || line.starts_with("# UNIT ") {
            continue;
        }
        let comment = ["# HELP ", "# TYPE "]
            .into_iter()
            .find_map(|kind| Some((kind, line.strip_prefix(kind)?)));
        match comment {
            Some((kind, rest))
                if rest
                    .split_once(' ')
                    .is_some_and(|(name, _)| counters.contains(name)) =>
            {
                let (name, tail) = rest.split_once(' ').unwrap_or((rest, ""));
                text.push_str(&format!("{kind}{name}_total {tail}\n"));
            }
            _ => {
                text.push_str(line);
                text.push('\n');
            }
        }
    }
    text
}

/// Histogram buckets for latencies, in seconds: 0.5 ms to about 16 s.
pub fn latency_buckets() -> impl Iterator<Item = f64> {
    prometheus_client::metrics::histogram::exponential_buckets(0.0005, 2.0, 16)
}

#[cfg(test)]
mod tests {
    use prometheus_client::metrics::counter::Counter;
    use prometheus_client::metrics::gauge::Gauge;
    use prometheus_client::metrics::histogram::Histogram;

    use super::*;

    #[test]
    fn registered_metrics_are_encoded_and_refreshed_on_each_scrape() {
        let telemetry = Telemetry::new();
        let sent: Counter = Counter::default();
        let latency = Histogram::new(latency_buckets());
        let gauge: Gauge = Gauge::default();
        telemetry.register(|registry| {
            registry.register("demo_records_sent", "Records sent", sent.clone());
            registry.register("demo_latency_seconds", "Latency", latency.clone());
            registry.register("demo_level", "A level", gauge.clone());
        });
        let level = gauge.clone();
        telemetry.on_scrape(move || {
            level.set(7);
        });
        sent.inc_by(3);
        latency.observe(0.002);
        let text = telemetry.encode();
        assert!(text.contains("demo_records_sent_total 3"), "{text}");
        assert!(text.contains("demo_latency_seconds_count 1"), "{text}");
        assert!(text.contains("demo_level 7"), "{text}");
    }

    #[test]
    fn counters_are_named_after_their_samples_and_nothing_follows_the_last_metric() {
        let telemetry = Telemetry::new();
        let sent: Counter = Counter::default();
        let gauge: Gauge = Gauge::default();
        telemetry.register(|registry| {
            registry.register("demo_records_sent", "Records sent", sent.clone());
            registry.register("demo_level", "A level", gauge.clone());
        });
        sent.inc();
        let text = telemetry.encode();
        assert!(
            text.contains("# HELP demo_records_sent_total Records sent.\n"),
            "{text}"
        );
        assert!(
            text.contains("# TYPE demo_records_sent_total counter\n"),
            "{text}"
        );
        assert!(text.contains("# HELP demo_level A level.\n"), "{text}");
        assert!(text.contains("# TYPE demo_level gauge\n"), "{text}");
        assert!(!text.contains("# EOF"), "{text}");
    }
}
