//! The Kafka event log (rdkafka): an idempotent producer with `acks=all`, a consumer group whose
//! offsets are stored only when the projector says a record is processed, and a dead-letter topic.

use std::collections::HashMap;
use std::time::Duration;

use futures_util::FutureExt;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::{ClientContext, DefaultClientContext};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{CommitMode, Consumer, ConsumerContext, StreamConsumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::Message;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{Offset, TopicPartitionList};

use crate::{Delivery, Envelope, EventLog, LogConsumer, LogError, LogRecord, last_offsets};

/// The longest librdkafka waits between two attempts to reach a broker that went away, in ms.
/// Its default (10 s) grows the wait to 10 s within an outage of a few seconds, so the records
/// start moving again up to 10 s after the broker is back (4 to 9.5 s measured after a 10 s
/// tansu restart); at 1 s they move within a second, for a connection attempt a second.
const RECONNECT_BACKOFF_MAX_MS: &str = "1000";

/// Where the log lives and what it is called.
#[derive(Debug, Clone)]
pub struct KafkaConfig {
    /// `host:port[,host:port...]`
    pub brokers: String,
    pub topic: String,
    /// Created at start-up if missing, with this many partitions.
    pub partitions: i32,
    /// ... and this many copies of each partition, on as many brokers (production: 3).
    pub replication_factor: i32,
}

impl KafkaConfig {
    pub fn dead_letter_topic(&self) -> String {
        format!("{}-dlq", self.topic)
    }

    /// How many copies must have a record before the broker acknowledges it (`acks=all`): two
    /// when there are three, so that losing one broker neither loses an acknowledged record nor
    /// stops the producer; all of them when there are fewer.
    pub fn min_insync_replicas(&self) -> i32 {
        self.replication_factor.clamp(1, 2)
    }
}

/// Topic settings the log needs whatever the broker's defaults: records are kept for ever. A
/// rebuild folds every run from its `started` record, so a retention of days (Kafka's default
/// is 7) would silently drop older runs from it; compaction would keep one record per match
/// and lose the run. A thousand matches a day are 3.5 million records of about 0.4 KB, 1.4 GB
/// a day per copy (docs/SCALING.md).
const KEEP_FOR_EVER: [(&str, &str); 2] = [("retention.ms", "-1"), ("retention.bytes", "-1")];

pub struct KafkaLog {
    config: KafkaConfig,
    producer: FutureProducer<Quiet>,
}

/// How librdkafka's reports reach our logs. While a broker is unreachable librdkafka says so
/// every time it tries to reconnect (every 100 ms or so): that is logged once per 30 s, and the
/// consumer waits it out (see [`Quiet::waits_out`]). Everything else is logged as it comes.
#[derive(Default)]
pub struct Quiet {
    last_outage_log: std::sync::Mutex<Option<std::time::Instant>>,
}

impl Quiet {
    /// True for the errors about a broker that cannot be reached, which librdkafka recovers from
    /// by itself: logged at most once per 30 s. The consumer waits them out rather than return
    /// them: returned, each made the projector pause and read again, and librdkafka queues one
    /// per failed connection, so after a 7 s broker outage the projector spent a minute working
    /// through stale ones (scripts/chaos measured it).
    fn waits_out(&self, err: &KafkaError) -> bool {
        let unreachable = matches!(
            err.rdkafka_error_code(),
            Some(
                RDKafkaErrorCode::BrokerTransportFailure
                    | RDKafkaErrorCode::AllBrokersDown
                    | RDKafkaErrorCode::Resolve
                    | RDKafkaErrorCode::OperationTimedOut
            )
        );
        if unreachable {
            let now = std::time::Instant::now();
            let mut last = self
                .last_outage_log
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            if last.is_none_or(|at| now.duration_since(at) > Duration::from_secs(30)) {
                tracing::warn!("the Kafka broker is unreachable; librdkafka keeps trying: {err}");
                *last = Some(now);
            }
        }
        unreachable
    }
}

impl ClientContext for Quiet {
    fn error(&self, error: KafkaError, reason: &str) {
        if !self.waits_out(&error) {
            tracing::error!("librdkafka: {error}: {reason}");
        }
    }
}

impl ConsumerContext for Quiet {}

fn kafka(err: KafkaError) -> LogError {
    kafka_error(err.to_string())
}

fn kafka_error(message: String) -> LogError {
    LogError::Unavailable {
        engine: "kafka",
        message,
    }
}

impl KafkaLog {
    /// Connects, and creates the topic and its dead-letter topic if they do not exist (brokers
    /// with auto-creation off, such as tansu, need this; "already exists" is fine).
    pub async fn connect(config: KafkaConfig) -> Result<KafkaLog, LogError> {
        let producer: FutureProducer<Quiet> = ClientConfig::new()
            .set("bootstrap.servers", &config.brokers)
            .set("enable.idempotence", "true")
            .set("acks", "all")
            // librdkafka retries a record for as long as it takes (0: no timeout): a broker that
            // restarts gets every record, in order. How long a replay waits for that before it
            // fails is the producer's to decide (`ReplayManager::with_delivery_timeout`). A
            // librdkafka timeout would also make the idempotent producer bump its epoch, which
            // tansu 0.6's SQLite engine does not survive (docs/ARCHITECTURE.md).
            .set("message.timeout.ms", "0")
            .set("linger.ms", "2")
            // One record per batch. tansu 0.6 cannot serve a fetch that starts inside a batch,
            // so a consumer group that committed mid-batch would stall there; Kafka can, and
            // loses little to this on a stream of small records.
            .set("batch.num.messages", "1")
            .set("reconnect.backoff.max.ms", RECONNECT_BACKOFF_MAX_MS)
            .create_with_context(Quiet::default())
            .map_err(kafka)?;
        let log = KafkaLog { config, producer };
        log.create_topics().await?;
        Ok(log)
    }

    async fn create_topics(&self) -> Result<(), LogError> {
        let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
            .set("bootstrap.servers", &self.config.brokers)
            .create()
            .map_err(kafka)?;
        let dead_letters = self.config.dead_letter_topic();
        let replication = || TopicReplication::Fixed(self.config.replication_factor);
        let min_insync = self.config.min_insync_replicas().to_string();
        let topics = [
            NewTopic::new(&self.config.topic, self.config.partitions, replication()),
            NewTopic::new(&dead_letters, 1, replication()),
        ]
        .map(|topic| {
            KEEP_FOR_EVER
                .iter()
                .fold(topic, |topic, (name, value)| topic.set(name, value))
                .set("min.insync.replicas", &min_insync)
        });
        let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)));
        for result in admin
            .create_topics(&topics, &options)
            .await
            .map_err(kafka)?
        {
            match result {
                Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
                Err((topic, code)) => {
                    return Err(kafka_error(format!("cannot create topic {topic}: {code}")));
                }
            }
        }
        Ok(())
    }

    fn queue(&self, topic: &str, key: &[u8], payload: &[u8]) -> Result<Delivery, LogError> {
        let record = FutureRecord::to(topic).key(key).payload(payload);
        let delivery = self
            .producer
            .send_result(record)
            .map_err(|(err, _)| kafka(err))?;
        Ok(Box::pin(async move {
            match delivery.await {
                Ok(Ok(_)) => Ok(()),
                Ok(Err((err, _))) => Err(kafka(err)),
                Err(_cancelled) => Err(LogError::Closed),
            }
        }))
    }
}

