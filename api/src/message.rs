//! One message for live clients, encoded at most once for each transport.
//!
//! The hub wraps each live entry in an `Arc<Message>` when it arrives and hands the same one to
//! every shard. The first SSE viewer to need it encodes the SSE event (as a chunk of the chunked
//! body, ready for the socket), the first WebSocket viewer the text frame (header included);
//! every other viewer's socket is given those very bytes. Serving ten thousand viewers costs ten
//! thousand reference counts, not ten thousand copies. (Entries read for one viewer, on a
//! catch-up or a snapshot, are encoded for it alone.)

use std::sync::{Arc, OnceLock};

use axum::body::Bytes;
use livescore_store::{Cursor, Kind, Published, Topic};
use livescore_wire::{ServerFrame, sse};
use serde_json::value::RawValue;

use crate::framing::{chunked, websocket};

#[derive(Debug)]
pub struct Message {
    pub topic: Topic,
    /// Where the message stands in its topic's log, the cursor to resume after: `None` only
    /// for a snapshot of a topic with no entry yet.
    pub cursor: Option<Cursor>,
    pub kind: Kind,
    /// The entry's JSON, as the store holds it.
    pub json: Arc<str>,
    /// When the replica got it (the fan-out's metrics measure from here).
    pub arrived: std::time::Instant,
    sse: OnceLock<Bytes>,
    ws: OnceLock<Bytes>,
}

impl Message {
    pub fn new(topic: Topic, cursor: Option<Cursor>, kind: Kind, json: Arc<str>) -> Arc<Self> {
        Arc::new(Message {
            topic,
            cursor,
            kind,
            json,
            arrived: std::time::Instant::now(),
            sse: OnceLock::new(),
            ws: OnceLock::new(),
        })
    }

    /// A log entry of the store, as it was published.
    pub fn of_entry(entry: Published) -> Arc<Self> {
        Message::new(entry.topic, Some(entry.cursor), entry.kind, entry.json)
    }

    /// The SSE event: `id:`, `event:`, `data:` lines and the blank line that ends it.
    pub fn sse_event(&self) -> String {
        sse::event(self.cursor, self.kind, &self.json)
    }

    /// The SSE event as one chunk of the stream's chunked body: the bytes for the socket.
    pub fn sse_chunk(&self) -> Bytes {
        self.sse
            .get_or_init(|| chunked::chunk(self.sse_event().as_bytes()))
            .clone()
    }

    /// The WebSocket message: `{"topic","kind","cursor","data"}`, the entry as `data`.
    pub fn ws_text(&self) -> String {
        // The store hands out JSON it wrote itself; were it not JSON, the frame says so
        // rather than carrying it.
        match serde_json::from_str::<&RawValue>(&self.json) {
            Ok(data) => ServerFrame::entry(self.topic, self.kind, self.cursor, data).to_json(),
            Err(err) => {
                tracing::error!(topic = %self.topic, "an entry that is not JSON: {err}");
                ServerFrame::error(format!("{}: an entry could not be read", self.topic)).to_json()
            }
        }
    }

    /// The WebSocket text frame, header included: the bytes for the socket.
    pub fn ws_frame(&self) -> Bytes {
        self.ws
            .get_or_init(|| websocket::frame(websocket::TEXT, self.ws_text().as_bytes()))
            .clone()
    }

    /// The bytes for a socket of either transport.
    pub fn bytes_for(&self, websocket: bool) -> Bytes {
        if websocket {
            self.ws_frame()
        } else {
            self.sse_chunk()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sse_chunk_is_the_event_in_one_chunk() {
        let message = Message::new(
            Topic::Match(7),
            Some(Cursor::new(17, 2)),
            Kind::Update,
            Arc::from(r#"{"a":1}"#),
        );
        let event = "id: 17-2\nevent: update\ndata: {\"a\":1}\n\n";
        assert_eq!(message.sse_event(), event);
        assert_eq!(
            message.sse_chunk(),
            format!("{:x}\r\n{event}\r\n", event.len()).as_bytes()
        );
    }

    #[test]
    fn the_websocket_frame_is_json_with_the_entry_as_data() {
        let entry = r#"{"kind":"update","n":[1,2]}"#;
        let message = Message::new(
            Topic::Match(7457),
            Some(Cursor::new(5, 0)),
            Kind::Update,
            Arc::from(entry),
        );
        let text = message.ws_text();
        let frame: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(frame["topic"], "game:7457");
        assert_eq!(frame["kind"], "update");
        assert_eq!(frame["cursor"], "5-0");
        assert_eq!(frame["data"]["n"][1], 2);
        // The frame carries the text after its header, and is encoded once: every client
        // shares the same bytes.
        assert!(message.ws_frame().ends_with(text.as_bytes()));
        assert_eq!(message.ws_frame().as_ptr(), message.ws_frame().as_ptr());

        let first = Message::new(Topic::Feed, None, Kind::Snapshot, Arc::from("{}"));
        let frame: serde_json::Value = serde_json::from_str(&first.ws_text()).unwrap();
        assert_eq!(frame["topic"], "games");
        assert!(frame["cursor"].is_null());
    }

    #[test]
    fn an_entry_that_is_not_json_becomes_an_error_frame() {
        let broken = Message::new(Topic::Feed, None, Kind::Game, Arc::from("{"));
        let frame: serde_json::Value = serde_json::from_str(&broken.ws_text()).unwrap();
        assert_eq!(frame["kind"], "error");
    }
}
