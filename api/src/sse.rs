//! Server-Sent Events: `GET /sse/games` (every game's summary as it changes) and
//! `GET /sse/games/{game_id}` (one match's log).
//!
//! The stream opens with `retry:` (how long a browser waits before reconnecting); the first event
//! is a snapshot; every event has `id:` = its cursor and `event:` = its kind (`snapshot`,
//! `update`, `replay`, `game`); a comment heartbeat goes out every 15 s. A reconnecting browser sends `Last-Event-ID` and resumes exactly after it
//! (a first connection can pass `?last_event_id=`); a cursor the store no longer holds gets a
//! fresh snapshot.

use std::convert::Infallible;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use livescore_store::{Entry, MatchSummary, Topic};
use serde::Deserialize;
use tokio::time::{Instant, MissedTickBehavior};

use crate::follow::follow;
use crate::metrics::Connected;
use crate::{ApiError, ApiState, game_id};

/// How long a browser waits before reconnecting.
const RETRY: Duration = Duration::from_secs(2);
const HEARTBEAT: Duration = Duration::from_secs(15);

#[derive(Deserialize, utoipa::IntoParams)]
pub struct ResumeQuery {
    /// Resume after this cursor (for a first connection; browsers send the Last-Event-ID header).
    last_event_id: Option<String>,
}

/// The cursor to resume after: the `Last-Event-ID` header, else the query parameter.
fn resume_cursor(headers: &HeaderMap, query: ResumeQuery) -> Option<String> {
    headers
        .get("last-event-id")
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned)
        .or(query.last_event_id)
        .filter(|cursor| !cursor.is_empty())
}

/// Every game's summary, live: a `snapshot` event (`{"kind": "snapshot", "games": [...]}`),
/// then a `game` event (a `MatchSummary`) whenever a game's headline or replay changes.
#[utoipa::path(get, path = "/sse/games", tag = "live", params(ResumeQuery,
        ("Last-Event-ID" = Option<String>, Header, description = "resume after this cursor")),
    responses((status = 200, description = "an event stream", content_type = "text/event-stream",
        body = MatchSummary)))]
pub async fn games(
    State(state): State<ApiState>,
    headers: HeaderMap,
    Query(query): Query<ResumeQuery>,
) -> Response {
    stream(&state, Topic::Feed, resume_cursor(&headers, query))
}

/// One match, live: a `snapshot` event first, then `update` and `replay` events (each an
/// `Entry`), with `id:` = the cursor to resume after.
#[utoipa::path(get, path = "/sse/games/{game_id}", tag = "live", params(
        ("game_id" = String, Path, description = "a StatsBomb match id"), ResumeQuery,
        ("Last-Event-ID" = Option<String>, Header, description = "resume after this cursor")),
    responses((status = 200, description = "an event stream", content_type = "text/event-stream",
        body = Entry),
        (status = 404, description = "no such game", body = crate::ErrorBody)))]
pub async fn game(
    State(state): State<ApiState>,
    Path(raw_id): Path<String>,
    headers: HeaderMap,
    Query(query): Query<ResumeQuery>,
) -> Result<Response, ApiError> {
    let id = game_id(&raw_id)?;
    if state.store.load(id).await?.is_none() {
        return Err(ApiError::not_found(&raw_id));
    }
    Ok(stream(
        &state,
        Topic::Match(id),
        resume_cursor(&headers, query),
    ))
}

/// The response: the client's messages, each written as the hub encoded it (no per-client
/// copy), after a first `retry:` field and with a comment line every `HEARTBEAT` so proxies and
/// browsers see the connection is alive.
fn stream(state: &ApiState, topic: Topic, cursor: Option<String>) -> Response {
    let messages = follow(state, topic, cursor);
    // The connection counts as open as long as the stream holds `connected`.
    let connected = Connected::new(&state.metrics, false);
    let mut heartbeat = tokio::time::interval_at(Instant::now() + HEARTBEAT, HEARTBEAT);
    heartbeat.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let retry = format!("retry: {}\n\n", RETRY.as_millis());
    let first = futures_util::stream::once(async move { Ok::<_, Infallible>(Bytes::from(retry)) });
    let events = futures_util::stream::unfold(
        (messages, heartbeat, connected),
        |(mut messages, mut heartbeat, connected)| async move {
            let bytes = tokio::select! {
                message = messages.recv() => message?.sse(),
                _ = heartbeat.tick() => Bytes::from_static(b":heartbeat\n\n"),
            };
            Some((Ok(bytes), (messages, heartbeat, connected)))
        },
    );
    // The stream ends when the server shuts down, so that graceful shutdown does not wait for
    // clients that never leave; browsers reconnect (elsewhere) with their Last-Event-ID.
    let mut shutdown = state.shutdown.clone();
    let stopped = async move {
        let _ = shutdown.wait_for(|stop| *stop).await;
    };
    let body = first.chain(events).take_until(stopped);
    (
        [
            (header::CONTENT_TYPE, "text/event-stream"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        Body::from_stream(body),
    )
        .into_response()
}
