//! Server-Sent Events as the API writes them, and a reader for clients (the tests, the load
//! test) that follows the HTML standard's parsing rules.

use std::fmt::Write as _;

use crate::{Cursor, Kind};

/// One event: `id:` (its cursor, when it has one), `event:` (its kind) and the data, ending
/// with a blank line.
pub fn event(id: Option<Cursor>, kind: Kind, data: &str) -> String {
    let mut sse = String::with_capacity(data.len() + 64);
    if let Some(cursor) = id {
        let _ = writeln!(sse, "id: {cursor}");
    }
    let _ = writeln!(sse, "event: {kind}");
    // A line break inside the data would end the field: each line gets its own `data:` (the
    // reader joins them back with line breaks). Compact JSON has none.
    for line in data.split('\n') {
        let _ = writeln!(sse, "data: {line}");
    }
    sse.push('\n');
    sse
}

/// What opens every stream: how long a browser waits before reconnecting.
pub fn retry(millis: u64) -> String {
    format!("retry: {millis}\n\n")
}

/// A comment line: keeps idle connections (and the proxies between) open.
pub const HEARTBEAT: &str = ":heartbeat\n\n";

/// An event as a client reads it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Event {
    /// The `id:` field, as sent (see [`Event::cursor`]).
    pub id: Option<String>,
    /// The `event:` field; `message` when there was none.
    pub event: String,
    /// The `data:` lines, joined with line breaks.
    pub data: String,
}

impl Event {
    pub fn cursor(&self) -> Option<Cursor> {
        self.id.as_deref()?.parse().ok()
    }

    pub fn kind(&self) -> Option<Kind> {
        self.event.parse().ok()
    }
}

/// Reads events out of a stream's bytes, however the network splits them.
#[derive(Debug, Default)]
pub struct Reader {
    buffer: Vec<u8>,
    /// The latest `retry:` the stream sent.
    pub retry: Option<u64>,
}

impl Reader {
    /// Takes more of the stream.
    pub fn push(&mut self, bytes: &[u8]) {
        self.buffer.extend_from_slice(bytes);
    }

    /// The next whole event, if the stream has one; comments and `retry:`-only blocks are read
    /// and skipped.
    pub fn next_event(&mut self) -> Option<Event> {
        loop {
            let end = self.buffer.windows(2).position(|pair| pair == b"\n\n")?;
            let parsed = parse_block(&self.buffer[..end], &mut self.retry);
            self.buffer.drain(..end + 2);
            if let Some(event) = parsed {
                return Some(event);
            }
        }
    }
}

/// One block of lines: the event, if it has data (a comment or a `retry:` alone has none).
fn parse_block(block: &[u8], retry: &mut Option<u64>) -> Option<Event> {
    let block = String::from_utf8_lossy(block);
    let mut event = Event::default();
    let mut has_data = false;
    for line in block.split('\n') {
        let line = line.strip_suffix('\r').unwrap_or(line);
        if line.starts_with(':') {
            continue;
        }
        let (field, value) = line.split_once(':').unwrap_or((line, ""));
        let value = value.strip_prefix(' ').unwrap_or(value);
        match field {
            "id" => event.id = Some(value.to_owned()),
            "event" => event.event = value.to_owned(),
            "data" => {
                if has_data {
                    event.data.push('\n');
                }
                event.data.push_str(value);
                has_data = true;
            }
            "retry" => *retry = value.parse().ok().or(*retry),
            _ => {}
        }
    }
    if event.event.is_empty() {
        event.event = "message".to_owned();
    }
    has_data.then_some(event)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_event_carries_cursor_kind_and_data() {
        let text = event(Some(Cursor::new(17, 2)), Kind::Update, r#"{"a":1}"#);
        assert_eq!(text, "id: 17-2\nevent: update\ndata: {\"a\":1}\n\n");
    }

    #[test]
    fn a_line_break_in_the_data_gets_a_data_field_of_its_own() {
        let text = event(None, Kind::Snapshot, "{\n\"games\":[]}");
        assert_eq!(text, "event: snapshot\ndata: {\ndata: \"games\":[]}\n\n");
    }

    #[test]
    fn the_reader_gives_back_what_was_written_however_it_is_split() {
        let stream = [
            retry(2000),
            event(None, Kind::Snapshot, "{\n}"),
            HEARTBEAT.to_owned(),
            event(Some(Cursor::new(3, 0)), Kind::Game, "{}"),
        ]
        .concat();
        for split in 0..stream.len() {
            let mut reader = Reader::default();
            let mut events = Vec::new();
            for part in [&stream[..split], &stream[split..]] {
                reader.push(part.as_bytes());
                events.extend(std::iter::from_fn(|| reader.next_event()));
            }
            assert_eq!(reader.retry, Some(2000));
            assert_eq!(events.len(), 2, "split at {split}");
            assert_eq!(events[0].kind(), Some(Kind::Snapshot));
            assert_eq!(events[0].data, "{\n}");
            assert_eq!(events[0].cursor(), None);
            assert_eq!(events[1].cursor(), Some(Cursor::new(3, 0)));
            assert_eq!(events[1].kind(), Some(Kind::Game));
        }
    }
}
