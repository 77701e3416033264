//! Resuming from a cursor the store no longer holds: the match's log was trimmed past it (Redis
//! keeps the last `LOG_RETAINED` entries of a stream). The viewer gets a fresh snapshot, over
//! SSE (Last-Event-ID) and WebSocket (`cursor`), then the live entries after it with no gap; the
//! replica counts the resync. A viewer whose cursor is still held resumes after it, with no
//! snapshot. On the test Redis, under a prefix of the test's own; the trim is XTRIM on that
//! prefix's stream, as Redis's own retention would do it.

use crate::support;

use std::time::Duration;

use livescore_domain::{ReplayStatus, Speed};
use support::clients::{Seen, Transport, assert_exact, listen_once, log_of, snapshot_reason};

const GAME: u64 = 7471;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cursor_trimmed_from_the_log_gets_a_fresh_snapshot_and_no_gap() {
    let prefix = support::owned("resync");
    let store = support::redis_store(&prefix).await;
    let served = support::serve_api(support::redis_store(&prefix).await, |_| {}).await;
    let base = served.base.clone();
    let replays = support::replays_into(&store);
    replays
        .start_holding(&GAME.to_string(), Speed::Max, Some(30))
        .await
        .unwrap();
    support::until(
        "the replay held at 30'",
        Duration::from_secs(30),
        async || {
            store
                .load(GAME)
                .await
                .unwrap()
                .is_some_and(|m| m.replay.status == ReplayStatus::Paused)
        },
    )
    .await;

    // Entries 0..40 of the log (72 long at 30') are trimmed: a cursor among them is no longer held.
    let log = log_of(store.as_ref(), GAME).await;
    assert!(log.len() > 60, "the match has a log to trim: {}", log.len());
    let trimmed = log[5].0.to_string();
    let held = log[50].0.to_string();
    let mut redis = redis::Client::open(support::redis_url())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let removed: i64 = redis::cmd("XTRIM")
        .arg(format!("{prefix}:match:{GAME}:log"))
        .arg("MINID")
        .arg(log[40].0.to_string())
        .query_async(&mut redis)
        .await
        .unwrap();
    assert_eq!(removed, 40, "the first 40 entries trimmed");

    let viewer = |transport: Transport, cursor: String| {
        let base = base.clone();
        tokio::spawn(async move {
            let mut seen: Vec<Seen> = Vec::new();
            assert!(
                listen_once(transport, &base, GAME, Some(&cursor), &mut seen).await,
                "{transport:?} from {cursor}: followed to the end"
            );
            seen
        })
    };
    let resynced = [
        viewer(Transport::Sse, trimmed.clone()),
        viewer(Transport::WebSocket, trimmed),
    ];
    let resumed = viewer(Transport::Sse, held.clone());
    support::wait_for_subscribers(&base, 3).await;
    replays.resume(GAME).unwrap();

    for viewer in resynced {
        let seen = support::within("a resynced viewer's end", Duration::from_secs(60), viewer)
            .await
            .unwrap();
        assert_eq!(
            snapshot_reason(&seen[0]),
            "cursor_unknown",
            "a fresh snapshot first, saying why"
        );
        // From the snapshot on, exactly the log.
        assert_exact(store.as_ref(), GAME, &seen).await;
    }
    let seen = support::within("the resumed viewer's end", Duration::from_secs(60), resumed)
        .await
        .unwrap();
    assert_eq!(
        (seen[0].event.as_str(), seen[0].data.as_str()),
        (
            "resumed",
            format!(r#"{{"kind":"resumed","after":"{held}"}}"#).as_str()
        ),
        "a held cursor resumes without a snapshot, and says so first"
    );
    let after: Vec<String> = log_of(store.as_ref(), GAME)
        .await
        .into_iter()
        .map(|(cursor, _)| cursor.to_string())
        .skip_while(|cursor| *cursor != held)
        .skip(1)
        .collect();
    let got: Vec<String> = seen.iter().filter_map(|e| e.id.clone()).collect();
    assert_eq!(
        got, after,
        "everything after the held cursor, once, in order"
    );
    assert_eq!(
        support::metric(
            &support::scrape(&base).await,
            "livescore_resync_snapshots_total"
        ),
        Some(2.0),
        "the replica counted the two resyncs, not the resume"
    );
    store.clear().await.unwrap();
}
