//! What a viewer sees of one match: [`MatchState`] and the types it is made of.
//!
//! Every field here is public knowledge that updates carry to clients (see `update.rs`): a client
//! that starts from [`MatchState::new`] and applies every update in order holds an equal state. The
//! fold's private tallies live apart, in `fold.rs`.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::info::MatchInfo;

/// Home or away.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum Side {
    Home,
    Away,
}

impl Side {
    pub fn opponent(self) -> Side {
        match self {
            Side::Home => Side::Away,
            Side::Away => Side::Home,
        }
    }
}

/// One value per side: the score, each team's statistics, each team's lineup.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Sides<T> {
    pub home: T,
    pub away: T,
}

impl<T> Sides<T> {
    pub fn get(&self, side: Side) -> &T {
        match side {
            Side::Home => &self.home,
            Side::Away => &self.away,
        }
    }

    pub fn get_mut(&mut self, side: Side) -> &mut T {
        match side {
            Side::Home => &mut self.home,
            Side::Away => &mut self.away,
        }
    }
}

/// Goals per side. The shoot-out tally is a `Score` too, but never added to the match score.
pub type Score = Sides<u8>;

/// How a [`Score`] looks on the wire, for the OpenAPI document (its generic `Sides<u8>` would
/// refer to a schema for `u8`, which OpenAPI does not have).
#[cfg(feature = "openapi")]
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
pub struct ScoreSchema {
    pub home: u8,
    pub away: u8,
}

/// Where the match stands. Breaks between periods are statuses of their own, so a client can label
/// them (HT, ET, FT...) without knowing the period rules.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum Status {
    #[default]
    NotStarted,
    FirstHalf,
    HalfTime,
    SecondHalf,
    BeforeExtraTime,
    ExtraTimeFirstHalf,
    ExtraTimeHalfTime,
    ExtraTimeSecondHalf,
    BeforeShootout,
    Shootout,
    Finished,
}

impl Status {
    /// The status while `period` (1 to 5) is being played.
    pub fn playing(period: u8) -> Status {
        match period {
            1 => Status::FirstHalf,
            2 => Status::SecondHalf,
            3 => Status::ExtraTimeFirstHalf,
            4 => Status::ExtraTimeSecondHalf,
            _ => Status::Shootout,
        }
    }

    /// The status after `period` ended, when more periods follow.
    pub fn break_after(period: u8) -> Status {
        match period {
            1 => Status::HalfTime,
            2 => Status::BeforeExtraTime,
            3 => Status::ExtraTimeHalfTime,
            4 => Status::BeforeShootout,
            _ => Status::Finished,
        }
    }

    /// True while a period is being played (the clock runs).
    pub fn is_playing(self) -> bool {
        matches!(
            self,
            Status::FirstHalf
                | Status::SecondHalf
                | Status::ExtraTimeFirstHalf
                | Status::ExtraTimeSecondHalf
                | Status::Shootout
        )
    }
}

/// The match clock as a scoreboard shows it: `minute` runs up to the end of the period's regular
/// time and `added` counts stoppage time beyond it, so 45+2 is `{minute: 45, added: 2}`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Clock {
    pub minute: u16,
    pub added: u16,
}

impl Clock {
    /// The clock for an event of `period` whose StatsBomb `minute` (0-based, counted across the
    /// match) is given: the display minute is `minute + 1`, capped at the period's regular end.
    pub fn at(period: u8, minute: u16) -> Clock {
        let regular_end = regular_end_minute(period);
        let shown = minute.saturating_add(1);
        if shown > regular_end {
            Clock {
                minute: regular_end,
                added: shown - regular_end,
            }
        } else {
            Clock {
                minute: shown,
                added: 0,
            }
        }
    }
}

impl fmt::Display for Clock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.added > 0 {
            write!(f, "{}+{}'", self.minute, self.added)
        } else {
            write!(f, "{}'", self.minute)
        }
    }
}