#[async_trait::async_trait]
impl EventLog for KafkaLog {
    fn send(&self, envelope: &Envelope) -> Result<Delivery, LogError> {
        self.queue(
            &self.config.topic,
            envelope.key().as_bytes(),
            &envelope.to_json(),
        )
    }

    async fn consumer(&self, group: &str) -> Result<Box<dyn LogConsumer>, LogError> {
        let mut config = ClientConfig::new();
        if let Ok(contexts) = std::env::var("KAFKA_DEBUG") {
            config.set("debug", contexts);
        }
        let consumer: StreamConsumer<Quiet> = config
            .set("bootstrap.servers", &self.config.brokers)
            .set("group.id", group)
            .set("auto.offset.reset", "earliest")
            // Offsets are stored by `commit` once the projector has written the store, and
            // committed in the background from there.
            .set("enable.auto.offset.store", "false")
            .set("enable.auto.commit", "true")
            .set("auto.commit.interval.ms", "500")
            // A consumer that dies gives its partitions back within seconds, not the default 45.
            .set("session.timeout.ms", "6000")
            .set("heartbeat.interval.ms", "1000")
            // A fetch waits at most this long for records. The default (500 ms) is paid on every
            // record by a broker that holds fetches until the wait is over (tansu 0.6 does):
            // the load test measured a 420 ms median from the producer to the viewer.
            .set("fetch.wait.max.ms", "10")
            .set("reconnect.backoff.max.ms", RECONNECT_BACKOFF_MAX_MS)
            .create_with_context(Quiet::default())
            .map_err(kafka)?;
        consumer.subscribe(&[&self.config.topic]).map_err(kafka)?;
        Ok(Box::new(KafkaConsumer {
            consumer,
            topic: self.config.topic.clone(),
            committed: HashMap::new(),
            rewind_pending: false,
            received: Vec::new(),
        }))
    }

