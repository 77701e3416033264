//! One StatsBomb event, typed as far as the fold needs it.

use serde::{Deserialize, Deserializer, Serialize, Serializer, de};

/// A `{"id": .., "name": ..}` reference: how StatsBomb writes teams, players, event types and outcomes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Named {
    pub id: u64,
    pub name: String,
}

/// One event of a match. `timestamp` restarts at zero each period; `minute`/`second` count across
/// the whole match (periods start at minute 0, 45, 90, 105, 120).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    pub id: String,
    pub index: u32,
    pub period: u8,
    /// Milliseconds since the start of the period (StatsBomb writes `"HH:MM:SS.mmm"`).
    #[serde(with = "timestamp")]
    pub timestamp: u32,
    pub minute: u16,
    pub second: u8,
    #[serde(rename = "type")]
    pub event_type: Named,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub team: Option<Named>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub player: Option<Named>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub possession_team: Option<Named>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<Point>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub related_events: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shot: Option<Shot>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pass: Option<Pass>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub carry: Option<Carry>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub foul_committed: Option<FoulCommitted>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bad_behaviour: Option<BadBehaviour>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub substitution: Option<Substitution>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tactics: Option<Tactics>,
}

/// The event types the fold acts on; every other type is [`EventKind::Other`] and changes nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    StartingXi,
    HalfStart,
    HalfEnd,
    Shot,
    Pass,
    Carry,
    FoulCommitted,
    BadBehaviour,
    Substitution,
    TacticalShift,
    OwnGoalFor,
    OwnGoalAgainst,
    Other,
}

impl Event {
    pub fn kind(&self) -> EventKind {
        match self.event_type.name.as_str() {
            "Starting XI" => EventKind::StartingXi,
            "Half Start" => EventKind::HalfStart,
            "Half End" => EventKind::HalfEnd,
            "Shot" => EventKind::Shot,
            "Pass" => EventKind::Pass,
            "Carry" => EventKind::Carry,
            "Foul Committed" => EventKind::FoulCommitted,
            "Bad Behaviour" => EventKind::BadBehaviour,
            "Substitution" => EventKind::Substitution,
            "Tactical Shift" => EventKind::TacticalShift,
            "Own Goal For" => EventKind::OwnGoalFor,
            "Own Goal Against" => EventKind::OwnGoalAgainst,
            _ => EventKind::Other,
        }
    }

    pub fn team_id(&self) -> Option<u64> {
        self.team.as_ref().map(|team| team.id)
    }
}

/// A pitch position in StatsBomb's 120 x 80 frame, where the acting team always attacks towards
/// x = 120. StatsBomb writes `[x, y]`, or `[x, y, z]` for some shot end locations (z is dropped).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Point {
    pub x: f64,
    pub y: f64,
}

impl<'de> Deserialize<'de> for Point {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct PointVisitor;
        impl<'de> de::Visitor<'de> for PointVisitor {
            type Value = Point;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a location of 2 or 3 numbers")
            }
            // Reads the numbers in place: a match has thousands of locations, none worth a Vec.
            fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Point, A::Error> {
                let x = seq
                    .next_element()?
                    .ok_or_else(|| de::Error::invalid_length(0, &self))?;
                let y = seq
                    .next_element()?
                    .ok_or_else(|| de::Error::invalid_length(1, &self))?;
                let _z: Option<f64> = seq.next_element()?;
                if seq.next_element::<de::IgnoredAny>()?.is_some() {
                    return Err(de::Error::invalid_length(4, &self));
                }
                Ok(Point { x, y })
            }
        }
        deserializer.deserialize_seq(PointVisitor)
    }
}

impl Serialize for Point {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        [self.x, self.y].serialize(serializer)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Shot {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub statsbomb_xg: Option<f64>,
    pub outcome: Named,
    /// Open Play, Penalty, Free Kick, Corner or Kick Off.
    #[serde(rename = "type")]
    pub shot_type: Named,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_location: Option<Point>,
    /// Right Foot, Left Foot, Head or Other.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body_part: Option<Named>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Pass {
    /// Present for set pieces: Corner, Free Kick, Throw-in, Goal Kick, Kick Off...
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub pass_type: Option<Named>,
    /// Absent when the pass was completed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcome: Option<Named>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_location: Option<Point>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Carry {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_location: Option<Point>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FoulCommitted {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub card: Option<Named>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BadBehaviour {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub card: Option<Named>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Substitution {
    /// The player coming on (the event's `player` goes off).
    pub replacement: Named,
    /// Tactical or Injury.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcome: Option<Named>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Tactics {
    /// StatsBomb writes formations as numbers: 4231 is 4-2-3-1.
    pub formation: u32,
    #[serde(default)]
    pub lineup: Vec<LineupEntry>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LineupEntry {
    pub player: Named,
    pub position: Named,
    pub jersey_number: u32,
}

/// `"HH:MM:SS.mmm"` <-> milliseconds.
mod timestamp {
    use serde::{Deserializer, Serializer, de};

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<u32, D::Error> {
        struct TimestampVisitor;
        impl de::Visitor<'_> for TimestampVisitor {
            type Value = u32;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a timestamp HH:MM:SS.mmm")
            }
            // Any string, borrowed or not: no allocation for the common case.
            fn visit_str<E: de::Error>(self, text: &str) -> Result<u32, E> {
                parse(text)
                    .ok_or_else(|| de::Error::invalid_value(de::Unexpected::Str(text), &self))
            }
        }
        deserializer.deserialize_str(TimestampVisitor)
    }

