//! WebSocket `/ws`: the same topics as the SSE routes, several per connection.
//!
//! Client to server (text frames, JSON, at most 4 KiB):
//! - `{"op": "subscribe", "topic": "games" | "game:<id>", "cursor": "<optional>"}`
//! - `{"op": "unsubscribe", "topic": "..."}`
//!
//! Server to client:
//! - `{"topic": "...", "kind": "snapshot" | "update" | "replay" | "game", "cursor": "...", "data": {...}}`:
//!   a snapshot first (or, with a cursor the store holds, what came after it), then entries
//! - `{"topic": "...", "kind": "unsubscribed"}`
//! - `{"kind": "error", "message": "..."}`: the request was not understood; the connection stays
//!
//! The server pings every 15 s. When it shuts down it closes with 1012 (service restart), so
//! clients reconnect elsewhere and resubscribe with their cursors. A connection that follows no
//! topic for `ApiState::idle_socket` (30 s) is closed with 1008.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::extract::ws::{CloseFrame, Message as Frame, WebSocket, WebSocketUpgrade, close_code};
use axum::response::Response;
use futures_util::{SinkExt, StreamExt};
use livescore_store::Topic;
use serde::Deserialize;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::ApiState;
use crate::follow::follow_into;
use crate::message::{Message, topic_name};
use crate::metrics::Connected;

/// The largest frame or message a client may send.
pub const MAX_CLIENT_MESSAGE: usize = 4 * 1024;
/// Topics one connection may follow at once.
pub const MAX_SUBSCRIPTIONS: usize = 64;
/// Frames waiting for one slow client before its topics stop reading (and later catch up).
const OUTGOING: usize = 256;
const PING_EVERY: Duration = Duration::from_secs(15);

/// What the server sends on a WebSocket: an entry of a subscribed topic, `{"topic", "kind":
/// "unsubscribed"}`, or `{"kind": "error", "message"}`.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct ServerFrame {
    /// `games` or `game:<id>`; absent on errors.
    pub topic: Option<String>,
    /// `snapshot`, `update`, `replay`, `game`, `unsubscribed` or `error`.
    pub kind: String,
    /// The cursor to resume after.
    pub cursor: Option<String>,
    /// The entry: an `Entry` for a match, a `MatchSummary` (or the games snapshot) for `games`.
    #[schema(value_type = Object)]
    pub data: Option<serde_json::Value>,
    /// For errors: what was wrong with the request.
    pub message: Option<String>,
}

/// WebSocket: send `Request`s, receive `ServerFrame`s (see the module documentation).
#[utoipa::path(get, path = "/ws", tag = "live",
    responses((status = 101, description = "switching to the WebSocket protocol")))]
pub async fn upgrade(State(state): State<ApiState>, upgrade: WebSocketUpgrade) -> Response {
    upgrade
        .max_message_size(MAX_CLIENT_MESSAGE)
        .max_frame_size(MAX_CLIENT_MESSAGE)
        // tungstenite reserves 128 KiB per socket for reading by default; clients here send a
        // few hundred bytes at a time. Frames are written as they come (no write batching):
        // each one is a live update someone is waiting for.
        .read_buffer_size(MAX_CLIENT_MESSAGE)
        .write_buffer_size(0)
        .on_upgrade(move |socket| connection(state, socket))
}

/// What a WebSocket client sends.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(tag = "op", rename_all = "snake_case", deny_unknown_fields)]
pub enum Request {
    Subscribe {
        topic: String,
        #[serde(default)]
        cursor: Option<String>,
    },
    Unsubscribe {
        topic: String,
    },
}

/// `games` or `game:<id>`.
fn parse_topic(text: &str) -> Option<Topic> {
    if text == "games" {
        return Some(Topic::Feed);
    }
    let id = text.strip_prefix("game:")?;
    crate::game_id(id).ok().map(Topic::Match)
}

fn error_frame(message: &str) -> String {
    serde_json::json!({ "kind": "error", "message": message }).to_string()
}