/// The StatsBomb minute at which `period` starts (periods 1 to 5 start at 0, 45, 90, 105, 120).
pub fn start_minute(period: u8) -> u16 {
    match period {
        0 | 1 => 0,
        2 => 45,
        3 => 90,
        4 => 105,
        _ => 120,
    }
}

/// The last minute of `period`'s regular time; beyond it is stoppage time.
pub fn regular_end_minute(period: u8) -> u16 {
    match period {
        0 | 1 => 45,
        2 => 90,
        3 => 105,
        _ => 120,
    }
}

/// A player as the scoreboard names them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Player {
    pub id: u64,
    pub name: String,
}

/// A team's formation ("4-2-3-1") and starting players.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Lineup {
    pub formation: String,
    pub players: Vec<LineupPlayer>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LineupPlayer {
    pub id: u64,
    pub name: String,
    pub jersey_number: u32,
    pub position: String,
}

/// Writes StatsBomb's numeric formation (4231) the way people read it (4-2-3-1).
pub fn formation_label(formation: u32) -> String {
    let digits = formation.to_string();
    let mut label = String::with_capacity(digits.len() * 2);
    for (i, digit) in digits.chars().enumerate() {
        if i > 0 {
            label.push('-');
        }
        label.push(digit);
    }
    label
}

/// Something a viewer is told about the moment it happens: a goal, a card, a substitution.
/// `id` is the StatsBomb id of the event that caused it, so clients can recognise an amendment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Incident {
    pub id: String,
    pub period: u8,
    pub clock: Clock,
    /// The team the incident belongs to; for an own goal, the team credited with the goal.
    pub side: Side,
    #[serde(flatten)]
    pub detail: IncidentDetail,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum IncidentDetail {
    Goal {
        /// The player who put the ball in the net (for an own goal, a player of the other team).
        /// Unknown only while an own goal's "Against" half has not arrived.
        scorer: Option<Player>,
        kind: GoalKind,
    },
    Card {
        player: Player,
        card: Card,
    },
    Substitution {
        off: Player,
        on: Player,
        /// StatsBomb's reason: "Tactical" or "Injury".
        reason: Option<String>,
    },
}

impl IncidentDetail {
    /// The players it names: the scorer, the player booked, or the two substituted.
    pub fn players(&self) -> impl Iterator<Item = &Player> {
        let (first, second) = match self {
            IncidentDetail::Goal { scorer, .. } => (scorer.as_ref(), None),
            IncidentDetail::Card { player, .. } => (Some(player), None),
            IncidentDetail::Substitution { off, on, .. } => (Some(off), Some(on)),
        };
        first.into_iter().chain(second)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum GoalKind {
    OpenPlay,
    Penalty,
    FreeKick,
    OwnGoal,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum Card {
    Yellow,
    SecondYellow,
    Red,
}

/// A penalty shoot-out: its own tally, and each kick in order.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Shootout {
    #[cfg_attr(feature = "openapi", schema(value_type = ScoreSchema))]
    pub score: Score,
    pub kicks: Vec<ShootoutKick>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ShootoutKick {
    pub side: Side,
    pub player: Option<Player>,
    pub scored: bool,
}

/// One team's statistics over periods 1 to 4 (the shoot-out does not count).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TeamStats {
    pub shots: u16,
    pub shots_on_target: u16,
    /// Expected goals: the sum of StatsBomb's `shot.statsbomb_xg` over the team's shots.
    pub xg: f64,
    pub corners: u16,
    pub fouls: u16,
    /// Yellow cards shown, a second yellow included.
    pub yellow_cards: u16,
    /// Players sent off: straight reds and second yellows.
    pub red_cards: u16,
    pub passes: u16,
    pub passes_completed: u16,
    /// Share of the time played, in percent; the two sides add up to 100.
    pub possession: u8,
}

/// The attacking threat of one match minute: positive for home, negative for away.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct MomentumPoint {
    pub period: u8,
    pub clock: Clock,
    pub value: f64,
}

/// Everything a viewer sees of one match.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct MatchState {
    pub info: MatchInfo,
    pub status: Status,
    /// 0 before kick-off, then 1 to 5 (3 and 4 are extra time, 5 the shoot-out).
    pub period: u8,
    pub clock: Clock,
    #[cfg_attr(feature = "openapi", schema(value_type = ScoreSchema))]
    pub score: Score,
    /// Present once a shoot-out starts.
    pub shootout: Option<Shootout>,
    pub lineups: Sides<Option<Lineup>>,
    /// Goals, cards and substitutions in the order they happened.
    pub incidents: Vec<Incident>,
    pub stats: Sides<TeamStats>,
    /// One point per match minute played, in order.
    pub momentum: Vec<MomentumPoint>,
    /// Every shot of periods 1 to 4 (not the shoot-out), in order: the shot map and the xG
    /// timeline are drawn from these.
    #[serde(default)]
    pub shots: Vec<Shot>,
}

