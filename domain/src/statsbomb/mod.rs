//! StatsBomb's open-data formats, read with serde: the event list of one match ([`Event`]), the
//! match metadata of a competition season ([`MatchMetadata`]) and the lineups of one match
//! ([`TeamLineup`]).
//!
//! Only the fields the fold uses are typed. Unknown fields and unknown event types are ignored, so a
//! newer StatsBomb file still parses; a file that is not StatsBomb JSON at all is a [`ParseError`]
//! that says where (line and column) it went wrong. Callers that know the file name add it.

mod event;
mod lineups;
mod metadata;

pub use event::{
    BadBehaviour, Carry, Event, EventKind, FoulCommitted, LineupEntry, Named, Pass, Point, Shot,
    Substitution, Tactics,
};
pub use lineups::{LineupPlayer, TeamLineup, nicknames};
pub use metadata::{Competition, MatchMetadata, MetadataTeam, Season};

/// Why some bytes are not a StatsBomb file, and where: serde_json's message with its line and column.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}, column {column}: {message}")]
pub struct ParseError {
    pub line: usize,
    pub column: usize,
    pub message: String,
}

impl From<serde_json::Error> for ParseError {
    fn from(err: serde_json::Error) -> Self {
        // serde_json appends " at line L column C" to its Display; keep the message without it,
        // since the position is reported in its own fields.
        let full = err.to_string();
        let message = match full.rfind(" at line ") {
            Some(cut) => full[..cut].to_owned(),
            None => full,
        };
        ParseError {
            line: err.line(),
            column: err.column(),
            message,
        }
    }
}

/// Parses a StatsBomb events file (a JSON array of events) and returns the events in `index` order,
/// the order in which they are replayed.
pub fn parse_events(bytes: &[u8]) -> Result<Vec<Event>, ParseError> {
    let mut events: Vec<Event> = serde_json::from_slice(bytes)?;
    // StatsBomb files are written in index order; sorting (stable, so ties keep file order) makes
    // the replay order a property of the data rather than of how the file was written.
    events.sort_by_key(|event| event.index);
    Ok(events)
}

/// Parses a StatsBomb lineups file (`lineups/<match_id>.json`: a JSON array of the two teams).
pub fn parse_lineups(bytes: &[u8]) -> Result<Vec<TeamLineup>, ParseError> {
    Ok(serde_json::from_slice(bytes)?)
}

/// Parses a StatsBomb matches file (`matches/<competition>/<season>.json`: a JSON array of matches).
pub fn parse_matches(bytes: &[u8]) -> Result<Vec<MatchMetadata>, ParseError> {
    Ok(serde_json::from_slice(bytes)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_truncated_file_is_an_error_with_its_position() {
        let err = parse_events(b"[{\"id\": \"a\",\n \"index\": 1,").unwrap_err();
        assert_eq!(err.line, 2);
        assert!(err.message.contains("EOF"), "{err}");
    }

    #[test]
    fn valid_json_that_is_not_an_events_file_is_an_error() {
        let err = parse_events(br#"{"match_id": 1}"#).unwrap_err();
        assert!(err.message.contains("expected a sequence"), "{err}");
        let err = parse_events(br#"[{"id": "a"}]"#).unwrap_err();
        assert!(err.message.contains("missing field"), "{err}");
    }

    #[test]
    fn events_come_back_in_index_order() {
        let json = br#"[
          {"id":"b","index":2,"period":1,"timestamp":"00:00:01.000","minute":0,"second":1,"type":{"id":30,"name":"Pass"}},
          {"id":"a","index":1,"period":1,"timestamp":"00:00:00.000","minute":0,"second":0,"type":{"id":35,"name":"Starting XI"}}
        ]"#;
        let events = parse_events(json).unwrap();
        assert_eq!(
            events.iter().map(|e| e.index).collect::<Vec<_>>(),
            vec![1, 2]
        );
    }
}
