//! The match at any minute: `GET /games/{id}?at=<minute>` against the pure fold stopped at the
//! same event, for every shipped match at many minutes (finished replays), and for a running
//! replay held at 30' (a minute it has reached, and one it has not).

use crate::support;

use std::sync::Arc;
use std::time::Duration;

use livescore_domain::{MatchFold, MatchState, ReplayStatus, Speed};
use livescore_store::MatchStore;
use livescore_store::memory::MemoryStore;

/// The minutes asked for: before kick-off, early, each side of half-time and of the end of
/// regular and extra time, and past any match.
const MINUTES: [u16; 13] = [0, 1, 7, 30, 44, 45, 46, 60, 89, 90, 105, 120, 200];

/// The fold of `game`'s events, stopped before the first event that moves its clock past
/// `minute`: what the match looked like at the end of that minute.
fn fold_through(game: u64, minute: u16) -> MatchState {
    let loaded = support::catalog().load(&game.to_string()).unwrap();
    let mut fold = MatchFold::new(loaded.info);
    for event in &loaded.events {
        let before = fold.state.clone();
        fold.apply(event);
        if fold.state.clock.minute > minute {
            return before;
        }
    }
    fold.state
}

/// `GET /games/{game}?at={minute}` on `base`: (status, body).
async fn at(base: &str, game: u64, minute: &str) -> (u16, serde_json::Value) {
    let response = support::http_client()
        .get(format!("{base}/games/{game}?at={minute}"))
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_match_at_any_minute_is_the_fold_stopped_at_the_same_event() {
    let store: Arc<dyn MatchStore> = Arc::new(MemoryStore::new());
    let replays = support::replays_into(&store);
    let games: Vec<u64> = support::catalog().games().iter().map(|g| g.id).collect();
    for game in &games {
        replays.start(&game.to_string(), Speed::Max).await.unwrap();
    }
    support::until(
        "every replay finished",
        Duration::from_secs(120),
        async || {
            for game in &games {
                let finished = store
                    .load(*game)
                    .await
                    .unwrap()
                    .is_some_and(|m| m.replay.status == ReplayStatus::Finished);
                if !finished {
                    return false;
                }
            }
            true
        },
    )
    .await;
    let api = support::serve_api(Arc::clone(&store), |_| {}).await;

    let mut compared = 0;
    for game in &games {
        let mut states_seen = std::collections::HashSet::new();
        for minute in MINUTES {
            let (status, body) = at(&api.base, *game, &minute.to_string()).await;
            assert_eq!(status, 200, "game {game} at {minute}: {body}");
            assert_eq!(body["at"], minute);
            let got: MatchState = serde_json::from_value(body["state"].clone()).unwrap();
            let expected = fold_through(*game, minute);
            assert_eq!(got, expected, "game {game} at {minute}'");
            states_seen.insert(serde_json::to_string(&got).unwrap());
            compared += 1;
        }
        // The minutes really are different moments of the match.
        assert!(
            states_seen.len() >= 8,
            "game {game}: {} states",
            states_seen.len()
        );
    }
    assert_eq!(compared, games.len() * MINUTES.len());

    // Not a minute: a clear 400.
    for bad in ["-1", "201", "ten", "4.5", ""] {
        let (status, body) = at(&api.base, games[0], bad).await;
        assert_eq!(status, 400, "at={bad}: {body}");
        assert!(
            body["error"]
                .as_str()
                .unwrap()
                .contains("not a match minute"),
            "{body}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_running_replay_shows_the_minutes_it_reached_and_no_further() {
    const GAME: u64 = 7457;
    let store: Arc<dyn MatchStore> = Arc::new(MemoryStore::new());
    let replays = support::replays_into(&store);
    replays
        .start_holding(&GAME.to_string(), Speed::Max, Some(30))
        .await
        .unwrap();
    // Held before the first event past 30': where the fold stopped through minute 30.
    let held = fold_through(GAME, 30);
    support::until(
        "the replay held at 30'",
        Duration::from_secs(60),
        async || {
            store
                .load(GAME)
                .await
                .unwrap()
                .is_some_and(|m| m.fold.state == held)
        },
    )
    .await;
    let api = support::serve_api(Arc::clone(&store), |_| {}).await;
    let (_, body) = at(&api.base, GAME, "20").await;
    let got: MatchState = serde_json::from_value(body["state"].clone()).unwrap();
    assert_eq!(got, fold_through(GAME, 20));
    // A minute it has not reached: the state as it stands.
    let now = store.load(GAME).await.unwrap().unwrap().fold.state;
    let (_, body) = at(&api.base, GAME, "80").await;
    let got: MatchState = serde_json::from_value(body["state"].clone()).unwrap();
    assert_eq!(got, now);
    replays.stop(GAME).unwrap();
}
