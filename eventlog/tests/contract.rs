//! The behaviour both event logs promise, run against each: the in-process log, and Kafka through
//! a real broker (tansu; `scripts/test` starts it and sets KAFKA_BROKERS).

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use livescore_domain::Speed;
use livescore_eventlog::kafka::{KafkaConfig, KafkaLog};
use livescore_eventlog::memory::MemoryLog;
use livescore_eventlog::{Body, Control, Envelope, EventLog, LogConsumer, LogRecord};

fn envelope(match_id: u64, seq: u64) -> Envelope {
    Envelope {
        match_id,
        run: 1,
        seq,
        emitted_at_ms: 0,
        body: Body::Control(Control::SpeedChanged {
            speed: Speed::Factor(seq as f64 + 1.0),
        }),
    }
}

/// Sends `count` records for each match, interleaved, and waits until they are durable.
async fn send_all(log: &dyn EventLog, matches: &[u64], count: u64) {
    let mut deliveries = Vec::new();
    for seq in 0..count {
        for &match_id in matches {
            deliveries.push(log.send(&envelope(match_id, seq)).unwrap());
        }
    }
    for delivery in deliveries {
        delivery.await.unwrap();
    }
}

/// Reads until `count` records have arrived (or fails after a deadline).
async fn read(consumer: &mut dyn LogConsumer, count: usize) -> Vec<LogRecord> {
    let mut records = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while records.len() < count {
        let batch = tokio::time::timeout_at(deadline, consumer.next_batch(100))
            .await
            .unwrap_or_else(|_| panic!("only {} of {count} records arrived", records.len()))
            .unwrap();
        records.extend(batch);
    }
    records
}

fn decoded(records: &[LogRecord]) -> Vec<Envelope> {
    records
        .iter()
        .map(|r| Envelope::from_json(&r.payload).unwrap())
        .collect()
}

fn seqs_of(envelopes: &[Envelope], match_id: u64) -> Vec<u64> {
    envelopes
        .iter()
        .filter(|e| e.match_id == match_id)
        .map(|e| e.seq)
        .collect()
}

async fn each_match_is_read_in_order(log: &dyn EventLog) {
    send_all(log, &[1, 2, 3], 50).await;
    let mut consumer = log.consumer("order").await.unwrap();
    let envelopes = decoded(&read(consumer.as_mut(), 150).await);
    for match_id in [1, 2, 3] {
        assert_eq!(seqs_of(&envelopes, match_id), (0..50).collect::<Vec<_>>());
    }
    assert_eq!(
        envelopes[0],
        envelope(envelopes[0].match_id, 0),
        "records decode intact"
    );
}

async fn a_group_resumes_after_its_commits(log: &dyn EventLog) {
    send_all(log, &[7], 10).await;
    let mut consumer = log.consumer("resume").await.unwrap();
    let records = read(consumer.as_mut(), 10).await;
    // Only the first six are processed before the consumer goes away: the group resumes in the
    // middle of what the producer sent together.
    consumer.commit(&records[..6]).unwrap();
    // Closing a Kafka consumer commits the offsets it stored.
    drop(consumer);
    let mut again = log.consumer("resume").await.unwrap();
    let envelopes = decoded(&read(again.as_mut(), 4).await);
    assert_eq!(seqs_of(&envelopes, 7), vec![6, 7, 8, 9]);
}

async fn a_rewound_consumer_reads_from_the_beginning(log: &dyn EventLog) {
    send_all(log, &[9], 5).await;
    let mut consumer = log.consumer("rewind").await.unwrap();
    let first = read(consumer.as_mut(), 5).await;
    consumer.commit(&first).unwrap();
    consumer.rewind().await.unwrap();
    let again = decoded(&read(consumer.as_mut(), 5).await);
    assert_eq!(seqs_of(&again, 9), vec![0, 1, 2, 3, 4]);
}

