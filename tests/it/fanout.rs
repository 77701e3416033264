//! Fan-out at scale: 200 Server-Sent Events and 200 WebSocket clients on one API replica (over
//! Redis, two shards) during a maximum-speed replay of two matches; every client receives every
//! entry of its match, in order, exactly as the log holds them. Run with each of the engine's
//! writers: io_uring, and one `sendmsg` per socket.

use crate::support;

use std::time::Duration;

use livescore_domain::{ReplayStatus, Speed};
use support::clients::{Seen, Transport, assert_exact, listen_once};

const GAMES: [u64; 2] = [7471, 3788741];
const CLIENTS_PER_TRANSPORT: usize = 200;

/// One client over `transport`, from its first snapshot to the end of the match, on a single
/// connection.
async fn client(transport: Transport, base: String, game: u64) -> Vec<Seen> {
    let mut seen = Vec::new();
    let finished = listen_once(transport, &base, game, None, &mut seen).await;
    assert!(
        finished,
        "{transport:?}: the stream ended before the match did"
    );
    seen
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_client_gets_every_entry_in_order_through_io_uring() {
    every_client_gets_every_entry_in_order(true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_client_gets_every_entry_in_order_through_sendmsg() {
    every_client_gets_every_entry_in_order(false).await;
}

async fn every_client_gets_every_entry_in_order(io_uring: bool) {
    let prefix = support::owned("fanout");
    let store = support::redis_store(&prefix).await;
    // The replica has a store connection, and so a subscription, of its own.
    let replica_store = support::redis_store(&prefix).await;
    let served = support::serve_api(replica_store, |http| http.fanout_io_uring = io_uring).await;
    let base = served.base.clone();

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
        let store = &store;
        support::until(
            &format!("game {game} paused in the store"),
            Duration::from_secs(30),
            async || {
                store
                    .load(game)
                    .await
                    .unwrap()
                    .is_some_and(|m| m.replay.status == ReplayStatus::Paused)
            },
        )
        .await;
    }
    let mut clients = Vec::new();
    for i in 0..CLIENTS_PER_TRANSPORT {
        let game = GAMES[i % 2];
        for transport in [Transport::Sse, Transport::WebSocket] {
            clients.push((game, tokio::spawn(client(transport, base.clone(), game))));
        }
    }
    // Every client has its snapshot before the matches run.
    support::wait_for_subscribers(&base, 2 * CLIENTS_PER_TRANSPORT).await;
    // The writer asked for is the one at work (a kernel that refuses io_uring would have the
    // engine fall back to sendmsg, and this test would prove nothing about io_uring).
    let metrics = support::scrape(&base).await;
    let writer = if io_uring { "io_uring" } else { "sendmsg" };
    let shards = support::metric(
        &metrics,
        &format!("livescore_fanout_shards{{writer=\"{writer}\"}}"),
    );
    assert_eq!(shards, Some(2.0), "both shards write through {writer}");
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
    for (game, seen) in results {
        assert_exact(store.as_ref(), game, &seen).await;
        assert!(
            seen.len() > 151,
            "game {game}: the match ran after the clients joined"
        );
    }
    store.clear().await.unwrap();
}
