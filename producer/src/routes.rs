//! The producer's HTTP control routes, for the admin panel. Everything that changes a replay,
//! and the replays' status, needs `Authorization: Bearer <ADMIN_TOKEN>`; the catalog is public.
//!
//! - `GET  /catalog`                      the replayable games
//! - `POST /games/{game_id}`              start a replay (`?speed=60`, or a JSON body `{"speed": 60}`;
//!   the original demo's route, kept); `&pause_at=30` holds it at the end of minute 30
//!   (paused before the first event after 30', until `resume`)
//! - `GET  /replays`, `GET /replays/{game_id}`          status
//! - `POST /replays/{game_id}/pause|resume|stop`   `pause?at=30`: at the end of minute 30, not now
//! - `PUT  /replays/{game_id}/speed`      `{"speed": 600}` or `{"speed": "max"}`
//!
//! Every route is in the OpenAPI document ([`ProducerDoc`]; `livescore up` serves it merged
//! with the API's at `/openapi.json`), the admin routes under the bearer scheme `admin_token`.
//! Errors are `{"error": "..."}` with a status that says what was wrong, query parameters
//! included (read here, not by axum's extractor, whose rejections are plain text).

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{FromRequestParts, Path, Query, State};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post, put};
use axum::{Json, Router};
use livescore_catalog::{CatalogError, Game};
use livescore_domain::{Speed, SpeedError};
use serde::Deserialize;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::replays::{ReplayError, ReplayManager, ReplayState};

/// What the control routes need.
#[derive(Clone)]
pub struct ControlState {
    pub replays: Arc<ReplayManager>,
    pub admin_token: Arc<str>,
}

pub fn router(state: ControlState) -> Router {
    Router::new()
        .route("/catalog", get(catalog))
        .route("/games/{game_id}", post(start))
        .route("/replays", get(list))
        .route("/replays/{game_id}", get(status))
        .route("/replays/{game_id}/speed", put(speed))
        .route("/replays/{game_id}/pause", post(pause))
        .route("/replays/{game_id}/resume", post(resume))
        .route("/replays/{game_id}/stop", post(stop))
        // Any other action: a JSON 404 that names the ones there are.
        .route("/replays/{game_id}/{action}", any(unknown_action))
        .with_state(state)
}

/// The admin routes' OpenAPI document.
#[derive(OpenApi)]
#[openapi(
    paths(catalog, start, list, status, pause, resume, stop, speed),
    components(schemas(Game, ReplayState, crate::replays::Lateness, ErrorBody, SpeedBody)),
    modifiers(&AdminToken),
    tags((name = "admin", description = "Replays: start, pause, resume, stop, speed (the \
        producer's routes; all but the catalog need Authorization: Bearer <ADMIN_TOKEN>)"))
)]
pub struct ProducerDoc;

/// The security scheme of the admin routes: `Authorization: Bearer <ADMIN_TOKEN>`.
struct AdminToken;

impl Modify for AdminToken {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "admin_token",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "ADMIN_TOKEN (printed by `livescore up` when generated)",
                    ))
                    .build(),
            ),
        );
    }
}

/// The body of every error answer.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    pub error: String,
}

/// An error answer: a status code and `{"error": "..."}`.
pub struct ApiError(StatusCode, String);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.0, Json(ErrorBody { error: self.1 })).into_response()
    }
}

impl From<ReplayError> for ApiError {
    fn from(err: ReplayError) -> Self {
        let status = match &err {
            ReplayError::Catalog(CatalogError::BadGameId(_) | CatalogError::UnknownGame(_))
            | ReplayError::NoReplay(_) => StatusCode::NOT_FOUND,
            ReplayError::Over(_) => StatusCode::CONFLICT,
            ReplayError::Catalog(_) | ReplayError::Load(_) => StatusCode::INTERNAL_SERVER_ERROR,
        };
        ApiError(status, err.to_string())
    }
}

impl From<SpeedError> for ApiError {
    fn from(err: SpeedError) -> Self {
        ApiError(StatusCode::BAD_REQUEST, err.to_string())
    }
}

/// Proof that the request carried the admin token.
pub struct Admin;

impl FromRequestParts<ControlState> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &ControlState,
    ) -> Result<Self, Self::Rejection> {
        let given = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.strip_prefix("Bearer "));
        match given {
            Some(token) if constant_time_eq(token.as_bytes(), state.admin_token.as_bytes()) => {
                Ok(Admin)
            }
            Some(_) => Err(ApiError(
                StatusCode::UNAUTHORIZED,
                "wrong admin token".into(),
            )),
            None => Err(ApiError(
                StatusCode::UNAUTHORIZED,
                "this route needs the header Authorization: Bearer <ADMIN_TOKEN>".into(),
            )),
        }
    }
}

