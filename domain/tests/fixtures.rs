//! What the shipped matches lack, on fixtures derived from a real file: extra time, a penalty
//! shoot-out, a second yellow card, and own goals written in every way StatsBomb can write them.

mod support;

use livescore_domain::state::{Card, Clock, GoalKind, IncidentDetail, Status};
use livescore_domain::{Change, Side, Update};
use serde_json::{Value, json};
use support::{
    append_period, first_half_markers, first_of, fold_raw, insert_in_order, moved, raw_events,
    type_name,
};

/// Barcelona 2-2 Girona: a draw, so extra time and penalties are plausible.
const DRAW: u64 = 15986;
const BARCELONA: u64 = 217;
const GIRONA: u64 = 211;

fn with_extra_time() -> Vec<Value> {
    let mut raw = raw_events(DRAW);
    append_period(&mut raw, 3, 15, 1);
    append_period(&mut raw, 4, 15, 2);
    raw
}

fn statuses(updates: &[Update]) -> Vec<Status> {
    updates
        .iter()
        .filter(|u| {
            matches!(
                u.change,
                Change::PeriodStarted { .. } | Change::PeriodEnded { .. }
            )
        })
        .map(|u| u.headline.status)
        .collect()
}

#[test]
fn extra_time_is_played_after_the_second_half_and_counts() {
    let mut raw = with_extra_time();
    // A Girona winner 10 minutes into the second half of extra time (StatsBomb minute 115).
    let mut shot = moved(&first_of(&raw, "Shot", GIRONA), 4, 10 * 60_000, "winner");
    shot["shot"]["outcome"] = json!({"id": 97, "name": "Goal"});
    shot["shot"]["type"] = json!({"id": 87, "name": "Open Play"});
    insert_in_order(&mut raw, shot);

    let (info, _, fold, updates) = fold_raw(DRAW, &raw);
    assert_eq!(info.last_period, 4);
    assert_eq!(
        statuses(&updates),
        vec![
            Status::FirstHalf,
            Status::HalfTime,
            Status::SecondHalf,
            Status::BeforeExtraTime,
            Status::ExtraTimeFirstHalf,
            Status::ExtraTimeHalfTime,
            Status::ExtraTimeSecondHalf,
            Status::Finished,
        ],
        "the second half's whistle is not the final one when extra time follows"
    );
    let state = &fold.state;
    assert_eq!((state.score.home, state.score.away), (2, 3));
    assert_eq!(state.status, Status::Finished);
    let winner = state.goals().last().unwrap();
    assert_eq!((winner.side, winner.period), (Side::Away, 4));
    assert_eq!(
        winner.clock,
        Clock {
            minute: 116,
            added: 0
        }
    );

    let clocks: Vec<(u8, Clock)> = updates
        .iter()
        .filter(|u| matches!(u.change, Change::Clock | Change::PeriodStarted { .. }))
        .map(|u| (u.headline.period, u.headline.clock))
        .collect();
    assert!(clocks.contains(&(
        3,
        Clock {
            minute: 91,
            added: 0
        }
    )));
    assert!(clocks.contains(&(
        3,
        Clock {
            minute: 105,
            added: 1
        }
    )));
    assert!(clocks.contains(&(
        4,
        Clock {
            minute: 106,
            added: 0
        }
    )));
    assert!(clocks.contains(&(
        4,
        Clock {
            minute: 120,
            added: 2
        }
    )));
    // Extra-time shots are part of the statistics.
    let (_, _, ninety, _) = fold_raw(DRAW, &raw_events(DRAW));
    assert!(state.stats.away.shots > ninety.state.stats.away.shots);
}

