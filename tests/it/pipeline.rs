//! The pipeline end to end: a replay flows from its data file through the event log and the
//! projector into the store, exactly once in effect, whatever crashes in between. Each test runs
//! twice: on the in-process engines, and on real tansu (KAFKA_BROKERS) and Redis (REDIS_URL),
//! which `scripts/test` starts.

use crate::support;

use std::sync::Arc;
use std::time::Duration;

use livescore_domain::{Breaks, MatchFold, ReplayStatus, Speed, Update, fold_match};
use livescore_eventlog::kafka::{KafkaConfig, KafkaLog};
use livescore_eventlog::memory::MemoryLog;
use livescore_eventlog::{Body, Control, Envelope, EventLog, LogConsumer};
use livescore_producer::ReplayManager;
use livescore_projector::{Projector, ProjectorConfig, ProjectorStats};
use livescore_store::memory::MemoryStore;
use livescore_store::redis::{RedisConfig, RedisServer, RedisStore};
use livescore_store::{Entry, LogRead, MatchStore, StoredMatch, Topic};
use tokio::task::JoinHandle;

const GAME: u64 = 7471;

#[derive(Clone, Copy, Debug)]
enum Engines {
    InProcess,
    Real,
}

/// The log, the store and a producer, wired as `livescore up` wires them.
struct Pipeline {
    log: Arc<dyn EventLog>,
    store: Arc<dyn MatchStore>,
    replays: ReplayManager,
    group: String,
    /// Kept for tests that read the in-process log directly.
    memory_log: Option<MemoryLog>,
    kafka: Option<KafkaConfig>,
    /// The store, for tests that make it lose writes: in process, or a Redis of the test's own.
    restorable: Option<Restorable>,
    /// The key prefix on the shared Redis, its keys deleted at the end (see `support::Owned`).
    _prefix: support::Owned,
}

enum Restorable {
    Memory(MemoryStore),
    Redis(support::services::Server),
}

async fn pipeline(engines: Engines, name: &str) -> Pipeline {
    support::logs();
    let (log, memory_log, kafka): (Arc<dyn EventLog>, _, _) = match engines {
        Engines::InProcess => {
            let log = MemoryLog::new(6);
            (Arc::new(log.clone()), Some(log), None)
        }
        Engines::Real => {
            let config = KafkaConfig {
                brokers: support::kafka_brokers(),
                topic: support::unique(&format!("pipeline-{name}")),
                partitions: 3,
                replication_factor: 1,
            };
            (
                Arc::new(KafkaLog::connect(config.clone()).await.unwrap()),
                None,
                Some(config),
            )
        }
    };
    let prefix = support::owned(&format!("pipeline:{name}"));
    let store: Arc<dyn MatchStore> = match engines {
        Engines::InProcess => Arc::new(MemoryStore::new()),
        Engines::Real => Arc::new(
            RedisStore::connect(RedisConfig {
                server: RedisServer::Url(support::redis_url()),
                prefix: prefix.to_string(),
            })
            .await
            .expect("Redis must be running: scripts/test starts it"),
        ),
    };
    let replays = ReplayManager::new(Arc::clone(&log), support::catalog(), Breaks::default());
    Pipeline {
        log,
        store,
        replays,
        group: support::unique("projector"),
        memory_log,
        kafka,
        restorable: None,
        _prefix: prefix,
    }
}

/// A pipeline whose store the test can restore from an older backup: the in-process store, or
/// a Redis server of its own (on disk, so that it has backups).
async fn restorable_pipeline(engines: Engines, name: &str) -> Pipeline {
    let mut pipeline = pipeline(engines, name).await;
    match engines {
        Engines::InProcess => {
            let store = MemoryStore::new();
            pipeline.store = Arc::new(store.clone());
            pipeline.restorable = Some(Restorable::Memory(store));
        }
        Engines::Real => {
            let server = support::services::Server::redis().await;
            pipeline.store = Arc::new(
                RedisStore::connect(RedisConfig {
                    server: RedisServer::Url(server.url()),
                    prefix: support::unique(&format!("pipeline:{name}")),
                })
                .await
                .unwrap(),
            );
            pipeline.restorable = Some(Restorable::Redis(server));
        }
    }
    pipeline
}