/// Compares `given` with the `expected` token without an early exit: every byte of the token is
/// looked at whatever `given` holds (a shorter or longer guess included), and the result is
/// behind `black_box` so the optimiser cannot turn the fold back into a loop that stops at the
/// first difference. The time taken says nothing about how much of a guess was right.
fn constant_time_eq(given: &[u8], expected: &[u8]) -> bool {
    let mut difference = u8::from(given.len() != expected.len());
    for (i, byte) in expected.iter().enumerate() {
        difference |= byte ^ given.get(i).copied().unwrap_or(!byte);
        difference = std::hint::black_box(difference);
    }
    difference == 0
}

/// A game id from a path, checked like every game id (digits only) and known to the catalog.
fn game_id(state: &ControlState, raw: &str) -> Result<u64, ApiError> {
    Ok(state
        .replays
        .catalog()
        .game(raw)
        .map_err(ReplayError::from)?
        .id)
}

/// The replayable games (public).
#[utoipa::path(get, path = "/catalog", tag = "admin",
    responses((status = 200, description = "the games the data directory holds", body = Vec<Game>)))]
async fn catalog(State(state): State<ControlState>) -> impl IntoResponse {
    let games: Vec<_> = state
        .replays
        .catalog()
        .games()
        .into_iter()
        .cloned()
        .collect();
    Json(games)
}

#[derive(Deserialize, utoipa::IntoParams)]
struct StartQuery {
    /// How fast: a factor of real time (`60`: a match in 90 s... of 90 minutes, 1.5 minutes)
    /// or `max`; the default is 60. Instead of a JSON body.
    speed: Option<String>,
    /// Hold the replay at the end of this match minute (0 to 200) until `resume`.
    pause_at: Option<String>,
}

/// `{"speed": 60}` or `{"speed": "max"}`.
#[derive(Deserialize, utoipa::ToSchema)]
pub struct SpeedBody {
    speed: Speed,
}

/// The most a minute can be: beyond extra time's 120 and any stoppage.
const LAST_MINUTE: u16 = 200;

/// A match minute from a query parameter, with a JSON error naming it when it is not one.
fn minute(name: &str, raw: Option<String>) -> Result<Option<u16>, ApiError> {
    raw.map(|raw| {
        raw.parse::<u16>()
            .ok()
            .filter(|minute| *minute <= LAST_MINUTE)
            .ok_or_else(|| {
                ApiError(
                    StatusCode::BAD_REQUEST,
                    format!(
                        "{name}={:?} is not a match minute: give a whole number from 0 to \
                         {LAST_MINUTE}",
                        livescore_domain::excerpt(&raw)
                    ),
                )
            })
    })
    .transpose()
}

async fn unknown_action(Path((_, action)): Path<(String, String)>) -> ApiError {
    ApiError(
        StatusCode::NOT_FOUND,
        format!(
            "no action {:?}: use pause, resume or stop (or PUT .../speed)",
            livescore_domain::excerpt(&action)
        ),
    )
}

/// Starts a replay (a new run if the game was replayed before).
#[utoipa::path(post, path = "/games/{game_id}", tag = "admin",
    params(("game_id" = String, Path, description = "a StatsBomb match id of the catalog"), StartQuery),
    request_body(content = Option<SpeedBody>, description = "the speed, if not in the query",
        content_type = "application/json"),
    security(("admin_token" = [])),
    responses(
        (status = 202, description = "started", body = ReplayState),
        (status = 400, description = "a bad speed, body or minute", body = ErrorBody),
        (status = 401, description = "no admin token, or a wrong one", body = ErrorBody),
        (status = 404, description = "not a game of the catalog", body = ErrorBody),
        (status = 500, description = "the game's data files cannot be read", body = ErrorBody)))]
async fn start(
    _: Admin,
    State(state): State<ControlState>,
    Path(raw_id): Path<String>,
    Query(query): Query<StartQuery>,
    body: Bytes,
) -> Result<impl IntoResponse, ApiError> {
    let speed = match query.speed {
        Some(text) => Speed::parse(&text)?,
        // No body, or JSON's `null`: the default speed.
        None if body.iter().all(u8::is_ascii_whitespace) || body.trim_ascii() == b"null" => {
            Speed::DEFAULT
        }
        None => speed_body(&body)?,
    };
    let pause_at = minute("pause_at", query.pause_at)?;
    let replay = state
        .replays
        .start_holding(&raw_id, speed, pause_at)
        .await?;
    Ok((StatusCode::ACCEPTED, Json(replay)))
}

/// `{"speed": 60}` or `{"speed": "max"}`.
fn speed_body(body: &[u8]) -> Result<Speed, ApiError> {
    serde_json::from_slice::<SpeedBody>(body)
        .map(|body| body.speed)
        .map_err(|err| {
            ApiError(
                StatusCode::BAD_REQUEST,
                format!("the body must be {{\"speed\": <number or \"max\">}}: {err}"),
            )
        })
}

/// Every replay this producer runs or ran.
#[utoipa::path(get, path = "/replays", tag = "admin", security(("admin_token" = [])),
    responses((status = 200, description = "the replays", body = Vec<ReplayState>),
              (status = 401, description = "no admin token, or a wrong one", body = ErrorBody)))]
