//! Builds each role of livescore from its [`Settings`], as one [`Application`]: what `main`
//! runs, and what tests, examples and the load test start in their own process.
//!
//! - [`Role::Up`]: every role in one process on one port (the in-process log and store unless
//!   Kafka and Redis are configured);
//! - [`Role::Producer`]: replays into the event log, with the admin routes;
//! - [`Role::Projector`]: the event log into the match store, with `/metrics`, `/healthz` and
//!   `/readyz` on a listener of its own (`PROJECTOR_LISTEN`);
//! - [`Role::Api`]: one API replica over the match store.
//!
//! `Application::build` connects, binds (so the address is known: port 0 works) and returns;
//! `run_until_stopped` serves until the [`CancellationToken`] it was given is cancelled. Every
//! role exports its metrics in the process's `Telemetry` (see `livescore_server::telemetry`).
//! `Application::build_on` takes engines [`Given`] instead of connecting them: a test that
//! fills an in-process store and watches it serves an API replica over that very store.

pub mod connect;
pub mod settings;

use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use livescore_catalog::{Catalog, CatalogError};
use livescore_domain::Breaks;
use livescore_eventlog::EventLog;
use livescore_producer::{ControlState, ReplayError, ReplayManager};
use livescore_projector::{Projector, ProjectorConfig, ProjectorError, ProjectorStats};
use livescore_server::{MakeApp, Server, ServerError, Telemetry};
use livescore_store::{MatchStore, StoreError};
use tokio::sync::watch;
pub use tokio_util::sync::CancellationToken;
use tower_http::trace::TraceLayer;

use crate::connect::Access;
pub use crate::connect::Engines;
pub use crate::settings::Settings;

/// Engines handed to the builder instead of connected from the settings: an event log or a
/// match store the caller shares with the role (in-process ones, in tests). What is not given
/// is connected as the settings say.
#[derive(Clone, Default)]
pub struct Given {
    pub log: Option<Arc<dyn EventLog>>,
    pub store: Option<Arc<dyn MatchStore>>,
}

impl Given {
    /// Only this store.
    pub fn store(store: Arc<dyn MatchStore>) -> Given {
        Given {
            log: None,
            store: Some(store),
        }
    }
}

/// What a role is built from.
struct Parts {
    settings: Settings,
    given: Given,
    /// Whether the in-process engines may stand in for Kafka and Redis.
    engines: Engines,
    shutdown: CancellationToken,
}

impl Parts {
    /// The event log given, else the one the settings name.
    async fn log(&mut self) -> Result<Arc<dyn EventLog>, StartError> {
        match self.given.log.take() {
            Some(log) => Ok(log),
            None => connect::log(&self.settings.log, self.engines).await,
        }
    }

    /// The match store given, else the one the settings name, for a role with `access`.
    async fn store(&mut self, access: Access) -> Result<Arc<dyn MatchStore>, StartError> {
        match self.given.store.take() {
            Some(store) => Ok(store),
            None => connect::store(&self.settings.store, self.engines, access).await,
        }
    }
}

/// Which role to build.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Up,
    Producer,
    Projector,
    Api,
}

/// Why a role could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot use Kafka at {brokers}: {source}")]
    Kafka {
        brokers: String,
        source: livescore_eventlog::LogError,
    },
    #[error("this role needs Kafka: set KAFKA_BROKERS (or run `livescore up`)")]
    NeedsKafka,
    #[error("cannot use Redis at {url}: {source}")]
    Redis { url: String, source: StoreError },
    #[error("this role needs Redis: set REDIS_URL or REDIS_SENTINELS (or run `livescore up`)")]
    NeedsRedis,
    #[error(
        "REDIS_READ_FROM=replica needs REDIS_SENTINELS: the replicas are found through Redis Sentinel"
    )]
    ReplicaWithoutSentinels,
    #[error("cannot open the data directory {} (set --data-dir or DATA_DIR): {source}", dir.display())]
    Catalog {
        dir: PathBuf,
        source: Box<CatalogError>,
    },
    #[error("cannot look for replays to resume in the event log: {0}")]
    Resume(ReplayError),
    #[error("cannot subscribe to the match store: {0}")]
    Subscribe(StoreError),
    #[error(transparent)]
    Server(#[from] ServerError),
}

