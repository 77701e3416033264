//! Viewers, as the tests see them: Server-Sent Events and WebSocket clients that follow one match
//! until its replay finishes, resuming after a broken connection from the last cursor they saw,
//! and the check that what a client saw is exactly the match's log.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use livescore_store::{Cursor, LogRead, MatchStore, Topic};
use livescore_wire::{ClientRequest, ServerFrame, sse};
use tokio_tungstenite::tungstenite::Message;

/// One event as a client saw it: its cursor, its kind (`snapshot`, `update`, `replay`) and data.
#[derive(Debug, Clone, PartialEq)]
pub struct Seen {
    pub id: Option<String>,
    pub event: String,
    pub data: String,
}

impl Seen {
    /// A WebSocket frame of a topic, as the client saw it.
    pub fn of_frame(text: &str) -> Seen {
        let frame: ServerFrame = serde_json::from_str(text).unwrap();
        Seen {
            id: frame.cursor.map(|cursor| cursor.to_string()),
            event: frame.kind.to_string(),
            data: frame
                .data
                .map(|data| data.get().to_owned())
                .unwrap_or_default(),
        }
    }

    /// The replay is over: finished, or failed or stopped before the end.
    fn ends_the_replay(&self) -> bool {
        self.event == "replay"
            && ["finished", "failed", "stopped"]
                .iter()
                .any(|status| self.data.contains(&format!("\"status\":\"{status}\"")))
    }
}

/// The last cursor a client saw, to resume from.
pub fn last_cursor(seen: &[Seen]) -> Option<String> {
    seen.iter().rev().find_map(|e| e.id.clone())
}

/// Reads SSE events of `game` from `base` into `seen`, resuming after `last_id`, until the replay's
/// `finished` arrives (true) or the connection breaks (false).
pub async fn sse_listen(
    base: &str,
    game: u64,
    last_id: Option<&str>,
    seen: &mut Vec<Seen>,
) -> bool {
    let client = reqwest::Client::new();
    let mut request = client.get(format!("{base}/sse/games/{game}"));
    if let Some(id) = last_id {
        request = request.header("Last-Event-ID", id);
    }
    let Ok(response) = request.send().await else {
        return false;
    };
    if response.status() != 200 {
        return false;
    }
    let mut body = response.bytes_stream();
    let mut reader = sse::Reader::default();
    // The server sends a heartbeat when it has sent nothing else for 15 s: a stream silent for
    // longer is a broken server, and fails the test instead of hanging it.
    loop {
        let chunk = match tokio::time::timeout(SILENCE_LIMIT, body.next()).await {
            Ok(Some(Ok(chunk))) => chunk,
            Ok(Some(Err(_)) | None) => return false,
            Err(_) => panic!("SSE {base}/sse/games/{game}: nothing within {SILENCE_LIMIT:?}"),
        };
        reader.push(&chunk);
        while let Some(event) = reader.next_event() {
            let event = Seen {
                id: event.id,
                event: event.event,
                data: event.data,
            };
            let finished = event.ends_the_replay();
            seen.push(event);
            if finished {
                return true;
            }
        }
    }
}

/// How long a stream may stay silent before a test says so: longer than the server's longest
/// gap between heartbeats (15 s, SSE and WebSocket).
const SILENCE_LIMIT: Duration = Duration::from_secs(20);

pub type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// A WebSocket to `base`'s `/ws`, or `None` if it cannot connect.
pub async fn ws(base: &str) -> Option<Socket> {
    let url = format!("{}/ws", base.replace("http://", "ws://"));
    tokio_tungstenite::connect_async(url)
        .await
        .ok()
        .map(|(socket, _)| socket)
}

pub async fn send<S>(socket: &mut tokio_tungstenite::WebSocketStream<S>, text: &str) -> bool
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    socket.send(Message::text(text)).await.is_ok()
}

/// The next JSON text frame, or `None` when the connection ends.
pub async fn next_json<S>(
    socket: &mut tokio_tungstenite::WebSocketStream<S>,
) -> Option<serde_json::Value>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    next_text(socket)
        .await
        .map(|text| serde_json::from_str(&text).unwrap())
}

/// The next text frame, or `None` when the connection ends. Panics after 20 s without any
/// frame: the server pings a socket it has sent nothing else to for 15 s.
pub async fn next_text<S>(socket: &mut tokio_tungstenite::WebSocketStream<S>) -> Option<String>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    loop {
        match tokio::time::timeout(SILENCE_LIMIT, socket.next()).await {
            Ok(Some(Ok(Message::Text(text)))) => return Some(text.to_string()),
            Ok(Some(Ok(Message::Close(_)) | Err(_)) | None) => return None,
            Ok(Some(Ok(_))) => continue,
            Err(_) => panic!("WebSocket: no frame within {SILENCE_LIMIT:?}"),
        }
    }
}

