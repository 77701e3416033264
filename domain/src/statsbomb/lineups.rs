//! A StatsBomb lineups file (`lineups/<match_id>.json`): each team's squad for the match, with the
//! name every player is known by (`player_nickname`: "Lionel Messi" for "Lionel Andrés Messi
//! Cuccittini"), which the events do not carry.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TeamLineup {
    pub team_id: u64,
    pub team_name: String,
    pub lineup: Vec<LineupPlayer>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LineupPlayer {
    pub player_id: u64,
    pub player_name: String,
    /// The name the player is known by, when it is not `player_name` (often null).
    pub player_nickname: Option<String>,
}

/// The names players are known by, by player id: their nickname where the lineups give one that
/// is not their full name.
pub fn nicknames(lineups: &[TeamLineup]) -> BTreeMap<u64, String> {
    lineups
        .iter()
        .flat_map(|team| &team.lineup)
        .filter_map(|player| {
            let nickname = player.player_nickname.as_deref()?.trim();
            (!nickname.is_empty() && nickname != player.player_name)
                .then(|| (player.player_id, nickname.to_owned()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_nickname_is_kept_only_where_it_differs_from_the_name() {
        let lineups: Vec<TeamLineup> = serde_json::from_str(
            r#"[{"team_id": 217, "team_name": "Barcelona", "lineup": [
                {"player_id": 5503, "player_name": "Lionel Andrés Messi Cuccittini",
                 "player_nickname": "Lionel Messi", "jersey_number": 10, "country": {"id": 11}},
                {"player_id": 5211, "player_name": "Jordi Alba Ramos", "player_nickname": null,
                 "jersey_number": 18},
                {"player_id": 1, "player_name": "Same Name", "player_nickname": "Same Name"},
                {"player_id": 2, "player_name": "Blank", "player_nickname": "  "}
            ]}]"#,
        )
        .unwrap();
        assert_eq!(
            nicknames(&lineups),
            BTreeMap::from([(5503, "Lionel Messi".to_owned())])
        );
    }
}
