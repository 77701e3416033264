//! Topics: what a viewer follows. `games` is the feed of every game's summary; `game:<id>` is
//! one match's log. The SSE routes name them by path, the WebSocket by these strings.

use std::fmt;
use std::str::FromStr;

use crate::WireError;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Topic {
    /// Every game's summary, as it changes: `games`.
    Feed,
    /// One match's log: `game:<id>`, a StatsBomb match id.
    Match(u64),
}

/// The WebSocket name of the feed.
pub const FEED: &str = "games";
/// What a match topic's name starts with; the match id follows.
pub const MATCH_PREFIX: &str = "game:";

impl Topic {
    /// The SSE route that streams this topic.
    pub fn sse_path(self) -> String {
        match self {
            Topic::Feed => "/sse/games".to_owned(),
            Topic::Match(id) => format!("/sse/games/{id}"),
        }
    }
}

impl fmt::Display for Topic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Topic::Feed => f.write_str(FEED),
            Topic::Match(id) => write!(f, "{MATCH_PREFIX}{id}"),
        }
    }
}

impl FromStr for Topic {
    type Err = WireError;

    fn from_str(text: &str) -> Result<Self, WireError> {
        if text == FEED {
            return Ok(Topic::Feed);
        }
        text.strip_prefix(MATCH_PREFIX)
            .filter(|id| {
                // A StatsBomb id: digits only (no sign, no path), and fits in a u64.
                !id.is_empty() && id.len() <= 19 && id.bytes().all(|b| b.is_ascii_digit())
            })
            .and_then(|id| id.parse().ok())
            .map(Topic::Match)
            .ok_or_else(|| WireError::Topic(crate::excerpt(text)))
    }
}

string_on_the_wire!(
    Topic,
    pattern: "^(games|game:[0-9]{1,19})$",
    description: "`games` (every game's summary) or `game:<id>` (one match's log)",
    example: "game:7457"
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topics_are_games_or_a_game_id() {
        assert_eq!("games".parse(), Ok(Topic::Feed));
        assert_eq!("game:7471".parse(), Ok(Topic::Match(7471)));
        assert_eq!(Topic::Match(7471).to_string(), "game:7471");
        assert_eq!(Topic::Feed.to_string(), "games");
        for bad in [
            "nope",
            "game:",
            "game:../x",
            "game:+1",
            "game:99999999999999999999",
            "Games",
        ] {
            assert!(bad.parse::<Topic>().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn each_topic_has_its_sse_route() {
        assert_eq!(Topic::Feed.sse_path(), "/sse/games");
        assert_eq!(Topic::Match(7).sse_path(), "/sse/games/7");
    }

    #[test]
    fn a_topic_is_a_json_string() {
        let json = serde_json::to_string(&Topic::Match(3)).unwrap();
        assert_eq!(json, "\"game:3\"");
        assert_eq!(
            serde_json::from_str::<Topic>(&json).unwrap(),
            Topic::Match(3)
        );
        let err = serde_json::from_str::<Topic>("\"x\"").unwrap_err();
        assert!(err.to_string().contains("unknown topic"), "{err}");
    }
}