    async fn dead_letter(&self, record: &LogRecord, reason: &str) -> Result<(), LogError> {
        let key = record.key.clone().unwrap_or_default();
        let topic = self.config.dead_letter_topic();
        let delivery = self.queue(&topic, &key, &record.payload)?;
        tracing::warn!(
            partition = record.partition,
            offset = record.offset,
            "record sent to {topic}: {reason}"
        );
        delivery.await
    }

    async fn read_to_end(&self) -> Result<Vec<LogRecord>, LogError> {
        let config = self.config.clone();
        tokio::task::spawn_blocking(move || read_topic_to_end(&config))
            .await
            .map_err(|err| kafka_error(format!("reading the log stopped: {err}")))?
    }
}

/// How long reading a whole topic may take before it gives up.
const READ_TO_END_TIMEOUT: Duration = Duration::from_secs(60);

/// Every record of the topic up to each partition's end as it is now, with a consumer of no
/// group (assigned, not subscribed: nothing is committed). Blocking: run it off the async threads.
fn read_topic_to_end(config: &KafkaConfig) -> Result<Vec<LogRecord>, LogError> {
    use rdkafka::consumer::BaseConsumer;
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &config.brokers)
        .set("group.id", "livescore-read-to-end")
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("fetch.wait.max.ms", "10")
        .create()
        .map_err(kafka)?;
    let metadata = consumer
        .fetch_metadata(Some(&config.topic), Duration::from_secs(10))
        .map_err(kafka)?;
    let partitions: Vec<i32> = metadata
        .topics()
        .iter()
        .flat_map(|topic| topic.partitions().iter().map(|p| p.id()))
        .collect();
    let mut assignment = TopicPartitionList::new();
    // Per partition, the offset after the last record there is now.
    let mut ends: HashMap<i32, i64> = HashMap::new();
    for partition in partitions {
        let (low, high) = consumer
            .fetch_watermarks(&config.topic, partition, Duration::from_secs(10))
            .map_err(kafka)?;
        if high > low {
            assignment
                .add_partition_offset(&config.topic, partition, Offset::Offset(low))
                .map_err(kafka)?;
            ends.insert(partition, high);
        }
    }
    let mut records = Vec::new();
    if ends.is_empty() {
        return Ok(records);
    }
    consumer.assign(&assignment).map_err(kafka)?;
    let deadline = std::time::Instant::now() + READ_TO_END_TIMEOUT;
    while !ends.is_empty() {
        if std::time::Instant::now() > deadline {
            return Err(kafka_error(format!(
                "could not read {} to its end within {READ_TO_END_TIMEOUT:?}",
                config.topic
            )));
        }
        let Some(message) = consumer.poll(Duration::from_millis(100)) else {
            continue;
        };
        let message = message.map_err(kafka)?;
        let partition = message.partition();
        if ends
            .get(&partition)
            .is_some_and(|end| message.offset() + 1 >= *end)
        {
            ends.remove(&partition);
        }
        records.push(record_of(&message));
    }
    Ok(records)
}

struct KafkaConsumer {
    consumer: StreamConsumer<Quiet>,
    topic: String,
    /// Per partition, the offset after the last record this consumer committed.
    committed: HashMap<i32, i64>,
    /// A rewind asked for before the group assigned any partition: done once it has.
    rewind_pending: bool,
    /// Records received for a batch not yet returned (see `next_batch`).
    received: Vec<LogRecord>,
}

