//! The API: what browsers read. Stateless: everything comes from the match store, so any number
//! of replicas can serve the same clients.
//!
//! - `GET /games`: every game the store knows, most recently changed first, with its headline
//!   and who is watching it (`presence.rs`)
//! - `GET /games/{game_id}`: one game's full state, replay status and viewers
//! - `GET /sse/games`, `GET /sse/games/{game_id}`: the same, live (see `sse.rs`)
//! - `GET /ws`: WebSocket, the same topics, several per connection (see `ws.rs`)
//! - `GET /healthz`: the process answers; `GET /readyz`: and the store answers (503 if not)
//! - `GET /metrics`: Prometheus metrics
//! - `GET /openapi.json`, `GET /docs/`: the OpenAPI document and its interactive page
//! - everything else: the web UI's static files (`web/`)
//!
//! Live viewers share the replica's one store subscription (`hub.rs`); each shard of the
//! server has a fan-out engine (`fanout/`) that owns their sockets once the response head is
//! written and follows their topics from a cursor, gaplessly.

pub mod config;
pub mod fanout;
pub mod framing;
pub mod hub;
pub mod message;
pub mod metrics;
pub mod openapi;
pub mod origins;
pub mod presence;
pub mod sse;
pub mod ws;

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use livescore_domain::{MatchState, Status};
use livescore_server::{Shard, Telemetry};
use livescore_store::{MatchStore, MatchSummary, ReplayInfo, StoreError};

pub use crate::config::{ApiConfig, FanoutConfig};
use crate::fanout::EngineHandle;
use crate::hub::Hub;
use crate::metrics::Metrics;
use serde::{Deserialize, Serialize};

/// What every shard of an API replica shares: the store, the replica's one subscription to it
/// (the hub), its metrics and its settings.
pub struct Replica {
    pub store: Arc<dyn MatchStore>,
    pub hub: Arc<Hub>,
    pub metrics: Arc<Metrics>,
    /// The process's metrics registry (`livescore up` registers the producer's and the
    /// projector's in it too): `/metrics` shows it.
    pub telemetry: Arc<Telemetry>,
    pub config: ApiConfig,
    /// Who is watching, on every replica.
    pub presence: Arc<presence::Presence>,
}

impl Replica {
    /// Subscribes to the store (the replica's one subscription) and registers the replica's
    /// metrics in `telemetry`.
    pub async fn start(
        store: Arc<dyn MatchStore>,
        config: ApiConfig,
        telemetry: Arc<Telemetry>,
    ) -> Result<Arc<Replica>, StoreError> {
        let metrics = Arc::new(Metrics::default());
        telemetry.register(|registry| metrics.register(registry));
        let hub = Hub::start(store.as_ref(), Arc::clone(&metrics)).await?;
        let presence = presence::Presence::new(config.presence_interval);
        tokio::spawn(Arc::clone(&presence).run(
            Arc::clone(&store),
            Arc::clone(&hub),
            Arc::clone(&metrics),
        ));
        Ok(Arc::new(Replica {
            store,
            hub,
            metrics,
            telemetry,
            config,
            presence,
        }))
    }

    /// The API as `shard` serves it, with a fan-out engine started on that shard: call it on
    /// the shard's thread (`livescore_server::MakeApp` is).
    pub fn on_shard(self: &Arc<Self>, shard: &Shard) -> ShardApi {
        let engine = fanout::start(
            Arc::clone(&self.store),
            &self.hub,
            Arc::clone(&self.presence),
            &self.metrics,
            &self.config.fanout,
            shard,
        );
        self.presence.attach(engine.clone());
        ShardApi {
            replica: Arc::clone(self),
            engine,
        }
    }
}

/// The API on one shard of the server: the replica's parts, and the shard's fan-out engine,
/// which takes the sockets of the live streams this shard answers.
#[derive(Clone)]
pub struct ShardApi {
    pub replica: Arc<Replica>,
    pub engine: EngineHandle,
}

impl std::ops::Deref for ShardApi {
    type Target = Replica;

    fn deref(&self) -> &Replica {
        &self.replica
    }
}

/// The API's routes, as one shard serves them.
pub fn router(api: ShardApi) -> Router {
    router_documenting(api, None)
}