#[test]
fn a_shootout_moves_its_own_tally_and_never_the_score() {
    let mut raw = with_extra_time();
    let starts = first_half_markers(&raw, "Half Start");
    let ends = first_half_markers(&raw, "Half End");
    for start in &starts {
        raw.push(moved(start, 5, 0, "p5"));
    }
    // Barcelona (home) kick first and score 4 of 5; Girona score 2 of 4, and lose.
    let kicks = [
        (BARCELONA, "Goal"),
        (GIRONA, "Goal"),
        (BARCELONA, "Goal"),
        (GIRONA, "Saved"),
        (BARCELONA, "Saved"),
        (GIRONA, "Goal"),
        (BARCELONA, "Goal"),
        (GIRONA, "Off T"),
        (BARCELONA, "Goal"),
    ];
    let home_shot = first_of(&raw, "Shot", BARCELONA);
    let away_shot = first_of(&raw, "Shot", GIRONA);
    for (i, (team, outcome)) in kicks.iter().enumerate() {
        let template = if *team == BARCELONA {
            &home_shot
        } else {
            &away_shot
        };
        let mut kick = moved(template, 5, (i as u64 + 1) * 60_000, &format!("pen{i}"));
        kick["shot"]["outcome"] = json!({"id": 97, "name": outcome});
        kick["shot"]["type"] = json!({"id": 88, "name": "Penalty"});
        raw.push(kick);
    }
    for end in &ends {
        raw.push(moved(end, 5, 10 * 60_000, "p5"));
    }
    support::renumber(&mut raw);

    let (info, _, fold, updates) = fold_raw(DRAW, &raw);
    assert_eq!(info.last_period, 5);
    let (_, _, before_shootout, _) = fold_raw(DRAW, &with_extra_time());
    let state = &fold.state;
    assert_eq!(
        state.score, before_shootout.state.score,
        "penalties never change the score"
    );
    assert_eq!((state.score.home, state.score.away), (2, 2));
    let shootout = state.shootout.as_ref().expect("a shoot-out");
    assert_eq!((shootout.score.home, shootout.score.away), (4, 2));
    assert_eq!(shootout.kicks.len(), kicks.len());
    assert_eq!(shootout.kicks[3].side, Side::Away);
    assert!(!shootout.kicks[3].scored);
    assert_eq!(
        state.stats, before_shootout.state.stats,
        "shoot-out kicks are not match statistics"
    );
    assert_eq!(state.status, Status::Finished);
    assert_eq!(
        statuses(&updates)[7..],
        [Status::BeforeShootout, Status::Shootout, Status::Finished]
    );
    // Each kick is its own update, and the tally in the headlines climbs kick by kick.
    let tallies: Vec<(u8, u8)> = updates
        .iter()
        .filter(|u| matches!(u.change, Change::ShootoutKick { .. }))
        .map(|u| {
            assert_eq!(u.headline.score, state.score);
            let tally = u.headline.shootout.expect("the tally is in the headline");
            (tally.home, tally.away)
        })
        .collect();
    assert_eq!(
        tallies,
        vec![
            (1, 0),
            (1, 1),
            (2, 1),
            (2, 1),
            (2, 1),
            (2, 2),
            (3, 2),
            (3, 2),
            (4, 2)
        ]
    );
}

#[test]
fn a_second_yellow_is_a_yellow_and_a_sending_off() {
    let mut raw = raw_events(DRAW);
    // Nélson Semedo was booked at 11'; book him again at 71'.
    let booked = raw
        .iter()
        .find(|e| e["foul_committed"]["card"]["name"] == json!("Yellow Card"))
        .cloned()
        .unwrap();
    assert_eq!(booked["player"]["name"], json!("Nélson Cabral Semedo"));
    let mut second = moved(&booked, 2, 25 * 60_000 + 30_000, "second");
    second["foul_committed"]["card"] = json!({"id": 6, "name": "Second Yellow"});
    insert_in_order(&mut raw, second);

    let (_, _, fold, updates) = fold_raw(DRAW, &raw);
    let state = &fold.state;
    let semedo: Vec<(Card, Clock)> = state
        .incidents
        .iter()
        .filter_map(|i| match &i.detail {
            IncidentDetail::Card { player, card } if player.name == "Nélson Cabral Semedo" => {
                Some((*card, i.clock))
            }
            _ => None,
        })
        .collect();
    assert_eq!(
        semedo,
        vec![
            (
                Card::Yellow,
                Clock {
                    minute: 12,
                    added: 0
                }
            ),
            (
                Card::SecondYellow,
                Clock {
                    minute: 71,
                    added: 0
                }
            ),
        ]
    );
    assert_eq!(state.stats.home.yellow_cards, 4);
    assert_eq!(
        state.stats.home.red_cards, 2,
        "Lenglet's red and Semedo's second yellow"
    );
    // The card and the statistics it changed reach viewers together.
    let at = updates
        .iter()
        .position(|u| match &u.change {
            Change::Incident { incident } => matches!(
                incident.detail,
                IncidentDetail::Card {
                    card: Card::SecondYellow,
                    ..
                }
            ),
            _ => false,
        })
        .unwrap();
    match &updates[at + 1].change {
        Change::Stats { stats, .. } => assert_eq!(stats.home.red_cards, 2),
        other => panic!("expected statistics after the card, got {other:?}"),
    }
}

