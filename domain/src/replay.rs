//! The vocabulary of a replay, shared by the producer, the event log and the store: how fast a
//! replay runs ([`Speed`]), where it stands ([`ReplayStatus`]), and how long it may stay quiet
//! before it is shown as stalled ([`quiet_allowed`]).

use std::fmt;
use std::time::Duration;

use crate::Status;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// How fast a replay runs: a factor of real time, or as fast as the pipeline takes it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Speed {
    /// Match seconds per wall-clock second: 60 plays a minute of football each second.
    Factor(f64),
    /// No waiting between events.
    Max,
}

impl Speed {
    /// The default of the original demo: a minute of football every second.
    pub const DEFAULT: Speed = Speed::Factor(60.0);
    pub const MIN_FACTOR: f64 = 0.1;
    pub const MAX_FACTOR: f64 = 100_000.0;

    /// Reads a speed as people write it: a number (`60`, `0.5`) or `max`.
    pub fn parse(text: &str) -> Result<Speed, SpeedError> {
        let text = text.trim();
        if text.eq_ignore_ascii_case("max") {
            return Ok(Speed::Max);
        }
        let factor: f64 = text
            .parse()
            .map_err(|_| SpeedError::NotASpeed(crate::excerpt(text)))?;
        Speed::factor(factor)
    }

    /// A factor, checked to be a finite number in range.
    pub fn factor(factor: f64) -> Result<Speed, SpeedError> {
        if factor.is_finite() && (Speed::MIN_FACTOR..=Speed::MAX_FACTOR).contains(&factor) {
            Ok(Speed::Factor(factor))
        } else {
            Err(SpeedError::OutOfRange(factor))
        }
    }
}

impl Default for Speed {
    fn default() -> Self {
        Speed::DEFAULT
    }
}

impl fmt::Display for Speed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Speed::Factor(factor) => write!(f, "{factor}"),
            Speed::Max => f.write_str("max"),
        }
    }
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SpeedError {
    #[error(
        "{0:?} is not a speed: give a number (60 plays a minute of football a second) or \"max\""
    )]
    NotASpeed(String),
    #[error("speed {0} is out of range: it must be from 0.1 to 100000, or \"max\"")]
    OutOfRange(f64),
}

/// On the wire a speed is a number or the string "max".
impl Serialize for Speed {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Speed::Factor(factor) => serializer.serialize_f64(*factor),
            Speed::Max => serializer.serialize_str("max"),
        }
    }
}

impl<'de> Deserialize<'de> for Speed {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Wire {
            Number(f64),
            Text(String),
        }
        match Wire::deserialize(deserializer)? {
            Wire::Number(factor) => Speed::factor(factor),
            Wire::Text(text) => Speed::parse(&text),
        }
        .map_err(serde::de::Error::custom)
    }
}

/// A speed is a number (a factor of real time) or the string "max".
#[cfg(feature = "openapi")]
impl utoipa::PartialSchema for Speed {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{ObjectBuilder, OneOfBuilder, Type};
        OneOfBuilder::new()
            .item(
                ObjectBuilder::new()
                    .schema_type(Type::Number)
                    .minimum(Some(Speed::MIN_FACTOR))
                    .maximum(Some(Speed::MAX_FACTOR))
                    .description(Some("match seconds per wall-clock second")),
            )
            .item(
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .enum_values(Some(["max"]))
                    .description(Some("as fast as the pipeline takes it")),
            )
            .into()
    }
}

#[cfg(feature = "openapi")]
impl utoipa::ToSchema for Speed {}

/// Where a replay stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum ReplayStatus {
    Running,
    Paused,
    /// Every event was sent.
    Finished,
    /// Stopped on request before the end.
    Stopped,
    /// Stopped by an error (a record that could not be written).
    Failed,
}

impl ReplayStatus {
    /// True once the replay will send nothing more.
    pub fn is_over(self) -> bool {
        matches!(
            self,
            ReplayStatus::Finished | ReplayStatus::Stopped | ReplayStatus::Failed
        )
    }
}

/// The longest a replay leaves between two records while the ball is in play, in match time:
/// StatsBomb records an event every few seconds, and the clock's minute changes with them.
pub const QUIET_IN_PLAY: Duration = Duration::from_secs(2 * 60);

/// The same in a break, in match time: the longest break of a real match (half-time, 15 minutes),
/// and some.
pub const QUIET_IN_A_BREAK: Duration = Duration::from_secs(20 * 60);

/// How long, in wall-clock time, a running replay at `speed` may go without a record while the
/// match is at `status` before it is shown as stalled: the quiet its speed allows (a minute of
/// football lasts a second at 60x), plus `grace` for the pipeline's own delays. Past it,
/// something failed (the producer, the broker, the projector's input), whatever it was.
pub fn quiet_allowed(speed: Speed, status: Status, grace: Duration) -> Duration {
    let quiet = match status {
        Status::HalfTime
        | Status::BeforeExtraTime
        | Status::ExtraTimeHalfTime
        | Status::BeforeShootout => QUIET_IN_A_BREAK,
        _ => QUIET_IN_PLAY,
    };
    match speed {
        Speed::Factor(factor) if factor > 0.0 => quiet.div_f64(factor) + grace,
        Speed::Factor(_) | Speed::Max => grace,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_replay_may_stay_quiet_for_what_its_speed_allows() {
        let grace = Duration::from_secs(10);
        // Two minutes of football at 60x are two seconds.
        assert_eq!(
            quiet_allowed(Speed::Factor(60.0), Status::FirstHalf, grace),
            Duration::from_secs(12)
        );
        // Half-time is long: 20 minutes at 60x, 20 seconds.
        assert_eq!(
            quiet_allowed(Speed::Factor(60.0), Status::HalfTime, grace),
            Duration::from_secs(30)
        );
        // Real time: two minutes.
        assert_eq!(
            quiet_allowed(Speed::Factor(1.0), Status::SecondHalf, grace),
            Duration::from_secs(130)
        );
        // As fast as it goes: the grace alone.
        assert_eq!(quiet_allowed(Speed::Max, Status::HalfTime, grace), grace);
    }

    #[test]
    fn speeds_parse_and_are_checked() {
        assert_eq!(Speed::parse("60"), Ok(Speed::Factor(60.0)));
        assert_eq!(Speed::parse(" MAX "), Ok(Speed::Max));
        assert_eq!(Speed::parse("0.5"), Ok(Speed::Factor(0.5)));
        assert!(matches!(
            Speed::parse("fast"),
            Err(SpeedError::NotASpeed(_))
        ));
        for bad in ["0", "-1", "NaN", "inf", "1e9"] {
            assert!(Speed::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn speeds_travel_as_a_number_or_max() {
        assert_eq!(serde_json::to_string(&Speed::Factor(60.0)).unwrap(), "60.0");
        assert_eq!(serde_json::to_string(&Speed::Max).unwrap(), "\"max\"");
        assert_eq!(
            serde_json::from_str::<Speed>("600").unwrap(),
            Speed::Factor(600.0)
        );
        assert_eq!(
            serde_json::from_str::<Speed>("\"max\"").unwrap(),
            Speed::Max
        );
        assert!(serde_json::from_str::<Speed>("-3").is_err());
    }
}
