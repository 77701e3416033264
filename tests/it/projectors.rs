//! Several projectors in one consumer group share the log's partitions: two `livescore
//! projector` processes on the shared test broker and Redis, every match of the catalog
//! replaying at once. One is stopped mid-replay, and the group gives its partitions to the
//! projectors left, which resume them from the group's commits and the store's marks: every
//! match still ends exactly at its fold, each update logged once.
//!
//! Stopped with SIGTERM, it leaves the group, and the other takes every partition.
//!
//! A SIGKILLed projector is not tested here, because tansu 0.6 cannot hand its partitions over:
//! it expires the dead member after the session timeout (6 s), but reforms the group under the
//! same generation, and its SyncGroup then answers the survivor with the assignment of before,
//! so the dead member's partitions are read by nobody (tansu-broker 0.6.0
//! `coordinator/group/administrator.rs`: a JoinGroup from a known member with the same metadata
//! does not bump the generation; seen in librdkafka's `cgrp` debug log: the survivor, leader,
//! assigns itself 3 partitions, and SyncGroup hands it 2). A replacement that joins before the
//! expiry is assigned partitions beside the dead member, which then keeps its own for good.
//! Apache Kafka starts a new generation on every rebalance.
//!
//! Holding every match (`pause_at`) until both projectors were at work, then stopping one, was
//! tried and failed: with no records flowing, some matches' records were not applied while both
//! projectors were in the group (after 60 s, 3 of 7 matches held at 10', one marked stalled after
//! 11 s of quiet), which fits the assignment problem above. Not investigated further; the stop
//! comes during a 400x replay instead, and the test checks the replay was not over by then.
//!
//! Kafka only: the in-process log has no partition assignment (one process has one projector).

use crate::support;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use livescore_domain::{ReplayStatus, fold_match};
use livescore_store::MatchStore;
use livescore_store::redis::{RedisConfig, RedisServer, RedisStore};
use support::clients::logged_updates;
use support::services::{Role, free_port};

const TOKEN: &str = "projectors-test-token";
/// 90 minutes in about 15 s: time to see both projectors at work, and one die, mid-replay.
const SPEED: u32 = 400;

/// A projector's `/metrics`, if it answers.
async fn metrics(http: &reqwest::Client, port: u16) -> Option<String> {
    let response = http
        .get(format!("http://127.0.0.1:{port}/metrics"))
        .send()
        .await
        .ok()?;
    response.text().await.ok()
}

/// Its `livescore_projector_records_applied_total`.
fn applied(metrics: &str) -> u64 {
    metrics
        .lines()
        .find_map(|line| line.strip_prefix("livescore_projector_records_applied_total "))
        .and_then(|value| value.trim().parse().ok())
        .unwrap_or(0)
}

