//! A minimal reproduction, with rdkafka alone, of why `KafkaLog` never lets librdkafka time a
//! record out (`message.timeout.ms=0`): when a record of an idempotent producer times out,
//! librdkafka bumps the producer's epoch (KIP-360) and goes on, and the next record it sends
//! makes tansu 0.6's SQLite engine panic ("more or less than one row" in
//! `idempotent_message_check`), after which that broker answers every request with an error.
//!
//! It starts its own `tansu broker` (SQLite, in a temporary directory; `tansu` must be on PATH),
//! writes a record, freezes the broker (SIGSTOP) until a second record times out, thaws it
//! (SIGCONT), and writes a third:
//!
//! ```sh
//! cargo run -p livescore-eventlog --example tansu_epoch_bump
//! ```
//!
//! It prints what became of each record and whether tansu panicked, and exits 1 if it did.

#![allow(clippy::unwrap_used)]

use std::process::{Command, Stdio};
use std::time::Duration;

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::producer::{FutureProducer, FutureRecord};

#[tokio::main]
async fn main() {
    let dir = std::env::temp_dir().join(format!("tansu-epoch-bump-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("tcp://127.0.0.1:{port}");
    let mut broker = Command::new("tansu")
        .args([
            "broker",
            "--listener-url",
            &url,
            "--advertised-listener-url",
            &url,
        ])
        .args(["--storage-engine", "sqlite://tansu.db", "--silent"])
        .current_dir(&dir)
        .stderr(std::fs::File::create(dir.join("tansu.log")).unwrap())
        .stdout(Stdio::null())
        .spawn()
        .expect("tansu must be on PATH");
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let brokers = format!("127.0.0.1:{port}");
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", &brokers)
        .create()
        .unwrap();
    let topic = NewTopic::new("epoch-bump", 1, TopicReplication::Fixed(1));
    admin
        .create_topics(&[topic], &AdminOptions::new())
        .await
        .unwrap();

    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", &brokers)
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set("message.timeout.ms", "2000")
        .create()
        .unwrap();
    let send = |payload: &'static str| {
        let producer = producer.clone();
        async move {
            let record = FutureRecord::<(), _>::to("epoch-bump").payload(payload);
            producer
                .send(record, Duration::ZERO)
                .await
                .map(|delivered| format!("written at offset {}", delivered.offset))
                .unwrap_or_else(|(err, _)| format!("not written: {err}"))
        }
    };
    println!("first record: {}", send("first").await);

    let pid = broker.id().to_string();
    Command::new("kill").args(["-STOP", &pid]).status().unwrap();
    println!("second record, broker frozen: {}", send("second").await);
    Command::new("kill").args(["-CONT", &pid]).status().unwrap();
    // librdkafka bumps the epoch once nothing is in flight, then sends the third record.
    println!("third record, broker back: {}", send("third").await);

    tokio::time::sleep(Duration::from_millis(500)).await;
    let _ = broker.kill();
    let _ = broker.wait();
    let log = std::fs::read_to_string(dir.join("tansu.log")).unwrap_or_default();
    let panicked = log.contains("panicked");
    match log.lines().find(|line| line.contains("panicked")) {
        Some(line) => println!("tansu: {line}"),
        None => println!("tansu did not panic"),
    }
    let _ = std::fs::remove_dir_all(&dir);
    if panicked {
        std::process::exit(1);
    }
}
