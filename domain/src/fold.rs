//! The fold: StatsBomb events, one at a time and in `index` order, into a [`MatchState`], with an
//! [`Update`] for every change a viewer can see.
//!
//! [`MatchFold::apply`] does no I/O and reads no clock: the same events give the same state and the
//! same updates, on any machine, every time. That is what lets the projector re-apply events after a
//! crash, and lets a test check a whole match against its official result.
//!
//! When updates are emitted:
//! - each incident (goal, card, substitution) and each period start or end, at once;
//! - the clock, once per match minute (the first event of a new minute moves it);
//! - statistics and momentum coalesced: when the minute changes, and at once after an incident or a
//!   period end that changed them, never more often. Between two such moments the fold keeps its
//!   running tallies in [`FoldProgress`], so the [`MatchState`] always equals what viewers were told.

use serde::{Deserialize, Serialize};

use crate::info::MatchInfo;
use crate::state::{
    Card, Clock, GoalKind, Incident, IncidentDetail, Lineup, LineupPlayer, MatchState,
    MomentumPoint, Player, Shootout, ShootoutKick, Shot, Side, Sides, Status, TeamStats,
    formation_label, start_minute,
};
use crate::statsbomb::{Event, EventKind, Named};
use crate::update::{Change, Headline, Update, upsert_momentum};

/// StatsBomb pitches are 120 long and every team attacks towards x = 120: from 80 on is the
/// final third, where possession turns into threat.
const FINAL_THIRD_X: f64 = 80.0;

/// Momentum weights: how much attacking threat one action adds to its minute. A shot adds a base
/// plus its xG, so a big chance outweighs a speculative one; a corner and final-third possession add
/// the pressure that precedes chances.
const MOMENTUM_SHOT: f64 = 0.3;
const MOMENTUM_CORNER: f64 = 0.3;
const MOMENTUM_FINAL_THIRD: f64 = 0.02;

/// One match being folded: what viewers see, and what the fold needs to go on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MatchFold {
    pub state: MatchState,
    pub progress: FoldProgress,
}

/// The fold's own bookkeeping, kept with the state so that a fold can be stored and resumed.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct FoldProgress {
    /// The index of the last event applied: an event at or before it is skipped, so applying the
    /// same event twice changes nothing.
    pub last_index: Option<u32>,
    /// The StatsBomb minute the clock shows (within the current period).
    clock_minute: u16,
    /// Statistics counted so far; viewers get them when they are next flushed.
    tallies: Sides<TeamStats>,
    /// Milliseconds of play with each side in possession (periods 1 to 4).
    possession_ms: Sides<u64>,
    /// The previous event's period, timestamp and possessing side: the time from it to the next
    /// event is credited to that side.
    possession_mark: Option<PossessionMark>,
    /// The momentum of the minute under way.
    momentum: Option<MomentumPoint>,
    /// Own goals whose other half ("Own Goal For" / "Own Goal Against") has not arrived yet.
    open_own_goals: Vec<OpenOwnGoal>,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
struct PossessionMark {
    period: u8,
    timestamp: u32,
    side: Option<Side>,
}

/// StatsBomb records an own goal as two events: "Own Goal For" (`team` is the team credited) and
/// "Own Goal Against" (`player` put it into their own net), in either order. The first one counts
/// the goal; the second only completes it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct OpenOwnGoal {
    event_id: String,
    related_events: Vec<String>,
    half: OwnGoalHalf,
    period: u8,
    timestamp: u32,
    incident_id: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
enum OwnGoalHalf {
    For,
    Against,
}

impl OpenOwnGoal {
    fn pairs_with(&self, event: &Event, half: OwnGoalHalf) -> bool {
        self.half != half
            && (event.related_events.contains(&self.event_id)
                || self.related_events.contains(&event.id)
                || (self.period == event.period && self.timestamp == event.timestamp))
    }
}

/// Folds a whole match: the final fold and every update, in order.
pub fn fold_match(info: MatchInfo, events: &[Event]) -> (MatchFold, Vec<Update>) {
    let mut fold = MatchFold::new(info);
    let mut updates = Vec::new();
    for event in events {
        updates.extend(fold.apply(event));
    }
    (fold, updates)
}