/// The API's routes, with an OpenAPI document that also describes `also`: the routes another
/// part of the same process serves beside them (`livescore up`: the producer's).
pub fn router_documenting(api: ShardApi, also: Option<utoipa::openapi::OpenApi>) -> Router {
    let web = tower_http::services::ServeDir::new(&api.config.web_dir);
    Router::new()
        .route("/games", get(games))
        .route("/games/{game_id}", get(game))
        .route("/sse/games", get(sse::games))
        .route("/sse/games/{game_id}", get(sse::game))
        .route("/ws", get(ws::upgrade))
        .merge(openapi::docs(also))
        .fallback_service(web)
        .route("/healthz", get(openapi::healthz))
        .route("/readyz", get(ready))
        .route("/metrics", get(metrics))
        .layer(axum::middleware::from_fn_with_state(
            api.clone(),
            origins::enforce,
        ))
        .with_state(api)
}

/// An error answer: a status code and `{"error": "..."}`.
pub struct ApiError(pub StatusCode, pub String);

/// The body of every error answer.
#[derive(Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    pub error: String,
}

impl ApiError {
    pub fn not_found(raw_id: &str) -> ApiError {
        ApiError(
            StatusCode::NOT_FOUND,
            format!("no game {:?}", livescore_domain::excerpt(raw_id)),
        )
    }
}

/// A game id from a path, checked as every game id is (digits only, so never a path).
pub fn game_id(raw_id: &str) -> Result<u64, ApiError> {
    livescore_catalog::parse_game_id(raw_id).map_err(|_| ApiError::not_found(raw_id))
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.0, Json(ErrorBody { error: self.1 })).into_response()
    }
}

impl From<StoreError> for ApiError {
    fn from(err: StoreError) -> Self {
        tracing::error!("match store: {err}");
        ApiError(
            StatusCode::SERVICE_UNAVAILABLE,
            "the match store is not answering; try again shortly".into(),
        )
    }
}

/// Ready when the match store answers.
#[utoipa::path(get, path = "/readyz", tag = "health",
    responses((status = 200, description = "ready", body = String),
              (status = 503, description = "the store is not answering", body = ErrorBody)))]
async fn ready(State(state): State<ShardApi>) -> Result<&'static str, ApiError> {
    state.store.ping().await?;
    Ok("ready")
}

/// Prometheus metrics, in the text format.
#[utoipa::path(get, path = "/metrics", tag = "health",
    responses((status = 200, description = "metrics", body = String, content_type = "text/plain")))]
async fn metrics(State(state): State<ShardApi>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            livescore_server::telemetry::CONTENT_TYPE,
        )],
        state.telemetry.encode(),
    )
}

#[derive(Deserialize, utoipa::IntoParams)]
struct GamesQuery {
    /// `live` (started, not finished, and its replay going on: a replay that failed or was
    /// stopped mid-match is not live, nor one whose records stopped coming, marked `stalled`,
    /// until they come again), `finished`, `not_started`, or any match status.
    status: Option<String>,
}

/// A line of `GET /games`: the game's summary and who is watching it.
#[derive(Serialize, utoipa::ToSchema)]
pub struct GameLine {
    #[serde(flatten)]
    pub summary: MatchSummary,
    /// Viewers of the game and of the site, on every replica (a few seconds old at most).
    pub presence: presence::Watching,
}

/// Every game the store knows, most recently changed first, with who is watching each.
#[utoipa::path(get, path = "/games", tag = "games", params(GamesQuery),
    responses((status = 200, description = "the games", body = Vec<GameLine>),
              (status = 400, description = "unknown status", body = ErrorBody)))]
async fn games(
    State(state): State<ShardApi>,
    Query(query): Query<GamesQuery>,
) -> Result<Json<Vec<GameLine>>, ApiError> {
    let mut games = state.store.list().await?;
    if let Some(wanted) = query.status {
        let keep = status_filter(&wanted).ok_or_else(|| {
            ApiError(
                StatusCode::BAD_REQUEST,
                format!(
                    "unknown status {:?}: use live, finished, not_started, or a match status \
                     such as half_time",
                    livescore_domain::excerpt(&wanted)
                ),
            )
        })?;
        games.retain(|game| keep(game));
    }
    let presence = state.presence.totals();
    Ok(Json(
        games
            .into_iter()
            .map(|summary| GameLine {
                presence: presence.of_match(summary.match_id),
                summary,
            })
            .collect(),
    ))
}

/// Which games a `?status=` filter keeps.
type GameFilter = Box<dyn Fn(&MatchSummary) -> bool>;

