//! Message kinds: the SSE `event:` name, and a WebSocket frame's `kind`.

use serde::{Deserialize, Serialize};

use crate::{Topic, WireError};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum Kind {
    /// A topic as it stands: the first message of a stream that could not resume (its data
    /// says why, in `reason`: see [`crate::SnapshotReason`]), and in a match's log the first
    /// entry of each run (no `reason`).
    Snapshot,
    /// The first message of a stream that resumed after the client's cursor: nothing was
    /// missed, what follows is exactly what came after it. Its data: `{"kind":"resumed","after"}`.
    Resumed,
    /// A change in a match (an `Entry::Update`).
    Update,
    /// A match's replay was started, paused, resumed, sped up, stopped or finished.
    Replay,
    /// A game's summary changed (on the `games` topic).
    Game,
    /// How many are watching, at most every few seconds and only when it changed: on a match,
    /// `{"kind":"presence","watching","site"}`; on `games`, `{"kind":"presence","site","games"}`
    /// (`games`: every watched game's count in the first, then only those that changed).
    /// Not in the log: it has no cursor, and a client resuming gets the next one.
    Presence,
    /// WebSocket only: the topic is no longer followed.
    Unsubscribed,
    /// WebSocket only: the request was not understood; the connection stays.
    Error,
}

impl Kind {
    /// Every kind, in declaration order (for `web/wire.js` and its test).
    pub const ALL: [Kind; 8] = [
        Kind::Snapshot,
        Kind::Resumed,
        Kind::Update,
        Kind::Replay,
        Kind::Game,
        Kind::Presence,
        Kind::Unsubscribed,
        Kind::Error,
    ];

    /// The kinds an SSE stream carries (a WebSocket adds `unsubscribed` and `error`).
    pub const SSE: [Kind; 6] = [
        Kind::Snapshot,
        Kind::Resumed,
        Kind::Update,
        Kind::Replay,
        Kind::Game,
        Kind::Presence,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            Kind::Snapshot => "snapshot",
            Kind::Resumed => "resumed",
            Kind::Update => "update",
            Kind::Replay => "replay",
            Kind::Game => "game",
            Kind::Presence => "presence",
            Kind::Unsubscribed => "unsubscribed",
            Kind::Error => "error",
        }
    }

    /// The kind of a log entry of `topic` as the store holds it: a feed entry is a `game`; a
    /// match log entry names its own kind in its `kind` field (a snapshot, update or replay).
    pub fn of_entry(topic: Topic, json: &str) -> Result<Kind, WireError> {
        #[derive(Deserialize)]
        struct Tagged {
            kind: Kind,
        }
        match topic {
            Topic::Feed => Ok(Kind::Game),
            Topic::Match(_) => match serde_json::from_str::<Tagged>(json) {
                Ok(Tagged {
                    kind: kind @ (Kind::Snapshot | Kind::Update | Kind::Replay),
                }) => Ok(kind),
                Ok(Tagged { kind }) => Err(WireError::EntryKind(format!("kind {kind:?}"))),
                Err(err) => Err(WireError::EntryKind(err.to_string())),
            },
        }
    }
}

impl std::str::FromStr for Kind {
    type Err = WireError;

    fn from_str(text: &str) -> Result<Kind, WireError> {
        Kind::ALL
            .into_iter()
            .find(|kind| kind.as_str() == text)
            .ok_or_else(|| WireError::EntryKind(format!("kind {:?}", crate::excerpt(text))))
    }
}

impl std::fmt::Display for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_entry_is_named_by_its_kind_and_a_feed_summary_is_a_game() {
        let of = |topic, json| Kind::of_entry(topic, json);
        assert_eq!(
            of(Topic::Match(1), r#"{"kind":"replay","x":1}"#),
            Ok(Kind::Replay)
        );
        assert_eq!(
            of(Topic::Match(1), r#"{"x":[1],"kind":"update"}"#),
            Ok(Kind::Update)
        );
        assert_eq!(of(Topic::Feed, r#"{"kind":"replay"}"#), Ok(Kind::Game));
        assert!(of(Topic::Match(1), r#"{"kind":"goal"}"#).is_err());
        assert!(of(Topic::Match(1), r#"{"kind":"error"}"#).is_err());
        assert!(of(Topic::Match(1), "{}").is_err());
    }

    #[test]
    fn kinds_are_written_as_serde_writes_them_and_read_back() {
        for kind in Kind::ALL {
            let json = serde_json::to_string(&kind).unwrap();
            assert_eq!(json, format!("\"{}\"", kind.as_str()));
            assert_eq!(kind.as_str().parse(), Ok(kind));
        }
        assert!("goal".parse::<Kind>().is_err());
    }
}