impl MatchFold {
    pub fn new(info: MatchInfo) -> MatchFold {
        MatchFold {
            state: MatchState::new(info),
            progress: FoldProgress::default(),
        }
    }

    /// Applies one event and returns the updates it causes (often none: most events only count
    /// towards statistics, which are sent coalesced).
    pub fn apply(&mut self, event: &Event) -> Vec<Update> {
        if self
            .progress
            .last_index
            .is_some_and(|last| event.index <= last)
        {
            return Vec::new();
        }
        self.progress.last_index = Some(event.index);

        let mut out = Vec::new();
        let kind = event.kind();
        self.follow_periods(event, kind, &mut out);
        self.count_possession(event);

        let side = event.team_id().and_then(|id| self.state.info.side_of(id));
        let Some(side) = side else {
            // Events without a team (or of a team that is not playing) change nothing a viewer
            // sees; `MatchInfo::new` rejects files with unknown teams before they are replayed.
            return out;
        };
        // Statistics cover play: periods 1 to 4, not the shoot-out.
        let counts_for_stats = (1..=4).contains(&event.period);
        match kind {
            EventKind::StartingXi => self.starting_eleven(event, side, &mut out),
            EventKind::TacticalShift => self.tactical_shift(event, side, &mut out),
            EventKind::Shot if event.period == 5 => self.shootout_kick(event, side, &mut out),
            EventKind::Shot if counts_for_stats => self.shot(event, side, &mut out),
            EventKind::Pass if counts_for_stats => self.pass(event, side),
            EventKind::Carry if counts_for_stats => {
                let end = event.carry.as_ref().and_then(|carry| carry.end_location);
                if end.is_some_and(|end| end.x >= FINAL_THIRD_X) {
                    self.add_momentum(side, MOMENTUM_FINAL_THIRD);
                }
            }
            EventKind::FoulCommitted => {
                if counts_for_stats {
                    bump(&mut self.progress.tallies.get_mut(side).fouls);
                }
                let card = event.foul_committed.as_ref().and_then(|f| f.card.as_ref());
                self.card(event, side, card, &mut out);
            }
            EventKind::BadBehaviour => {
                let card = event.bad_behaviour.as_ref().and_then(|b| b.card.as_ref());
                self.card(event, side, card, &mut out);
            }
            EventKind::Substitution => self.substitution(event, side, &mut out),
            EventKind::OwnGoalFor => self.own_goal(event, side, OwnGoalHalf::For, &mut out),
            EventKind::OwnGoalAgainst => {
                self.own_goal(event, side.opponent(), OwnGoalHalf::Against, &mut out)
            }
            _ => {}
        }
        out
    }

    fn emit(&self, out: &mut Vec<Update>, event: &Event, change: Change) {
        out.push(Update {
            match_id: self.state.info.match_id,
            event_index: event.index,
            headline: Headline::of(&self.state),
            change,
        });
    }

    /// Starts periods (on "Half Start", or on any later-period event if the file lacks one), moves
    /// the clock on when an event of the period in play belongs to a new minute, and ends periods.
    fn follow_periods(&mut self, event: &Event, kind: EventKind, out: &mut Vec<Update>) {
        let period = event.period;
        if !(1..=5).contains(&period) {
            return;
        }
        let opens_period = kind != EventKind::StartingXi && kind != EventKind::HalfEnd;
        if period > self.state.period && opens_period {
            if self.state.status.is_playing() {
                self.end_period(event, out);
            }
            self.start_period(event, out);
        } else if period == self.state.period
            && period < 5
            && self.state.status.is_playing()
            && event.minute > self.progress.clock_minute
        {
            // The minute that ends is complete: send its statistics and momentum before the tick.
            self.flush_stats(event, out);
            self.progress.clock_minute = event.minute;
            self.state.clock = Clock::at(period, event.minute);
            self.start_momentum_minute();
            self.emit(out, event, Change::Clock);
        }
        // Each team writes its own "Half End": the first one ends the period.
        if kind == EventKind::HalfEnd
            && period == self.state.period
            && self.state.status.is_playing()
        {
            self.end_period(event, out);
        }
    }

