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

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{FromRequestParts, Path, Query, State};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use livescore_catalog::CatalogError;
use livescore_domain::{Speed, SpeedError};
use serde::Deserialize;

use crate::replays::{ReplayError, ReplayManager};

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
        .route("/replays/{game_id}/{action}", post(control))
        .with_state(state)
}

/// An error answer: a status code and `{"error": "..."}`.
pub struct ApiError(StatusCode, String);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.0, Json(serde_json::json!({ "error": self.1 }))).into_response()
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

#[derive(Deserialize)]
struct StartQuery {
    speed: Option<String>,
    /// The match minute to hold the replay at.
    pause_at: Option<u16>,
}

#[derive(Deserialize)]
struct SpeedBody {
    speed: Speed,
}

async fn start(
    _: Admin,
    State(state): State<ControlState>,
    Path(raw_id): Path<String>,
    Query(query): Query<StartQuery>,
    body: Bytes,
) -> Result<impl IntoResponse, ApiError> {
    let speed = match query.speed {
        Some(text) => Speed::parse(&text)?,
        None if body.iter().all(u8::is_ascii_whitespace) => Speed::DEFAULT,
        None => speed_body(&body)?,
    };
    let replay = state
        .replays
        .start_holding(&raw_id, speed, query.pause_at)
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

async fn list(_: Admin, State(state): State<ControlState>) -> impl IntoResponse {
    Json(state.replays.list())
}

async fn status(
    _: Admin,
    State(state): State<ControlState>,
    Path(raw_id): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    let id = game_id(&state, &raw_id)?;
    Ok(Json(state.replays.status(id)?))
}

#[derive(Deserialize)]
struct PauseQuery {
    /// Pause when the match reaches this minute, not now.
    at: Option<u16>,
}

/// `pause` (`?at=<minute>`: when the match reaches it), `resume` or `stop`.
async fn control(
    _: Admin,
    State(state): State<ControlState>,
    Path((raw_id, action)): Path<(String, String)>,
    Query(pause): Query<PauseQuery>,
) -> Result<impl IntoResponse, ApiError> {
    let id = game_id(&state, &raw_id)?;
    let replays = &state.replays;
    let replay = match action.as_str() {
        "pause" => match pause.at {
            Some(minute) => replays.pause_at(id, minute),
            None => replays.pause(id),
        },
        "resume" => replays.resume(id),
        "stop" => replays.stop(id),
        _ => {
            return Err(ApiError(
                StatusCode::NOT_FOUND,
                format!("no action {action:?}: use pause, resume or stop (or PUT .../speed)"),
            ));
        }
    };
    Ok(Json(replay?))
}

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
