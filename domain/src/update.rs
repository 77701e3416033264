//! [`Update`]: what the fold tells viewers about one change, and how a viewer applies it.
//!
//! An update is small: the change itself plus the [`Headline`] (status, clock, score) so that a
//! scoreboard can be drawn from any single update. It is never the whole state; a client gets that
//! once, as a snapshot, and then applies updates with [`MatchState::apply_update`].

use serde::{Deserialize, Serialize};

use crate::state::{
    Card, Clock, Incident, IncidentDetail, Lineup, MatchState, MomentumPoint, Score, ShootoutKick,
    Shot, Side, Sides, Status, TeamStats,
};

/// One change a viewer can see, caused by the StatsBomb event `event_index` of match `match_id`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Update {
    pub match_id: u64,
    pub event_index: u32,
    pub headline: Headline,
    #[serde(flatten)]
    pub change: Change,
}

/// The scoreboard line, as it stands after the change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Headline {
    pub status: Status,
    pub period: u8,
    pub clock: Clock,
    #[cfg_attr(feature = "openapi", schema(value_type = crate::state::ScoreSchema))]
    pub score: Score,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<crate::state::ScoreSchema>))]
    pub shootout: Option<Score>,
    /// Players sent off per side (straight reds and second yellows), once there is one: the
    /// scoreboard marks a team that plays short.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<crate::state::ScoreSchema>))]
    pub red_cards: Option<Score>,
}

impl Headline {
    pub fn of(state: &MatchState) -> Headline {
        Headline {
            status: state.status,
            period: state.period,
            clock: state.clock,
            score: state.score,
            shootout: state.shootout.as_ref().map(|shootout| shootout.score),
            red_cards: sent_off(state),
        }
    }
}

/// Players sent off per side, from the cards shown so far; `None` while nobody was.
fn sent_off(state: &MatchState) -> Option<Score> {
    let mut sent_off = Score::default();
    for incident in &state.incidents {
        if let IncidentDetail::Card {
            card: Card::Red | Card::SecondYellow,
            ..
        } = incident.detail
        {
            let count = sent_off.get_mut(incident.side);
            *count = count.saturating_add(1);
        }
    }
    (sent_off != Score::default()).then_some(sent_off)
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum Change {
    /// A team's starting lineup and formation are known.
    Lineup {
        side: Side,
        lineup: Lineup,
    },
    /// A team changed formation.
    Formation {
        side: Side,
        formation: String,
    },
    PeriodStarted {
        period: u8,
    },
    /// After the last period this is the final whistle (the headline's status is `finished`).
    PeriodEnded {
        period: u8,
    },
    /// The match clock moved on a minute (the headline carries it).
    Clock,
    /// A goal, card or substitution.
    Incident {
        incident: Incident,
    },
    /// An incident already sent, with more detail now known (an own goal's scorer).
    IncidentAmended {
        incident: Incident,
    },
    /// Both teams' statistics, and the momentum of the minute under way (replacing any point sent
    /// before for the same period and clock).
    Stats {
        stats: Sides<TeamStats>,
        momentum: Option<MomentumPoint>,
    },
    /// A penalty of the shoot-out (the headline carries the tally).
    ShootoutKick {
        kick: ShootoutKick,
    },
    /// A shot of periods 1 to 4, for the shot map (a goal also comes as an `incident`).
    Shot {
        shot: Shot,
    },
}

impl MatchState {
    /// Applies an update the way a client does: the headline, then the change.
    pub fn apply_update(&mut self, update: &Update) {
        let headline = &update.headline;
        self.status = headline.status;
        self.period = headline.period;
        self.clock = headline.clock;
        self.score = headline.score;
        if let Some(tally) = headline.shootout {
            self.shootout.get_or_insert_with(Default::default).score = tally;
        }
        match &update.change {
            Change::Lineup { side, lineup } => *self.lineups.get_mut(*side) = Some(lineup.clone()),
            Change::Formation { side, formation } => {
                if let Some(lineup) = self.lineups.get_mut(*side) {
                    lineup.formation.clone_from(formation);
                }
            }
            Change::PeriodStarted { .. } | Change::PeriodEnded { .. } | Change::Clock => {}
            Change::Incident { incident } => self.incidents.push(incident.clone()),
            Change::Shot { shot } => self.shots.push(shot.clone()),
            Change::IncidentAmended { incident } => {
                if let Some(known) = self.incidents.iter_mut().find(|i| i.id == incident.id) {
                    *known = incident.clone();
                }
            }
            Change::Stats { stats, momentum } => {
                self.stats = stats.clone();
                if let Some(point) = momentum {
                    upsert_momentum(&mut self.momentum, *point);
                }
            }
            Change::ShootoutKick { kick } => self
                .shootout
                .get_or_insert_with(Default::default)
                .kicks
                .push(kick.clone()),
        }
    }
}

/// Replaces the point of the same minute, or appends a new minute's point.
pub(crate) fn upsert_momentum(series: &mut Vec<MomentumPoint>, point: MomentumPoint) {
    match series.last_mut() {
        Some(last) if (last.period, last.clock) == (point.period, point.clock) => *last = point,
        _ => series.push(point),
    }
}