    fn start_period(&mut self, event: &Event, out: &mut Vec<Update>) {
        let period = event.period;
        self.state.period = period;
        self.state.status = Status::playing(period);
        self.progress.open_own_goals.clear();
        self.progress.possession_mark = None;
        if period == 5 {
            self.state.shootout.get_or_insert_with(Shootout::default);
            self.progress.momentum = None;
        } else {
            let first_minute = start_minute(period).max(event.minute);
            self.progress.clock_minute = first_minute;
            self.state.clock = Clock::at(period, first_minute);
            self.start_momentum_minute();
        }
        self.emit(out, event, Change::PeriodStarted { period });
    }

    fn end_period(&mut self, event: &Event, out: &mut Vec<Update>) {
        let period = self.state.period;
        self.state.status = if period >= self.state.info.last_period {
            Status::Finished
        } else {
            Status::break_after(period)
        };
        self.emit(out, event, Change::PeriodEnded { period });
        self.flush_stats(event, out);
    }

    fn start_momentum_minute(&mut self) {
        self.progress.momentum = Some(MomentumPoint {
            period: self.state.period,
            clock: self.state.clock,
            value: 0.0,
        });
    }

    fn add_momentum(&mut self, side: Side, amount: f64) {
        if let Some(point) = &mut self.progress.momentum {
            point.value += match side {
                Side::Home => amount,
                Side::Away => -amount,
            };
        }
    }

    /// Sends the statistics and the minute's momentum if viewers have not seen them yet.
    fn flush_stats(&mut self, event: &Event, out: &mut Vec<Update>) {
        let mut stats = self.progress.tallies.clone();
        let possession = possession_percent(self.progress.possession_ms);
        stats.home.possession = possession.home;
        stats.away.possession = possession.away;
        let momentum = self.progress.momentum.map(|point| MomentumPoint {
            // Rounded for the wire; the running value keeps full precision.
            value: (point.value * 1000.0).round() / 1000.0,
            ..point
        });
        let momentum_news = momentum.filter(|point| self.state.momentum.last() != Some(point));
        if stats == self.state.stats && momentum_news.is_none() {
            return;
        }
        self.state.stats = stats.clone();
        if let Some(point) = momentum_news {
            upsert_momentum(&mut self.state.momentum, point);
        }
        let change = Change::Stats {
            stats,
            momentum: momentum_news,
        };
        self.emit(out, event, change);
    }

    /// Credits the time since the previous event of this period to the side that had the ball.
    fn count_possession(&mut self, event: &Event) {
        if !(event.period == self.state.period
            && event.period < 5
            && self.state.status.is_playing())
        {
            self.progress.possession_mark = None;
            return;
        }
        let side = event
            .possession_team
            .as_ref()
            .and_then(|team| self.state.info.side_of(team.id));
        let mut timestamp = event.timestamp;
        if let Some(mark) = self.progress.possession_mark {
            // A few StatsBomb timestamps jump back: credit nothing, and never go backwards.
            let elapsed = event.timestamp.saturating_sub(mark.timestamp);
            if let Some(had_ball) = mark.side {
                *self.progress.possession_ms.get_mut(had_ball) += u64::from(elapsed);
            }
            timestamp = timestamp.max(mark.timestamp);
        }
        self.progress.possession_mark = Some(PossessionMark {
            period: event.period,
            timestamp,
            side,
        });
    }

    fn starting_eleven(&mut self, event: &Event, side: Side, out: &mut Vec<Update>) {
        let Some(tactics) = &event.tactics else {
            return;
        };
        let lineup = Lineup {
            formation: formation_label(tactics.formation),
            players: tactics
                .lineup
                .iter()
                .map(|entry| LineupPlayer {
                    id: entry.player.id,
                    name: entry.player.name.clone(),
                    jersey_number: entry.jersey_number,
                    position: entry.position.name.clone(),
                })
                .collect(),
        };
        *self.state.lineups.get_mut(side) = Some(lineup.clone());
        self.emit(out, event, Change::Lineup { side, lineup });
    }