/// Follows `game` over WebSocket from `cursor` until `finished` (true) or the connection breaks
/// (false).
pub async fn ws_listen(base: &str, game: u64, cursor: Option<&str>, seen: &mut Vec<Seen>) -> bool {
    let Some(mut socket) = ws(base).await else {
        return false;
    };
    let request = ClientRequest::Subscribe {
        topic: Topic::Match(game),
        cursor: cursor.map(|cursor| cursor.parse().unwrap()),
    };
    if !send(&mut socket, &serde_json::to_string(&request).unwrap()).await {
        return false;
    }
    while let Some(text) = next_text(&mut socket).await {
        let event = Seen::of_frame(&text);
        if event.event == "error" {
            // Refused (a game not in the store yet, say): retry later, as the web UI does.
            return false;
        }
        assert_eq!(
            serde_json::from_str::<ServerFrame>(&text).unwrap().topic,
            Some(Topic::Match(game)),
            "{text}"
        );
        let finished = event.ends_the_replay();
        seen.push(event);
        if finished {
            return true;
        }
    }
    false
}

#[derive(Debug, Clone, Copy)]
pub enum Transport {
    Sse,
    WebSocket,
}

/// One connection over `transport`: follows `game` from `cursor` until the replay finishes
/// (true) or the connection breaks (false).
pub async fn listen_once(
    transport: Transport,
    base: &str,
    game: u64,
    cursor: Option<&str>,
    seen: &mut Vec<Seen>,
) -> bool {
    match transport {
        Transport::Sse => sse_listen(base, game, cursor, seen).await,
        Transport::WebSocket => ws_listen(base, game, cursor, seen).await,
    }
}

/// What a viewer that never gives up saw: every event, and how many times it had to reconnect.
pub struct Followed {
    pub seen: Vec<Seen>,
    pub reconnects: usize,
}

/// Follows `game` on `base` until its replay finishes, reconnecting (from the last cursor seen)
/// whenever the connection breaks or is refused, as the web UI does; gives up after `deadline`.
pub async fn follow_to_the_end(
    base: &str,
    game: u64,
    transport: Transport,
    deadline: Duration,
) -> Followed {
    let until = tokio::time::Instant::now() + deadline;
    let mut seen = Vec::new();
    let mut reconnects = 0;
    let late = || format!("{transport:?} client: the replay did not finish within {deadline:?}");
    loop {
        let cursor = last_cursor(&seen);
        // The deadline holds inside a connection too: one that delivers heartbeats but never
        // the end would otherwise keep the client for ever.
        let connection = listen_once(transport, base, game, cursor.as_deref(), &mut seen);
        let finished = tokio::time::timeout_at(until, connection)
            .await
            .unwrap_or_else(|_| panic!("{}", late()));
        if finished {
            return Followed { seen, reconnects };
        }
        assert!(tokio::time::Instant::now() < until, "{}", late());
        reconnects += 1;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Why the stream that `seen` begins with started with a snapshot (its `reason`).
pub fn snapshot_reason(seen: &Seen) -> String {
    assert_eq!(seen.event, "snapshot", "{seen:?}");
    let data: serde_json::Value = serde_json::from_str(&seen.data).unwrap();
    data["reason"].as_str().unwrap_or_default().to_owned()
}

/// The match's whole log, as (cursor, JSON value) pairs.
pub async fn log_of(store: &dyn MatchStore, game: u64) -> Vec<(Cursor, serde_json::Value)> {
    match store
        .read_after(Topic::Match(game), None, usize::MAX)
        .await
        .unwrap()
    {
        LogRead::After(entries) => entries
            .iter()
            .map(|e| (e.cursor, serde_json::from_str(&e.json).unwrap()))
            .collect(),
        LogRead::Unknown | LogRead::TooMany | LogRead::Rebuilt => panic!("game {game} has no log"),
    }
}

/// The match's updates as its log holds them, in order (snapshots and replay entries left out):
/// what `fold_match` computes, if each was logged once.
pub async fn logged_updates(store: &dyn MatchStore, game: u64) -> Vec<livescore_domain::Update> {
    log_of(store, game)
        .await
        .into_iter()
        .filter_map(|(_, json)| match serde_json::from_value(json).unwrap() {
            livescore_store::Entry::Update { update, .. } => Some(*update),
            _ => None,
        })
        .collect()
}

/// Checks that what a client saw after its first snapshot is exactly the log after it: nothing
/// missing, nothing twice, in order. A client that reconnects with a cursor the server still has gets no second
/// snapshot but a `resumed` naming that very cursor. Presence counts are not log entries.
/// Returns how many times it resumed.
pub async fn assert_exact(store: &dyn MatchStore, game: u64, seen: &[Seen]) -> usize {
    assert_eq!(seen[0].event, "snapshot");
    let from: Cursor = seen[0].id.as_deref().unwrap().parse().unwrap();
    let expected: Vec<(Cursor, serde_json::Value)> = log_of(store, game)
        .await
        .into_iter()
        .filter(|(cursor, _)| *cursor > from)
        .collect();
    let mut got: Vec<(Cursor, serde_json::Value)> = Vec::new();
    let mut resumed = 0;
    for event in &seen[1..] {
        let data: serde_json::Value = serde_json::from_str(&event.data).unwrap();
        match event.event.as_str() {
            "presence" => continue,
            "resumed" => {
                let last = got.last().map_or(from, |(cursor, _)| *cursor);
                assert_eq!(
                    data["after"],
                    last.to_string(),
                    "resumed after its last cursor"
                );
                assert_eq!(event.id, None, "a resumed message has no cursor of its own");
                resumed += 1;
            }
            _ => got.push((event.id.as_deref().unwrap().parse().unwrap(), data)),
        }
    }
    assert_eq!(got.len(), expected.len(), "no gap, no duplicate");
    assert_eq!(got, expected);
    resumed
}