async fn a_partition_is_read_again_from_an_offset(log: &dyn EventLog) {
    send_all(log, &[11, 12], 10).await;
    let mut consumer = log.consumer("reread-from").await.unwrap();
    let first = read(consumer.as_mut(), 20).await;
    consumer.commit(&first).unwrap();
    let of_11: Vec<&LogRecord> = first
        .iter()
        .filter(|r| Envelope::from_json(&r.payload).unwrap().match_id == 11)
        .collect();
    // Match 11's partition again from its seventh record: the last four, and nothing of a
    // partition that was not moved.
    let (partition, offset) = (of_11[6].partition, of_11[6].offset);
    consumer.reread_from(partition, offset).await.unwrap();
    let again = read(consumer.as_mut(), 4).await;
    assert!(again.iter().all(|r| r.partition == partition));
    let again = decoded(&again);
    assert_eq!(seqs_of(&again, 11), vec![6, 7, 8, 9]);
    // A later re-read from the commits goes back no further than that offset.
    consumer.reread_uncommitted().await.unwrap();
    let envelopes = decoded(&read(consumer.as_mut(), 4).await);
    assert_eq!(seqs_of(&envelopes, 11), vec![6, 7, 8, 9]);
}

async fn a_rewind_on_joining_moves_the_group_back_to_the_start(log: &dyn EventLog) {
    send_all(log, &[4], 5).await;
    let mut consumer = log.consumer("rebuild").await.unwrap();
    let first = read(consumer.as_mut(), 5).await;
    consumer.commit(&first).unwrap();
    drop(consumer);
    // A rebuild: rewound before the group has handed this consumer anything.
    let mut rebuilding = log.consumer("rebuild").await.unwrap();
    rebuilding.rewind().await.unwrap();
    let again = decoded(&read(rebuilding.as_mut(), 5).await);
    assert_eq!(seqs_of(&again, 4), vec![0, 1, 2, 3, 4]);
    drop(rebuilding);
    // Stopped before committing anything: the next one resumes the rebuild from the start.
    let mut resumed = log.consumer("rebuild").await.unwrap();
    let resumed = decoded(&read(resumed.as_mut(), 5).await);
    assert_eq!(seqs_of(&resumed, 4), vec![0, 1, 2, 3, 4]);
}

/// `next_batch` is cancel-safe: a read that loses a race (the projector selects it against its
/// epoch timer and shutdown) keeps what it had received for the next call. Records are sent
/// while the consumer reads, and every read races a timer of a millisecond or so: every
/// record still arrives once, in order.
async fn a_read_cut_short_loses_nothing(log: &dyn EventLog) {
    const COUNT: u64 = 600;
    let mut consumer = log.consumer("cut-short").await.unwrap();
    let mut envelopes = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let (mut cut_short, mut sent, mut round) = (0, 0, 0u64);
    let mut deliveries = Vec::new();
    while envelopes.len() < 2 * COUNT as usize {
        assert!(
            tokio::time::Instant::now() < deadline,
            "only {} of {} records arrived",
            envelopes.len(),
            2 * COUNT
        );
        // Records come every third round: in between, a read may find nothing and lose to the
        // timer even where the log answers at once (the in-process one).
        round += 1;
        if sent < COUNT && round % 3 == 1 {
            for _ in 0..10.min(COUNT - sent) {
                for match_id in [1, 2] {
                    deliveries.push(log.send(&envelope(match_id, sent)).unwrap());
                }
                sent += 1;
            }
        }
        tokio::select! {
            batch = consumer.next_batch(50) => envelopes.extend(decoded(&batch.unwrap())),
            () = tokio::time::sleep(Duration::from_micros(700)) => cut_short += 1,
        }
    }
    for delivery in deliveries {
        delivery.await.unwrap();
    }
    // Else the test proved nothing about a read cut short.
    assert!(cut_short > 0, "no read was cut short in {round} rounds");
    for match_id in [1, 2] {
        assert_eq!(
            seqs_of(&envelopes, match_id),
            (0..COUNT).collect::<Vec<_>>(),
            "match {match_id}: every record once, in order ({cut_short} reads cut short)"
        );
    }
}

