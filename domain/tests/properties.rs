//! Properties of the fold over every shipped match: deterministic, resumable, and its updates are
//! complete (a client applying them holds the same state), coalesced and small.

mod support;

use std::collections::HashMap;

use livescore_domain::state::MatchState;
use livescore_domain::{Change, MatchFold, fold_match};
use support::{catalog, load};

#[test]
fn folding_the_same_file_twice_gives_the_same_updates() {
    for game in catalog().games() {
        let first = load(game.id);
        let second = load(game.id);
        let (fold_a, updates_a) = fold_match(first.info, &first.events);
        let (fold_b, updates_b) = fold_match(second.info, &second.events);
        assert_eq!(updates_a, updates_b, "match {}", game.id);
        assert_eq!(fold_a, fold_b, "match {}", game.id);
        // Byte for byte on the wire too.
        assert_eq!(
            serde_json::to_string(&updates_a).unwrap(),
            serde_json::to_string(&updates_b).unwrap()
        );
    }
}

#[test]
fn a_fold_stored_and_resumed_after_every_event_ends_the_same() {
    // As the projector does after a restart: the fold is read back from its stored JSON before
    // each event. Every event in between proves nothing is kept outside the stored fold.
    for id in [18236, 3788741] {
        let game = load(id);
        let (whole, whole_updates) = fold_match(game.info.clone(), &game.events);
        let mut stored = serde_json::to_string(&MatchFold::new(game.info)).unwrap();
        let mut updates = Vec::new();
        for event in &game.events {
            let mut fold: MatchFold = serde_json::from_str(&stored).unwrap();
            updates.extend(fold.apply(event));
            stored = serde_json::to_string(&fold).unwrap();
        }
        let resumed: MatchFold = serde_json::from_str(&stored).unwrap();
        assert_eq!(resumed, whole, "match {id}");
        assert_eq!(updates, whole_updates, "match {id}");
    }
}

#[test]
fn a_client_applying_every_update_holds_the_final_state() {
    for game in catalog().games() {
        let loaded = load(game.id);
        let (fold, updates) = fold_match(loaded.info.clone(), &loaded.events);
        let mut client = MatchState::new(loaded.info);
        for update in &updates {
            // Through JSON, as a browser receives it.
            let wire = serde_json::to_string(update).unwrap();
            client.apply_update(&serde_json::from_str(&wire).unwrap());
        }
        assert_eq!(client, fold.state, "match {}", game.id);
    }
}

#[test]
fn a_client_joining_mid_match_catches_up_from_a_snapshot() {
    let game = load(7457);
    let (_, updates) = fold_match(game.info.clone(), &game.events);
    let mut fold = MatchFold::new(game.info);
    let half = game.events.len() / 2;
    let mut seen = 0;
    for event in &game.events[..half] {
        seen += fold.apply(event).len();
    }
    let mut client: MatchState =
        serde_json::from_str(&serde_json::to_string(&fold.state).unwrap()).unwrap();
    for event in &game.events[half..] {
        for update in fold.apply(event) {
            client.apply_update(&update);
        }
    }
    assert!(seen > 0 && seen < updates.len());
    assert_eq!(client, fold.state);
}

#[test]
fn the_clock_ticks_once_a_minute_and_never_goes_back() {
    for game in catalog().games() {
        let (_, updates) = support::fold(game.id);
        let mut last = (0u8, 0u16, 0u16);
        let mut ticks = 0;
        for update in &updates {
            let h = update.headline;
            let now = (h.period, h.clock.minute, h.clock.added);
            assert!(
                now >= last,
                "match {}: clock went back at event {}",
                game.id,
                update.event_index
            );
            if matches!(update.change, Change::Clock) {
                assert!(
                    now > last,
                    "match {}: a tick that did not move the clock",
                    game.id
                );
                ticks += 1;
            }
            last = now;
        }
        // About one tick per minute played: 90 minutes plus stoppage, less the two kick-offs.
        assert!(
            (88..=100).contains(&ticks),
            "match {}: {ticks} ticks",
            game.id
        );
    }
}

#[test]
fn statistics_are_sent_at_most_once_a_minute_unless_an_incident_changed_them() {
    for game in catalog().games() {
        let (_, updates) = support::fold(game.id);
        let mut routine_per_minute: HashMap<(u8, u16, u16), u32> = HashMap::new();
        for (i, update) in updates.iter().enumerate() {
            if !matches!(update.change, Change::Stats { .. }) {
                continue;
            }
            let after_incident = i > 0
                && matches!(
                    updates[i - 1].change,
                    Change::Incident { .. } | Change::PeriodEnded { .. }
                );
            if !after_incident {
                let h = update.headline;
                *routine_per_minute
                    .entry((h.period, h.clock.minute, h.clock.added))
                    .or_default() += 1;
            }
        }
        assert!(
            routine_per_minute.values().all(|&count| count <= 1),
            "match {}: {routine_per_minute:?}",
            game.id
        );
        // Coalesced, not suppressed: most minutes change possession or momentum.
        assert!(routine_per_minute.len() > 45, "match {}", game.id);
    }
}

#[test]
fn updates_are_small() {
    for game in catalog().games() {
        let (fold, updates) = support::fold(game.id);
        let whole = serde_json::to_string(&fold.state).unwrap().len();
        for update in &updates {
            let size = serde_json::to_string(update).unwrap().len();
            let limit = if matches!(update.change, Change::Lineup { .. }) {
                2_000
            } else {
                800
            };
            assert!(
                size <= limit,
                "match {}: a {size}-byte update at event {}",
                game.id,
                update.event_index
            );
            assert!(size * 5 < whole, "an update is a small part of the state");
        }
    }
}

#[test]
fn the_replay_schedule_lays_real_periods_end_to_end() {
    use livescore_domain::{Breaks, schedule};
    use std::time::Duration;

    for game in catalog().games() {
        let loaded = load(game.id);
        let times = schedule(&loaded.events, &Breaks::default());
        assert_eq!(times.len(), loaded.events.len());
        assert!(times.windows(2).all(|w| w[0] <= w[1]), "match {}", game.id);
        assert_eq!(times[0], Duration::ZERO);
    }
    // 18236: the first half ends at 45:04.772, the second starts 15 minutes later and ends at
    // 48:04.347 into it.
    let loaded = load(18236);
    let times = schedule(&loaded.events, &Breaks::default());
    let second_half = loaded.events.iter().position(|e| e.period == 2).unwrap();
    let first_half_end = Duration::from_millis(45 * 60_000 + 4_772);
    assert_eq!(times[second_half - 1], first_half_end);
    assert_eq!(
        times[second_half],
        first_half_end + Duration::from_secs(15 * 60)
    );
    let end =
        first_half_end + Duration::from_secs(15 * 60) + Duration::from_millis(48 * 60_000 + 4_347);
    assert_eq!(*times.last().unwrap(), end);
    // A shorter break moves the second half, and only it.
    let quick = Breaks {
        half_time: Duration::from_secs(60),
        ..Breaks::default()
    };
    let quick_times = schedule(&loaded.events, &quick);
    assert_eq!(quick_times[second_half - 1], first_half_end);
    assert_eq!(
        *quick_times.last().unwrap(),
        end - Duration::from_secs(14 * 60)
    );
}
