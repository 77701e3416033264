//! One viewer: follows a topic (the games list, or one match) over SSE or WebSocket until the
//! replays it watches have finished, resuming from its last cursor when a connection breaks,
//! as the web UI does. On its hot path it parses only the few fields it needs, borrowed from the
//! frame, and keeps O(1) state for the loss check: the first and last cursor, a count and a sum
//! of cursor hashes (see `check.rs`).

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use serde::Deserialize;
use serde_json::value::RawValue;
use tokio::sync::watch;
use tokio_tungstenite::tungstenite::Message;

use crate::stats::{Stats, unix_micros};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    Sse,
    WebSocket,
}

use livescore_wire::{ClientRequest, ServerFrame, sse};
/// What a viewer follows, and where it stands: the wire's own types.
pub use livescore_wire::{Cursor, Kind, Topic};

/// A well-mixed 64-bit hash of a cursor (splitmix64), summed per client for the loss check.
pub fn cursor_hash(cursor: Cursor) -> u64 {
    let mut z = cursor.ms.rotate_left(21) ^ cursor.seq;
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The replays a run watches: (game, run). A viewer is done when all of its own have ended.
pub type Watched = Arc<Vec<(u64, u64)>>;

/// What one viewer saw, for the loss check.
#[derive(Debug, Clone, Default)]
pub struct Seen {
    pub topic: Option<Topic>,
    /// The snapshot's cursor: entries after it are what this viewer must receive.
    pub first: Option<Cursor>,
    pub last: Option<Cursor>,
    pub count: u64,
    pub hash: u64,
    pub duplicates: u64,
    pub out_of_order: u64,
    /// Snapshots after the first: the server did not know the cursor it resumed from.
    pub resyncs: u64,
    /// It saw every watched replay end.
    pub completed: bool,
    pub connected_once: bool,
}

pub struct Viewer {
    pub index: usize,
    pub base: String,
    pub transport: Transport,
    pub topic: Topic,
    pub watched: Watched,
    pub stats: Arc<Stats>,
    pub stop: watch::Receiver<bool>,
    pub http: reqwest::Client,
    /// A broken viewer reconnects 200 ms plus up to this much later, spread over the viewers
    /// (0: all exactly 200 ms after their break, as clients without jitter would).
    pub reconnect_jitter_ms: u64,
    /// Where a viewer whose connection broke reconnects, in turn (its own `base` when empty):
    /// the other replicas, as a client with several endpoints would.
    pub failover: Arc<Vec<String>>,
}

/// The fields of an entry the viewer needs, borrowed from its JSON.
#[derive(Deserialize)]
struct EntryView<'a> {
    #[serde(default)]
    emitted_at_ms: u64,
    #[serde(borrow, default)]
    update: Option<UpdateView<'a>>,
    #[serde(borrow, default)]
    replay: Option<ReplayView<'a>>,
    // A games-list line.
    #[serde(default)]
    match_id: Option<u64>,
    #[serde(default)]
    headline: Option<HeadlineView>,
    // The games list's snapshot.
    #[serde(borrow, default)]
    games: Option<Vec<&'a RawValue>>,
}

#[derive(Deserialize)]
struct UpdateView<'a> {
    #[serde(rename = "type", borrow)]
    change: &'a str,
    #[serde(borrow, default)]
    incident: Option<IncidentView<'a>>,
}

#[derive(Deserialize)]
struct IncidentView<'a> {
    #[serde(rename = "type", borrow)]
    kind: &'a str,
}

#[derive(Deserialize)]
struct ReplayView<'a> {
    run: u64,
    #[serde(borrow)]
    status: &'a str,
}

#[derive(Deserialize)]
struct HeadlineView {
    score: ScoreView,
}

#[derive(Deserialize, PartialEq, Clone, Copy)]
struct ScoreView {
    home: u16,
    away: u16,
}

/// Per-viewer state while following.
struct Follow {
    seen: Seen,
    /// Watched replays not yet seen ending.
    pending: Vec<(u64, u64)>,
    /// The last score seen of each game (games list): a change is a goal.
    scores: Vec<(u64, ScoreView)>,
}

impl Follow {
    fn ended(status: &str) -> bool {
        matches!(status, "finished" | "stopped" | "failed")
    }

    fn replay_seen(&mut self, game: u64, replay: &ReplayView<'_>) {
        if Follow::ended(replay.status) {
            self.pending
                .retain(|&(id, run)| !(id == game && run == replay.run));
        }
    }