/// A shot as the shot map draws it. Locations are StatsBomb pitch coordinates: 120 x 80 yards,
/// `[x, y]`, with every team attacking towards x = 120.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Shot {
    /// The StatsBomb id of the shot's event.
    pub id: String,
    pub period: u8,
    pub clock: Clock,
    pub side: Side,
    pub player: Option<Player>,
    pub location: Option<[f64; 2]>,
    /// Where the ball ended up (the goal line for a shot on target).
    pub end_location: Option<[f64; 2]>,
    /// StatsBomb's expected goals for the shot (0 when it gives none).
    pub xg: f64,
    /// Right Foot, Left Foot, Head or Other.
    pub body_part: Option<String>,
    /// StatsBomb's outcome: Goal, Saved, Saved to Post, Post, Off T, Wayward, Blocked...
    pub outcome: String,
    /// Open Play, Penalty, Free Kick, Corner or Kick Off.
    pub kind: String,
}

impl Shot {
    pub fn is_goal(&self) -> bool {
        self.outcome == "Goal"
    }
}

impl MatchState {
    /// The state before kick-off.
    pub fn new(info: MatchInfo) -> MatchState {
        MatchState {
            info,
            status: Status::NotStarted,
            period: 0,
            clock: Clock::default(),
            score: Score::default(),
            shootout: None,
            lineups: Sides::default(),
            incidents: Vec::new(),
            stats: Sides {
                home: TeamStats {
                    possession: 50,
                    ..TeamStats::default()
                },
                away: TeamStats {
                    possession: 50,
                    ..TeamStats::default()
                },
            },
            momentum: Vec::new(),
            shots: Vec::new(),
        }
    }

    /// The goals, in order.
    pub fn goals(&self) -> impl Iterator<Item = &Incident> {
        self.incidents
            .iter()
            .filter(|incident| matches!(incident.detail, IncidentDetail::Goal { .. }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stoppage_time_is_shown_apart_from_the_minute() {
        assert_eq!(Clock::at(1, 0).to_string(), "1'");
        assert_eq!(Clock::at(1, 44).to_string(), "45'");
        assert_eq!(
            Clock::at(1, 46),
            Clock {
                minute: 45,
                added: 2
            }
        );
        assert_eq!(Clock::at(2, 45).to_string(), "46'");
        assert_eq!(Clock::at(2, 93).to_string(), "90+4'");
        assert_eq!(Clock::at(3, 104).to_string(), "105'");
        assert_eq!(Clock::at(3, 106).to_string(), "105+2'");
        assert_eq!(Clock::at(4, 121).to_string(), "120+2'");
    }

    #[test]
    fn formations_read_as_people_write_them() {
        assert_eq!(formation_label(4231), "4-2-3-1");
        assert_eq!(formation_label(442), "4-4-2");
    }
}
