//! What the first message of a stream says about how it joined its topic.
//!
//! A client that reconnects with a cursor either resumes (the server still holds what came
//! after it: the stream starts with a `resumed` message, then exactly those entries) or gets a
//! fresh snapshot, whose data says why in `reason`. A client can then tell "nothing missed"
//! from "you were away too long, here is the state as it stands", and show it.

use serde::{Deserialize, Serialize};

use crate::Cursor;

/// Why a stream starts with a snapshot instead of resuming.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum SnapshotReason {
    /// The client gave no cursor (or one that is not a cursor): a first visit.
    NoCursor,
    /// The store does not hold the client's cursor any more (trimmed from the log), or never
    /// handed it out.
    CursorUnknown,
    /// More entries came after the client's cursor than a catch-up sends
    /// (`livescore_api::fanout::CATCH_UP_ENTRIES`): the state as it stands is shorter.
    TooFarBehind,
    /// The cursor is from before the store lost its data and was rebuilt from the event log.
    StoreRebuilt,
}

impl SnapshotReason {
    pub const ALL: [SnapshotReason; 4] = [
        SnapshotReason::NoCursor,
        SnapshotReason::CursorUnknown,
        SnapshotReason::TooFarBehind,
        SnapshotReason::StoreRebuilt,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            SnapshotReason::NoCursor => "no_cursor",
            SnapshotReason::CursorUnknown => "cursor_unknown",
            SnapshotReason::TooFarBehind => "too_far_behind",
            SnapshotReason::StoreRebuilt => "store_rebuilt",
        }
    }
}

/// A snapshot's JSON object with `"reason"` added as its first field. The store's snapshots
/// are objects (`{"kind":"snapshot",...}`); anything else is returned as it was.
pub fn with_reason(snapshot: &str, reason: SnapshotReason) -> String {
    let Some(rest) = snapshot.strip_prefix('{') else {
        return snapshot.to_owned();
    };
    let separator = if rest.trim_start().starts_with('}') {
        ""
    } else {
        ","
    };
    format!(r#"{{"reason":"{}"{separator}{rest}"#, reason.as_str())
}

/// The data of a `resumed` message: `{"kind":"resumed","after":"<cursor>"}`.
pub fn resumed(after: Cursor) -> String {
    format!(r#"{{"kind":"resumed","after":"{after}"}}"#)
}

/// The data of a `resumed` message, as a client reads it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Resumed {
    /// Always `resumed`.
    pub kind: crate::Kind,
    /// The client's cursor: what follows comes after it.
    pub after: Cursor,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_reason_goes_first_into_the_snapshot_object() {
        let with = with_reason(
            r#"{"kind":"snapshot","games":[]}"#,
            SnapshotReason::NoCursor,
        );
        assert_eq!(
            with,
            r#"{"reason":"no_cursor","kind":"snapshot","games":[]}"#
        );
        let value: serde_json::Value = serde_json::from_str(&with).unwrap();
        assert_eq!(value["reason"], "no_cursor");
        assert_eq!(
            with_reason("{}", SnapshotReason::StoreRebuilt),
            r#"{"reason":"store_rebuilt"}"#
        );
        assert_eq!(with_reason("[1]", SnapshotReason::NoCursor), "[1]");
    }

    #[test]
    fn reasons_are_written_as_serde_writes_them() {
        for reason in SnapshotReason::ALL {
            let json = serde_json::to_string(&reason).unwrap();
            assert_eq!(json, format!("\"{}\"", reason.as_str()));
        }
    }

    #[test]
    fn a_resumed_message_names_the_cursor_it_resumed_after() {
        let json = resumed(Cursor::new(1_700_000_000_000, 3));
        let read: Resumed = serde_json::from_str(&json).unwrap();
        assert_eq!(read.kind, crate::Kind::Resumed);
        assert_eq!(read.after, Cursor::new(1_700_000_000_000, 3));
    }
}