    /// Handles one message; returns true when every watched replay has ended.
    fn on_message(
        &mut self,
        viewer: &Viewer,
        kind: Kind,
        cursor: Option<Cursor>,
        data: &str,
    ) -> bool {
        Stats::add(&viewer.stats.messages, 1);
        if kind == Kind::Presence {
            Stats::add(&viewer.stats.presence, 1);
            return false;
        }
        let Ok(entry) = serde_json::from_str::<EntryView<'_>>(data) else {
            return false;
        };
        if kind == Kind::Snapshot {
            if self.seen.first.is_some() || self.seen.count > 0 {
                // The server did not know our cursor: a fresh start, counted as a failure.
                self.seen.resyncs += 1;
                self.seen.count = 0;
                self.seen.hash = 0;
            }
            self.seen.first = cursor;
            self.seen.last = cursor;
            match viewer.topic {
                Topic::Match(game) => {
                    if let Some(replay) = &entry.replay {
                        self.replay_seen(game, replay);
                    }
                }
                Topic::Feed => {
                    for game in entry.games.iter().flatten() {
                        if let Ok(line) = serde_json::from_str::<EntryView<'_>>(game.get()) {
                            self.list_line(&line);
                        }
                    }
                }
            }
            return self.pending.is_empty() && !viewer.watched.is_empty();
        }
        let Some(cursor) = cursor else {
            return false;
        };
        match self.seen.last {
            Some(last) if cursor == last => {
                self.seen.duplicates += 1;
                return false;
            }
            Some(last) if cursor < last => {
                self.seen.out_of_order += 1;
                return false;
            }
            _ => {}
        }
        self.seen.last = Some(cursor);
        self.seen.count += 1;
        self.seen.hash = self.seen.hash.wrapping_add(cursor_hash(cursor));
        let now = unix_micros();
        match (viewer.topic, kind) {
            (Topic::Match(_), Kind::Update) => {
                let goal = entry.update.as_ref().is_some_and(|update| {
                    update.change == "incident"
                        && update.incident.as_ref().is_some_and(|i| i.kind == "goal")
                });
                viewer
                    .stats
                    .delivered(viewer.index, entry.emitted_at_ms, goal, now);
            }
            (Topic::Match(game), Kind::Replay) => {
                if let Some(replay) = &entry.replay {
                    self.replay_seen(game, replay);
                }
            }
            (Topic::Feed, Kind::Game) => {
                let goal = self.list_line(&entry);
                viewer
                    .stats
                    .delivered(viewer.index, entry.emitted_at_ms, goal, now);
            }
            _ => {}
        }
        self.pending.is_empty() && !viewer.watched.is_empty()
    }

    /// A games-list line: notes its score and replay. Returns whether the score changed (a goal).
    fn list_line(&mut self, line: &EntryView<'_>) -> bool {
        let Some(game) = line.match_id else {
            return false;
        };
        let mut goal = false;
        if let Some(headline) = &line.headline {
            match self.scores.iter_mut().find(|(id, _)| *id == game) {
                Some((_, score)) => {
                    goal = *score != headline.score;
                    *score = headline.score;
                }
                None => self.scores.push((game, headline.score)),
            }
        }
        if let Some(replay) = &line.replay {
            self.replay_seen(game, replay);
        }
        goal
    }
}

impl Viewer {
    /// Follows until every watched replay ended or the run is stopped.
    pub async fn run(mut self) -> Seen {
        let pending = self
            .watched
            .iter()
            .copied()
            .filter(|&(game, _)| match self.topic {
                Topic::Match(id) => id == game,
                Topic::Feed => true,
            })
            .collect();
        let mut follow = Follow {
            seen: Seen {
                topic: Some(self.topic),
                ..Seen::default()
            },
            pending,
            scores: Vec::new(),
        };
        let mut attempt = 0u32;
        loop {
            if *self.stop.borrow() {
                break;
            }
            let done = match self.transport {
                Transport::Sse => self.sse(&mut follow).await,
                Transport::WebSocket => self.websocket(&mut follow).await,
            };
            match done {
                Outcome::Done => {
                    follow.seen.completed = true;
                    Stats::add(&self.stats.finished_clients, 1);
                    break;
                }
                Outcome::Stopped => break,
                Outcome::Broken => {
                    Stats::add(&self.stats.reconnects, 1);
                    if !self.failover.is_empty() {
                        let next = (self.index + attempt as usize) % self.failover.len();
                        self.base = self.failover[next].clone();
                    }
                }
                Outcome::Refused => {
                    Stats::add(&self.stats.failed_connects, 1);
                }
            }
            attempt += 1;
            // Back off a little, and spread reconnects out (10k viewers at once is a stampede).
            let spread = match self.reconnect_jitter_ms {
                0 => 0,
                jitter => u64::from(self.index as u32 ^ attempt) % jitter,
            };
            let pause = Duration::from_millis(200 + spread);
            tokio::select! {
                () = tokio::time::sleep(pause) => {}
                _ = self.stop.changed() => break,
            }
        }
        follow.seen
    }

