//! Fan-out at scale: 200 Server-Sent Events and 200 WebSocket clients on one API replica (over
//! Redis) during a maximum-speed replay of two matches; every client receives every entry of its
//! match, in order, exactly as the log holds them.

#![allow(clippy::unwrap_used)]

mod support;

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use livescore_api::{ApiState, router};
use livescore_domain::{ReplayStatus, Speed};
use livescore_store::{LogRead, Topic, parse_cursor};

const GAMES: [u64; 2] = [7471, 3788741];
const CLIENTS_PER_TRANSPORT: usize = 200;

/// (cursor, entry) pairs as a client received them, snapshot first.
type Received = Vec<(Option<String>, String, serde_json::Value)>;

fn is_finished(kind: &str, data: &serde_json::Value) -> bool {
    kind == "replay" && data["replay"]["status"] == "finished"
}

async fn sse_client(base: String, game: u64) -> Received {
    let response = reqwest::get(format!("{base}/sse/games/{game}"))
        .await
        .unwrap();
    let mut body = response.bytes_stream();
    let (mut buffer, mut received) = (String::new(), Received::new());
    while let Some(chunk) = body.next().await {
        buffer.push_str(&String::from_utf8_lossy(&chunk.unwrap()));
        while let Some(end) = buffer.find("\n\n") {
            let block: String = buffer.drain(..end + 2).collect();
            let (mut id, mut kind, mut data) = (None, String::new(), String::new());
            for line in block.lines() {
                if let Some(v) = line.strip_prefix("id: ") {
                    id = Some(v.to_owned());
                } else if let Some(v) = line.strip_prefix("event: ") {
                    kind = v.to_owned();
                } else if let Some(v) = line.strip_prefix("data: ") {
                    data.push_str(v);
                }
            }
            if kind.is_empty() {
                continue;
            }
            let data: serde_json::Value = serde_json::from_str(&data).unwrap();
            let done = is_finished(&kind, &data);
            received.push((id, kind, data));
            if done {
                return received;
            }
        }
    }
    panic!("the SSE stream ended before the match did");
}

async fn ws_client(base: String, game: u64) -> Received {
    use tokio_tungstenite::tungstenite::Message;
    let url = format!("{}/ws", base.replace("http://", "ws://"));
    let (mut socket, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    let request = format!(r#"{{"op":"subscribe","topic":"game:{game}"}}"#);
    socket.send(Message::text(request)).await.unwrap();
    let mut received = Received::new();
    while let Some(frame) = socket.next().await {
        let Message::Text(text) = frame.unwrap() else {
            continue;
        };
        let frame: serde_json::Value = serde_json::from_str(&text).unwrap();
        let kind = frame["kind"].as_str().unwrap().to_owned();
        let done = is_finished(&kind, &frame["data"]);
        received.push((
            frame["cursor"].as_str().map(str::to_owned),
            kind,
            frame["data"].clone(),
        ));
        if done {
            return received;
        }
    }
    panic!("the WebSocket closed before the match ended");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_client_gets_every_entry_in_order() {
    let prefix = support::unique("fanout");
    let store = support::redis_store(&prefix).await;
    // The replica has a store connection, and so a subscription, of its own.
    let replica_store = support::redis_store(&prefix).await;
    let (_stop, shutdown) = tokio::sync::watch::channel(false);
    let app = router(ApiState::new(replica_store, shutdown).await.unwrap());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let replays = support::replays_into(&store);
    // Both matches exist, paused at kick-off, while the clients connect.
    for game in GAMES {
        replays
            .start(&game.to_string(), Speed::Factor(1.0))
            .await
            .unwrap();
        replays.pause(game).unwrap();
    }
    for game in GAMES {
        while store
            .load(game)
            .await
            .unwrap()
            .is_none_or(|m| m.replay.status != ReplayStatus::Paused)
        {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
    let mut clients = Vec::new();
    for i in 0..CLIENTS_PER_TRANSPORT {
        let game = GAMES[i % 2];
        clients.push((game, tokio::spawn(sse_client(base.clone(), game))));
        clients.push((game, tokio::spawn(ws_client(base.clone(), game))));
    }
    // Every client has its snapshot before the matches run.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while reqwest::get(format!("{base}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
        .lines()
        .find(|l| l.starts_with("livescore_topic_subscribers "))
        .is_none_or(|l| l != format!("livescore_topic_subscribers {}", 2 * CLIENTS_PER_TRANSPORT))
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the clients never all connected"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    for game in GAMES {
        replays.set_speed(game, Speed::Max).unwrap();
        replays.resume(game).unwrap();
    }

    let mut results = Vec::new();
    for (game, client) in clients {
        let received = tokio::time::timeout(Duration::from_secs(120), client)
            .await
            .expect("the client finished in time")
            .unwrap();
        results.push((game, received));
    }
    let mut logs = std::collections::HashMap::new();
    for game in GAMES {
        let LogRead::After(entries) = store.read_after(Topic::Match(game), None).await.unwrap()
        else {
            unreachable!()
        };
        let entries: Vec<(String, serde_json::Value)> = entries
            .iter()
            .map(|e| (e.cursor.clone(), serde_json::from_str(&e.json).unwrap()))
            .collect();
        logs.insert(game, entries);
    }
    for (game, received) in results {
        let log = &logs[&game];
        assert_eq!(received[0].1, "snapshot");
        let from = parse_cursor(received[0].0.as_deref().unwrap()).unwrap();
        let expected: Vec<&(String, serde_json::Value)> = log
            .iter()
            .filter(|(c, _)| parse_cursor(c).unwrap() > from)
            .collect();
        assert!(
            expected.len() > 150,
            "the match ran after the clients joined"
        );
        let got: Vec<(String, serde_json::Value)> = received[1..]
            .iter()
            .map(|(c, _, d)| (c.clone().unwrap(), d.clone()))
            .collect();
        assert_eq!(got.len(), expected.len(), "game {game}: every entry, once");
        assert!(
            got.iter().zip(&expected).all(|(g, e)| g == *e),
            "game {game}: in order"
        );
    }
    store.clear().await.unwrap();
}
