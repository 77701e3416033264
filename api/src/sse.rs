//! Server-Sent Events: `GET /sse/games` (every game's summary as it changes) and
//! `GET /sse/games/{game_id}` (one match's log).
//!
//! The first event is a snapshot; every event has `id:` = its cursor and `event:` = its kind
//! (`snapshot`, `update`, `replay`, `game`); `retry:` is set on the first; a comment heartbeat
//! goes out every 15 s. A reconnecting browser sends `Last-Event-ID` and resumes exactly after it
//! (a first connection can pass `?last_event_id=`); a cursor the store no longer holds gets a
//! fresh snapshot.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::{Stream, StreamExt};
use livescore_store::{Entry, MatchSummary, Topic};
use serde::Deserialize;

use crate::follow::{Message, follow};
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
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
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
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
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

fn stream(
    state: &ApiState,
    topic: Topic,
    cursor: Option<String>,
) -> Sse<impl Stream<Item = Result<Event, Infallible>> + use<>> {
    let messages = follow(state, topic, cursor);
    let connected = Connected::new(&state.metrics, false);
    // The stream ends when the server shuts down, so that graceful shutdown does not wait for
    // clients that never leave; browsers reconnect (elsewhere) with their Last-Event-ID.
    let mut shutdown = state.shutdown.clone();
    let stopped = async move {
        let _ = shutdown.wait_for(|stop| *stop).await;
    };
    let events =
        // The connection counts as open as long as the stream holds `connected`.
        futures_util::stream::unfold(
            (messages, true, connected),
            |(mut messages, first, connected)| async move {
                let message = messages.recv().await?;
                let mut event = to_event(message);
                if first {
                    event = event.retry(RETRY);
                }
                Some((Ok(event), (messages, false, connected)))
            },
        );
    Sse::new(events.take_until(stopped))
        .keep_alive(KeepAlive::new().interval(HEARTBEAT).text("heartbeat"))
}

fn to_event(message: Message) -> Event {
    let event = Event::default().event(message.kind).data(&*message.json);
    match message.cursor {
        Some(cursor) => event.id(cursor),
        None => event,
    }
}