/// `read_to_end` returns every record the log holds, outside any group, in order per match.
async fn the_whole_log_is_read_to_its_end(log: &dyn EventLog) {
    send_all(log, &[1, 2, 3], 40).await;
    let envelopes = decoded(&log.read_to_end().await.unwrap());
    for match_id in [1, 2, 3] {
        assert_eq!(seqs_of(&envelopes, match_id), (0..40).collect::<Vec<_>>());
    }
    // Reading moved no group: a consumer still starts at the beginning.
    let mut consumer = log.consumer("after-read").await.unwrap();
    assert_eq!(read(consumer.as_mut(), 120).await.len(), 120);
}

mod memory {
    use super::*;

    #[tokio::test]
    async fn the_whole_log_is_read_to_its_end() {
        super::the_whole_log_is_read_to_its_end(&MemoryLog::new(6)).await;
    }

    #[tokio::test]
    async fn a_read_cut_short_loses_nothing() {
        super::a_read_cut_short_loses_nothing(&MemoryLog::new(6)).await;
    }

    #[tokio::test]
    async fn a_rewind_on_joining_moves_the_group_back_to_the_start() {
        super::a_rewind_on_joining_moves_the_group_back_to_the_start(&MemoryLog::new(6)).await;
    }

    #[tokio::test]
    async fn each_match_is_read_in_order() {
        super::each_match_is_read_in_order(&MemoryLog::new(6)).await;
    }

    #[tokio::test]
    async fn a_group_resumes_after_its_commits() {
        super::a_group_resumes_after_its_commits(&MemoryLog::new(6)).await;
    }

    #[tokio::test]
    async fn a_rewound_consumer_reads_from_the_beginning() {
        super::a_rewound_consumer_reads_from_the_beginning(&MemoryLog::new(6)).await;
    }

    #[tokio::test]
    async fn a_partition_is_read_again_from_an_offset() {
        super::a_partition_is_read_again_from_an_offset(&MemoryLog::new(6)).await;
    }

    #[tokio::test]
    async fn undecodable_records_are_set_aside() {
        let log = MemoryLog::new(2);
        log.append_raw(b"5", b"not json".to_vec());
        let mut consumer = log.consumer("g").await.unwrap();
        let records = read(consumer.as_mut(), 1).await;
        log.dead_letter(&records[0], "bad").await.unwrap();
        assert_eq!(
            log.dead_letters(),
            vec![(records[0].clone(), "bad".to_owned())]
        );
    }
}

mod kafka {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_whole_log_is_read_to_its_end() {
        super::the_whole_log_is_read_to_its_end(&log("read-to-end").await).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_read_cut_short_loses_nothing() {
        super::a_read_cut_short_loses_nothing(&log("cut-short").await).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_rewind_on_joining_moves_the_group_back_to_the_start() {
        super::a_rewind_on_joining_moves_the_group_back_to_the_start(&log("rebuild").await).await;
    }

    /// A log on a topic of its own, so tests share one broker without seeing each other.
    async fn log(name: &str) -> KafkaLog {
        let brokers = std::env::var("KAFKA_BROKERS").expect(
            "KAFKA_BROKERS must name a Kafka broker for these tests: scripts/test starts tansu and sets it",
        );
        let unique = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        KafkaLog::connect(KafkaConfig {
            brokers,
            topic: format!("test-{name}-{unique}"),
            partitions: 3,
            replication_factor: 1,
        })
        .await
        .unwrap()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn each_match_is_read_in_order() {
        super::each_match_is_read_in_order(&log("order").await).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_group_resumes_after_its_commits() {
        super::a_group_resumes_after_its_commits(&log("resume").await).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_rewound_consumer_reads_from_the_beginning() {
        super::a_rewound_consumer_reads_from_the_beginning(&log("rewind").await).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_partition_is_read_again_from_an_offset() {
        super::a_partition_is_read_again_from_an_offset(&log("reread-from").await).await;
    }
}
