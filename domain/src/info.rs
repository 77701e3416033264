//! [`MatchInfo`]: what is known of a match before its first event is folded (who plays whom, where,
//! and how many periods the recording has), and the checks that an events file fits it.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::state::{Player, Side};
use crate::statsbomb::{Event, EventKind, MatchMetadata};

/// A team as the scoreboard names it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TeamRef {
    pub id: u64,
    pub name: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct MatchInfo {
    pub match_id: u64,
    pub home: TeamRef,
    pub away: TeamRef,
    pub competition: Option<String>,
    pub season: Option<String>,
    /// `YYYY-MM-DD`, as StatsBomb writes it.
    pub date: Option<String>,
    pub kick_off: Option<String>,
    pub stadium: Option<String>,
    /// The last period of the recording (2, or 4 after extra time, or 5 with a shoot-out): its
    /// "Half End" is the final whistle. A live feed knows this from the referee; a replay from the file.
    pub last_period: u8,
    /// The names players are known by, by player id, where it is not the full name the events
    /// give ("Lionel Messi" for "Lionel Andrés Messi Cuccittini"): from the lineups file, if
    /// there is one. Screens show these; the fold keeps the events' names.
    #[serde(
        default,
        skip_serializing_if = "BTreeMap::is_empty",
        deserialize_with = "player_ids::deserialize"
    )]
    // JSON object keys are strings: the ids are written as digits.
    #[cfg_attr(feature = "openapi", schema(value_type = BTreeMap<String, String>))]
    pub nicknames: BTreeMap<u64, String>,
}

/// A map keyed by player id, read back from JSON's string keys by hand: inside an internally
/// tagged enum (the log's records) serde buffers the map, and its buffer gives integer keys
/// only as the strings JSON has.
mod player_ids {
    use std::collections::BTreeMap;

    use serde::de::Error;
    use serde::{Deserialize, Deserializer};

    pub fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<BTreeMap<u64, String>, D::Error> {
        BTreeMap::<String, String>::deserialize(deserializer)?
            .into_iter()
            .map(|(id, name)| match id.parse() {
                Ok(id) => Ok((id, name)),
                Err(_) => Err(D::Error::custom(format!(
                    "{id:?} is not a player id: nicknames are keyed by StatsBomb player ids"
                ))),
            })
            .collect()
    }
}

/// Why an events file cannot be folded as the match it claims to be.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InfoError {
    #[error("the events file holds no events")]
    NoEvents,
    #[error(
        "cannot tell the teams: there is no match metadata and the events have no two Starting XI events"
    )]
    NoTeams,
    #[error("the match metadata is for match {metadata}, not {requested}")]
    WrongMetadata { requested: u64, metadata: u64 },
    #[error(
        "event {index}: team {team_id} ({team_name}) is neither the home team ({home}) nor the away team ({away})"
    )]
    UnknownTeam {
        index: u32,
        team_id: u64,
        team_name: String,
        home: String,
        away: String,
    },
    #[error("event {index}: period {period} is not a StatsBomb period (1 to 5)")]
    BadPeriod { index: u32, period: u8 },
}

impl MatchInfo {
    /// Builds the info of match `match_id` from its metadata where there is some (StatsBomb's
    /// `matches/` files: names, date, home and away), else from its two "Starting XI" events (the
    /// first is the home team), and checks that every event fits: a known team and a real period.
    pub fn new(
        match_id: u64,
        metadata: Option<&MatchMetadata>,
        events: &[Event],
    ) -> Result<MatchInfo, InfoError> {
        if events.is_empty() {
            return Err(InfoError::NoEvents);
        }
        let mut info = match metadata {
            Some(metadata) if metadata.match_id != match_id => {
                return Err(InfoError::WrongMetadata {
                    requested: match_id,
                    metadata: metadata.match_id,
                });
            }
            Some(metadata) => MatchInfo::from_metadata(metadata),
            None => MatchInfo::from_starting_elevens(match_id, events)?,
        };
        for event in events {
            if !(1..=5).contains(&event.period) {
                return Err(InfoError::BadPeriod {
                    index: event.index,
                    period: event.period,
                });
            }
            for team in event.team.iter().chain(&event.possession_team) {
                if info.side_of(team.id).is_none() {
                    return Err(InfoError::UnknownTeam {
                        index: event.index,
                        team_id: team.id,
                        team_name: team.name.clone(),
                        home: info.home.name.clone(),
                        away: info.away.name.clone(),
                    });
                }
            }
            info.last_period = info.last_period.max(event.period);
        }
        Ok(info)
    }

