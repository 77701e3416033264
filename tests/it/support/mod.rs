//! What the binary's integration tests share: the shipped catalog, the roles' settings for a
//! test, an API replica built as `main` builds it over a given store, and the producer and a
//! projector running in the test's own process on the in-process log, writing to that store.

#![allow(dead_code, clippy::unwrap_used)]

pub mod clients;
pub mod services;

use std::path::PathBuf;
use std::sync::Arc;

use livescore_app::settings::HttpSettings;
use livescore_app::{Application, CancellationToken, Given, Role, Settings};
use livescore_catalog::Catalog;
use livescore_domain::Breaks;
use livescore_eventlog::memory::MemoryLog;
use livescore_producer::ReplayManager;
use livescore_projector::{Projector, ProjectorConfig};
use livescore_store::MatchStore;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Settings for a role on a port of its own (two shards), reading the repository's data and
/// web UI, with the admin token `secret`.
pub fn settings() -> Settings {
    let mut settings = Settings {
        http: HttpSettings {
            listen: "127.0.0.1:0".parse().unwrap(),
            web_dir: repo().join("web"),
            http_shards: 2,
            ..HttpSettings::default()
        },
        ..Settings::default()
    };
    settings.producer.data_dir = repo().join("data");
    settings.producer.admin_token = Some("secret".into());
    settings.projector.projector_listen = "127.0.0.1:0".parse().unwrap();
    settings
}

/// An API replica served in the test's process until the guard is dropped.
pub struct Served {
    pub base: String,
    stop: CancellationToken,
}

impl Drop for Served {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// A role running in the test's process: its base URL, the token that stops it, and its task.
pub type Running = (
    String,
    CancellationToken,
    tokio::task::JoinHandle<Result<(), livescore_app::RunError>>,
);

/// Builds `role` as `main` does (`Application`), on the engines `given`, and runs it until its
/// token is cancelled.
pub async fn start(role: Role, settings: Settings, given: Given) -> Running {
    let stop = CancellationToken::new();
    let app = Application::build_on(role, settings, given, stop.clone())
        .await
        .unwrap();
    let base = format!("http://{}", app.local_addr());
    (base, stop, tokio::spawn(app.run_until_stopped()))
}

/// An API replica over `store`, built as `main` builds one from the test's [`settings`] as
/// `http` changes them.
pub async fn serve_api(store: Arc<dyn MatchStore>, http: impl FnOnce(&mut HttpSettings)) -> Served {
    let mut settings = settings();
    http(&mut settings.http);
    let (base, stop, _running) = start(Role::Api, settings, Given::store(store)).await;
    Served { base, stop }
}

pub fn catalog() -> Arc<Catalog> {
    Arc::new(Catalog::open(repo().join("data")).unwrap())
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

/// An HTTP client for a test that keeps it across idle spells (an outage, say): it drops a
/// pooled connection idle for 5 s, before a replica closes it (10 s: HTTP_HEADER_TIMEOUT_MS), as
/// nginx does in front of the replicas. A client that kept it longer sent its next request into
/// a connection being closed, and got a reset (seen after the outage test's 10 s wait).
pub fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .pool_idle_timeout(std::time::Duration::from_secs(5))
        .build()
        .unwrap()
}

/// The seed of a test's random choices: `LIVESCORE_TEST_SEED` if set (to replay a failure),
/// else drawn from the clock. Printed either way, so that a failing run says how to repeat it.
pub fn seed(test: &str) -> u64 {
    let seed: u64 = match std::env::var("LIVESCORE_TEST_SEED") {
        Ok(text) => text
            .parse()
            .unwrap_or_else(|_| panic!("LIVESCORE_TEST_SEED must be a number, not {text:?}")),
        Err(_) => std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos()
            .into(),
    };
    // xorshift (the tests' generator) never leaves zero.
    let seed = seed.max(1);
    eprintln!("{test}: seed {seed} (LIVESCORE_TEST_SEED={seed} repeats it)");
    seed
}

/// A name no other test run uses: for topics, key prefixes and consumer groups.
pub fn unique(name: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{name}-{nanos}")
}

/// A name for what a test makes on the shared servers (a Redis key prefix, a topic, a group),
/// unique to the run ([`unique`]); every Redis key under it as a prefix is removed when the test
/// ends, passed or failed. Declare it before what uses it, so that it is dropped after them.
///
/// Topics are not deleted: deleting them from the shared tansu 0.6 while other tests ran was
/// followed by every Kafka test of the run slowing from about 5 s to about 45 s, and by a
/// projector never handed a partition its group gave up (tests/it/projectors.rs timed out), on a
/// broker that had been through several runs. scripts/test's tansu keeps topics in memory, and
/// they go with it.
pub struct Owned {
    name: String,
}

/// A key prefix (and topic, group, and so on) of the test's own, its Redis keys deleted at the end.
pub fn owned(name: &str) -> Owned {
    Owned { name: unique(name) }
}

impl std::ops::Deref for Owned {
    type Target = str;
    fn deref(&self) -> &str {
        &self.name
    }
}

impl std::fmt::Display for Owned {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.name)
    }
}

