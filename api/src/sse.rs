//! Server-Sent Events: `GET /sse/games` (every game's summary as it changes) and
//! `GET /sse/games/{game_id}` (one match's log).
//!
//! The stream opens with `retry:` (how long a browser waits before reconnecting). Its first
//! event says how it joined: `resumed` (data `{"kind":"resumed","after":"<cursor>"}`, no `id:`)
//! when it resumed after the client's cursor with nothing missed, else a `snapshot` whose data
//! names its `reason` (`no_cursor`, `cursor_unknown`, `too_far_behind`, `store_rebuilt`). Every
//! log event has `id:` = its cursor and `event:` = its kind (`snapshot`, `update`, `replay`,
//! `game`); a comment heartbeat goes out when nothing else was sent for 10 to 15 s, so no
//! stream is silent longer than 15 s. A reconnecting browser sends `Last-Event-ID` and resumes
//! exactly after it (a first connection can pass `?last_event_id=`).
//!
//! These handlers answer the request and leave the stream to the shard's fan-out engine: once
//! the response head is written, the server hands the socket over (`livescore_server::Detach`).

use axum::Extension;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use livescore_server::Detach;
use livescore_store::{Cursor, Entry, MatchSummary, Topic};
use serde::Deserialize;

use crate::fanout::Stream;
use crate::{ApiError, ShardApi, game_id};

#[derive(Deserialize, utoipa::IntoParams)]
pub struct ResumeQuery {
    /// Resume after this cursor (for a first connection; browsers send the Last-Event-ID header).
    last_event_id: Option<String>,
}

/// The cursor to resume after: the `Last-Event-ID` header, else the query parameter. One that
/// is not a cursor gets a fresh snapshot, as a cursor the store no longer holds does.
fn resume_cursor(headers: &HeaderMap, query: ResumeQuery) -> Option<Cursor> {
    headers
        .get("last-event-id")
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned)
        .or(query.last_event_id)
        .and_then(|cursor| cursor.parse().ok())
}

/// Every game's summary, live: a `snapshot` event (`{"kind": "snapshot", "games": [...]}`),
/// then a `game` event (a `MatchSummary`) whenever a game's headline or replay changes.
#[utoipa::path(get, path = "/sse/games", tag = "live", params(ResumeQuery,
        ("Last-Event-ID" = Option<String>, Header, description = "resume after this cursor")),
    responses((status = 200, description = "an event stream", content_type = "text/event-stream",
        body = MatchSummary)))]
pub async fn games(
    State(state): State<ShardApi>,
    headers: HeaderMap,
    Query(query): Query<ResumeQuery>,
    detach: Option<Extension<Detach>>,
) -> Result<Response, ApiError> {
    stream(&state, detach, Topic::Feed, resume_cursor(&headers, query))
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
    State(state): State<ShardApi>,
    Path(raw_id): Path<String>,
    headers: HeaderMap,
    Query(query): Query<ResumeQuery>,
    detach: Option<Extension<Detach>>,
) -> Result<Response, ApiError> {
    let id = game_id(&raw_id)?;
    if state.store.load(id).await?.is_none() {
        return Err(ApiError::not_found(&raw_id));
    }
    stream(
        &state,
        detach,
        Topic::Match(id),
        resume_cursor(&headers, query),
    )
}

/// The stream's response head; the shard's engine writes the events once it has the socket.
fn stream(
    state: &ShardApi,
    detach: Option<Extension<Detach>>,
    topic: Topic,
    cursor: Option<Cursor>,
) -> Result<Response, ApiError> {
    let Some(Extension(detach)) = detach else {
        return Err(ApiError(
            StatusCode::INTERNAL_SERVER_ERROR,
            "live streams need the replica's own server (livescore_server)".into(),
        ));
    };
    let engine = state.engine.clone();
    detach.after_head(move |detached| engine.adopt(detached, Stream::Sse { topic, cursor }));
    Ok((
        [
            (header::CONTENT_TYPE, "text/event-stream"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        // nginx: pass each event on as it comes.
        [("x-accel-buffering", "no")],
        Detach::endless_body(),
    )
        .into_response())
}
