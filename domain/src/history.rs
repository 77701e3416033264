//! The match at any minute: the state as it stood at the end of a match minute, from the
//! updates the fold sent, applied as a viewer applies them ([`MatchState::apply_update`]).
//!
//! "The end of minute N" is the last event boundary before the clock shows more than N: every
//! update of the events before the first event whose updates move the clock past N. The state
//! there is exactly the fold's after those events (`tests/it/history.rs` checks it against
//! [`crate::MatchFold`] stopped at the same event). The clock's minute never goes back, so the
//! cut is one scan; stoppage time belongs to the period's last regular minute (45+2 is in 45),
//! and the minute's statistics, which the fold sends when the next minute begins, are as of
//! the minute before.

use crate::{MatchState, Update};

/// The updates up to the end of match minute `minute` (all of them if the clock never passed
/// it).
pub fn through_minute(updates: &[Update], minute: u16) -> &[Update] {
    let Some(cut) = updates
        .iter()
        .find(|update| update.headline.clock.minute > minute)
        .map(|update| update.event_index)
    else {
        return updates;
    };
    let end = updates
        .iter()
        .position(|update| update.event_index >= cut)
        .unwrap_or(updates.len());
    &updates[..end]
}

/// The state at the end of match minute `minute`, from the state a run started with and the
/// updates it sent since, in order.
pub fn state_at_minute(start: MatchState, updates: &[Update], minute: u16) -> MatchState {
    let mut state = start;
    for update in through_minute(updates, minute) {
        state.apply_update(update);
    }
    state
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::{Clock, Score, Status};
    use crate::{Change, Headline, MatchInfo, TeamRef};

    fn update(event_index: u32, minute: u16, change: Change) -> Update {
        Update {
            match_id: 1,
            event_index,
            headline: Headline {
                status: Status::FirstHalf,
                period: 1,
                clock: Clock { minute, added: 0 },
                score: Score::default(),
                shootout: None,
                red_cards: None,
            },
            change,
        }
    }

    #[test]
    fn the_cut_falls_before_the_event_that_moves_the_clock_past_the_minute() {
        let updates = [
            update(1, 1, Change::Clock),
            update(5, 1, Change::Clock),
            // Event 9 sends its minute's statistics first (old clock), then the tick.
            update(9, 1, Change::Clock),
            update(9, 2, Change::Clock),
            update(12, 2, Change::Clock),
        ];
        assert_eq!(through_minute(&updates, 0).len(), 0);
        assert_eq!(
            through_minute(&updates, 1).len(),
            2,
            "event 9 is wholly after"
        );
        assert_eq!(through_minute(&updates, 2).len(), 5);
        assert_eq!(through_minute(&updates, 90).len(), 5);
    }

    #[test]
    fn the_state_is_the_start_with_the_updates_applied() {
        let team = |id, name: &str| TeamRef {
            id,
            name: name.into(),
        };
        let start = MatchState::new(MatchInfo::of_teams(1, team(1, "H"), team(2, "A")));
        let updates = [update(1, 1, Change::Clock), update(2, 2, Change::Clock)];
        assert_eq!(state_at_minute(start.clone(), &updates, 1).clock.minute, 1);
        assert_eq!(state_at_minute(start.clone(), &updates, 5).clock.minute, 2);
        assert_eq!(state_at_minute(start.clone(), &updates, 0), start);
    }
}
