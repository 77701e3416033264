//! Every shipped match folds to its official result, and the hand-checked details of three of them
//! (scorers, minutes, own goal, red card) come out exactly.

mod support;

use livescore_domain::Side;
use livescore_domain::state::{Card, Clock, GoalKind, IncidentDetail, MatchState, Status};
use support::{catalog, fold, load};

/// `(side, scorer, minute, added, kind)` of each goal, in order.
fn goals(state: &MatchState) -> Vec<(Side, String, u16, u16, GoalKind)> {
    state
        .goals()
        .map(|incident| match &incident.detail {
            IncidentDetail::Goal { scorer, kind } => (
                incident.side,
                scorer.as_ref().map(|p| p.name.clone()).unwrap_or_default(),
                incident.clock.minute,
                incident.clock.added,
                *kind,
            ),
            _ => unreachable!("goals() yields goals"),
        })
        .collect()
}

#[test]
fn every_match_folds_to_its_official_score() {
    let catalog = catalog();
    let games = catalog.games();
    assert_eq!(games.len(), 7, "the seven shipped matches are catalogued");
    for game in games {
        let official = game
            .official_score
            .expect("shipped matches have a final score");
        let (fold, _) = fold(game.id);
        let state = &fold.state;
        assert_eq!(state.score, official, "match {}", game.id);
        assert_eq!(state.status, Status::Finished, "match {}", game.id);
        let goals = goals(state);
        let home_goals = goals.iter().filter(|g| g.0 == Side::Home).count();
        let away_goals = goals.iter().filter(|g| g.0 == Side::Away).count();
        assert_eq!(
            (home_goals, away_goals),
            (usize::from(official.home), usize::from(official.away)),
            "match {}: one goal incident per goal",
            game.id
        );
        assert!(state.shootout.is_none(), "match {}", game.id);
    }
}

#[test]
fn barcelona_3_manchester_united_1() {
    let (fold, _) = fold(18236);
    let state = &fold.state;
    assert_eq!(state.info.home.name, "Barcelona");
    assert_eq!(state.info.away.name, "Manchester United");
    let expected = [
        (Side::Home, "Pedro Eliezer Rodríguez Ledesma", 27, 0),
        (Side::Away, "Wayne Mark Rooney", 34, 0),
        (Side::Home, "Lionel Andrés Messi Cuccittini", 54, 0),
        (Side::Home, "David Villa Sánchez", 69, 0),
    ];
    let got: Vec<_> = goals(state)
        .into_iter()
        .map(|(side, scorer, minute, added, kind)| {
            assert_eq!(kind, GoalKind::OpenPlay);
            (side, scorer, minute, added)
        })
        .collect();
    let expected: Vec<_> = expected
        .iter()
        .map(|(side, name, minute, added)| (*side, name.to_string(), *minute, *added))
        .collect();
    assert_eq!(got, expected);
    assert_eq!(state.lineups.home.as_ref().unwrap().formation, "4-1-2-2-1");
    assert_eq!(state.lineups.away.as_ref().unwrap().players.len(), 11);
    // The final whistle came at 93:04 of StatsBomb's clock: 90+4 on a scoreboard.
    assert_eq!(
        state.clock,
        Clock {
            minute: 90,
            added: 4
        }
    );
}

#[test]
fn turkey_0_italy_3_with_demirals_own_goal_counted_once() {
    let (fold, updates) = fold(3788741);
    let state = &fold.state;
    let got = goals(state);
    assert_eq!(
        got,
        vec![
            (Side::Away, "Merih Demiral".into(), 53, 0, GoalKind::OwnGoal),
            (
                Side::Away,
                "Ciro Immobile".into(),
                66,
                0,
                GoalKind::OpenPlay
            ),
            (
                Side::Away,
                "Lorenzo Insigne".into(),
                79,
                0,
                GoalKind::OpenPlay
            ),
        ]
    );
    // StatsBomb writes the own goal as two events; viewers hear of each goal once, and the score
    // in the headlines moves by one goal at a time.
    let goal_updates: Vec<_> = updates
        .iter()
        .filter(|u| match &u.change {
            livescore_domain::Change::Incident { incident } => {
                matches!(incident.detail, IncidentDetail::Goal { .. })
            }
            _ => false,
        })
        .map(|u| (u.headline.score.home, u.headline.score.away))
        .collect();
    assert_eq!(goal_updates, vec![(0, 1), (0, 2), (0, 3)]);
}

#[test]
fn lenglets_red_card_against_girona() {
    let (fold, _) = fold(15986);
    let state = &fold.state;
    let reds: Vec<_> = state
        .incidents
        .iter()
        .filter_map(|incident| match &incident.detail {
            IncidentDetail::Card {
                player,
                card: Card::Red,
            } => Some((incident.side, player.name.as_str(), incident.clock)),
            _ => None,
        })
        .collect();
    assert_eq!(
        reds,
        vec![(
            Side::Home,
            "Clément Lenglet",
            Clock {
                minute: 33,
                added: 0
            }
        )]
    );
    assert_eq!(state.stats.home.red_cards, 1);
    assert_eq!(state.stats.away.red_cards, 0);
    // The scoreboard marks the side playing short, from the red card on.
    let headline = livescore_domain::Headline::of(state);
    assert_eq!(
        headline.red_cards.map(|reds| (reds.home, reds.away)),
        Some((1, 0))
    );
    // Yellow cards: Semedo, Arthur and Piqué for Barcelona; five for Girona.
    assert_eq!(state.stats.home.yellow_cards, 3);
    assert_eq!(state.stats.away.yellow_cards, 5);
}

