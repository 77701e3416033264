//! What the binary's integration tests share: the shipped catalog, and the producer and a
//! projector running in the test's own process on the in-process log, writing to a given store.

#![allow(dead_code, clippy::unwrap_used)]

pub mod clients;
pub mod services;

use std::path::PathBuf;
use std::sync::Arc;

use livescore_catalog::Catalog;
use livescore_domain::Breaks;
use livescore_eventlog::memory::MemoryLog;
use livescore_producer::ReplayManager;
use livescore_projector::{Projector, ProjectorConfig};
use livescore_store::MatchStore;

/// An API replica served in the test's process by the replica's own server (sharded, with its
/// fan-out engines), until the returned guard is dropped.
pub struct Served {
    pub base: String,
    stop: tokio::sync::watch::Sender<bool>,
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

/// Serves `state` (made with the receiver of `stop`) on a port of its own, with `shards` shards.
pub fn serve_api(
    state: livescore_api::ApiState,
    stop: tokio::sync::watch::Sender<bool>,
    shards: usize,
) -> Served {
    let config = livescore_server::ServerConfig {
        shards,
        ..livescore_server::ServerConfig::default()
    };
    let server = livescore_server::Server::bind(&config).unwrap();
    let base = format!("http://{}", server.local_addr());
    let make_app: livescore_server::MakeApp =
        Arc::new(move |shard| livescore_api::router(state.on_shard(shard)));
    tokio::spawn(server.serve(make_app, stop.subscribe()));
    Served { base, stop }
}

pub fn catalog() -> Arc<Catalog> {
    Arc::new(Catalog::open(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("data")).unwrap())
}

/// A producer whose replays a projector (running until the test ends) folds into `store`.
pub fn replays_into(store: &Arc<dyn MatchStore>) -> ReplayManager {
    let log = MemoryLog::new(6);
    let projector = Projector::new(
        Arc::new(log.clone()),
        Arc::clone(store),
        ProjectorConfig::default(),
    );
    tokio::spawn(projector.run(std::future::pending()));
    ReplayManager::new(Arc::new(log), catalog(), Breaks::default())
}

/// Logs of the code under test, shown for a failing test, when `RUST_LOG` asks for them
/// (`RUST_LOG=livescore_projector=debug cargo test ...`). Once per test binary.
pub fn logs() {
    if std::env::var_os("RUST_LOG").is_some() {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_test_writer()
            .try_init();
    }
}

/// A name no other test run uses: for topics, key prefixes and consumer groups.
pub fn unique(name: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{name}-{nanos}")
}

/// The test Kafka broker (KAFKA_BROKERS, which `scripts/test` provides: tansu).
pub fn kafka_brokers() -> String {
    std::env::var("KAFKA_BROKERS")
        .expect("KAFKA_BROKERS must name the test broker: scripts/test starts tansu")
}

/// The test Redis (REDIS_URL, which `scripts/test` provides).
pub fn redis_url() -> String {
    std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

/// A Redis store under `prefix`.
pub async fn redis_store(prefix: &str) -> Arc<dyn MatchStore> {
    use livescore_store::redis::{RedisConfig, RedisStore};
    let config = RedisConfig {
        url: redis_url(),
        prefix: prefix.to_owned(),
    };
    Arc::new(
        RedisStore::connect(config)
            .await
            .expect("Redis must be running for these tests: scripts/test starts it"),
    )
}

/// Polls `check` until it holds, for `within` at most (a deadline, not a sleep: the condition is
/// what is awaited); `what` names it in the failure.
pub async fn until<F, Fut>(what: &str, within: std::time::Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + within;
    while !check().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{what}: not within {within:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
}

/// The value of the first sample of `name` (with any labels, or the labels given in `name`) in
/// a Prometheus text exposition.
pub fn metric(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .find(|line| {
            line.strip_prefix(name)
                .is_some_and(|rest| rest.starts_with(' ') || rest.starts_with('{'))
        })
        .and_then(|line| line.rsplit(' ').next())
        .and_then(|value| value.parse().ok())
}
