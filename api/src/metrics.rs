//! The replica's Prometheus metrics, as plain counters and gauges written in the text format.
//!
//! The fan-out engines count per shard ([`ShardMetrics`], written by one thread each, on a
//! cache line of their own); a scrape sums the shards.

use std::fmt::Write;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

#[derive(Debug)]
pub struct Metrics {
    shards: Mutex<Vec<Arc<ShardMetrics>>>,
    /// Seconds from the producer emitting a record to its entry reaching this replica, once per
    /// entry (the hub's); what the fan-out adds is in the sweep counters.
    pub delivery_seconds: Histogram,
    /// Times the replica's store subscription was interrupted or fell behind.
    pub live_interruptions: AtomicU64,
    /// Milliseconds between a write to Redis and its arrival here, last seen.
    pub subscription_lag_ms: AtomicI64,
    /// The same, summed over every entry, and the entries counted.
    pub subscription_lag_ms_sum: AtomicU64,
    pub subscription_lag_count: AtomicU64,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics {
            shards: Mutex::default(),
            delivery_seconds: Histogram::new(livescore_server::telemetry::latency_buckets()),
            live_interruptions: AtomicU64::default(),
            subscription_lag_ms: AtomicI64::default(),
            subscription_lag_ms_sum: AtomicU64::default(),
            subscription_lag_count: AtomicU64::default(),
        }
    }
}

/// One shard's counters.
#[derive(Debug, Default)]
#[repr(align(128))]
pub struct ShardMetrics {
    sse_connections: AtomicI64,
    ws_connections: AtomicI64,
    subscriptions: AtomicI64,
    /// Messages handed to viewers (snapshots included), all transports.
    pub messages_sent: AtomicU64,
    /// Times a viewer caught up from the store after falling behind the live messages (or
    /// after the store subscription was interrupted).
    pub catch_ups: AtomicU64,
    /// Snapshots sent because a viewer's cursor was unknown (too old, another store, garbage).
    pub resync_snapshots: AtomicU64,
    /// Viewers let go because they stopped reading.
    pub slow_client_closes: AtomicU64,
    /// Sweeps of live messages, the microseconds they took, and the microseconds their
    /// messages had waited since they reached the replica when the sweep began.
    pub sweeps: AtomicU64,
    pub sweep_us: AtomicU64,
    pub sweep_wait_us: AtomicU64,
}

impl ShardMetrics {
    pub fn add(counter: &AtomicU64, n: u64) {
        if n > 0 {
            counter.fetch_add(n, Ordering::Relaxed);
        }
    }

    pub fn connected(&self, websocket: bool, delta: i64) {
        let gauge = if websocket {
            &self.ws_connections
        } else {
            &self.sse_connections
        };
        gauge.fetch_add(delta, Ordering::Relaxed);
    }

    pub fn subscribed(&self, delta: i64) {
        self.subscriptions.fetch_add(delta, Ordering::Relaxed);
    }
}

impl Metrics {
    /// Registers the histograms (the counters above are written by `render`).
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "livescore_delivery_seconds",
            "Seconds from the producer emitting a record to its entry reaching this replica.",
            self.delivery_seconds.clone(),
        );
    }

    pub fn add(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// Counters for a new shard, included in every scrape from now on.
    pub fn shard(&self) -> Arc<ShardMetrics> {
        let shard = Arc::new(ShardMetrics::default());
        self.shards
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .push(Arc::clone(&shard));
        shard
    }

    /// A shard gauge or counter, summed over the shards.
    fn sum(&self, read: impl Fn(&ShardMetrics) -> i64) -> i64 {
        self.shards
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .iter()
            .map(|shard| read(shard))
            .sum()
    }

    /// The text exposition format.
    pub fn render(&self) -> String {
        let gauge = |read: fn(&ShardMetrics) -> &AtomicI64| {
            self.sum(|shard| read(shard).load(Ordering::Relaxed))
        };
        let count = |read: fn(&ShardMetrics) -> &AtomicU64| {
            self.sum(|shard| read(shard).load(Ordering::Relaxed) as i64)
        };
        let mut out = String::new();
        metric(
            &mut out,
            "livescore_connections",
            "gauge",
            "Open client connections by transport.",
            &[
                ("{transport=\"sse\"}", gauge(|s| &s.sse_connections)),
                ("{transport=\"ws\"}", gauge(|s| &s.ws_connections)),
            ],
        );
        let single = [
            (
                "livescore_topic_subscribers",
                "gauge",
                "Topic subscriptions of all clients.",
                gauge(|s| &s.subscriptions),
            ),
            (
                "livescore_messages_sent_total",
                "counter",
                "Messages handed to clients.",
                count(|s| &s.messages_sent),
            ),
            (
                "livescore_catch_ups_total",
                "counter",
                "Clients caught up from the store after falling behind.",
                count(|s| &s.catch_ups),
            ),
            (
                "livescore_resync_snapshots_total",
                "counter",
                "Snapshots sent for unknown cursors.",
                count(|s| &s.resync_snapshots),
            ),
            (
                "livescore_slow_client_closes_total",
                "counter",
                "Clients let go because they stopped reading.",
                count(|s| &s.slow_client_closes),
            ),
            (
                "livescore_sweeps_total",
                "counter",
                "Sweeps of live messages to the viewers of a shard.",
                count(|s| &s.sweeps),
            ),
            (
                "livescore_sweep_microseconds_total",
                "counter",
                "Time spent in sweeps (routing and writing).",
                count(|s| &s.sweep_us),
            ),
            (
                "livescore_sweep_wait_microseconds_total",
                "counter",
                "Time the first message of each sweep waited since it reached the replica.",
                count(|s| &s.sweep_wait_us),
            ),
            (
                "livescore_live_interruptions_total",
                "counter",
                "Interruptions of the replica's store subscription.",
                self.live_interruptions.load(Ordering::Relaxed) as i64,
            ),
            (
                "livescore_subscription_lag_milliseconds_total",
                "counter",
                "Milliseconds from Redis writes to their arrival here, summed over the entries.",
                self.subscription_lag_ms_sum.load(Ordering::Relaxed) as i64,
            ),
            (
                "livescore_subscription_lag_entries_total",
                "counter",
                "Entries whose subscription lag is summed above.",
                self.subscription_lag_count.load(Ordering::Relaxed) as i64,
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
