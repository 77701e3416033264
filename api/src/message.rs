//! One message for live clients, encoded at most once for each transport.
//!
//! The hub wraps each live entry in an `Arc<Message>` when it arrives and hands the same one to
//! every shard. The first SSE viewer to need it encodes the SSE event (as a chunk of the chunked
//! body, ready for the socket), the first WebSocket viewer the text frame (header included);
//! every other viewer's socket is given those very bytes. Serving ten thousand viewers costs ten
//! thousand reference counts, not ten thousand copies. (Entries read for one viewer, on a
//! catch-up or a snapshot, are encoded for it alone.)

use std::fmt::Write as _;
use std::sync::{Arc, OnceLock};

use axum::body::Bytes;
use livescore_store::{Published, Topic, parse_cursor};

use crate::fanout::wire;

#[derive(Debug)]
pub struct Message {
    pub topic: Topic,
    /// The resume cursor: `None` only for a snapshot of a topic with no entry yet.
    pub cursor: Option<String>,
    /// The cursor, parsed: where the message stands in its topic's log.
    pub position: Option<(u64, u64)>,
    /// `snapshot`, `update`, `replay` (a match) or `game` (the feed).
    pub kind: &'static str,
    /// The entry's JSON, as the store holds it.
    pub json: Arc<str>,
    /// When the replica got it (the fan-out's metrics measure from here).
    pub arrived: std::time::Instant,
    sse: OnceLock<Bytes>,
    ws: OnceLock<Bytes>,
}

impl Message {
    pub fn new(
        topic: Topic,
        cursor: Option<String>,
        kind: &'static str,
        json: Arc<str>,
    ) -> Arc<Self> {
        Arc::new(Message {
            topic,
            position: cursor.as_deref().and_then(parse_cursor),
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
        let kind = kind_of(entry.topic, &entry.json);
        Message::new(entry.topic, Some(entry.cursor), kind, entry.json)
    }

    /// The SSE event: `id:`, `event:`, `data:` lines and the blank line that ends it.
    pub fn sse_event(&self) -> String {
        let mut sse = String::with_capacity(self.json.len() + 64);
        if let Some(cursor) = &self.cursor {
            let _ = writeln!(sse, "id: {cursor}");
        }
        let _ = writeln!(sse, "event: {}", self.kind);
        // A line break inside the data would end the field: each line gets its own `data:`
        // (the browser joins them back with line breaks). Compact JSON has none.
        for line in self.json.split('\n') {
            let _ = writeln!(sse, "data: {line}");
        }
        sse.push('\n');
        sse
    }

    /// The SSE event as one chunk of the stream's chunked body: the bytes for the socket.
    pub fn sse_chunk(&self) -> Bytes {
        self.sse
            .get_or_init(|| wire::chunk(self.sse_event().as_bytes()))
            .clone()
    }

    /// The WebSocket message: `{"topic","kind","cursor","data"}`, the entry as `data`.
    pub fn ws_text(&self) -> String {
        let cursor = self
            .cursor
            .as_deref()
            .map_or_else(|| "null".to_owned(), |c| format!("\"{c}\""));
        let mut ws = String::with_capacity(self.json.len() + 96);
        let _ = write!(
            ws,
            r#"{{"topic":"{}","kind":"{}","cursor":{cursor},"data":{}}}"#,
            topic_name(self.topic),
            self.kind,
            self.json
        );
        ws
    }

    /// The WebSocket text frame, header included: the bytes for the socket.
    pub fn ws_frame(&self) -> Bytes {
        self.ws
            .get_or_init(|| wire::frame(wire::TEXT, self.ws_text().as_bytes()))
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

/// The event name of an entry: the `kind` of a match log entry (serde writes the tag first, so a
/// prefix test is enough), `game` for a feed summary.
fn kind_of(topic: Topic, json: &str) -> &'static str {
    match topic {
        Topic::Feed => "game",
        Topic::Match(_) => {
            let after = json.strip_prefix("{\"kind\":\"").unwrap_or_default();
            ["update", "replay", "snapshot"]
                .into_iter()
                .find(|kind| after.starts_with(kind))
                .unwrap_or("update")
        }
    }
}

/// A topic's name on the WebSocket: `games` or `game:<id>`.
pub fn topic_name(topic: Topic) -> String {
    match topic {
        Topic::Feed => "games".into(),
        Topic::Match(id) => format!("game:{id}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sse_event_carries_cursor_kind_and_data() {
        let message = Message::new(
            Topic::Match(7),
            Some("17-2".into()),
            "update",
            Arc::from(r#"{"a":1}"#),
        );
        let event = "id: 17-2\nevent: update\ndata: {\"a\":1}\n\n";
        assert_eq!(message.sse_event(), event);
        assert_eq!(
            message.sse_chunk(),
            format!("{:x}\r\n{event}\r\n", event.len()).as_bytes()
        );
        assert_eq!(message.position, Some((17, 2)));
    }

    #[test]
    fn a_line_break_in_the_data_gets_a_data_field_of_its_own() {
        let message = Message::new(Topic::Feed, None, "snapshot", Arc::from("{\n\"games\":[]}"));
        assert_eq!(
            message.sse_event(),
            "event: snapshot\ndata: {\ndata: \"games\":[]}\n\n"
        );
        assert_eq!(message.position, None);
    }

    #[test]
    fn the_websocket_frame_is_json_with_the_entry_as_data() {
        let entry = r#"{"kind":"update","n":[1,2]}"#;
        let message = Message::new(
            Topic::Match(7457),
            Some("5-0".into()),
            "update",
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

        let first = Message::new(Topic::Feed, None, "snapshot", Arc::from("{}"));
        let frame: serde_json::Value = serde_json::from_str(&first.ws_text()).unwrap();
        assert_eq!(frame["topic"], "games");
        assert!(frame["cursor"].is_null());
    }

    #[test]
    fn an_entry_is_named_by_its_kind_and_a_feed_summary_is_a_game() {
        let entry = |topic, json: &str| Published {
            topic,
            cursor: "9-1".into(),
            json: Arc::from(json),
        };
        let named = |published| Message::of_entry(published).kind;
        assert_eq!(
            named(entry(Topic::Match(1), r#"{"kind":"replay","x":1}"#)),
            "replay"
        );
        assert_eq!(
            named(entry(Topic::Match(1), r#"{"kind":"update"}"#)),
            "update"
        );
        assert_eq!(named(entry(Topic::Feed, r#"{"kind":"replay"}"#)), "game");
    }
}
