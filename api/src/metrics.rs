//! The replica's Prometheus metrics, as plain counters and gauges written in the text format.

use std::fmt::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

#[derive(Debug, Default)]
pub struct Metrics {
    pub sse_connections: AtomicI64,
    pub ws_connections: AtomicI64,
    /// Messages handed to clients (snapshots included), all transports.
    pub messages_sent: AtomicU64,
    /// Times a client caught up from the store after falling behind the live channel (or after
    /// the store subscription was interrupted).
    pub catch_ups: AtomicU64,
    /// Snapshots sent because a client's cursor was unknown (too old, another store, garbage).
    pub resync_snapshots: AtomicU64,
    /// Clients let go because they stopped reading.
    pub slow_client_closes: AtomicU64,
    /// Times the replica's store subscription was interrupted or fell behind.
    pub live_interruptions: AtomicU64,
    /// Milliseconds between a write to Redis and its arrival here, last seen.
    pub subscription_lag_ms: AtomicI64,
}

impl Metrics {
    fn gauge(&self, websocket: bool) -> &AtomicI64 {
        if websocket {
            &self.ws_connections
        } else {
            &self.sse_connections
        }
    }

    pub fn add(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// The text exposition format.
    pub fn render(&self, subscribers: usize) -> String {
        let count = |counter: &AtomicU64| counter.load(Ordering::Relaxed) as i64;
        let mut out = String::new();
        metric(
            &mut out,
            "livescore_connections",
            "gauge",
            "Open client connections by transport.",
            &[
                (
                    "{transport=\"sse\"}",
                    self.sse_connections.load(Ordering::Relaxed),
                ),
                (
                    "{transport=\"ws\"}",
                    self.ws_connections.load(Ordering::Relaxed),
                ),
            ],
        );
        let single = [
            (
                "livescore_topic_subscribers",
                "gauge",
                "Topic subscriptions of all clients.",
                subscribers as i64,
            ),
            (
                "livescore_messages_sent_total",
                "counter",
                "Messages handed to clients.",
                count(&self.messages_sent),
            ),
            (
                "livescore_catch_ups_total",
                "counter",
                "Clients caught up from the store after falling behind.",
                count(&self.catch_ups),
            ),
            (
                "livescore_resync_snapshots_total",
                "counter",
                "Snapshots sent for unknown cursors.",
                count(&self.resync_snapshots),
            ),
            (
                "livescore_slow_client_closes_total",
                "counter",
                "Clients let go because they stopped reading.",
                count(&self.slow_client_closes),
            ),
            (
                "livescore_live_interruptions_total",
                "counter",
                "Interruptions of the replica's store subscription.",
                count(&self.live_interruptions),
            ),
            (
                "livescore_subscription_lag_ms",
                "gauge",
                "Milliseconds from a Redis write to its arrival here, last seen.",
                self.subscription_lag_ms.load(Ordering::Relaxed),
            ),
        ];
        for (name, kind, help, value) in single {
            metric(&mut out, name, kind, help, &[("", value)]);
        }
        if let Some(bytes) = resident_bytes() {
            metric(
                &mut out,
                "livescore_process_resident_memory_bytes",
                "gauge",
                "Resident memory of this process (the load test divides it by connections).",
                &[("", bytes)],
            );
        }
        out
    }
}

/// The process's resident set size, from /proc (Linux); `None` elsewhere.
fn resident_bytes() -> Option<i64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let kilobytes: i64 = status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))?
        .trim()
        .strip_suffix("kB")?
        .trim()
        .parse()
        .ok()?;
    Some(kilobytes * 1024)
}

fn metric(out: &mut String, name: &str, kind: &str, help: &str, samples: &[(&str, i64)]) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
    for (labels, value) in samples {
        let _ = writeln!(out, "{name}{labels} {value}");
    }
}

/// Counts a connection of one transport while it lives.
pub struct Connected {
    metrics: Arc<Metrics>,
    websocket: bool,
}

impl Connected {
    pub fn new(metrics: &Arc<Metrics>, websocket: bool) -> Connected {
        metrics.gauge(websocket).fetch_add(1, Ordering::Relaxed);
        Connected {
            metrics: Arc::clone(metrics),
            websocket,
        }
    }
}

impl Drop for Connected {
    fn drop(&mut self) {
        self.metrics
            .gauge(self.websocket)
            .fetch_sub(1, Ordering::Relaxed);
    }
}