#[test]
fn an_own_goal_written_for_before_against_is_counted_once_with_its_scorer() {
    // 7457 has "Own Goal For" (index 3129) before "Own Goal Against" (3130).
    let (fold, updates) = fold(7457);
    let own_goals: Vec<_> = goals(&fold.state)
        .into_iter()
        .filter(|g| g.4 == GoalKind::OwnGoal)
        .collect();
    assert_eq!(
        own_goals,
        vec![(
            Side::Away,
            "Poliana Barbosa Medeiros".into(),
            90,
            0,
            GoalKind::OwnGoal
        )]
    );
    let amended = updates
        .iter()
        .filter(|u| matches!(u.change, livescore_domain::Change::IncidentAmended { .. }))
        .count();
    assert_eq!(
        amended, 1,
        "the scorer arrives with the second half of the pair"
    );
}

#[test]
fn the_shot_map_of_every_match_holds_each_shot_once_with_its_goals() {
    for game in catalog().games() {
        let loaded = load(game.id);
        let (fold, _) = livescore_domain::fold_match(loaded.info.clone(), &loaded.events);
        let shots = &fold.state.shots;
        for side in [Side::Home, Side::Away] {
            let of_side: Vec<_> = shots.iter().filter(|shot| shot.side == side).collect();
            let stats = fold.state.stats.get(side);
            assert_eq!(of_side.len(), usize::from(stats.shots), "match {}", game.id);
            let xg: f64 = of_side.iter().map(|shot| shot.xg).sum();
            assert!((xg - stats.xg).abs() < 1e-9, "match {} {side:?}", game.id);
            // Every goal but an own goal is a shot that went in.
            let goals = of_side.iter().filter(|shot| shot.is_goal()).count();
            let own_goals = fold
                .state
                .goals()
                .filter(|goal| goal.side == side)
                .filter(|goal| {
                    matches!(
                        goal.detail,
                        IncidentDetail::Goal {
                            kind: GoalKind::OwnGoal,
                            ..
                        }
                    )
                })
                .count();
            let score = usize::from(*fold.state.score.get(side));
            assert_eq!(goals + own_goals, score, "match {} {side:?}", game.id);
        }
        for shot in shots {
            let [x, y] = shot.location.expect("StatsBomb places every shot");
            assert!(
                (0.0..=120.0).contains(&x) && (0.0..=80.0).contains(&y),
                "{shot:?}"
            );
            assert!(shot.body_part.is_some(), "{shot:?}");
        }
    }
    // 7457, Orlando Pride 3-4 North Carolina Courage (the browser test draws this one): seven
    // goals, one of them an own goal, so six goals on the shot map.
    let (fold, _) = fold(7457);
    let goals = fold
        .state
        .shots
        .iter()
        .filter(|shot| shot.is_goal())
        .count();
    assert_eq!(goals, 6);
    let shots = fold.state.stats.home.shots + fold.state.stats.away.shots;
    assert_eq!(fold.state.shots.len(), usize::from(shots));
}

#[test]
fn xg_is_the_sum_of_shot_xg_and_possession_adds_up_to_100() {
    for game in catalog().games() {
        let loaded = load(game.id);
        let (fold, _) = livescore_domain::fold_match(loaded.info.clone(), &loaded.events);
        for side in [Side::Home, Side::Away] {
            let team_id = loaded.info.team(side).id;
            let shots: Vec<_> = loaded
                .events
                .iter()
                .filter(|e| e.team_id() == Some(team_id) && e.period <= 4)
                .filter_map(|e| e.shot.as_ref())
                .collect();
            let xg: f64 = shots.iter().filter_map(|s| s.statsbomb_xg).sum();
            let stats = fold.state.stats.get(side);
            assert!(
                (stats.xg - xg).abs() < 1e-9,
                "match {} {side:?}: xG {} != {xg}",
                game.id,
                stats.xg
            );
            assert_eq!(usize::from(stats.shots), shots.len(), "match {}", game.id);
            assert!(stats.shots_on_target <= stats.shots);
            assert!(stats.passes_completed <= stats.passes);
        }
        let stats = &fold.state.stats;
        assert_eq!(
            u16::from(stats.home.possession) + u16::from(stats.away.possession),
            100,
            "match {}",
            game.id
        );
        assert!(
            (20..=80).contains(&stats.home.possession),
            "match {}: possession {} is not a football number",
            game.id,
            stats.home.possession
        );
    }
}

#[test]
fn stoppage_time_is_shown_as_45_plus_and_90_plus() {
    let (fold, updates) = fold(7457);
    let ticks: Vec<(u8, Clock)> = updates
        .iter()
        .filter(|u| matches!(u.change, livescore_domain::Change::Clock))
        .map(|u| (u.headline.period, u.headline.clock))
        .collect();
    let clocks: Vec<Clock> = ticks.iter().map(|(_, clock)| *clock).collect();
    assert!(clocks.contains(&Clock {
        minute: 45,
        added: 1
    }));
    // First-half stoppage time reads 45+N, never 46'; the second half runs 46' to 90+N.
    for (period, clock) in &ticks {
        let regular = if *period == 1 { 1..=45 } else { 46..=90 };
        assert!(regular.contains(&clock.minute), "period {period}: {clock}");
        assert!(
            clock.added == 0 || clock.minute == *regular.end(),
            "period {period}: {clock}"
        );
    }
    assert!(ticks.iter().any(|(period, _)| *period == 2));
    assert!(clocks.contains(&Clock {
        minute: 90,
        added: 3
    }));
    // Abby Erceg's yellow card at StatsBomb minute 91 is a 90+2 card.
    let late_card = fold.state.incidents.last().unwrap();
    assert_eq!(
        late_card.clock,
        Clock {
            minute: 90,
            added: 2
        }
    );
    assert_eq!(late_card.clock.to_string(), "90+2'");
}
