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

/// One event of an SSE stream as the OpenAPI document describes it (the per-event schema of a
/// `text/event-stream` response): `event` names its kind, `id` is its cursor (none on
/// `resumed` and `presence`), `data` is JSON described by `data` (the schema named).
fn sse_event_schema(
    kinds: &[livescore_wire::Kind],
    data: &str,
) -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
    use utoipa::openapi::Ref;
    use utoipa::openapi::schema::{ObjectBuilder, Type};
    let kinds: Vec<&str> = kinds.iter().map(|kind| kind.as_str()).collect();
    ObjectBuilder::new()
        .schema_type(Type::Object)
        .required("event")
        .required("data")
        .property(
            "event",
            ObjectBuilder::new()
                .schema_type(Type::String)
                .enum_values(Some(kinds)),
        )
        .property(
            "id",
            ObjectBuilder::new()
                .schema_type(Type::String)
                .pattern(Some("^[0-9]+-[0-9]+$"))
                .description(Some("the cursor to resume after (Last-Event-ID)")),
        )
        .property(
            "data",
            ObjectBuilder::new()
                .schema_type(Type::String)
                .content_media_type("application/json")
                .content_schema(Some(Ref::from_schema_name(data))),
        )
        .property("retry", ObjectBuilder::new().schema_type(Type::Integer))
        .into()
}

/// An event of `GET /sse/games`, for the OpenAPI document.
pub struct FeedSseEvent;

impl utoipa::PartialSchema for FeedSseEvent {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use livescore_wire::Kind;
        sse_event_schema(
            &[Kind::Snapshot, Kind::Resumed, Kind::Game, Kind::Presence],
            "FeedEvent",
        )
    }
}

impl utoipa::ToSchema for FeedSseEvent {}

/// An event of `GET /sse/games/{game_id}`, for the OpenAPI document.
pub struct MatchSseEvent;

impl utoipa::PartialSchema for MatchSseEvent {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use livescore_wire::Kind;
        sse_event_schema(
            &[
                Kind::Snapshot,
                Kind::Resumed,
                Kind::Update,
                Kind::Replay,
                Kind::Presence,
            ],
            "MatchEvent",
        )
    }
}

impl utoipa::ToSchema for MatchSseEvent {}

/// What an event of `GET /sse/games` carries (its `event:` names which): documentation only.
#[derive(utoipa::ToSchema)]
#[allow(dead_code, clippy::large_enum_variant)]
#[serde(untagged)]
pub enum FeedEvent {
    /// `snapshot`: every game, with why the stream did not resume.
    Snapshot(FeedSnapshot),
    /// `game`: one game's line changed.
    Game(MatchSummary),
    /// `presence`: who is watching the site and each game.
    Presence(FeedPresence),
    /// `resumed`: the stream picked up after the client's cursor.
    Resumed(livescore_wire::join::Resumed),
}

/// The data of the games list's `snapshot` event.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
pub struct FeedSnapshot {
    /// Always `snapshot`.
    kind: livescore_wire::Kind,
    /// Why the stream starts with a snapshot.
    reason: livescore_wire::SnapshotReason,
    games: Vec<MatchSummary>,
}

/// The data of the games list's `presence` event.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
pub struct FeedPresence {
    /// Always `presence`.
    kind: livescore_wire::Kind,
    /// Viewers of the site, on every replica.
    site: u64,
    /// Viewers of games, by game id: every watched game in the first presence event a stream
    /// gets, then only the games whose count changed (0: nobody watches it any more).
    games: std::collections::BTreeMap<String, u64>,
}

/// What an event of `GET /sse/games/{game_id}` carries (its `event:` names which):
/// documentation only. A `snapshot` that opens a stream also has `reason`.
#[derive(utoipa::ToSchema)]
#[allow(dead_code, clippy::large_enum_variant)]
#[serde(untagged)]
pub enum MatchEvent {
    /// `snapshot`, `update` or `replay`: an entry of the match's log.
    Entry(Entry),
    /// `presence`: who is watching the match and the site.
    Presence(MatchPresence),
    /// `resumed`: the stream picked up after the client's cursor.
    Resumed(livescore_wire::join::Resumed),
}

/// The data of a match's `presence` event.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
pub struct MatchPresence {
    /// Always `presence`.
    kind: livescore_wire::Kind,
    /// Viewers of the match, on every replica.
    watching: u64,
    /// Viewers of the site, on every replica.
    site: u64,
}

/// Every game's summary, live: a `snapshot` event (`{"kind": "snapshot", "games": [...]}`),
/// then a `game` event (a `MatchSummary`) whenever a game's headline or replay changes.
#[utoipa::path(get, path = "/sse/games", tag = "live", params(ResumeQuery,
        ("Last-Event-ID" = Option<String>, Header, description = "resume after this cursor")),
    responses((status = 200, description = "an event stream", content_type = "text/event-stream",
        body = FeedSseEvent)))]
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
        body = MatchSseEvent),
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