/// The high watermark librdkafka last saw in a fetch response for the partition (no request:
/// `rd_kafka_get_watermark_offsets`, which rdkafka does not wrap). `None` before any fetch.
fn cached_high_watermark(
    consumer: &StreamConsumer<Quiet>,
    topic: &str,
    partition: i32,
) -> Option<i64> {
    let topic = std::ffi::CString::new(topic).ok()?;
    let (mut low, mut high) = (-1i64, -1i64);
    // SAFETY: the client pointer is valid while `consumer` lives; the call only reads the
    // client's cached partition state into the two integers it is given.
    let err = unsafe {
        rdkafka::bindings::rd_kafka_get_watermark_offsets(
            consumer.client().native_ptr(),
            topic.as_ptr(),
            partition,
            &mut low,
            &mut high,
        )
    };
    (err == rdkafka::bindings::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR && high >= 0)
        .then_some(high)
}

impl KafkaConsumer {
    /// Moves every assigned partition to the offset `to` gives it. Records received but not yet
    /// returned are from before the move: dropped.
    fn seek_assigned(&mut self, to: impl Fn(i32) -> Offset) -> Result<(), LogError> {
        self.received.clear();
        let assignment = self.consumer.assignment().map_err(kafka)?;
        if assignment.count() == 0 {
            return Ok(());
        }
        let mut positions = TopicPartitionList::new();
        for element in assignment.elements() {
            positions
                .add_partition_offset(
                    element.topic(),
                    element.partition(),
                    to(element.partition()),
                )
                .map_err(kafka)?;
        }
        self.consumer
            .seek_partitions(positions, Duration::from_secs(10))
            .map_err(kafka)?;
        Ok(())
    }

    /// Moves the assigned partitions, and the group's commits for them, back to the start of the
    /// log: if the projector stops during a rebuild, it resumes the rebuild, not what came before.
    fn rewind_assigned(&mut self) -> Result<(), LogError> {
        let assignment = self.consumer.assignment().map_err(kafka)?;
        let mut starts = TopicPartitionList::new();
        self.committed.clear();
        for element in assignment.elements() {
            let (low, _) = self
                .consumer
                .fetch_watermarks(
                    element.topic(),
                    element.partition(),
                    Duration::from_secs(10),
                )
                .map_err(kafka)?;
            starts
                .add_partition_offset(element.topic(), element.partition(), Offset::Offset(low))
                .map_err(kafka)?;
            self.committed.insert(element.partition(), low);
        }
        if starts.count() > 0 {
            self.consumer
                .commit(&starts, CommitMode::Sync)
                .map_err(kafka)?;
        }
        let committed = self.committed.clone();
        self.seek_assigned(|partition| {
            committed
                .get(&partition)
                .map_or(Offset::Beginning, |low| Offset::Offset(*low))
        })
    }
}

/// Per partition, the first and last offsets of `records`: for the logs.
fn offset_ranges(records: &[LogRecord]) -> Vec<(i32, i64, i64)> {
    let mut ranges: Vec<(i32, i64, i64)> = Vec::new();
    for record in records {
        match ranges.iter_mut().find(|(p, _, _)| *p == record.partition) {
            Some((_, _, last)) => *last = record.offset,
            None => ranges.push((record.partition, record.offset, record.offset)),
        }
    }
    ranges
}

fn record_of(message: &impl Message) -> LogRecord {
    LogRecord {
        partition: message.partition(),
        offset: message.offset(),
        key: message.key().map(<[u8]>::to_vec),
        payload: message.payload().map(<[u8]>::to_vec).unwrap_or_default(),
    }
}

#[async_trait::async_trait]
impl LogConsumer for KafkaConsumer {
    fn lag(&self) -> Vec<(i32, i64)> {
        // The fetch position and the high watermark the client cached from its last fetch.
        let Ok(positions) = self.consumer.position() else {
            return Vec::new();
        };
        positions
            .elements()
            .iter()
            .filter_map(|element| {
                let Offset::Offset(position) = element.offset() else {
                    return None;
                };
                let high =
                    cached_high_watermark(&self.consumer, element.topic(), element.partition())?;
                Some((element.partition(), (high - position).max(0)))
            })
            .collect()
    }