async fn list(_: Admin, State(state): State<ControlState>) -> impl IntoResponse {
    Json(state.replays.list())
}

/// One game's replay.
#[utoipa::path(get, path = "/replays/{game_id}", tag = "admin", security(("admin_token" = [])),
    params(("game_id" = String, Path, description = "a StatsBomb match id")),
    responses((status = 200, description = "the replay", body = ReplayState),
              (status = 401, description = "no admin token, or a wrong one", body = ErrorBody),
              (status = 404, description = "no such game, or never replayed", body = ErrorBody)))]
async fn status(
    _: Admin,
    State(state): State<ControlState>,
    Path(raw_id): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    let id = game_id(&state, &raw_id)?;
    Ok(Json(state.replays.status(id)?))
}

#[derive(Deserialize, utoipa::IntoParams)]
struct PauseQuery {
    /// Pause when the match reaches the end of this minute (0 to 200), not now.
    at: Option<String>,
}

/// Pauses a replay, now or (`?at=`) at the end of a match minute.
#[utoipa::path(post, path = "/replays/{game_id}/pause", tag = "admin", security(("admin_token" = [])),
    params(("game_id" = String, Path, description = "a StatsBomb match id"), PauseQuery),
    responses((status = 200, description = "paused, or to pause at the minute", body = ReplayState),
              (status = 400, description = "`at` is not a match minute", body = ErrorBody),
              (status = 401, description = "no admin token, or a wrong one", body = ErrorBody),
              (status = 404, description = "no such game, or never replayed", body = ErrorBody),
              (status = 409, description = "the replay is over", body = ErrorBody)))]
async fn pause(
    _: Admin,
    State(state): State<ControlState>,
    Path(raw_id): Path<String>,
    Query(query): Query<PauseQuery>,
) -> Result<impl IntoResponse, ApiError> {
    let id = game_id(&state, &raw_id)?;
    let replay = match minute("at", query.at)? {
        Some(minute) => state.replays.pause_at(id, minute),
        None => state.replays.pause(id),
    };
    Ok(Json(replay?))
}

/// Resumes a paused (or held) replay.
#[utoipa::path(post, path = "/replays/{game_id}/resume", tag = "admin", security(("admin_token" = [])),
    params(("game_id" = String, Path, description = "a StatsBomb match id")),
    responses((status = 200, description = "running again", body = ReplayState),
              (status = 401, description = "no admin token, or a wrong one", body = ErrorBody),
              (status = 404, description = "no such game, or never replayed", body = ErrorBody),
              (status = 409, description = "the replay is over", body = ErrorBody)))]
async fn resume(
    _: Admin,
    State(state): State<ControlState>,
    Path(raw_id): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    let id = game_id(&state, &raw_id)?;
    Ok(Json(state.replays.resume(id)?))
}

/// Stops a replay before its end.
#[utoipa::path(post, path = "/replays/{game_id}/stop", tag = "admin", security(("admin_token" = [])),
    params(("game_id" = String, Path, description = "a StatsBomb match id")),
    responses((status = 200, description = "stopped", body = ReplayState),
              (status = 401, description = "no admin token, or a wrong one", body = ErrorBody),
              (status = 404, description = "no such game, or never replayed", body = ErrorBody),
              (status = 409, description = "the replay is over", body = ErrorBody)))]
async fn stop(
    _: Admin,
    State(state): State<ControlState>,
    Path(raw_id): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    let id = game_id(&state, &raw_id)?;
    Ok(Json(state.replays.stop(id)?))
}

/// Changes a replay's speed.
#[utoipa::path(put, path = "/replays/{game_id}/speed", tag = "admin", security(("admin_token" = [])),
    params(("game_id" = String, Path, description = "a StatsBomb match id")),
    request_body(content = SpeedBody, content_type = "application/json"),
    responses((status = 200, description = "the new speed holds", body = ReplayState),
              (status = 400, description = "not a speed", body = ErrorBody),
              (status = 401, description = "no admin token, or a wrong one", body = ErrorBody),
              (status = 404, description = "no such game, or never replayed", body = ErrorBody),
              (status = 409, description = "the replay is over", body = ErrorBody)))]
async fn speed(
    _: Admin,
    State(state): State<ControlState>,
    Path(raw_id): Path<String>,
    body: Bytes,
) -> Result<impl IntoResponse, ApiError> {
    let id = game_id(&state, &raw_id)?;
    let speed = speed_body(&body)?;
    Ok(Json(state.replays.set_speed(id, speed)?))
}

#[cfg(test)]
mod tests {
    use super::constant_time_eq;

    #[test]
    fn only_the_same_bytes_compare_equal() {
        assert!(constant_time_eq(b"s3cret", b"s3cret"));
        for guess in [
            &b""[..],
            b"s",
            b"s3cre",
            b"s3creT",
            b"s3cret ",
            b"x3cret",
            b"\0\0\0\0\0\0",
        ] {
            assert!(!constant_time_eq(guess, b"s3cret"), "{guess:?}");
        }
    }
}
