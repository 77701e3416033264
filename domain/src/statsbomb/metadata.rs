//! One entry of a StatsBomb matches file: who played whom, when, and the official final score.

use serde::{Deserialize, Serialize};

use super::Named;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MatchMetadata {
    pub match_id: u64,
    pub match_date: String,
    #[serde(default)]
    pub kick_off: Option<String>,
    pub competition: Competition,
    pub season: Season,
    pub home_team: MetadataTeam,
    pub away_team: MetadataTeam,
    /// The official final score; absent (null) for a match not played yet.
    #[serde(default)]
    pub home_score: Option<u8>,
    #[serde(default)]
    pub away_score: Option<u8>,
    #[serde(default)]
    pub competition_stage: Option<Named>,
    #[serde(default)]
    pub stadium: Option<Named>,
    #[serde(default)]
    pub referee: Option<Named>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Competition {
    pub competition_id: u64,
    pub competition_name: String,
    #[serde(default)]
    pub country_name: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Season {
    pub season_id: u64,
    pub season_name: String,
}

/// StatsBomb names the fields after the side (`home_team_id`, `away_team_name`...); the aliases
/// read both sides into one type.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MetadataTeam {
    #[serde(alias = "home_team_id", alias = "away_team_id")]
    pub id: u64,
    #[serde(alias = "home_team_name", alias = "away_team_name")]
    pub name: String,
}
