//! A minimal reproduction, with rdkafka alone, of why `KafkaLog` sends one record per batch:
//! ten records are written as one batch, and a consumer then asks for offset 5, as a consumer
//! group that committed in the middle of that batch would. Kafka answers with the whole batch
//! and the client skips offsets 0 to 4; tansu 0.6 lists a partition's batches by their first
//! offset and answers only with batches that start at or after the offset asked for.
//!
//! ```sh
//! KAFKA_BROKERS=127.0.0.1:19092 cargo run -p livescore-eventlog --example tansu_mid_batch_fetch
//! ```
//!
//! It prints the offsets that arrive within five seconds, and exits 1 unless they are 5 to 9.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::Message;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{Offset, TopicPartitionList};

#[tokio::main]
async fn main() {
    let brokers = std::env::var("KAFKA_BROKERS").unwrap_or_else(|_| "127.0.0.1:19092".into());
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let topic = format!("mid-batch-{nanos}");
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", &brokers)
        .create()
        .unwrap();
    let created = admin
        .create_topics(
            &[NewTopic::new(&topic, 1, TopicReplication::Fixed(1))],
            &AdminOptions::new(),
        )
        .await
        .unwrap();
    assert!(created.iter().all(Result::is_ok), "{created:?}");

    // Ten records queued at once and lingered over: librdkafka sends them as one batch.
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", &brokers)
        .set("linger.ms", "200")
        .create()
        .unwrap();
    let deliveries: Vec<_> = (0..10)
        .map(|i| {
            let payload = format!("record {i}");
            producer
                .send_result(FutureRecord::<(), _>::to(&topic).payload(&payload))
                .map_err(|(err, _)| err)
                .unwrap()
        })
        .collect();
    for delivery in deliveries {
        delivery.await.unwrap().unwrap();
    }
    println!("wrote offsets 0 to 9 in one batch");

    let consumer: StreamConsumer = ClientConfig::new()
        .set("bootstrap.servers", &brokers)
        .set("group.id", format!("{topic}-group"))
        .set("fetch.wait.max.ms", "10")
        .create()
        .unwrap();
    let mut at_five = TopicPartitionList::new();
    at_five
        .add_partition_offset(&topic, 0, Offset::Offset(5))
        .unwrap();
    consumer.assign(&at_five).unwrap();

    let mut offsets = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while offsets.len() < 5 {
        match tokio::time::timeout_at(deadline, consumer.recv()).await {
            Ok(message) => offsets.push(message.unwrap().offset()),
            Err(_deadline) => break,
        }
    }
    println!("asked for offset 5, got offsets {offsets:?}");
    if offsets != [5, 6, 7, 8, 9] {
        println!("the broker did not serve a fetch that starts inside a batch");
        std::process::exit(1);
    }
}