    fn connected(&self, follow: &mut Follow, began: Instant) {
        Stats::add(&self.stats.connects, 1);
        Stats::add(&self.stats.connected, 1);
        follow.seen.connected_once = true;
        self.stats
            .connect_time
            .record(self.index, began.elapsed().as_micros() as u64);
    }

    async fn sse(&mut self, follow: &mut Follow) -> Outcome {
        let began = Instant::now();
        let mut request = self
            .http
            .get(format!("{}{}", self.base, self.topic.sse_path()))
            .header("Accept", "text/event-stream");
        if let Some(last) = follow.seen.last {
            request = request.header("Last-Event-ID", last.to_string());
        }
        let response = tokio::select! {
            response = request.send() => response,
            _ = self.stop.changed() => return Outcome::Stopped,
        };
        let Ok(response) = response else {
            return Outcome::Refused;
        };
        if !response.status().is_success() {
            return Outcome::Refused;
        }
        self.connected(follow, began);
        let outcome = self.read_sse(follow, response).await;
        self.stats
            .connected
            .fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
        outcome
    }

    async fn read_sse(&mut self, follow: &mut Follow, response: reqwest::Response) -> Outcome {
        let mut body = response.bytes_stream();
        let mut reader = sse::Reader::default();
        loop {
            let chunk = tokio::select! {
                chunk = body.next() => chunk,
                _ = self.stop.changed() => return Outcome::Stopped,
            };
            let Some(Ok(chunk)) = chunk else {
                return Outcome::Broken;
            };
            reader.push(&chunk);
            while let Some(event) = reader.next_event() {
                let Some(kind) = event.kind() else {
                    continue; // not ours: nothing to check
                };
                if follow.on_message(self, kind, event.cursor(), &event.data) {
                    return Outcome::Done;
                }
            }
        }
    }

    async fn websocket(&mut self, follow: &mut Follow) -> Outcome {
        let began = Instant::now();
        let url = format!("{}/ws", self.base.replacen("http", "ws", 1));
        let connecting = tokio::select! {
            connecting = tokio_tungstenite::connect_async(url) => connecting,
            _ = self.stop.changed() => return Outcome::Stopped,
        };
        let Ok((mut socket, _)) = connecting else {
            return Outcome::Refused;
        };
        let subscribe = ClientRequest::Subscribe {
            topic: self.topic,
            cursor: follow.seen.last,
        };
        let subscribe = serde_json::to_string(&subscribe).unwrap_or_default();
        if socket.send(Message::text(subscribe)).await.is_err() {
            return Outcome::Refused;
        }
        self.connected(follow, began);
        let outcome = loop {
            let frame = tokio::select! {
                frame = socket.next() => frame,
                _ = self.stop.changed() => break Outcome::Stopped,
            };
            let text = match frame {
                Some(Ok(Message::Text(text))) => text,
                Some(Ok(Message::Close(_)) | Err(_)) | None => break Outcome::Broken,
                Some(Ok(_)) => continue,
            };
            let Ok(frame) = serde_json::from_str::<ServerFrame<'_>>(&text) else {
                continue;
            };
            if frame.kind == Kind::Error {
                eprintln!("viewer {}: server error: {:?}", self.index, frame.message);
                break Outcome::Broken;
            }
            let data = frame.data.map_or("", RawValue::get);
            if follow.on_message(self, frame.kind, frame.cursor, data) {
                break Outcome::Done;
            }
        };
        let _ = socket.close(None).await;
        self.stats
            .connected
            .fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
        outcome
    }
}

enum Outcome {
    /// Every watched replay ended.
    Done,
    /// The run was stopped.
    Stopped,
    /// The connection broke: resume from the last cursor.
    Broken,
    /// Could not connect.
    Refused,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursor_hashes_differ_for_neighbours() {
        let hash = |ms, seq| cursor_hash(Cursor::new(ms, seq));
        assert_ne!(hash(1, 0), hash(1, 1));
        assert_ne!(hash(1, 0), hash(0, 1));
    }
}
