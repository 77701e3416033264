//! The API replica's metrics, all in the process's one registry (`livescore_server::Telemetry`),
//! in base units (seconds, bytes).
//!
//! The fan-out engines count per shard ([`ShardMetrics`]: plain atomics, each shard's written by
//! its thread alone, on a cache line of their own, so that counting costs a sweep nothing); a
//! collector registered with everything else sums the shards at each scrape.

use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

#[derive(Debug)]
pub struct Metrics {
    shards: Arc<Mutex<Vec<Arc<ShardMetrics>>>>,
    /// Seconds from the producer emitting a record to its entry reaching this replica, once per
    /// entry (the hub's); what the fan-out adds is in the sweep counters.
    pub delivery_seconds: Histogram,
    /// Seconds from the store's write of an entry to its arrival here (Redis stream ids carry
    /// the write's time).
    pub subscription_lag_seconds: Histogram,
    /// Times the replica's store subscription was interrupted or fell behind.
    pub live_interruptions: Counter,
    /// The site's viewers on every replica, as of the last presence window read.
    pub presence_site_viewers: prometheus_client::metrics::gauge::Gauge,
    /// `presence` messages this replica sent out (one per changed topic per push).
    pub presence_messages: Counter,
    /// Presence windows the store did not answer for.
    pub presence_failures: Counter,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics {
            shards: Arc::default(),
            delivery_seconds: Histogram::new(livescore_server::telemetry::latency_buckets()),
            subscription_lag_seconds: Histogram::new(livescore_server::telemetry::latency_buckets()),
            live_interruptions: Counter::default(),
            presence_site_viewers: Default::default(),
            presence_messages: Counter::default(),
            presence_failures: Counter::default(),
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
    /// Snapshots sent instead of what came after a viewer's cursor: unknown (too old, another
    /// store, garbage), or too far behind.
    pub resync_snapshots: AtomicU64,
    /// Viewers let go because they stopped reading.
    pub slow_client_closes: AtomicU64,
    /// Viewers told to go elsewhere: the replica was past its load-shedding limit.
    pub shed: AtomicU64,
    /// Followers joining a topic: a stream opening, a subscription, a catch-up.
    pub joins: AtomicU64,
    /// Store reads those joins took (followers joining a topic from the same cursor share one).
    pub store_reads: AtomicU64,
    /// WebSocket requests refused: past the client's request rate.
    pub requests_refused: AtomicU64,
    /// WebSockets closed with 1008 for breaking a limit: too many requests, answers left
    /// unread past the budget.
    pub policy_closes: AtomicU64,
    /// Sweeps of live messages, the nanoseconds they took, and the nanoseconds their first
    /// message had waited since it reached the replica when the sweep began.
    pub sweeps: AtomicU64,
    pub sweep_nanoseconds: AtomicU64,
    pub sweep_wait_nanoseconds: AtomicU64,
    /// The shard writes through io_uring now (false: one `sendmsg` per socket, as asked, or
    /// because the kernel refused a ring or the ring failed).
    pub io_uring: AtomicBool,
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
    /// Registers every metric of the replica, the shards' sums included.
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "livescore_delivery_seconds",
            "Seconds from the producer emitting a record to its entry reaching this replica",
            self.delivery_seconds.clone(),
        );
        registry.register(
            "livescore_subscription_lag_seconds",
            "Seconds from the store writing an entry to its arrival at this replica",
            self.subscription_lag_seconds.clone(),
        );
        registry.register(
            "livescore_live_interruptions",
            "Interruptions of the replica's store subscription",
            self.live_interruptions.clone(),
        );
        registry.register(
            "livescore_presence_site_viewers",
            "Viewers of the site on every replica, as of the last presence window",
            self.presence_site_viewers.clone(),
        );
        registry.register(
            "livescore_presence_messages",
            "Presence messages sent out: one per topic whose counts changed, at most every 5 s",
            self.presence_messages.clone(),
        );
        registry.register(
            "livescore_presence_failures",
            "Presence windows the store did not answer for",
            self.presence_failures.clone(),
        );
        registry.register_collector(Box::new(ShardSums {
            shards: Arc::clone(&self.shards),
        }));
    }

    /// Counters for a new shard, included in every scrape from now on.
    pub fn shard(&self) -> Arc<ShardMetrics> {
        let shard = Arc::new(ShardMetrics::default());
        lock(&self.shards).push(Arc::clone(&shard));
        shard
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The shards' counters, summed at each scrape, and the process's resident memory.
#[derive(Debug)]
struct ShardSums {
    shards: Arc<Mutex<Vec<Arc<ShardMetrics>>>>,
}

impl ShardSums {
    fn gauge(&self, read: impl Fn(&ShardMetrics) -> &AtomicI64) -> i64 {
        lock(&self.shards)
            .iter()
            .map(|shard| read(shard).load(Ordering::Relaxed))
            .sum()
    }

    fn count(&self, read: impl Fn(&ShardMetrics) -> &AtomicU64) -> u64 {
        lock(&self.shards)
            .iter()
            .map(|shard| read(shard).load(Ordering::Relaxed))
            .sum()
    }
}

fn counter(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    value: impl prometheus_client::encoding::EncodeCounterValue + Clone + std::fmt::Debug,
) -> Result<(), std::fmt::Error> {
    let metric = ConstCounter::new(value);
    metric.encode(encoder.encode_descriptor(name, help, None, metric.metric_type())?)
}

fn gauge(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    value: i64,
) -> Result<(), std::fmt::Error> {
    let metric = ConstGauge::new(value);
    metric.encode(encoder.encode_descriptor(name, help, None, metric.metric_type())?)
}

const NANOS: f64 = 1e9;

impl Collector for ShardSums {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let connections = ConstGauge::new(0i64);
        let mut family = encoder.encode_descriptor(
            "livescore_connections",
            "Open client connections by transport.",
            None,
            connections.metric_type(),
        )?;
        for (transport, open) in [
            ("sse", self.gauge(|s| &s.sse_connections)),
            ("ws", self.gauge(|s| &s.ws_connections)),
        ] {
            ConstGauge::new(open).encode(family.encode_family(&[("transport", transport)])?)?;
        }
        gauge(
            &mut encoder,
            "livescore_topic_subscribers",
            "Topic subscriptions of all clients.",
            self.gauge(|s| &s.subscriptions),
        )?;
        let writers = ConstGauge::new(0i64);
        let mut family = encoder.encode_descriptor(
            "livescore_fanout_shards",
            "Fan-out shards by how they write to sockets: io_uring, or one sendmsg per socket.",
            None,
            writers.metric_type(),
        )?;
        let (on_uring, shards) = {
            let shards = lock(&self.shards);
            let on_uring = shards
                .iter()
                .filter(|shard| shard.io_uring.load(Ordering::Relaxed))
                .count();
            (on_uring as i64, shards.len() as i64)
        };
        for (writer, count) in [("io_uring", on_uring), ("sendmsg", shards - on_uring)] {
            ConstGauge::new(count).encode(family.encode_family(&[("writer", writer)])?)?;
        }
        let counts: [(&str, &str, u64); 10] = [
            (
                "livescore_joins",
                "Followers joining a topic: streams opening, subscriptions, catch-ups.",
                self.count(|s| &s.joins),
            ),
            (
                "livescore_store_reads",
                "Store reads for joining followers, shared by those joining from the same cursor.",
                self.count(|s| &s.store_reads),
            ),
            (
                "livescore_messages_sent",
                "Messages handed to clients.",
                self.count(|s| &s.messages_sent),
            ),
            (
                "livescore_catch_ups",
                "Clients caught up from the store after falling behind.",
                self.count(|s| &s.catch_ups),
            ),
            (
                "livescore_resync_snapshots",
                "Snapshots sent instead of a catch-up: the cursor was unknown or too far behind.",
                self.count(|s| &s.resync_snapshots),
            ),
            (
                "livescore_slow_client_closes",
                "Clients let go because they stopped reading.",
                self.count(|s| &s.slow_client_closes),
            ),
            (
                "livescore_viewers_shed",
                "Viewers told to reconnect elsewhere: the replica was past its load-shedding limit.",
                self.count(|s| &s.shed),
            ),
            (
                "livescore_requests_refused",
                "WebSocket requests refused: past the client's request rate.",
                self.count(|s| &s.requests_refused),
            ),
            (
                "livescore_policy_closes",
                "WebSockets closed with 1008: too many requests, or answers left unread.",
                self.count(|s| &s.policy_closes),
            ),
            (
                "livescore_sweeps",
                "Sweeps of live messages to the viewers of a shard.",
                self.count(|s| &s.sweeps),
            ),
        ];
        for (name, help, value) in counts {
            counter(&mut encoder, name, help, value)?;
        }
        counter(
            &mut encoder,
            "livescore_sweep_seconds",
            "Time spent in sweeps (routing and writing).",
            self.count(|s| &s.sweep_nanoseconds) as f64 / NANOS,
        )?;
        counter(
            &mut encoder,
            "livescore_sweep_wait_seconds",
            "Time the first message of each sweep waited since it reached the replica.",
            self.count(|s| &s.sweep_wait_nanoseconds) as f64 / NANOS,
        )?;
        if let Some(bytes) = resident_bytes() {
            gauge(
                &mut encoder,
                "livescore_process_resident_memory_bytes",
                "Resident memory of this process (the load test divides it by connections).",
                bytes,
            )?;
        }
        Ok(())
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