    fn tactical_shift(&mut self, event: &Event, side: Side, out: &mut Vec<Update>) {
        let Some(tactics) = &event.tactics else {
            return;
        };
        let formation = formation_label(tactics.formation);
        let Some(lineup) = self.state.lineups.get_mut(side) else {
            return;
        };
        if lineup.formation != formation {
            lineup.formation.clone_from(&formation);
            self.emit(out, event, Change::Formation { side, formation });
        }
    }

    fn shot(&mut self, event: &Event, side: Side, out: &mut Vec<Update>) {
        let Some(shot) = &event.shot else {
            return;
        };
        let xg = shot.statsbomb_xg.unwrap_or(0.0);
        let outcome = shot.outcome.name.as_str();
        let tally = self.progress.tallies.get_mut(side);
        bump(&mut tally.shots);
        tally.xg += xg;
        if ["goal", "saved", "saved to post"]
            .iter()
            .any(|on_target| outcome.eq_ignore_ascii_case(on_target))
        {
            bump(&mut tally.shots_on_target);
        }
        self.add_momentum(side, MOMENTUM_SHOT + xg);
        let on_map = Shot {
            id: event.id.clone(),
            period: event.period,
            clock: Clock::at(event.period, event.minute),
            side,
            player: player(event.player.as_ref()),
            location: event.location.map(|point| [point.x, point.y]),
            end_location: shot.end_location.map(|point| [point.x, point.y]),
            xg,
            body_part: shot.body_part.as_ref().map(|part| part.name.clone()),
            outcome: outcome.to_owned(),
            kind: shot.shot_type.name.clone(),
        };
        self.state.shots.push(on_map.clone());
        self.emit(out, event, Change::Shot { shot: on_map });
        if outcome == "Goal" {
            let kind = match shot.shot_type.name.as_str() {
                "Penalty" => GoalKind::Penalty,
                "Free Kick" => GoalKind::FreeKick,
                _ => GoalKind::OpenPlay,
            };
            bump_goals(self.state.score.get_mut(side));
            let incident = self.incident(
                event,
                side,
                IncidentDetail::Goal {
                    scorer: player(event.player.as_ref()),
                    kind,
                },
            );
            self.state.incidents.push(incident.clone());
            self.emit(out, event, Change::Incident { incident });
            self.flush_stats(event, out);
        }
    }

    fn shootout_kick(&mut self, event: &Event, side: Side, out: &mut Vec<Update>) {
        let scored = event
            .shot
            .as_ref()
            .is_some_and(|shot| shot.outcome.name == "Goal");
        let kick = ShootoutKick {
            side,
            player: player(event.player.as_ref()),
            scored,
        };
        let shootout = self.state.shootout.get_or_insert_with(Shootout::default);
        if scored {
            bump_goals(shootout.score.get_mut(side));
        }
        shootout.kicks.push(kick.clone());
        self.emit(out, event, Change::ShootoutKick { kick });
    }

    fn pass(&mut self, event: &Event, side: Side) {
        let Some(pass) = &event.pass else {
            return;
        };
        let tally = self.progress.tallies.get_mut(side);
        bump(&mut tally.passes);
        if pass.outcome.is_none() {
            bump(&mut tally.passes_completed);
        }
        let corner = pass
            .pass_type
            .as_ref()
            .is_some_and(|kind| kind.name == "Corner");
        if corner {
            bump(&mut tally.corners);
            self.add_momentum(side, MOMENTUM_CORNER);
        }
        if pass.end_location.is_some_and(|end| end.x >= FINAL_THIRD_X) {
            self.add_momentum(side, MOMENTUM_FINAL_THIRD);
        }
    }

    fn card(&mut self, event: &Event, side: Side, card: Option<&Named>, out: &mut Vec<Update>) {
        let card = match card.map(|card| card.name.as_str()) {
            Some("Yellow Card") => Card::Yellow,
            Some("Second Yellow") => Card::SecondYellow,
            Some("Red Card") => Card::Red,
            _ => return,
        };
        let Some(booked) = player(event.player.as_ref()) else {
            return;
        };
        let tally = self.progress.tallies.get_mut(side);
        match card {
            Card::Yellow => bump(&mut tally.yellow_cards),
            Card::SecondYellow => {
                bump(&mut tally.yellow_cards);
                bump(&mut tally.red_cards);
            }
            Card::Red => bump(&mut tally.red_cards),
        }
        let detail = IncidentDetail::Card {
            player: booked,
            card,
        };
        let incident = self.incident(event, side, detail);
        self.state.incidents.push(incident.clone());
        self.emit(out, event, Change::Incident { incident });
        self.flush_stats(event, out);
    }