impl Pipeline {
    /// Starts a replay of the test's game at maximum speed.
    async fn replay_at_max_speed(&self) {
        self.replays
            .start(&GAME.to_string(), Speed::Max)
            .await
            .unwrap();
    }

    fn projector(&self, batch: usize) -> (JoinHandle<()>, Arc<ProjectorStats>) {
        self.projector_with(batch, false)
    }

    fn projector_with(&self, batch: usize, rebuild: bool) -> (JoinHandle<()>, Arc<ProjectorStats>) {
        self.projector_config(ProjectorConfig {
            batch,
            rebuild,
            ..ProjectorConfig::default()
        })
    }

    /// A projector of the test's group, checking the store every 200 ms.
    fn projector_config(&self, config: ProjectorConfig) -> (JoinHandle<()>, Arc<ProjectorStats>) {
        let projector = Projector::new(
            Arc::clone(&self.log),
            Arc::clone(&self.store),
            ProjectorConfig {
                group: self.group.clone(),
                epoch_check: Duration::from_millis(200),
                ..config
            },
        );
        let stats = projector.stats();
        let task = tokio::spawn(async move {
            projector.run(std::future::pending()).await.unwrap();
        });
        (task, stats)
    }

    /// Waits (with a deadline) until the stored match satisfies `done`.
    async fn wait_for(&self, done: impl Fn(&StoredMatch) -> bool) -> StoredMatch {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(90);
        loop {
            if let Some(stored) = self.store.load(GAME).await.unwrap()
                && done(&stored)
            {
                return stored;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "the match never got there"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    async fn wait_finished(&self) -> StoredMatch {
        self.wait_for(|stored| stored.replay.status == ReplayStatus::Finished)
            .await
    }

    async fn log_entries(&self) -> Vec<Entry> {
        match self
            .store
            .read_after(Topic::Match(GAME), None, usize::MAX)
            .await
            .unwrap()
        {
            LogRead::After(entries) => entries
                .iter()
                .map(|e| serde_json::from_str(&e.json).unwrap())
                .collect(),
            LogRead::Unknown | LogRead::TooMany | LogRead::Rebuilt => {
                panic!("the log is readable from the start")
            }
        }
    }
}

/// What `livescore fold 7471` computes: the final fold and every update.
fn folded() -> (MatchFold, Vec<Update>) {
    let game = support::catalog().load(&GAME.to_string()).unwrap();
    fold_match(game.info, &game.events)
}

/// The store holds exactly the fold's result, and the match's log is the run's snapshot, one
/// entry per update of the fold in order, and the end of the replay.
async fn assert_exactly_the_fold(pipeline: &Pipeline, stored: &StoredMatch) {
    let (fold, updates) = folded();
    assert_eq!(
        stored.fold, fold,
        "the stored fold is the fold of the whole file"
    );
    let entries = pipeline.log_entries().await;
    assert!(
        matches!(&entries[0], Entry::Snapshot { state, .. } if state.status == livescore_domain::Status::NotStarted),
        "the log starts with the run's snapshot"
    );
    let logged: Vec<Update> = entries
        .iter()
        .filter_map(|e| match e {
            Entry::Update { update, .. } => Some((**update).clone()),
            _ => None,
        })
        .collect();
    assert_eq!(
        logged.len(),
        updates.len(),
        "one log entry per update, none twice"
    );
    assert_eq!(
        logged, updates,
        "the log holds the fold's updates, in order"
    );
    assert!(matches!(
        entries.last(),
        Some(Entry::Replay { replay }) if replay.status == ReplayStatus::Finished
    ));
    assert_eq!(entries.len(), updates.len() + 2);
    // Each update carries when the producer emitted its record: set, in emission order, and not
    // in the future.
    let emitted: Vec<u64> = entries
        .iter()
        .filter_map(|e| match e {
            Entry::Update { emitted_at_ms, .. } => Some(*emitted_at_ms),
            _ => None,
        })
        .collect();
    let now_ms = livescore_store::now_ms();
    assert!(emitted.iter().all(|&ms| ms > 0 && ms <= now_ms));
    assert!(emitted.is_sorted(), "emitted in order");
}

async fn a_replay_at_maximum_speed_ends_as_the_fold(engines: Engines) {
    let pipeline = pipeline(engines, "fold").await;
    let (_projector, stats) = pipeline.projector(500);
    pipeline.replay_at_max_speed().await;
    let stored = pipeline.wait_finished().await;
    assert_exactly_the_fold(&pipeline, &stored).await;
    assert_eq!(stats.dead_letters.get(), 0);
    assert_eq!(
        stats.gaps.get(),
        0,
        "the log delivered every record of the match, in order, the first time"
    );
    let list = pipeline.store.list().await.unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!(
        (list[0].headline.score.home, list[0].headline.score.away),
        (0, 3)
    );
}

async fn a_projector_killed_again_and_again_loses_and_repeats_nothing(engines: Engines) {
    let pipeline = pipeline(engines, "crash").await;
    // The whole replay is in the log first; then the projector works through it, and is killed
    // (its task aborted, its consumer dropped) at points drawn from a seed.
    pipeline.replay_at_max_speed().await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while pipeline.replays.status(GAME).unwrap().status != ReplayStatus::Finished {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the replay never finished within 60 s"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let seed = support::seed("crash test");
    let mut random = seed;
    let mut next = |below: u64| {
        random ^= random << 13;
        random ^= random >> 7;
        random ^= random << 17;
        random % below
    };
    let mut kill_points: Vec<u64> = (0..6).map(|i| 200 + i * 500 + next(400)).collect();
    kill_points.sort_unstable();
    eprintln!("crash test: killing the projector after seq {kill_points:?}");
    for point in &kill_points {
        let (projector, _) = pipeline.projector(1 + next(60) as usize);
        pipeline.wait_for(|stored| stored.seq >= *point).await;
        projector.abort();
        let _ = projector.await;
    }
    let (_projector, stats) = pipeline.projector(100);
    let stored = pipeline.wait_finished().await;
    assert_exactly_the_fold(&pipeline, &stored).await;
    assert_eq!(stats.dead_letters.get(), 0);
}

async fn a_store_that_loses_its_data_is_rebuilt_from_the_log(engines: Engines) {
    // FLUSHDB is a server-wide command: on a Redis of the test's own.
    let pipeline = restorable_pipeline(engines, "flush").await;
    let (_projector, stats) = pipeline.projector(20);
    pipeline
        .replays
        .start(&GAME.to_string(), Speed::Factor(3000.0))
        .await
        .unwrap();
    pipeline.wait_for(|stored| stored.seq >= 1500).await;
    match engines {
        Engines::InProcess => pipeline.store.clear().await.unwrap(),
        Engines::Real => {
            let Some(Restorable::Redis(server)) = &pipeline.restorable else {
                unreachable!("restorable_pipeline gives the real engines a Redis of their own")
            };
            let client = redis::Client::open(server.url()).unwrap();
            let mut conn = client.get_multiplexed_async_connection().await.unwrap();
            let _: () = redis::cmd("FLUSHDB").query_async(&mut conn).await.unwrap();
        }
    }
    let stored = pipeline.wait_finished().await;
    assert!(stats.rebuilds.get() >= 1, "the projector noticed");
    assert_exactly_the_fold(&pipeline, &stored).await;
}

async fn a_rebuild_on_request_clears_the_store_and_ends_the_same(engines: Engines) {
    let pipeline = pipeline(engines, "rebuild").await;
    let (projector, _) = pipeline.projector(500);
    pipeline.replay_at_max_speed().await;
    let before = pipeline.wait_finished().await;
    projector.abort();
    let _ = projector.await;
    let epoch = pipeline.store.epoch().await.unwrap();

    // `livescore projector --rebuild`: same group, whose offsets are at the end of the log.
    let (_projector, stats) = pipeline.projector_with(500, true);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while pipeline.store.epoch().await.unwrap() == epoch {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the store was never cleared"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let after = pipeline.wait_finished().await;
    assert_eq!(after.fold, before.fold);
    assert_exactly_the_fold(&pipeline, &after).await;
    assert!(
        stats.records.get() >= 3480,
        "it read the log from the start"
    );
}

async fn a_garbage_record_goes_to_the_dead_letters_and_the_projector_goes_on(engines: Engines) {
    let pipeline = pipeline(engines, "garbage").await;
    let garbage = b"{\"match_id\": 7471, \"this is\": \"not a record\"".to_vec();
    match (&pipeline.memory_log, &pipeline.kafka) {
        (Some(log), _) => log.append_raw(b"7471", garbage.clone()),
        (None, Some(config)) => {
            use rdkafka::producer::{FutureProducer, FutureRecord};
            let producer: FutureProducer = rdkafka::ClientConfig::new()
                .set("bootstrap.servers", &config.brokers)
                .create()
                .unwrap();
            producer
                .send(
                    FutureRecord::to(&config.topic)
                        .key("7471")
                        .payload(&garbage),
                    Duration::from_secs(10),
                )
                .await
                .unwrap();
        }
        (None, None) => unreachable!(),
    }
    let (_projector, stats) = pipeline.projector(500);
    pipeline.replay_at_max_speed().await;
    let stored = pipeline.wait_finished().await;
    assert_exactly_the_fold(&pipeline, &stored).await;
    assert_eq!(stats.dead_letters.get(), 1);
    // The record itself is in the dead-letter log, as it was.
    let dead: Vec<Vec<u8>> = match (&pipeline.memory_log, &pipeline.kafka) {
        (Some(log), _) => log
            .dead_letters()
            .into_iter()
            .map(|(r, _)| r.payload)
            .collect(),
        (None, Some(config)) => {
            let dlq = KafkaLog::connect(KafkaConfig {
                topic: config.dead_letter_topic(),
                ..config.clone()
            })
            .await
            .unwrap();
            let mut consumer: Box<dyn LogConsumer> =
                dlq.consumer(&support::unique("dlq")).await.unwrap();
            let batch = tokio::time::timeout(Duration::from_secs(30), consumer.next_batch(10))
                .await
                .unwrap()
                .unwrap();
            batch.into_iter().map(|r| r.payload).collect()
        }
        (None, None) => unreachable!(),
    };
    assert_eq!(dead, vec![garbage]);
}

async fn a_store_that_loses_its_last_writes_heals_from_the_log(engines: Engines) {
    let mut pipeline = restorable_pipeline(engines, "lost-writes").await;
    let (_projector, stats) = pipeline.projector(20);
    pipeline.replay_at_max_speed().await;
    pipeline.wait_for(|stored| stored.seq >= 1000).await;
    enum Backup {
        Memory(Box<livescore_store::memory::Checkpoint>),
        Redis(std::path::PathBuf),
    }
    let backup = match &pipeline.restorable {
        Some(Restorable::Memory(store)) => Backup::Memory(Box::new(store.checkpoint())),
        Some(Restorable::Redis(server)) => Backup::Redis(server.backup()),
        None => unreachable!(),
    };
    // The match ends, and its end is committed in the log; then the store goes back to the
    // backup, as after a host crash that lost its last writes: it shows the match running.
    let before = pipeline.wait_finished().await;
    assert_exactly_the_fold(&pipeline, &before).await;
    match (pipeline.restorable.as_mut(), backup) {
        (Some(Restorable::Memory(store)), Backup::Memory(checkpoint)) => store.restore(*checkpoint),
        (Some(Restorable::Redis(server)), Backup::Redis(dir)) => server.restore(&dir).await,
        _ => unreachable!(),
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let restored = loop {
        if let Ok(Some(stored)) = pipeline.store.load(GAME).await {
            break stored;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the store never came back"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(
        restored.seq < before.seq || stats.store_heals.get() > 0,
        "the store lost the writes after the backup"
    );

    // No record will come for the match: the projector finds the loss by itself, and reads the
    // lost records again.
    let healed = pipeline.wait_finished().await;
    assert_exactly_the_fold(&pipeline, &healed).await;
    assert!(stats.store_heals.get() >= 1, "the projector saw the loss");
    assert_eq!(stats.rebuilds.get(), 0, "healed without a rebuild");
}

async fn a_replay_whose_records_stop_is_marked_stalled_until_they_come_again(engines: Engines) {
    let pipeline = pipeline(engines, "stalled").await;
    // Sending by hand, a record at a time, a loaded machine can leave a gap of a second between
    // two: that is a stall too, and the projector marks it; the assertions allow such marks.
    let grace = Duration::from_secs(2);
    let (_projector, stats) = pipeline.projector_config(ProjectorConfig {
        stall_grace: grace,
        ..ProjectorConfig::default()
    });
    // The producer's records, sent by hand, so that they can stop mid-match with the replay
    // running, as when the producer or the broker dies.
    let game = support::catalog().load(&GAME.to_string()).unwrap();
    let run = 1;
    let send = async |seq: u64, body: Body| {
        let envelope = Envelope {
            match_id: GAME,
            run,
            seq,
            emitted_at_ms: livescore_store::now_ms(),
            body,
        };
        pipeline.log.send(&envelope).unwrap().await.unwrap();
    };
    send(
        0,
        Body::Control(Control::Started {
            info: Box::new(game.info.clone()),
            speed: Speed::Max,
            events: game.events.len() as u32,
        }),
    )
    .await;
    let half = game.events.len() / 2;
    for (seq, event) in (1..).zip(&game.events[..half]) {
        send(seq, Body::Event(Box::new(event.clone()))).await;
    }
    // The last record is in the log: the projector cannot have heard it before now.
    let quiet = std::time::Instant::now();
    let last_seq = half as u64;
    pipeline.wait_for(|stored| stored.seq == last_seq).await;

    // No record comes: at maximum speed, the grace alone is allowed.
    let stalled = pipeline.wait_for(|stored| stored.replay.stalled).await;
    let waited = quiet.elapsed();
    assert!(waited >= grace, "marked after {waited:?}, before the grace");
    assert_eq!(stalled.seq, last_seq, "no record was applied");
    assert_eq!(stalled.replay.status, ReplayStatus::Running);
    // The projector counts a stall once its write is in: the store may show it first.
    support::until(
        "the projector counts the stall",
        Duration::from_secs(5),
        || async { stats.stalls.get() >= 1 },
    )
    .await;
    let entries = pipeline.log_entries().await;
    assert!(
        matches!(entries.last(), Some(Entry::Replay { replay }) if replay.stalled),
        "viewers are told: {:?}",
        entries.last()
    );
    let list = pipeline.store.list().await.unwrap();
    let line = list.iter().find(|line| line.match_id == GAME).unwrap();
    assert!(line.replay.stalled, "the games list shows it");

    // The records come again: live again, and the match ends at its fold.
    for (seq, event) in (last_seq + 1..).zip(&game.events[half..]) {
        send(seq, Body::Event(Box::new(event.clone()))).await;
    }
    send(
        game.events.len() as u64 + 1,
        Body::Control(Control::Finished),
    )
    .await;
    let finished = pipeline.wait_finished().await;
    assert!(!finished.replay.stalled);
    let (fold, updates) = folded();
    assert_eq!(finished.fold, fold);
    // The log: the updates of the fold, in order, with the stall and the return to live
    // between them, once each.
    let entries = pipeline.log_entries().await;
    let replays: Vec<bool> = entries
        .iter()
        .filter_map(|entry| match entry {
            Entry::Replay { replay } if replay.status == ReplayStatus::Running => {
                Some(replay.stalled)
            }
            _ => None,
        })
        .collect();
    // Stalled, then live again: once when the records stopped, and for any gap on the way.
    assert!(
        !replays.is_empty() && replays.chunks(2).all(|pair| pair == [true, false]),
        "each stall followed by live again: {replays:?}"
    );
    assert_eq!(
        stats.stalls.get() as usize,
        replays.len() / 2,
        "each stall logged once"
    );
    let logged: Vec<Update> = entries
        .iter()
        .filter_map(|entry| match entry {
            Entry::Update { update, .. } => Some((**update).clone()),
            _ => None,
        })
        .collect();
    assert_eq!(logged, updates);
}

/// Runs each scenario twice: on the in-process engines and on real Kafka and Redis.
macro_rules! on_both_engines {
    ($($scenario:ident),* $(,)?) => {
        mod in_process {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $scenario() {
                    super::$scenario(super::Engines::InProcess).await;
                }
            )*
        }

        mod kafka_and_redis {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $scenario() {
                    super::$scenario(super::Engines::Real).await;
                }
            )*
        }
    };
}

on_both_engines!(
    a_replay_at_maximum_speed_ends_as_the_fold,
    a_projector_killed_again_and_again_loses_and_repeats_nothing,
    a_store_that_loses_its_data_is_rebuilt_from_the_log,
    a_rebuild_on_request_clears_the_store_and_ends_the_same,
    a_garbage_record_goes_to_the_dead_letters_and_the_projector_goes_on,
    a_store_that_loses_its_last_writes_heals_from_the_log,
    a_replay_whose_records_stop_is_marked_stalled_until_they_come_again,
);
