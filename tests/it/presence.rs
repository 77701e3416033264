//! Who is watching, across replicas: two API replica processes on the shared Redis, viewers on
//! both over SSE and WebSocket. Both replicas' REST routes and every viewer's stream show the
//! sum; once one replica is killed (SIGKILL: it cleans nothing up), its viewers drop out of the
//! counts within seconds, through the store's presence windows expiring, not a goodbye.

use crate::support;

use std::time::{Duration, Instant};

use futures_util::StreamExt;
use livescore_domain::Speed;
use livescore_wire::{ClientRequest, Topic, sse};
use support::services::{Role, free_port};
use tokio::sync::watch;

const GAME: u64 = 7471;
/// Short windows, so that the test takes seconds.
const INTERVAL_MS: u64 = 250;

/// An API replica process on the test's key prefix.
fn replica(prefix: &str, port: u16) -> Role {
    Role::start(
        "api",
        &[
            ("REDIS_URL", support::redis_url()),
            ("REDIS_PREFIX", prefix.to_owned()),
            ("LISTEN", format!("127.0.0.1:{port}")),
            ("PRESENCE_INTERVAL_MS", INTERVAL_MS.to_string()),
        ],
    )
}

/// The latest `presence` message a viewer got (`Null` until one comes).
type Latest = watch::Receiver<serde_json::Value>;

/// An SSE viewer of `path` on `base`, kept open until the test ends (or its replica dies).
async fn sse_viewer(base: &str, path: &str) -> Latest {
    let response = support::http_client()
        .get(format!("{base}{path}"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "{path}");
    let (latest, seen) = watch::channel(serde_json::Value::Null);
    tokio::spawn(async move {
        let mut body = response.bytes_stream();
        let mut reader = sse::Reader::default();
        while let Some(Ok(chunk)) = body.next().await {
            reader.push(&chunk);
            while let Some(event) = reader.next_event() {
                if event.event == "presence" {
                    let _ = latest.send(serde_json::from_str(&event.data).unwrap());
                }
            }
        }
    });
    seen
}

/// A WebSocket viewer of `topic` on `base`.
async fn ws_viewer(base: &str, topic: Topic) -> Latest {
    let mut socket = support::clients::ws(base).await.expect("a WebSocket");
    let request = ClientRequest::Subscribe {
        topic,
        cursor: None,
    };
    assert!(support::clients::send(&mut socket, &serde_json::to_string(&request).unwrap()).await);
    let (latest, seen) = watch::channel(serde_json::Value::Null);
    tokio::spawn(async move {
        while let Some(Ok(message)) = socket.next().await {
            let Ok(text) = message.into_text() else {
                continue;
            };
            let Ok(frame) = serde_json::from_str::<serde_json::Value>(&text) else {
                continue;
            };
            if frame["kind"] == "presence" {
                let _ = latest.send(frame["data"].clone());
            }
        }
    });
    seen
}

/// Waits until `viewer`'s latest presence message is `expected`.
async fn sees(what: &str, viewer: &Latest, expected: serde_json::Value) {
    support::until(what, Duration::from_secs(30), async || {
        *viewer.borrow() == expected
    })
    .await;
}

/// `GET /games/{GAME}`'s and `GET /games`'s presence on `base`.
async fn rest_presence(base: &str) -> (serde_json::Value, serde_json::Value) {
    let http = support::http_client();
    let get = async |path: String| -> serde_json::Value {
        let text = http.get(path).send().await.unwrap().text().await.unwrap();
        serde_json::from_str(&text).unwrap()
    };
    let game = get(format!("{base}/games/{GAME}")).await;
    let games = get(format!("{base}/games")).await;
    let line = games
        .as_array()
        .and_then(|lines| lines.iter().find(|line| line["match_id"] == GAME))
        .map(|line| line["presence"].clone())
        .unwrap_or_default();
    (game["presence"].clone(), line)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn viewers_are_counted_across_replicas_and_a_dead_replicas_drop_out() {
    let prefix = support::owned("presence");
    let store = support::redis_store(&prefix).await;
    let replays = support::replays_into(&store);
    // The match stays live at 10' while the viewers come and go.
    replays
        .start_holding(&GAME.to_string(), Speed::Max, Some(10))
        .await
        .unwrap();
    support::until(
        "the match in the store",
        Duration::from_secs(30),
        async || store.load(GAME).await.unwrap().is_some(),
    )
    .await;

    let (port_a, port_b) = (free_port(), free_port());
    let _a = replica(&prefix, port_a);
    let mut b = replica(&prefix, port_b);
    let (a, b_base) = (
        format!("http://127.0.0.1:{port_a}"),
        format!("http://127.0.0.1:{port_b}"),
    );
    for base in [&a, &b_base] {
        support::until(
            &format!("{base} ready"),
            Duration::from_secs(30),
            async || {
                support::http_client()
                    .get(format!("{base}/readyz"))
                    .send()
                    .await
                    .is_ok_and(|r| r.status() == 200)
            },
        )
        .await;
    }

    // On A: three SSE viewers of the match, a WebSocket on the list. On B: two SSE viewers of
    // the match, one SSE viewer of the list. The site: 7; the match: 5.
    let game_path = format!("/sse/games/{GAME}");
    let on_a = [
        sse_viewer(&a, &game_path).await,
        sse_viewer(&a, &game_path).await,
        sse_viewer(&a, &game_path).await,
    ];
    let list_on_a = ws_viewer(&a, Topic::Feed).await;
    let _on_b = [
        sse_viewer(&b_base, &game_path).await,
        sse_viewer(&b_base, &game_path).await,
    ];
    let list_on_b = sse_viewer(&b_base, "/sse/games").await;

    let both = serde_json::json!({"watching": 5, "site": 7});
    for base in [&a, &b_base] {
        support::until(
            &format!("{base}: 5 watching the match, 7 the site"),
            Duration::from_secs(30),
            async || rest_presence(base).await == (both.clone(), both.clone()),
        )
        .await;
    }
    let in_stream = serde_json::json!({"kind": "presence", "watching": 5, "site": 7});
    for viewer in &on_a {
        sees(
            "a match viewer on A sees both replicas' counts",
            viewer,
            in_stream.clone(),
        )
        .await;
    }
    let list = serde_json::json!({"kind": "presence", "site": 7, "games": {GAME.to_string(): 5}});
    sees("the list viewer on A", &list_on_a, list.clone()).await;
    sees("the list viewer on B", &list_on_b, list).await;

    // B dies with its three viewers: they drop out of A's counts, with no word from B.
    b.kill();
    let killed = Instant::now();
    let alone = serde_json::json!({"watching": 3, "site": 4});
    support::until(
        "A: B's viewers gone from the counts",
        Duration::from_secs(30),
        async || rest_presence(&a).await == (alone.clone(), alone.clone()),
    )
    .await;
    let dropped_after = killed.elapsed();
    let in_stream = serde_json::json!({"kind": "presence", "watching": 3, "site": 4});
    sees(
        "A's match viewers see B's viewers gone",
        &on_a[0],
        in_stream,
    )
    .await;
    let list = serde_json::json!({"kind": "presence", "site": 4, "games": {GAME.to_string(): 3}});
    sees("A's list viewer", &list_on_a, list).await;
    println!(
        "B's viewers left A's counts {dropped_after:?} after B was killed \
         (windows of {INTERVAL_MS} ms), and A's streams {:?} after",
        killed.elapsed()
    );
    // Windows expire on their own: nothing is left behind but the last few.
    replays.stop(GAME).unwrap();
}