/// The games a `?status=` filter keeps.
fn status_filter(wanted: &str) -> Option<GameFilter> {
    match wanted {
        "live" => Some(Box::new(|game| {
            let status = game.headline.status;
            status != Status::NotStarted
                && status != Status::Finished
                && !game.replay.status.is_over()
                && !game.replay.stalled
        })),
        other => {
            let status: Status = serde_json::from_value(serde_json::Value::from(other)).ok()?;
            Some(Box::new(move |game| game.headline.status == status))
        }
    }
}

/// One game as `GET /games/{game_id}` shows it.
#[derive(Serialize, utoipa::ToSchema)]
pub struct GameView {
    pub state: MatchState,
    pub replay: ReplayInfo,
    /// Viewers of the game and of the site, on every replica (a few seconds old at most).
    pub presence: presence::Watching,
    /// With `?at=`: the match minute whose end `state` shows.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub at: Option<u16>,
}

#[derive(Deserialize, utoipa::IntoParams)]
struct GameQuery {
    /// The match as it stood at the end of this match minute (0 to 200): score, statistics,
    /// timeline, shot map, line-ups. Stoppage time counts in its period's last regular minute
    /// (45+2 is in 45); a minute the match has not reached gives the state as it stands.
    at: Option<String>,
}

/// The most a minute can be: beyond extra time's 120 and any stoppage.
const LAST_MINUTE: u16 = 200;

/// `?at=` read: a whole number of minutes from 0 to [`LAST_MINUTE`].
fn minute_of(raw: &str) -> Result<u16, ApiError> {
    raw.parse::<u16>()
        .ok()
        .filter(|minute| *minute <= LAST_MINUTE)
        .ok_or_else(|| {
            ApiError(
                StatusCode::BAD_REQUEST,
                format!(
                    "at={:?} is not a match minute: give a whole number from 0 to {LAST_MINUTE}",
                    livescore_domain::excerpt(raw)
                ),
            )
        })
}

/// One game's full state, replay status and viewers; with `?at=<minute>`, its state as it
/// stood at the end of that minute.
#[utoipa::path(get, path = "/games/{game_id}", tag = "games",
    params(("game_id" = String, Path, description = "a StatsBomb match id"), GameQuery),
    responses((status = 200, description = "the game", body = GameView),
              (status = 400, description = "`at` is not a match minute", body = ErrorBody),
              (status = 404, description = "no such game", body = ErrorBody),
              (status = 409, description = "the store no longer holds the run's first entries", body = ErrorBody)))]
async fn game(
    State(state): State<ShardApi>,
    Path(raw_id): Path<String>,
    Query(query): Query<GameQuery>,
) -> Result<Json<GameView>, ApiError> {
    let id = game_id(&raw_id)?;
    let at = query.at.as_deref().map(minute_of).transpose()?;
    let stored = state
        .store
        .load(id)
        .await?
        .ok_or_else(|| ApiError::not_found(&raw_id))?;
    let match_state = match at {
        None => stored.fold.state,
        Some(minute) => state_at_minute(state.store.as_ref(), id, minute).await?,
    };
    Ok(Json(GameView {
        state: match_state,
        replay: stored.replay,
        presence: state.presence.totals().of_match(id),
        at,
    }))
}

/// The match's state at the end of `minute`, from its log: the current run's snapshot (its
/// first entry) and the updates after it, through `livescore_domain::history`.
async fn state_at_minute(
    store: &dyn MatchStore,
    id: u64,
    minute: u16,
) -> Result<MatchState, ApiError> {
    let gone = || {
        ApiError(
            StatusCode::CONFLICT,
            format!("the store no longer holds the start of game {id}'s run"),
        )
    };
    let entries = match store
        .read_after(
            livescore_store::Topic::Match(id),
            None,
            livescore_store::LOG_RETAINED,
        )
        .await?
    {
        livescore_store::LogRead::After(entries) => entries,
        _ => return Err(gone()),
    };
    let mut start = None;
    let mut updates = Vec::new();
    for published in &entries {
        let entry: livescore_store::Entry =
            serde_json::from_str(&published.json).map_err(|source| StoreError::Corrupt {
                match_id: id,
                source,
            })?;
        match entry {
            // A run starts again from its snapshot: what came before is another run.
            livescore_store::Entry::Snapshot { state, .. } => {
                start = Some(*state);
                updates.clear();
            }
            livescore_store::Entry::Update { update, .. } => updates.push(*update),
            livescore_store::Entry::Replay { .. } => {}
        }
    }
    let start = start.ok_or_else(gone)?;
    Ok(livescore_domain::history::state_at_minute(
        start, &updates, minute,
    ))
}
