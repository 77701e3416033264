//! What travels in the log: one [`Envelope`] per record, holding either a StatsBomb event or a
//! control record (replay started, paused...), in the order the producer sent them.

use livescore_domain::{Event, MatchInfo, Speed};
use serde::{Deserialize, Serialize};

/// One record of the log. The key is the match id, so one match stays in order.
///
/// `run` identifies one replay of a match: a restarted match gets a larger run, and the projector
/// starts it afresh. `seq` counts records within a run, from 0 (the `started` control record):
/// the pair `(run, seq)` is what makes applying a record idempotent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Envelope {
    pub match_id: u64,
    pub run: u64,
    pub seq: u64,
    /// Wall-clock time the producer sent it, in Unix milliseconds (for lag measurements only).
    pub emitted_at_ms: u64,
    #[serde(flatten)]
    pub body: Body,
}

/// `{"event": {...}}` or `{"control": {...}}` beside the envelope's fields.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Body {
    Event(Box<Event>),
    Control(Control),
}

/// What the producer tells the projector about the replay itself.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Control {
    /// A new run of the match begins: the projector starts a fresh fold from `info`.
    Started {
        info: Box<MatchInfo>,
        speed: Speed,
        /// How many events the run will send.
        events: u32,
    },
    Paused,
    Resumed,
    SpeedChanged {
        speed: Speed,
    },
    /// Stopped on request before the end.
    Stopped,
    /// Every event was sent.
    Finished,
    /// The producer could not write a record of this run (after the log's own retries) and
    /// gave up on it: records between the last one written and this one are missing. Written
    /// as soon as the log takes it again, so viewers learn that the match will not go on.
    Failed {
        reason: String,
    },
}

impl Envelope {
    pub fn key(&self) -> String {
        self.match_id.to_string()
    }

    pub fn to_json(&self) -> Vec<u8> {
        // An envelope holds only strings, numbers and derived types: serializing cannot fail.
        serde_json::to_vec(self).unwrap_or_default()
    }

    pub fn from_json(bytes: &[u8]) -> Result<Envelope, serde_json::Error> {
        serde_json::from_slice(bytes)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use livescore_domain::TeamRef;

    use super::*;

    fn started(info: MatchInfo) -> Envelope {
        Envelope {
            match_id: info.match_id,
            run: 1,
            seq: 0,
            emitted_at_ms: 0,
            body: Body::Control(Control::Started {
                info: Box::new(info),
                speed: Speed::Max,
                events: 3,
            }),
        }
    }

    fn info() -> MatchInfo {
        let team = |id, name: &str| TeamRef {
            id,
            name: name.into(),
        };
        MatchInfo::of_teams(15986, team(217, "Barcelona"), team(206, "Girona"))
    }

    #[test]
    fn a_started_record_keeps_the_players_nicknames() {
        // The body is flattened and the control internally tagged: serde buffers both, which
        // loses integer map keys unless they are read back from strings.
        let mut info = info();
        info.nicknames = BTreeMap::from([(5503, "Lionel Messi".to_owned())]);
        let envelope = started(info);
        let json = envelope.to_json();
        assert!(
            String::from_utf8_lossy(&json).contains(r#""nicknames":{"5503":"Lionel Messi"}"#),
            "{}",
            String::from_utf8_lossy(&json)
        );
        assert_eq!(Envelope::from_json(&json).ok(), Some(envelope));
    }

    #[test]
    fn a_nickname_under_a_key_that_is_no_player_id_is_refused() {
        let json = String::from_utf8_lossy(&started(info()).to_json()).replace(
            r#""last_period":2"#,
            r#""last_period":2,"nicknames":{"Messi":"Lionel Messi"}"#,
        );
        let err = Envelope::from_json(json.as_bytes())
            .map(|_| ())
            .unwrap_err();
        assert!(
            err.to_string().contains("\"Messi\" is not a player id"),
            "{err}"
        );
    }
}