    fn from_metadata(metadata: &MatchMetadata) -> MatchInfo {
        MatchInfo {
            match_id: metadata.match_id,
            home: TeamRef {
                id: metadata.home_team.id,
                name: metadata.home_team.name.clone(),
            },
            away: TeamRef {
                id: metadata.away_team.id,
                name: metadata.away_team.name.clone(),
            },
            competition: Some(metadata.competition.competition_name.clone()),
            season: Some(metadata.season.season_name.clone()),
            date: Some(metadata.match_date.clone()),
            kick_off: metadata.kick_off.clone(),
            stadium: metadata
                .stadium
                .as_ref()
                .map(|stadium| stadium.name.clone()),
            last_period: 1,
            nicknames: BTreeMap::new(),
        }
    }

    fn from_starting_elevens(match_id: u64, events: &[Event]) -> Result<MatchInfo, InfoError> {
        let mut teams = events
            .iter()
            .filter(|event| event.kind() == EventKind::StartingXi)
            .filter_map(|event| event.team.as_ref());
        let (Some(home), Some(away)) = (teams.next(), teams.next()) else {
            return Err(InfoError::NoTeams);
        };
        if home.id == away.id {
            return Err(InfoError::NoTeams);
        }
        let team = |team: &crate::statsbomb::Named| TeamRef {
            id: team.id,
            name: team.name.clone(),
        };
        Ok(MatchInfo {
            last_period: 1,
            ..MatchInfo::of_teams(match_id, team(home), team(away))
        })
    }

    /// This info with only the nicknames of `players`: what a line that names just them needs
    /// (the games list names a match's latest incident), without copying both squads'.
    pub fn naming<'a>(&self, players: impl IntoIterator<Item = &'a Player>) -> MatchInfo {
        let nicknames = players
            .into_iter()
            .filter_map(|player| Some((player.id, self.nicknames.get(&player.id)?.clone())))
            .collect();
        // Every field named, so that a new one is not forgotten here.
        MatchInfo {
            match_id: self.match_id,
            home: self.home.clone(),
            away: self.away.clone(),
            competition: self.competition.clone(),
            season: self.season.clone(),
            date: self.date.clone(),
            kick_off: self.kick_off.clone(),
            stadium: self.stadium.clone(),
            last_period: self.last_period,
            nicknames,
        }
    }

    /// What is known of a match from its teams alone: no competition, season, date, kick-off or
    /// stadium, and two halves.
    pub fn of_teams(match_id: u64, home: TeamRef, away: TeamRef) -> MatchInfo {
        MatchInfo {
            match_id,
            home,
            away,
            competition: None,
            season: None,
            date: None,
            kick_off: None,
            stadium: None,
            last_period: 2,
            nicknames: BTreeMap::new(),
        }
    }

    /// Which side a StatsBomb team id plays on, if either.
    pub fn side_of(&self, team_id: u64) -> Option<Side> {
        if team_id == self.home.id {
            Some(Side::Home)
        } else if team_id == self.away.id {
            Some(Side::Away)
        } else {
            None
        }
    }

    pub fn team(&self, side: Side) -> &TeamRef {
        match side {
            Side::Home => &self.home,
            Side::Away => &self.away,
        }
    }
}
