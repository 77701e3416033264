//! Measures the pipeline for BENCHMARKS.md, on real Kafka (KAFKA_BROKERS) and Redis (REDIS_URL):
//!
//! 1. producer: all seven shipped matches replayed at maximum speed into a fresh topic;
//! 2. projector: those records folded into a fresh Redis prefix, from a standing start;
//! 3. live: producer and projector together, seven matches at maximum speed;
//! 4. replay clock lateness at speed 60 over `LATENESS_SECONDS` (default 30) of match 7471.
//!
//! Run: `cargo run --release --example pipeline_bench` (scripts/test's services will do).

use std::sync::Arc;
use std::time::{Duration, Instant};

use livescore_catalog::Catalog;
use livescore_domain::{Breaks, ReplayStatus, Speed};
use livescore_eventlog::EventLog;
use livescore_eventlog::kafka::{KafkaConfig, KafkaLog};
use livescore_producer::ReplayManager;
use livescore_projector::{Projector, ProjectorConfig, ProjectorStats};
use livescore_store::MatchStore;
use livescore_store::redis::{RedisConfig, RedisServer, RedisStore};

fn unique(name: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!("bench-{name}-{nanos}")
}

async fn kafka(topic: &str) -> anyhow::Result<Arc<dyn EventLog>> {
    let brokers = std::env::var("KAFKA_BROKERS").unwrap_or_else(|_| "127.0.0.1:19092".into());
    let config = KafkaConfig {
        brokers,
        topic: topic.to_owned(),
        partitions: 6,
        replication_factor: 1,
    };
    Ok(Arc::new(KafkaLog::connect(config).await?))
}

async fn redis(prefix: &str) -> anyhow::Result<Arc<dyn MatchStore>> {
    let url = std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    let config = RedisConfig {
        server: RedisServer::Url(url),
        prefix: prefix.to_owned(),
    };
    Ok(Arc::new(RedisStore::connect(config).await?))
}

async fn replay_all(replays: &ReplayManager, catalog: &Catalog) -> anyhow::Result<()> {
    for game in catalog.games() {
        replays.start(&game.id.to_string(), Speed::Max).await?;
    }
    Ok(())
}

async fn until(mut done: impl AsyncFnMut() -> anyhow::Result<bool>) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(600);
    while !done().await? {
        anyhow::ensure!(Instant::now() < deadline, "gave up waiting");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    Ok(())
}

async fn all_stored(store: &dyn MatchStore, games: usize) -> anyhow::Result<bool> {
    let list = store.list().await?;
    Ok(list.len() == games
        && list
            .iter()
            .all(|m| m.replay.status == ReplayStatus::Finished))
}

fn projector(
    log: Arc<dyn EventLog>,
    store: Arc<dyn MatchStore>,
) -> (tokio::task::JoinHandle<()>, Arc<ProjectorStats>) {
    let projector = Projector::new(
        log,
        store,
        ProjectorConfig {
            group: unique("group"),
            ..ProjectorConfig::default()
        },
    );
    let stats = projector.stats();
    let task = tokio::spawn(async move {
        if let Err(err) = projector.run(std::future::pending()).await {
            eprintln!("projector: {err}");
        }
    });
    (task, stats)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let catalog = Arc::new(Catalog::open("data")?);
    let games = catalog.games().len();

    // 1 and 2: produce everything, then project it.
    let log = kafka(&unique("topic")).await?;
    let replays = ReplayManager::new(Arc::clone(&log), Arc::clone(&catalog), Breaks::default());
    let started = Instant::now();
    replay_all(&replays, &catalog).await?;
    until(async || {
        Ok(replays
            .list()
            .iter()
            .all(|r| r.status == ReplayStatus::Finished))
    })
    .await?;
    let produced = started.elapsed();
    let records: u64 = replays
        .list()
        .iter()
        .map(|r| u64::from(r.events_sent) + 2)
        .sum();
    println!(
        "producer: {records} records of {games} matches into Kafka in {produced:.2?}: {:.0} records/s",
        records as f64 / produced.as_secs_f64()
    );

    let store = redis(&unique("projector")).await?;
    let started = Instant::now();
    let (task, stats) = projector(Arc::clone(&log), Arc::clone(&store));
    until(async || all_stored(store.as_ref(), games).await).await?;
    let projected = started.elapsed();
    task.abort();
    println!(
        "projector: {records} records folded into Redis in {projected:.2?}: {:.0} records/s \
         (consumer group join included; {} gaps re-read, {} retries)",
        records as f64 / projected.as_secs_f64(),
        ProjectorStats::get(&stats.gaps),
        ProjectorStats::get(&stats.retries),
    );
    store.clear().await?;

    // 3: both at once.
    let log = kafka(&unique("topic")).await?;
    let store = redis(&unique("live")).await?;
    let (task, _) = projector(Arc::clone(&log), Arc::clone(&store));
    // Let the consumer join its group before the clock starts.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let replays = ReplayManager::new(Arc::clone(&log), Arc::clone(&catalog), Breaks::default());
    let started = Instant::now();
    replay_all(&replays, &catalog).await?;
    until(async || all_stored(store.as_ref(), games).await).await?;
    let live = started.elapsed();
    task.abort();
    println!(
        "live, producer and projector together: {records} records in {live:.2?}: {:.0} records/s end to end",
        records as f64 / live.as_secs_f64()
    );
    store.clear().await?;

    // 4: lateness at speed 60.
    let seconds: u64 = std::env::var("LATENESS_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(30);
    let log = kafka(&unique("topic")).await?;
    let replays = ReplayManager::new(log, Arc::clone(&catalog), Breaks::default());
    replays.start("7471", Speed::Factor(60.0)).await?;
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    let status = replays.stop(7471)?;
    match status.lateness {
        Some(l) => println!(
            "replay clock at speed 60, {seconds} s ({} events): lateness p50 {} us, p99 {} us, max {} us",
            l.samples, l.p50_us, l.p99_us, l.max_us
        ),
        None => println!("no lateness samples"),
    }
    Ok(())
}