    fn substitution(&mut self, event: &Event, side: Side, out: &mut Vec<Update>) {
        let (Some(off), Some(sub)) = (player(event.player.as_ref()), &event.substitution) else {
            return;
        };
        let detail = IncidentDetail::Substitution {
            off,
            on: Player {
                id: sub.replacement.id,
                name: sub.replacement.name.clone(),
            },
            reason: sub.outcome.as_ref().map(|outcome| outcome.name.clone()),
        };
        let incident = self.incident(event, side, detail);
        self.state.incidents.push(incident.clone());
        self.emit(out, event, Change::Incident { incident });
    }

    /// One half of an own goal; `credited` is the side the goal counts for.
    fn own_goal(
        &mut self,
        event: &Event,
        credited: Side,
        half: OwnGoalHalf,
        out: &mut Vec<Update>,
    ) {
        if event.period == 5 {
            return;
        }
        let scorer = match half {
            OwnGoalHalf::Against => player(event.player.as_ref()),
            OwnGoalHalf::For => None,
        };
        let open = &mut self.progress.open_own_goals;
        if let Some(at) = open.iter().position(|o| o.pairs_with(event, half)) {
            // The second half of a pair: the goal is counted already; complete its scorer.
            let incident_id = open.remove(at).incident_id;
            let known = self
                .state
                .incidents
                .iter_mut()
                .find(|i| i.id == incident_id);
            if let (Some(incident), Some(scorer)) = (known, scorer)
                && let IncidentDetail::Goal { scorer: slot, .. } = &mut incident.detail
                && slot.is_none()
            {
                *slot = Some(scorer);
                let incident = incident.clone();
                self.emit(out, event, Change::IncidentAmended { incident });
            }
            return;
        }
        bump_goals(self.state.score.get_mut(credited));
        let detail = IncidentDetail::Goal {
            scorer,
            kind: GoalKind::OwnGoal,
        };
        let incident = self.incident(event, credited, detail);
        self.progress.open_own_goals.push(OpenOwnGoal {
            event_id: event.id.clone(),
            related_events: event.related_events.clone(),
            half,
            period: event.period,
            timestamp: event.timestamp,
            incident_id: incident.id.clone(),
        });
        self.state.incidents.push(incident.clone());
        self.emit(out, event, Change::Incident { incident });
    }

    fn incident(&self, event: &Event, side: Side, detail: IncidentDetail) -> Incident {
        Incident {
            id: event.id.clone(),
            period: event.period,
            clock: Clock::at(event.period, event.minute),
            side,
            detail,
        }
    }
}

/// Counts one more. Counters saturate rather than overflow: a garbage event stream may not panic
/// the fold.
fn bump(counter: &mut u16) {
    *counter = counter.saturating_add(1);
}

fn bump_goals(goals: &mut u8) {
    *goals = goals.saturating_add(1);
}

fn player(named: Option<&Named>) -> Option<Player> {
    named.map(|named| Player {
        id: named.id,
        name: named.name.clone(),
    })
}

/// Whole percentages that add up to 100 (50/50 before any time is played).
fn possession_percent(ms: Sides<u64>) -> Sides<u8> {
    let total = ms.home + ms.away;
    if total == 0 {
        return Sides { home: 50, away: 50 };
    }
    let home = ((ms.home * 100 + total / 2) / total).min(100) as u8;
    Sides {
        home,
        away: 100 - home,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn possession_adds_up_to_100() {
        for (home, away) in [
            (0, 0),
            (1, 2),
            (2, 1),
            (1, 1),
            (333, 667),
            (5, 0),
            (0, 7),
            (1, 199),
        ] {
            let percent = possession_percent(Sides { home, away });
            assert_eq!(u16::from(percent.home) + u16::from(percent.away), 100);
        }
        assert_eq!(possession_percent(Sides { home: 3, away: 1 }).home, 75);
    }
}