/// Why a running role stopped before it was asked to.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("the HTTP server stopped: {0}")]
    Server(#[from] ServerError),
    /// The projector gave up (it retries what the log and the store can recover from).
    #[error("the projector stopped: {0}")]
    Projector(#[from] ProjectorError),
    /// A bug: what the projector's task said when it panicked.
    #[error("the projector panicked: {0}")]
    ProjectorPanicked(String),
}

type Running = Pin<Box<dyn Future<Output = Result<(), RunError>> + Send>>;

/// A role, built: listening, connected, not yet serving.
pub struct Application {
    local_addr: SocketAddr,
    admin_token: Option<Arc<str>>,
    running: Running,
}

impl Application {
    /// Connects what `role` needs and binds its listener.
    pub async fn build(
        role: Role,
        settings: Settings,
        shutdown: CancellationToken,
    ) -> Result<Application, StartError> {
        Application::build_on(role, settings, Given::default(), shutdown).await
    }

    /// As [`Application::build`], on the engines `given` where they are given.
    pub async fn build_on(
        role: Role,
        settings: Settings,
        given: Given,
        shutdown: CancellationToken,
    ) -> Result<Application, StartError> {
        // Only `up` runs every role in one process, where in-process engines can stand in.
        let engines = match role {
            Role::Up => Engines::InProcessIfUnset,
            _ => Engines::Required,
        };
        let parts = Parts {
            settings,
            given,
            engines,
            shutdown,
        };
        match role {
            Role::Up => build_up(parts).await,
            Role::Producer => build_producer(parts).await,
            Role::Projector => build_projector(parts).await,
            Role::Api => build_api(parts).await,
        }
    }

    /// The address the role's HTTP server listens on (port 0 resolved).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The admin routes' bearer token (producer and `up`).
    pub fn admin_token(&self) -> Option<&str> {
        self.admin_token.as_deref()
    }

    /// Serves until the shutdown token is cancelled, then drains; or until something fails.
    pub async fn run_until_stopped(self) -> Result<(), RunError> {
        self.running.await
    }
}

/// The shutdown token as the server and the API take it: a channel that turns true.
fn watch_of(token: &CancellationToken) -> watch::Receiver<bool> {
    let (sender, receiver) = watch::channel(token.is_cancelled());
    let token = token.clone();
    tokio::spawn(async move {
        token.cancelled().await;
        let _ = sender.send(true);
    });
    receiver
}

/// Request spans (method, path, status, latency) on every route, at debug level.
fn traced(router: Router) -> Router {
    router.layer(TraceLayer::new_for_http())
}

/// The API replica over `store`, subscribed to it, as the settings configure it, its metrics in
/// `telemetry`.
async fn replica(
    store: Arc<dyn MatchStore>,
    settings: &Settings,
    telemetry: &Arc<Telemetry>,
) -> Result<Arc<livescore_api::Replica>, StartError> {
    livescore_api::Replica::start(store, settings.http.api(), Arc::clone(telemetry))
        .await
        .map_err(StartError::Subscribe)
}

async fn build_up(mut parts: Parts) -> Result<Application, StartError> {
    let (log, store) = (parts.log().await?, parts.store(Access::Writes).await?);
    let Parts {
        settings, shutdown, ..
    } = parts;
    // One registry for the process: the API's /metrics shows every role's metrics.
    let telemetry = Telemetry::new();
    let api = replica(Arc::clone(&store), &settings, &telemetry).await?;
    let control = control(Arc::clone(&log), &settings.producer, &telemetry)?;
    resume_replays(&control).await?;
    let projector = projector(log, store, &settings, &telemetry);
    let server = Server::bind(&settings.http.server())?;
    let routes = control.clone();
    // One OpenAPI document for everything `up` serves: the API's routes and the admin routes.
    let make_app: MakeApp =
        Arc::new(move |shard| {
            let admin = <livescore_producer::routes::ProducerDoc as utoipa::OpenApi>::openapi();
            traced(livescore_producer::router(routes.clone()).merge(
                livescore_api::router_documenting(api.on_shard(shard), Some(admin)),
            ))
        });
    let local_addr = server.local_addr();
    let running: Running = Box::pin(async move {
        let serving = server.serve(make_app, watch_of(&shutdown));
        let projecting = tokio::spawn(projector.run(shutdown.clone().cancelled_owned()));
        tokio::select! {
            served = serving => Ok(served?),
            projected = projecting => match projected {
                Ok(Ok(())) => Ok(()),
                Ok(Err(err)) => Err(RunError::Projector(err)),
                Err(panic) => Err(RunError::ProjectorPanicked(panic.to_string())),
            },
        }
    });
    Ok(Application {
        local_addr,
        admin_token: Some(Arc::clone(&control.admin_token)),
        running,
    })
}

async fn build_producer(mut parts: Parts) -> Result<Application, StartError> {
    let log = parts.log().await?;
    let Parts {
        settings, shutdown, ..
    } = parts;
    let telemetry = Telemetry::new();
    let control = control(log, &settings.producer, &telemetry)?;
    resume_replays(&control).await?;
    let server = Server::bind(&settings.http.server())?;
    let admin_token = Arc::clone(&control.admin_token);
    let metrics = Arc::clone(&telemetry);
    // `up` has the API's /healthz and /metrics; the producer alone answers its own, for load
    // balancers, container health checks and Prometheus.
    let make_app: MakeApp = Arc::new(move |_shard| {
        traced(
            livescore_producer::router(control.clone())
                .route("/healthz", get(|| async { "ok" }))
                .merge(metrics.router())
                .merge(livescore_api::openapi::docs_of(
                    <livescore_producer::routes::ProducerDoc as utoipa::OpenApi>::openapi(),
                )),
        )
    });
    Ok(Application {
        local_addr: server.local_addr(),
        admin_token: Some(admin_token),
        running: Box::pin(async move { Ok(server.serve(make_app, watch_of(&shutdown)).await?) }),
    })
}

async fn build_projector(mut parts: Parts) -> Result<Application, StartError> {
    let (log, store) = (parts.log().await?, parts.store(Access::Writes).await?);
    let Parts {
        settings, shutdown, ..
    } = parts;
    let telemetry = Telemetry::new();
    let projector = projector(log, store, &settings, &telemetry);
    let stats = projector.stats();
    // One shard: the listener only answers health checks and scrapes.
    let server = Server::bind(&livescore_server::ServerConfig {
        listen: settings.projector.projector_listen,
        shards: 1,
        ..livescore_server::ServerConfig::default()
    })?;
    let metrics = Arc::clone(&telemetry);
    let make_app: MakeApp = Arc::new(move |_shard| traced(projector_routes(&metrics, &stats)));
    // scripts/cluster waits for this line: the log and the store both answered.
    tracing::info!(group = %settings.projector.projector_group, "projector up");
    let local_addr = server.local_addr();
    // The server stops with the shutdown, or when the projector fails.
    let running: Running = Box::pin(async move {
        let stop_serving = shutdown.child_token();
        let serving = tokio::spawn(server.serve(make_app, watch_of(&stop_serving)));
        let projected = projector.run(shutdown.cancelled_owned()).await;
        stop_serving.cancel();
        let served = serving.await;
        projected?;
        match served {
            Ok(served) => Ok(served?),
            Err(_) => Ok(()),
        }
    });
    Ok(Application {
        local_addr,
        admin_token: None,
        running,
    })
}

/// The projector's listener: `/metrics`, `/healthz` (the process answers) and `/readyz` (its
/// last step, a batch or the store's epoch check, succeeded: the log and the store answer).
fn projector_routes(telemetry: &Arc<Telemetry>, stats: &Arc<ProjectorStats>) -> Router {
    let stats = Arc::clone(stats);
    telemetry
        .router()
        .route("/healthz", get(|| async { "ok" }))
        .route(
            "/readyz",
            get(move || {
                let ready = stats.is_ready();
                async move {
                    if ready {
                        (StatusCode::OK, "ready").into_response()
                    } else {
                        let body = serde_json::json!({
                            "error": "not ready: the event log or the match store does not answer yet"
                        });
                        (StatusCode::SERVICE_UNAVAILABLE, axum::Json(body)).into_response()
                    }
                }
            }),
        )
}

async fn build_api(mut parts: Parts) -> Result<Application, StartError> {
    let store = parts.store(Access::Reads).await?;
    let Parts {
        settings, shutdown, ..
    } = parts;
    let api = replica(store, &settings, &Telemetry::new()).await?;
    let server = Server::bind(&settings.http.server())?;
    let make_app: MakeApp =
        Arc::new(move |shard| traced(livescore_api::router(api.on_shard(shard))));
    let local_addr = server.local_addr();
    tracing::info!(listen = %local_addr, "API replica up");
    Ok(Application {
        local_addr,
        admin_token: None,
        running: Box::pin(async move { Ok(server.serve(make_app, watch_of(&shutdown)).await?) }),
    })
}

/// The catalog of a data directory, with an error that says how to point elsewhere.
pub fn open_catalog(data_dir: &Path) -> Result<Catalog, StartError> {
    Catalog::open(data_dir).map_err(|source| StartError::Catalog {
        dir: data_dir.to_owned(),
        source: Box::new(source),
    })
}

/// The producer's control state: the catalog, the replay manager (its metrics registered) and
/// the admin token.
fn control(
    log: Arc<dyn EventLog>,
    settings: &settings::ProducerSettings,
    telemetry: &Arc<Telemetry>,
) -> Result<ControlState, StartError> {
    let catalog = open_catalog(&settings.data_dir)?;
    for notice in catalog.notices() {
        tracing::warn!("{notice}");
    }
    let breaks = Breaks {
        half_time: Duration::from_secs(settings.half_time_seconds),
        ..Breaks::default()
    };
    // The command line refuses a blank token; one built in code is checked here too.
    let admin_token = match &settings.admin_token {
        Some(token) if !token.trim().is_empty() => token.clone(),
        _ => generate_token(),
    };
    let replays = Arc::new(
        ReplayManager::new(log, Arc::new(catalog), breaks)
            .with_delivery_timeout(Duration::from_millis(settings.delivery_timeout_ms)),
    );
    telemetry.register(|registry| replays.metrics().register(registry));
    let scraped = Arc::downgrade(&replays);
    telemetry.on_scrape(move || {
        if let Some(replays) = scraped.upgrade() {
            replays.refresh_metrics();
        }
    });
    Ok(ControlState {
        replays,
        admin_token: Arc::from(admin_token),
    })
}

/// Resumes the replays a previous producer left in the middle of a run (see
/// `ReplayManager::resume_from_log`): a producer killed mid-match comes back and the match goes
/// on. With the in-process log there is nothing to resume.
async fn resume_replays(control: &ControlState) -> Result<(), StartError> {
    let resumed = control
        .replays
        .resume_from_log()
        .await
        .map_err(StartError::Resume)?;
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

/// The projector, its metrics registered.
fn projector(
    log: Arc<dyn EventLog>,
    store: Arc<dyn MatchStore>,
    settings: &Settings,
    telemetry: &Telemetry,
) -> Projector {
    let projector = Projector::new(
        log,
        store,
        ProjectorConfig {
            group: settings.projector.projector_group.clone(),
            rebuild: settings.projector.rebuild,
            stall_grace: Duration::from_millis(settings.projector.stall_grace_ms),
            ..ProjectorConfig::default()
        },
    );
    let stats = projector.stats();
    telemetry.register(|registry| stats.register(registry));
    projector
}

/// A token cancelled on Ctrl-C or SIGTERM.
pub fn shutdown_on_signal() -> CancellationToken {
    let token = CancellationToken::new();
    let cancel = token.clone();
    // The listeners are registered here, before the task first runs: registered in the task, a
    // SIGTERM that came while the role was still starting met the default action and killed the
    // process without a word (seen once in a full test run: tests/it/cli.rs's signal test).
    #[cfg(unix)]
    let signals = {
        use tokio::signal::unix::{SignalKind, signal};
        [SignalKind::terminate(), SignalKind::interrupt()].map(|kind| signal(kind).ok())
    };
    tokio::spawn(async move {
        #[cfg(unix)]
        {
            let [terminate, interrupt] = signals.map(|listener| async move {
                match listener {
                    Some(mut listener) => {
                        listener.recv().await;
                    }
                    None => std::future::pending().await,
                }
            });
            tokio::select! {
                () = terminate => {},
                () = interrupt => {},
            }
        }
        #[cfg(not(unix))]
        let _ = tokio::signal::ctrl_c().await;
        tracing::info!("shutting down");
        cancel.cancel();
    });
    token
}
