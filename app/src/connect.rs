//! The engines behind the seams: connects the event log and the match store a role was given
//! (Kafka and Redis), or the in-process ones where that is allowed (`livescore up` alone).

use std::sync::Arc;

use livescore_eventlog::EventLog;
use livescore_eventlog::kafka::{KafkaConfig, KafkaLog};
use livescore_eventlog::memory::MemoryLog;
use livescore_store::MatchStore;
use livescore_store::memory::MemoryStore;
use livescore_store::redis::{RedisConfig, RedisServer, RedisStore, SentinelConfig};

use crate::StartError;
use crate::settings::{LogSettings, ReadFrom, StoreSettings};

/// Whether a role may fall back to the in-process engines (only `up`, where every role shares
/// one process) or needs the real ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engines {
    InProcessIfUnset,
    Required,
}

pub async fn log(
    settings: &LogSettings,
    engines: Engines,
) -> Result<Arc<dyn EventLog>, StartError> {
    match &settings.kafka_brokers {
        Some(brokers) => {
            tracing::info!(%brokers, topic = %settings.kafka_topic, "event log: Kafka, connecting");
            let log = KafkaLog::connect(KafkaConfig {
                brokers: brokers.clone(),
                topic: settings.kafka_topic.clone(),
                partitions: settings.kafka_partitions,
                replication_factor: settings.kafka_replication_factor,
            })
            .await
            .map_err(|source| StartError::Kafka {
                brokers: brokers.clone(),
                source,
            })?;
            tracing::info!("event log: Kafka, connected");
            Ok(Arc::new(log))
        }
        None if engines == Engines::InProcessIfUnset => {
            tracing::info!("event log: in-process (set KAFKA_BROKERS to use Kafka)");
            Ok(Arc::new(MemoryLog::new(
                settings.kafka_partitions.max(1) as usize
            )))
        }
        None => Err(StartError::NeedsKafka),
    }
}

/// What a role does with the store: the projector (and `up`) write, so they need the primary;
/// an API replica only reads, and may read from a replica.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    Writes,
    Reads,
}

/// The Redis server the settings name, for a role with `access`.
fn redis_server(
    settings: &StoreSettings,
    access: Access,
) -> Result<Option<RedisServer>, StartError> {
    let read_from = match (access, settings.redis_read_from) {
        (Access::Reads, ReadFrom::Replica) => livescore_store::redis::ReadFrom::Replica,
        _ => livescore_store::redis::ReadFrom::Primary,
    };
    if settings.redis_sentinels.is_empty() {
        if settings.redis_read_from == ReadFrom::Replica {
            return Err(StartError::ReplicaWithoutSentinels);
        }
        return Ok(settings.redis_url.clone().map(RedisServer::Url));
    }
    Ok(Some(RedisServer::Sentinel(SentinelConfig {
        sentinels: settings.redis_sentinels.clone(),
        master: settings.redis_sentinel_master.clone(),
        read_from,
    })))
}

pub async fn store(
    settings: &StoreSettings,
    engines: Engines,
    access: Access,
) -> Result<Arc<dyn MatchStore>, StartError> {
    match redis_server(settings, access)? {
        Some(server) => {
            let described = server.to_string();
            let store = RedisStore::connect(RedisConfig {
                server,
                prefix: settings.redis_prefix.clone(),
            })
            .await
            .map_err(|source| StartError::Redis {
                url: described.clone(),
                source,
            })?;
            tracing::info!(server = %described, prefix = %settings.redis_prefix, "match store: Redis");
            Ok(Arc::new(store))
        }
        None if engines == Engines::InProcessIfUnset => {
            tracing::info!("match store: in-process (set REDIS_URL to use Redis)");
            Ok(Arc::new(MemoryStore::new()))
        }
        None => Err(StartError::NeedsRedis),
    }
}
