//! What the producer counts and measures, for Prometheus: records sent and how long the log
//! took to make each durable, how late the virtual clock played each event, and the replays by
//! status.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// `registry.register(name, help, metric.clone())` for each `name: metric, help;`.
macro_rules! register {
    ($registry:expr, $($name:literal: $metric:expr, $help:literal;)*) => {
        $($registry.register($name, $help, $metric.clone());)*
    };
}

#[derive(Debug)]
pub struct ProducerMetrics {
    /// Records acknowledged by the log (durable).
    pub records_sent: Counter,
    /// Seconds from sending a record to the log acknowledging it.
    pub send_seconds: Histogram,
    /// Seconds after its moment on the virtual clock that each event was sent.
    pub clock_lateness_seconds: Histogram,
    /// Replays the producer knows, by status (refreshed at each scrape).
    pub replays: Family<StatusLabel, Gauge>,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct StatusLabel {
    pub status: String,
}

impl Default for ProducerMetrics {
    fn default() -> Self {
        ProducerMetrics {
            records_sent: Counter::default(),
            // 0.5 ms to about 16 s.
            send_seconds: Histogram::new(exponential_buckets(0.0005, 2.0, 16)),
            // 0.1 ms to about 3 s: a late clock is a busy machine.
            clock_lateness_seconds: Histogram::new(exponential_buckets(0.0001, 2.0, 16)),
            replays: Family::default(),
        }
    }
}

impl ProducerMetrics {
    /// Registers every metric.
    pub fn register(&self, registry: &mut Registry) {
        register!(registry,
            "livescore_producer_records_sent": self.records_sent, "Records the event log acknowledged";
            "livescore_producer_send_seconds": self.send_seconds, "Seconds from sending a record to the log acknowledging it";
            "livescore_producer_clock_lateness_seconds": self.clock_lateness_seconds, "Seconds after its moment on the virtual clock that each event was sent";
            "livescore_producer_replays": self.replays, "Replays by status";
        );
    }
}
