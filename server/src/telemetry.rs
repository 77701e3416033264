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

    /// Every registered metric, in the text format (ending with `# EOF`).
    pub fn encode(&self) -> String {
        for refresh in lock(&self.refreshes).iter() {
            refresh();
        }
        let mut text = String::new();
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut text, &lock(&self.registry));
        text
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

/// What `/metrics` answers with: OpenMetrics text, which Prometheus reads.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

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
            registry.register("demo_records_sent", "Records sent.", sent.clone());
            registry.register("demo_latency_seconds", "Latency.", latency.clone());
            registry.register("demo_level", "A level.", gauge.clone());
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
        assert!(text.ends_with("# EOF\n"), "{text}");
    }
}
