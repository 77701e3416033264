//! What every client adds to while the test runs: counters, latency histograms and the
//! per-second timeline of deliveries. Shared by all clients; cheap on their hot path (atomics,
//! and histograms split into shards so that clients rarely wait for one another).

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use hdrhistogram::Histogram;

const SHARDS: usize = 16;
/// Latencies are recorded in microseconds, up to 10 minutes.
const MAX_LATENCY_US: u64 = 600_000_000;
/// Seconds of timeline kept.
const TIMELINE_SECONDS: usize = 3600;

/// A histogram split into shards; client `i` records into shard `i % SHARDS`.
pub struct ShardedHistogram {
    shards: Vec<Mutex<Histogram<u64>>>,
}

impl ShardedHistogram {
    fn new() -> Self {
        let shards = (0..SHARDS)
            .map(|_| {
                Mutex::new(
                    Histogram::new_with_bounds(1, MAX_LATENCY_US, 3)
                        .unwrap_or_else(|_| unreachable!("static bounds are valid")),
                )
            })
            .collect();
        ShardedHistogram { shards }
    }

    pub fn record(&self, client: usize, micros: u64) {
        let mut shard = self.shards[client % SHARDS]
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        shard.saturating_record(micros.clamp(1, MAX_LATENCY_US));
    }

    /// All shards added together.
    pub fn merged(&self) -> Histogram<u64> {
        let mut all = Histogram::new_with_bounds(1, MAX_LATENCY_US, 3)
            .unwrap_or_else(|_| unreachable!("static bounds are valid"));
        for shard in &self.shards {
            let shard = shard
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            // Same bounds: adding cannot fail.
            let _ = all.add(&*shard);
        }
        all
    }
}

/// The shared counters of a run.
pub struct Stats {
    pub started: Instant,
    pub connected: AtomicU64,
    pub connects: AtomicU64,
    pub failed_connects: AtomicU64,
    pub reconnects: AtomicU64,
    pub messages: AtomicU64,
    /// `presence` messages: who is watching, no cursor.
    pub presence: AtomicU64,
    pub updates: AtomicU64,
    pub goals: AtomicU64,
    pub finished_clients: AtomicU64,
    /// End-to-end latency of every update (emission by the producer -> receipt), in µs.
    pub latency: ShardedHistogram,
    /// The same, of goals only.
    pub goal_latency: ShardedHistogram,
    /// Time to connect (TCP + HTTP response or WebSocket handshake), in µs.
    pub connect_time: ShardedHistogram,
    /// Updates delivered in each second since the start.
    timeline: Vec<AtomicU64>,
}

impl Stats {
    pub fn new() -> Self {
        Stats {
            started: Instant::now(),
            connected: AtomicU64::new(0),
            connects: AtomicU64::new(0),
            failed_connects: AtomicU64::new(0),
            reconnects: AtomicU64::new(0),
            messages: AtomicU64::new(0),
            presence: AtomicU64::new(0),
            updates: AtomicU64::new(0),
            goals: AtomicU64::new(0),
            finished_clients: AtomicU64::new(0),
            latency: ShardedHistogram::new(),
            goal_latency: ShardedHistogram::new(),
            connect_time: ShardedHistogram::new(),
            timeline: (0..TIMELINE_SECONDS).map(|_| AtomicU64::new(0)).collect(),
        }
    }

    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }

    /// One update delivered now to `client`, emitted at `emitted_at_ms` (Unix ms; 0 = unknown).
    pub fn delivered(&self, client: usize, emitted_at_ms: u64, goal: bool, now_unix_us: u64) {
        Stats::add(&self.updates, 1);
        if goal {
            Stats::add(&self.goals, 1);
        }
        let second = self.started.elapsed().as_secs() as usize;
        if let Some(bucket) = self.timeline.get(second) {
            bucket.fetch_add(1, Ordering::Relaxed);
        }
        if emitted_at_ms > 0 {
            let micros = now_unix_us.saturating_sub(emitted_at_ms * 1000);
            self.latency.record(client, micros);
            if goal {
                self.goal_latency.record(client, micros);
            }
        }
    }

    /// Updates per second, for each second up to `seconds`.
    pub fn timeline(&self, seconds: usize) -> Vec<u64> {
        self.timeline
            .iter()
            .take(seconds.min(TIMELINE_SECONDS))
            .map(|bucket| bucket.load(Ordering::Relaxed))
            .collect()
    }
}

/// Unix time in microseconds, the clock the producer's `emitted_at_ms` is on.
pub fn unix_micros() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}
