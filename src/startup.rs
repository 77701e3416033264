//! Builds the roles from their configuration: connects the log and the store (real or
//! in-process), and runs the producer, the projector and the API, alone or all together.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use livescore_catalog::Catalog;
use livescore_domain::Breaks;
use livescore_eventlog::EventLog;
use livescore_eventlog::kafka::{KafkaConfig, KafkaLog};
use livescore_eventlog::memory::MemoryLog;
use livescore_producer::{ControlState, ReplayManager};
use livescore_projector::{Projector, ProjectorConfig};
use livescore_store::MatchStore;
use livescore_store::memory::MemoryStore;
use livescore_store::redis::{RedisConfig, RedisStore};
use tokio::sync::watch;

use crate::config::{LogArgs, ProducerArgs, ProjectorArgs, StoreArgs};

/// Whether a role may fall back to the in-process engines (only `up`, where every role shares
/// one process) or needs the real ones.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Engines {
    InProcessIfUnset,
    Required,
}

pub async fn connect_log(args: &LogArgs, engines: Engines) -> anyhow::Result<Arc<dyn EventLog>> {
    match &args.kafka_brokers {
        Some(brokers) => {
            tracing::info!(%brokers, topic = %args.kafka_topic, "event log: Kafka, connecting");
            let log = KafkaLog::connect(KafkaConfig {
                brokers: brokers.clone(),
                topic: args.kafka_topic.clone(),
                partitions: args.kafka_partitions,
            })
            .await
            .with_context(|| format!("cannot use Kafka at {brokers}"))?;
            tracing::info!("event log: Kafka, connected");
            Ok(Arc::new(log))
        }
        None if engines == Engines::InProcessIfUnset => {
            tracing::info!("event log: in-process (set KAFKA_BROKERS to use Kafka)");
            Ok(Arc::new(MemoryLog::new(
                args.kafka_partitions.max(1) as usize
            )))
        }
        None => bail!("this role needs Kafka: set KAFKA_BROKERS (or run `livescore up`)"),
    }
}

pub async fn connect_store(
    args: &StoreArgs,
    engines: Engines,
) -> anyhow::Result<Arc<dyn MatchStore>> {
    match &args.redis_url {
        Some(url) => {
            let store = RedisStore::connect(RedisConfig {
                url: url.clone(),
                prefix: args.redis_prefix.clone(),
            })
            .await
            .with_context(|| format!("cannot use Redis at {url}"))?;
            tracing::info!(%url, prefix = %args.redis_prefix, "match store: Redis");
            Ok(Arc::new(store))
        }
        None if engines == Engines::InProcessIfUnset => {
            tracing::info!("match store: in-process (set REDIS_URL to use Redis)");
            Ok(Arc::new(MemoryStore::new()))
        }
        None => bail!("this role needs Redis: set REDIS_URL (or run `livescore up`)"),
    }
}

/// The catalog of a data directory, with an error that says how to point elsewhere.
pub fn open_catalog(data_dir: &std::path::Path) -> anyhow::Result<Catalog> {
    Catalog::open(data_dir).with_context(|| {
        format!(
            "cannot open the data directory {} (set --data-dir or DATA_DIR)",
            data_dir.display()
        )
    })
}

/// The producer's control state: the catalog, the replay manager and the admin token.
pub fn control(log: Arc<dyn EventLog>, args: &ProducerArgs) -> anyhow::Result<ControlState> {
    let catalog = open_catalog(&args.data_dir)?;
    for notice in catalog.notices() {
        tracing::warn!("{notice}");
    }
    let breaks = Breaks {
        half_time: Duration::from_secs(args.half_time_seconds),
        ..Breaks::default()
    };
    let admin_token = match &args.admin_token {
        Some(token) if !token.trim().is_empty() => token.clone(),
        _ => generate_token(),
    };
    let replays = ReplayManager::new(log, Arc::new(catalog), breaks)
        .with_delivery_timeout(Duration::from_millis(args.delivery_timeout_ms));
    Ok(ControlState {
        replays: Arc::new(replays),
        admin_token: Arc::from(admin_token),
    })
}

/// Resumes the replays a previous producer left in the middle of a run (see
/// `ReplayManager::resume_from_log`): a producer killed mid-match comes back and the match goes
/// on. With the in-process log there is nothing to resume.
pub async fn resume_replays(control: &ControlState) -> anyhow::Result<()> {
    let resumed = control
        .replays
        .resume_from_log()
        .await
        .context("cannot look for replays to resume in the event log")?;
    if !resumed.is_empty() {
        let games: Vec<u64> = resumed.iter().map(|replay| replay.match_id).collect();
        tracing::info!(?games, "resumed the replays left open in the log");
    }
    Ok(())
}

/// 128 random bits as hex, from the kernel's generator.
fn generate_token() -> String {
    use std::io::Read;
    let mut bytes = [0u8; 16];
    let random = std::fs::File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut bytes));
    if random.is_err() {
        // No /dev/urandom: std's per-process random hash keys are the next best thing.
        use std::hash::{BuildHasher, RandomState};
        for (i, chunk) in bytes.chunks_mut(8).enumerate() {
            chunk.copy_from_slice(&RandomState::new().hash_one(i).to_le_bytes());
        }
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

pub fn projector(
    log: Arc<dyn EventLog>,
    store: Arc<dyn MatchStore>,
    args: &ProjectorArgs,
    rebuild: bool,
) -> Projector {
    Projector::new(
        log,
        store,
        ProjectorConfig {
            group: args.projector_group.clone(),
            rebuild,
            ..ProjectorConfig::default()
        },
    )
}

/// A channel that turns true on Ctrl-C or SIGTERM.
pub fn shutdown_signal() -> watch::Receiver<bool> {
    let (sender, receiver) = watch::channel(false);
    tokio::spawn(async move {
        let ctrl_c = tokio::signal::ctrl_c();
        #[cfg(unix)]
        let terminate = async {
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(mut signal) => {
                    signal.recv().await;
                }
                Err(_) => std::future::pending().await,
            }
        };
        #[cfg(not(unix))]
        let terminate = std::future::pending::<()>();
        tokio::select! {
            _ = ctrl_c => {},
            () = terminate => {},
        }
        tracing::info!("shutting down");
        let _ = sender.send(true);
    });
    receiver
}

/// Resolves when `shutdown` turns true.
pub async fn stopped(mut shutdown: watch::Receiver<bool>) {
    let _ = shutdown.wait_for(|stop| *stop).await;
}
