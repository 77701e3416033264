//! The event log: the seam between the producer, which appends a match's records, and the
//! projector, which consumes them. Two implementations with the same behaviour:
//! `kafka::KafkaLog` (rdkafka: idempotent producer, consumer group; feature `kafka`, on by
//! default, so that crates that only need the trait build without librdkafka) and
//! [`memory::MemoryLog`] (in-process, for `livescore up` with nothing else installed, and for
//! tests).
//!
//! The contract both keep:
//! - records with the same key (the match id) are consumed in the order they were sent;
//! - [`EventLog::send`] queues a record at once and its [`Delivery`] resolves when it is durable;
//! - a consumer group resumes after the last offset it committed, [`LogConsumer::rewind`]
//!   starts it again from the beginning of the log (a rebuild), and
//!   [`LogConsumer::reread_uncommitted`] from its last commit, [`LogConsumer::reread_from`] one
//!   partition from an offset;
//! - a record that cannot be decoded can be set aside with [`EventLog::dead_letter`];
//! - [`EventLog::read_to_end`] reads everything the log holds, for a producer resuming.

pub mod envelope;
#[cfg(feature = "kafka")]
pub mod kafka;
pub mod memory;

use std::future::Future;
use std::pin::Pin;

pub use envelope::{Body, Control, Envelope};

/// The future of one record's delivery: `Ok` once the log has it durably.
pub type Delivery = Pin<Box<dyn Future<Output = Result<(), LogError>> + Send>>;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LogError {
    /// The log did not answer, or refused (the engine's own error, as text: the seam carries
    /// no Kafka type).
    #[error("{engine}: {message}")]
    Unavailable {
        engine: &'static str,
        message: String,
    },
    #[error("the log is closed")]
    Closed,
}

/// One record as a consumer receives it: where it is, and its bytes (an [`Envelope`] in JSON, or
/// garbage, which is the consumer's to handle).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogRecord {
    pub partition: i32,
    pub offset: i64,
    pub key: Option<Vec<u8>>,
    pub payload: Vec<u8>,
}

#[async_trait::async_trait]
pub trait EventLog: Send + Sync + 'static {
    /// Queues `envelope`, keyed by its match id. Records sent one after another for the same
    /// match are stored in that order; await the [`Delivery`] to know it is durable.
    fn send(&self, envelope: &Envelope) -> Result<Delivery, LogError>;

    /// Joins consumer group `group`: it starts after the group's last committed offsets, or at
    /// the beginning of the log.
    async fn consumer(&self, group: &str) -> Result<Box<dyn LogConsumer>, LogError>;

    /// Sets a record that cannot be decoded aside, with the reason, in the dead-letter log.
    async fn dead_letter(&self, record: &LogRecord, reason: &str) -> Result<(), LogError>;

    /// Every record the log holds now, in order within each partition, outside any consumer
    /// group: what a producer that restarted reads to find the runs it was in the middle of.
    async fn read_to_end(&self) -> Result<Vec<LogRecord>, LogError>;
}

#[async_trait::async_trait]
pub trait LogConsumer: Send {
    /// Waits for at least one record, then returns all that are ready, up to `max`, in order
    /// within each partition.
    ///
    /// Cancel-safe: if the future is dropped before it completes (the projector races it
    /// against timers in a `select!`), the records it had received are returned by the next
    /// call; none is lost.
    async fn next_batch(&mut self, max: usize) -> Result<Vec<LogRecord>, LogError>;

    /// Marks `records` as processed: after a restart the group resumes after them.
    fn commit(&mut self, records: &[LogRecord]) -> Result<(), LogError>;

    /// Starts consuming again from the beginning of the log, and moves the group's commits
    /// there too. Before the group has assigned partitions, it happens with the first record.
    async fn rewind(&mut self) -> Result<(), LogError>;

    /// Starts consuming again after the last committed record of each partition: what was read
    /// since is read again.
    async fn reread_uncommitted(&mut self) -> Result<(), LogError>;

    /// Starts consuming `partition` again from `offset` (the beginning of the log if that is
    /// before it): the store lost what came after. Its records received since are dropped, and
    /// a later [`LogConsumer::reread_uncommitted`] goes back no further than `offset`. The
    /// group's commit is left as it is: the store's own mark says where to resume after a
    /// restart.
    async fn reread_from(&mut self, partition: i32, offset: i64) -> Result<(), LogError>;

    /// Per partition this consumer reads, how many records the log holds that it has not read
    /// yet (the operator's first question: is the projector keeping up?). From what the client
    /// already knows: no round trip. Empty before partitions are assigned.
    fn lag(&self) -> Vec<(i32, i64)>;
}

/// For each partition in `records`, the offset of the last record processed.
pub(crate) fn last_offsets(records: &[LogRecord]) -> Vec<(i32, i64)> {
    per_partition(records, i64::max)
}

/// For each partition in `records`, the offset of its first record: where a batch begins.
pub fn first_offsets(records: &[LogRecord]) -> Vec<(i32, i64)> {
    per_partition(records, i64::min)
}

/// For each partition in `records`, their offsets folded with `keep`.
fn per_partition(records: &[LogRecord], keep: fn(i64, i64) -> i64) -> Vec<(i32, i64)> {
    let mut found: Vec<(i32, i64)> = Vec::new();
    for record in records {
        match found.iter_mut().find(|(p, _)| *p == record.partition) {
            Some((_, offset)) => *offset = keep(*offset, record.offset),
            None => found.push((record.partition, record.offset)),
        }
    }
    found
}