async fn connection(state: ApiState, socket: WebSocket) {
    let _connected = Connected::new(&state.metrics, true);
    let (mut sink, mut stream) = socket.split();
    let (outgoing, mut frames) = mpsc::channel::<Frame>(OUTGOING);

    // The send task: frames in order, a ping every 15 s, a close when the server stops. A frame
    // the socket does not take within the slow-client time ends the connection.
    let mut shutdown = state.shutdown.clone();
    let patience = state.slow_client;
    let mut send_task = tokio::spawn(async move {
        let mut ping = tokio::time::interval(PING_EVERY);
        loop {
            let frame = tokio::select! {
                frame = frames.recv() => match frame {
                    Some(frame) => frame,
                    None => return,
                },
                _ = ping.tick() => Frame::Ping(Vec::new().into()),
                _ = shutdown.wait_for(|stop| *stop) => Frame::Close(Some(CloseFrame {
                    code: close_code::RESTART,
                    reason: "server restarting: reconnect and resubscribe with your cursors".into(),
                })),
            };
            let closing = matches!(frame, Frame::Close(_));
            let sent = tokio::time::timeout(patience, sink.send(frame)).await;
            if !matches!(sent, Ok(Ok(()))) || closing {
                return;
            }
        }
    });

    // The receive task: requests in, one following task per subscribed topic (each writes into
    // `outgoing` itself). A connection that follows nothing for `idle_socket` is closed (1008):
    // a socket that never subscribes holds a descriptor and memory for nothing.
    let idle = state.idle_socket;
    let mut receive_task = tokio::spawn(async move {
        let mut subscriptions: HashMap<Topic, JoinHandle<()>> = HashMap::new();
        let mut closing = false;
        loop {
            let next = if subscriptions.is_empty() && !closing {
                match tokio::time::timeout(idle, stream.next()).await {
                    Ok(next) => next,
                    Err(_idle) => {
                        // The send task sends it and ends the connection.
                        closing = true;
                        let reason = format!(
                            "no subscription for {} s: subscribe when you need a topic",
                            idle.as_secs()
                        );
                        let close = Frame::Close(Some(CloseFrame {
                            code: close_code::POLICY,
                            reason: reason.into(),
                        }));
                        let _ = outgoing.send(close).await;
                        continue;
                    }
                }
            } else {
                stream.next().await
            };
            let Some(Ok(frame)) = next else { break };
            let reply = match frame {
                Frame::Text(text) => {
                    handle(&state, &outgoing, &mut subscriptions, text.as_str()).await
                }
                Frame::Binary(_) => Some(error_frame("frames must be JSON text")),
                Frame::Close(_) => break,
                Frame::Ping(_) | Frame::Pong(_) => None,
            };
            if let Some(reply) = reply
                && outgoing.send(Frame::Text(reply.into())).await.is_err()
            {
                break;
            }
        }
        for (_, task) in subscriptions {
            task.abort();
        }
    });

    // Whichever side ends first ends the connection.
    tokio::select! {
        _ = &mut send_task => receive_task.abort(),
        _ = &mut receive_task => send_task.abort(),
    }
}

/// Handles one request; returns the error frame to send back, if any.
async fn handle(
    state: &ApiState,
    outgoing: &mpsc::Sender<Frame>,
    subscriptions: &mut HashMap<Topic, JoinHandle<()>>,
    text: &str,
) -> Option<String> {
    let request: Request = match serde_json::from_str(text) {
        Ok(request) => request,
        Err(err) => {
            return Some(error_frame(&format!(
                "not a request ({err}); send {{\"op\": \"subscribe\", \"topic\": \"games\"}} or \
                 {{\"op\": \"subscribe\", \"topic\": \"game:<id>\", \"cursor\": \"<optional>\"}}"
            )));
        }
    };
    match request {
        Request::Subscribe {
            topic: name,
            cursor,
        } => {
            let Some(topic) = parse_topic(&name) else {
                return Some(error_frame(&format!(
                    "unknown topic {:?}: topics are \"games\" and \"game:<id>\"",
                    livescore_domain::excerpt(&name)
                )));
            };
            if subscriptions.contains_key(&topic) {
                return Some(error_frame(&format!("already subscribed to {name}")));
            }
            if subscriptions.len() >= MAX_SUBSCRIPTIONS {
                return Some(error_frame(&format!(
                    "at most {MAX_SUBSCRIPTIONS} topics per connection"
                )));
            }
            if let Topic::Match(id) = topic {
                match state.store.load(id).await {
                    Ok(Some(_)) => {}
                    Ok(None) => return Some(error_frame(&format!("no game {id}"))),
                    Err(err) => {
                        tracing::warn!("match store: {err}");
                        return Some(error_frame("the match store is not answering; try again"));
                    }
                }
            }
            // Following writes the frames the hub encoded (shared with every other client)
            // straight into this connection's queue; if it ends while the client is still
            // there (too slow, the store failed), a close follows so the client reconnects and
            // resumes with its cursor.
            let name = topic_name(topic);
            let farewell = Frame::Close(Some(CloseFrame {
                code: close_code::AGAIN,
                reason: format!("{name}: stream ended; reconnect and resume with your cursor")
                    .into(),
            }));
            let wrap = |message: Arc<Message>| Frame::Text(message.ws());
            let task = follow_into(state, topic, cursor, outgoing.clone(), wrap, Some(farewell));
            subscriptions.insert(topic, task);
            None
        }
        Request::Unsubscribe { topic: name } => {
            let removed = parse_topic(&name).and_then(|topic| subscriptions.remove(&topic));
            match removed {
                Some(task) => {
                    task.abort();
                    let frame = serde_json::json!({ "topic": name, "kind": "unsubscribed" });
                    Some(frame.to_string())
                }
                None => Some(error_frame(&format!(
                    "not subscribed to {:?}",
                    livescore_domain::excerpt(&name)
                ))),
            }
        }
    }
}