impl Drop for Owned {
    fn drop(&mut self) {
        // On a thread of its own: the test's runtime is being torn down. Best effort: a test
        // whose server is gone has nothing left there to remove.
        let name = self.name.clone();
        let _ = std::thread::spawn(move || delete_redis_keys(&name)).join();
    }
}

/// Deletes every key of the test Redis under `prefix` (SCAN, never KEYS or FLUSHDB).
fn delete_redis_keys(prefix: &str) {
    let Ok(mut conn) = redis::Client::open(redis_url())
        .and_then(|client| client.get_connection_with_timeout(std::time::Duration::from_secs(2)))
    else {
        return;
    };
    let keys: Vec<String> = match redis::cmd("SCAN")
        .cursor_arg(0)
        .arg("MATCH")
        .arg(format!("{prefix}*"))
        .arg("COUNT")
        .arg(1000)
        .clone()
        .iter(&mut conn)
    {
        Ok(keys) => keys.filter_map(Result::ok).collect(),
        Err(_) => return,
    };
    for chunk in keys.chunks(500) {
        let _: redis::RedisResult<i64> = redis::cmd("UNLINK").arg(chunk).query(&mut conn);
    }
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
    redis_store_at(&redis_url(), prefix).await
}

/// A store on the Redis at `url` under `prefix`.
pub async fn redis_store_at(url: &str, prefix: &str) -> Arc<dyn MatchStore> {
    use livescore_store::redis::{RedisConfig, RedisServer, RedisStore};
    let config = RedisConfig {
        server: RedisServer::Url(url.to_owned()),
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

/// Awaits `future` for `within` at most; `what` names what was awaited in the failure.
pub async fn within<T>(
    what: &str,
    within: std::time::Duration,
    future: impl Future<Output = T>,
) -> T {
    tokio::time::timeout(within, future)
        .await
        .unwrap_or_else(|_| panic!("{what}: not within {within:?}"))
}

/// The `/metrics` text of the role at `base`, or `None` if it does not answer (yet).
pub async fn try_scrape(base: &str) -> Option<String> {
    let response = http_client()
        .get(format!("{base}/metrics"))
        .send()
        .await
        .ok()?;
    response.text().await.ok()
}

/// The `/metrics` text of the role at `base`, which must answer.
pub async fn scrape(base: &str) -> String {
    try_scrape(base)
        .await
        .unwrap_or_else(|| panic!("{base}/metrics did not answer"))
}

/// Waits (30 s at most) until the replica at `base` has `count` topic subscriptions
/// (`livescore_topic_subscribers`): its viewers have their snapshots.
pub async fn wait_for_subscribers(base: &str, count: usize) {
    let expected = Some(count as f64);
    until(
        &format!("{count} viewers subscribed on {base}"),
        std::time::Duration::from_secs(30),
        async || {
            let text = try_scrape(base).await.unwrap_or_default();
            metric(&text, "livescore_topic_subscribers") == expected
        },
    )
    .await;
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