/// The partitions it has read (its consumer-lag gauges, one per partition it was assigned).
fn partitions(metrics: &str) -> BTreeSet<i32> {
    metrics
        .lines()
        .filter_map(|line| {
            line.strip_prefix("livescore_projector_consumer_lag_records{partition=\"")
        })
        .filter_map(|rest| rest.split('"').next()?.parse().ok())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_projector_stopped_mid_replay_hands_its_partitions_over_and_nothing_is_lost() {
    let name = support::owned("projectors");
    let repo = env!("CARGO_MANIFEST_DIR");
    let producer_port = free_port();
    let projector_ports = [free_port(), free_port()];
    let env = |listen: u16, projector_listen: u16| {
        vec![
            ("KAFKA_BROKERS", support::kafka_brokers()),
            ("KAFKA_TOPIC", name.to_string()),
            ("KAFKA_PARTITIONS", "3".to_owned()),
            ("REDIS_URL", support::redis_url()),
            ("REDIS_PREFIX", name.to_string()),
            ("PROJECTOR_GROUP", name.to_string()),
            ("ADMIN_TOKEN", TOKEN.to_owned()),
            ("DATA_DIR", format!("{repo}/data")),
            ("LISTEN", format!("127.0.0.1:{listen}")),
            ("PROJECTOR_LISTEN", format!("127.0.0.1:{projector_listen}")),
        ]
    };
    let _producer = Role::start("producer", &env(producer_port, 0));
    let mut first = Role::start("projector", &env(0, projector_ports[0]));
    let _second = Role::start("projector", &env(0, projector_ports[1]));
    let store: Arc<dyn MatchStore> = Arc::new(
        RedisStore::connect(RedisConfig {
            server: RedisServer::Url(support::redis_url()),
            prefix: name.to_string(),
        })
        .await
        .unwrap(),
    );
    let http = support::http_client();
    let catalog = support::catalog();
    let games: Vec<u64> = catalog.games().iter().map(|game| game.id).collect();
    assert!(games.len() >= 6, "the catalog has the seven matches");

    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    for game in &games {
        loop {
            let answered = http
                .post(format!(
                    "http://127.0.0.1:{producer_port}/games/{game}?speed={SPEED}"
                ))
                .bearer_auth(TOKEN)
                .send()
                .await
                .map(|r| r.status().as_u16());
            if answered.as_ref().is_ok_and(|status| *status == 202) {
                break;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "the producer never started {game}: {answered:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    // Both projectors write (the group split the partitions between them) before one dies.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let (before, killed_partitions) = loop {
        let [first, second] = [
            metrics(&http, projector_ports[0]).await.unwrap_or_default(),
            metrics(&http, projector_ports[1]).await.unwrap_or_default(),
        ];
        let counts = [applied(&first), applied(&second)];
        if counts.iter().all(|count| *count >= 50) {
            break (counts, partitions(&first));
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "both projectors never got to work: records applied {counts:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let mut unfinished = 0;
    for game in &games {
        let stored = store.load(*game).await.unwrap();
        if stored.is_none_or(|stored| stored.replay.status != ReplayStatus::Finished) {
            unfinished += 1;
        }
    }
    assert!(unfinished > 0, "killed mid-replay, not after it");
    eprintln!(
        "records applied before the stop: {before:?}; {unfinished} matches not finished; \
         the first projector read partitions {killed_partitions:?}"
    );
    let stopped = tokio::time::Instant::now();
    first.terminate();
    eprintln!(
        "the first projector exited {:?} after SIGTERM",
        stopped.elapsed()
    );
    // What the projector left has read, and applied.
    let left = async || {
        let text = metrics(&http, projector_ports[1]).await.unwrap_or_default();
        (partitions(&text), applied(&text))
    };

    // The producer emits at the replays' pace, which a loaded machine slows: first every
    // record is in the log, then the projector left has a minute to bring each match to its
    // fold.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(300);
    for game in &games {
        loop {
            let status = http
                .get(format!("http://127.0.0.1:{producer_port}/replays/{game}"))
                .bearer_auth(TOKEN)
                .send()
                .await
                .ok();
            let status = match status {
                Some(response) => response.text().await.ok(),
                None => None,
            }
            .and_then(|text| serde_json::from_str::<serde_json::Value>(&text).ok());
            if status.is_some_and(|status| status["status"] == "finished") {
                break;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "the producer never finished replaying {game}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    eprintln!(
        "every replay emitted {:?} after the stop",
        stopped.elapsed()
    );
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    for game in &games {
        let (fold, updates) = {
            let loaded = catalog.load(&game.to_string()).unwrap();
            fold_match(loaded.info, &loaded.events)
        };
        let stored = loop {
            if let Some(stored) = store.load(*game).await.unwrap()
                && stored.replay.status == ReplayStatus::Finished
            {
                break stored;
            }
            if tokio::time::Instant::now() >= deadline {
                let (read, applied_by_them) = left().await;
                panic!(
                    "match {game} never finished after the stop; the projector left read \
                     partitions {read:?}, applied {applied_by_them}"
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        assert_eq!(stored.fold, fold, "match {game} ends at its fold");
        assert_eq!(stored.replay.lost_records, 0, "match {game} lost nothing");
        let logged = logged_updates(store.as_ref(), *game).await;
        assert_eq!(logged, updates, "match {game}: every update once, in order");
    }
    eprintln!(
        "every match at its fold {:?} after the stop",
        stopped.elapsed()
    );
    let (read, applied_by_them) = left().await;
    assert!(
        read.is_superset(&killed_partitions),
        "the projector left took the stopped one's partitions {killed_partitions:?} over: it \
         read {read:?}"
    );
    assert!(applied_by_them > before[1]);
    store.clear().await.unwrap();
}