    pub fn serialize<S: Serializer>(millis: &u32, serializer: S) -> Result<S::Ok, S::Error> {
        let (hours, rest) = (millis / 3_600_000, millis % 3_600_000);
        let (minutes, rest) = (rest / 60_000, rest % 60_000);
        let (seconds, millis) = (rest / 1000, rest % 1000);
        serializer.serialize_str(&format!("{hours:02}:{minutes:02}:{seconds:02}.{millis:03}"))
    }

    pub(super) fn parse(text: &str) -> Option<u32> {
        let (clock, fraction) = text.split_once('.').unwrap_or((text, "0"));
        let mut parts = clock.split(':');
        let hours: u32 = parts.next()?.parse().ok()?;
        let minutes: u32 = parts.next()?.parse().ok()?;
        let seconds: u32 = parts.next()?.parse().ok()?;
        if parts.next().is_some() || minutes >= 60 || seconds >= 60 || hours > 24 {
            return None;
        }
        // Milliseconds from the fraction's first three digits ("5" is 500 ms, "123456" is 123 ms).
        if fraction.is_empty() || !fraction.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let millis = fraction
            .bytes()
            .chain(std::iter::repeat(b'0'))
            .take(3)
            .fold(0, |acc, digit| acc * 10 + u32::from(digit - b'0'));
        Some(((hours * 60 + minutes) * 60 + seconds) * 1000 + millis)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_parse_to_milliseconds() {
        assert_eq!(timestamp::parse("00:00:00.000"), Some(0));
        assert_eq!(timestamp::parse("00:45:04.772"), Some(2_704_772));
        assert_eq!(timestamp::parse("01:02:03.5"), Some(3_723_500));
        assert_eq!(timestamp::parse("00:00:01"), Some(1000));
        assert_eq!(timestamp::parse("00:61:00.000"), None);
        assert_eq!(timestamp::parse("yesterday"), None);
        assert_eq!(timestamp::parse("00:00:01.x"), None);
    }

    #[test]
    fn unknown_fields_and_types_are_ignored_and_bad_fields_are_not() {
        let json = r#"{"id":"e","index":7,"period":2,"timestamp":"00:01:02.003","minute":46,"second":2,
            "type":{"id":999,"name":"Something New"},"brand_new_field":{"x":[1,2,3]},
            "location":[60.5,40.0]}"#;
        let event: Event = serde_json::from_str(json).unwrap();
        assert_eq!(event.kind(), EventKind::Other);
        assert_eq!(event.timestamp, 62_003);
        assert_eq!(event.location, Some(Point { x: 60.5, y: 40.0 }));

        let bad = json.replace("00:01:02.003", "one minute");
        let err = serde_json::from_str::<Event>(&bad).unwrap_err();
        assert!(err.to_string().contains("HH:MM:SS.mmm"), "{err}");
        let bad = json.replace("[60.5,40.0]", "[60.5]");
        assert!(serde_json::from_str::<Event>(&bad).is_err());
    }

    #[test]
    fn an_event_survives_a_serde_round_trip() {
        let json = r#"{"id":"e","index":7,"period":2,"timestamp":"00:01:02.003","minute":46,"second":2,
            "type":{"id":16,"name":"Shot"},"team":{"id":1,"name":"A"},
            "shot":{"statsbomb_xg":0.5,"outcome":{"id":97,"name":"Goal"},"type":{"id":88,"name":"Penalty"},
                    "end_location":[120.0,40.0,1.5]}}"#;
        let event: Event = serde_json::from_str(json).unwrap();
        let again: Event = serde_json::from_str(&serde_json::to_string(&event).unwrap()).unwrap();
        assert_eq!(event, again);
    }
}