    async fn next_batch(&mut self, max: usize) -> Result<Vec<LogRecord>, LogError> {
        while self.rewind_pending {
            // Polling is what joins the group; a record read before the rewind is read again
            // after it, so it can be dropped.
            let polled = tokio::time::timeout(Duration::from_millis(100), self.consumer.recv());
            if let Ok(Err(err)) = polled.await
                && !self.consumer.context().waits_out(&err)
            {
                return Err(kafka(err));
            }
            if self.consumer.assignment().map_err(kafka)?.count() > 0 {
                self.rewind_pending = false;
                self.rewind_assigned()?;
            }
        }
        // Cancel-safe: whatever is received is kept in `self.received` until it is returned, so
        // a caller that drops this future (a `select!` whose other branch won) gets it from the
        // next call. The batch used to be a local: a timer firing between two records dropped
        // the records already taken from librdkafka, and the projector saw them as a gap, or,
        // at the end of a match, never saw them at all.
        while self.received.is_empty() {
            match self.consumer.recv().await {
                Ok(first) => self.received.push(record_of(&first)),
                Err(err) if self.consumer.context().waits_out(&err) => {}
                Err(err) => return Err(kafka(err)),
            }
        }
        // Whatever else has already arrived joins the batch, without waiting for more: one poll
        // each, which never yields (a zero timeout can: tokio's timer only fires on its next tick).
        while self.received.len() < max {
            match self.consumer.recv().now_or_never() {
                Some(Ok(message)) => self.received.push(record_of(&message)),
                Some(Err(err)) if self.consumer.context().waits_out(&err) => {}
                Some(Err(err)) => return Err(kafka(err)),
                None => break,
            }
        }
        if tracing::enabled!(tracing::Level::TRACE) {
            tracing::trace!(ranges = ?offset_ranges(&self.received), "batch");
        }
        Ok(std::mem::take(&mut self.received))
    }

    fn commit(&mut self, records: &[LogRecord]) -> Result<(), LogError> {
        // rdkafka stores `offset + 1`, the next one to read, as Kafka's commit expects.
        for (partition, last) in last_offsets(records) {
            self.consumer
                .store_offset(&self.topic, partition, last)
                .map_err(kafka)?;
            self.committed.insert(partition, last + 1);
        }
        Ok(())
    }

    async fn rewind(&mut self) -> Result<(), LogError> {
        if self.consumer.assignment().map_err(kafka)?.count() == 0 {
            // Not in the group yet (just started): rewind once partitions are assigned.
            self.rewind_pending = true;
            return Ok(());
        }
        self.rewind_assigned()
    }

    async fn reread_from(&mut self, partition: i32, offset: i64) -> Result<(), LogError> {
        self.received.retain(|record| record.partition != partition);
        let mut position = TopicPartitionList::new();
        // Before the log's first offset, librdkafka starts at it (auto.offset.reset).
        position
            .add_partition_offset(&self.topic, partition, Offset::Offset(offset.max(0)))
            .map_err(kafka)?;
        self.consumer
            .seek_partitions(position, Duration::from_secs(10))
            .map_err(kafka)?;
        let committed = self.committed.entry(partition).or_insert(offset);
        *committed = (*committed).min(offset);
        Ok(())
    }

    async fn reread_uncommitted(&mut self) -> Result<(), LogError> {
        // Each partition goes back to the earlier of what this consumer processed (or was told
        // to read again from) and the group's commit. The group's commit covers a partition
        // just assigned (a rebalance), which this consumer has not processed yet: seeking it
        // to the locally stored offset, which it does not have, left it with no position, and
        // it was never read again (a projector that took a partition over stalled on it).
        let group: HashMap<i32, i64> = self
            .consumer
            .committed(Duration::from_secs(10))
            .map_err(kafka)?
            .elements()
            .iter()
            .filter_map(|element| match element.offset() {
                Offset::Offset(offset) => Some((element.partition(), offset)),
                _ => None,
            })
            .collect();
        let local = self.committed.clone();
        tracing::debug!(?local, ?group, "re-reading from the last commits");
        self.seek_assigned(|partition| {
            match (local.get(&partition), group.get(&partition)) {
                (Some(local), Some(group)) => Offset::Offset(*local.min(group)),
                (Some(offset), None) | (None, Some(offset)) => Offset::Offset(*offset),
                // Nothing committed anywhere: from the start, as auto.offset.reset says.
                (None, None) => Offset::Beginning,
            }
        })
    }
}