/// 7457: Orlando Pride 3-4 North Carolina Courage, with an own goal at 90' written
/// "Own Goal For" (index 3129) then "Own Goal Against" (3130).
const OWN_GOAL_MATCH: u64 = 7457;

fn own_goals(raw: &[Value]) -> Vec<(Side, Option<String>)> {
    let (_, _, fold, _) = fold_raw(OWN_GOAL_MATCH, raw);
    assert_eq!(
        (fold.state.score.home, fold.state.score.away),
        (3, 4),
        "the own goal counts exactly once"
    );
    fold.state
        .goals()
        .filter_map(|g| match &g.detail {
            IncidentDetail::Goal {
                scorer,
                kind: GoalKind::OwnGoal,
            } => Some((g.side, scorer.as_ref().map(|p| p.name.clone()))),
            _ => None,
        })
        .collect()
}

fn is_own_goal_half(event: &Value) -> bool {
    type_name(event).starts_with("Own Goal")
}

#[test]
fn an_own_goal_is_counted_once_however_it_is_written() {
    let scorer = Some("Poliana Barbosa Medeiros".to_string());
    let credited = Side::Away;

    // As shipped: For, then Against, linked by related_events.
    let raw = raw_events(OWN_GOAL_MATCH);
    assert_eq!(own_goals(&raw), vec![(credited, scorer.clone())]);

    // Against first.
    let mut swapped = raw.clone();
    let at = swapped.iter().position(is_own_goal_half).unwrap();
    swapped.swap(at, at + 1);
    support::renumber(&mut swapped);
    assert_eq!(type_name(&swapped[at]), "Own Goal Against");
    assert_eq!(own_goals(&swapped), vec![(credited, scorer.clone())]);

    // Without related_events: the halves pair by their shared moment.
    let mut unlinked = raw.clone();
    for event in unlinked.iter_mut().filter(|e| is_own_goal_half(e)) {
        event["related_events"] = json!([]);
    }
    assert_eq!(own_goals(&unlinked), vec![(credited, scorer.clone())]);

    // Only one half in the file: still one goal, for the right team.
    let mut only_against = raw.clone();
    only_against.retain(|e| type_name(e) != "Own Goal For");
    support::renumber(&mut only_against);
    assert_eq!(own_goals(&only_against), vec![(credited, scorer)]);
    let mut only_for = raw.clone();
    only_for.retain(|e| type_name(e) != "Own Goal Against");
    support::renumber(&mut only_for);
    assert_eq!(own_goals(&only_for), vec![(credited, None)]);
}

#[test]
fn an_event_delivered_twice_counts_once() {
    let raw = raw_events(OWN_GOAL_MATCH);
    let (info, events, _, _) = fold_raw(OWN_GOAL_MATCH, &raw);
    let mut fold = livescore_domain::MatchFold::new(info);
    for event in &events {
        fold.apply(event);
        let before = fold.clone();
        assert!(fold.apply(event).is_empty(), "event {} again", event.index);
        assert_eq!(fold, before);
    }
    assert_eq!((fold.state.score.home, fold.state.score.away), (3, 4));
}
