//! Failover without loss: two `livescore api` processes on one Redis; SSE or WebSocket clients
//! follow a replay on replica A; A is killed (SIGKILL) mid-match; the clients reconnect to B
//! with their last cursor (Last-Event-ID, or the WebSocket `cursor`); each client's sequence
//! equals the match's log exactly, with no gap and no duplicate. Needs Redis (REDIS_URL, which
//! `scripts/test` provides).

use crate::support;

use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use livescore_domain::Speed;
use livescore_producer::ReplayManager;
use livescore_store::MatchStore;
use support::clients::{
    Seen, Transport, assert_exact, last_cursor, listen_once, next_json, send, ws,
};

const GAME: u64 = 7471;

/// A `livescore api` process; killed when dropped.
struct Replica {
    child: Child,
    base: String,
}

impl Drop for Replica {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn replica(prefix: &str) -> Replica {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = Command::new(env!("CARGO_BIN_EXE_livescore"))
        .arg("api")
        .env("REDIS_URL", support::redis_url())
        .env("REDIS_PREFIX", prefix)
        .env("LISTEN", format!("127.0.0.1:{port}"))
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let base = format!("http://127.0.0.1:{port}");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while reqwest::get(format!("{base}/healthz")).await.is_err() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "replica never answered"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Replica { child, base }
}

/// Reads the SSE events of the test's game; see `support::clients::sse_listen`.
async fn listen(base: &str, last_id: Option<&str>, seen: &mut Vec<Seen>) -> bool {
    listen_once(Transport::Sse, base, GAME, last_id, seen).await
}

/// Two replicas on a Redis prefix of their own, and a replay of 7471 under way.
struct Setup {
    store: Arc<dyn MatchStore>,
    a: Option<Replica>,
    b: Replica,
    _replays: ReplayManager,
}

async fn setup(speed: f64) -> Setup {
    let prefix = support::unique("failover");
    let store = support::redis_store(&prefix).await;
    let a = replica(&prefix).await;
    let b = replica(&prefix).await;
    // The pipeline, in this process, writing to the replicas' Redis.
    let replays = support::replays_into(&store);
    replays
        .start(&GAME.to_string(), Speed::Factor(speed))
        .await
        .unwrap();
    while store.load(GAME).await.unwrap().is_none() {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    Setup {
        store,
        a: Some(a),
        b,
        _replays: replays,
    }
}

impl Setup {
    async fn assert_exact(&self, seen: &[Seen]) {
        assert_exact(self.store.as_ref(), GAME, seen).await;
    }

    /// Waits until the match's clock shows `minute` (a condition with a deadline, not a sleep).
    async fn wait_for_minute(&self, minute: u16) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        loop {
            let stored = self.store.load(GAME).await.unwrap().unwrap();
            if stored.fold.state.clock.minute >= minute {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "the match never reached minute {minute}"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
}

/// Eight clients follow the match on A over `transport`; A is killed at minute 30; each
/// finishes on B with exactly the log after its snapshot.
async fn clients_fail_over(transport: Transport) {
    let mut setup = setup(1500.0).await;
    let a_base = setup.a.as_ref().unwrap().base.clone();
    let b_base = setup.b.base.clone();
    let clients: Vec<_> = (0..8)
        .map(|_| {
            let (a_base, b_base) = (a_base.clone(), b_base.clone());
            tokio::spawn(async move {
                let mut seen = Vec::new();
                let finished_on_a = listen_once(transport, &a_base, GAME, None, &mut seen).await;
                assert!(!finished_on_a, "replica A was killed before the end");
                let switched_at = seen.len();
                let last = last_cursor(&seen);
                assert!(
                    listen_once(transport, &b_base, GAME, last.as_deref(), &mut seen).await,
                    "finished on B"
                );
                (seen, switched_at)
            })
        })
        .collect();

    // Kill A in the middle of the match.
    setup.wait_for_minute(30).await;
    setup.a = None;

    for client in clients {
        let (seen, switched_at) = client.await.unwrap();
        assert!(switched_at > 1, "the client saw some of the match on A");
        setup.assert_exact(&seen).await;
    }
    setup.store.clear().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sse_clients_fail_over_to_another_replica_without_gap_or_duplicate() {
    clients_fail_over(Transport::Sse).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_clients_fail_over_with_their_cursors() {
    clients_fail_over(Transport::WebSocket).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_bad_requests_get_clear_errors_and_the_connection_carries_on() {
    let setup = setup(600.0).await;
    let mut socket = ws(&setup.b.base).await.unwrap();
    for (request, expected) in [
        ("not json", "not a request"),
        (r#"{"op":"dance"}"#, "not a request"),
        (r#"{"op":"subscribe","topic":"weather"}"#, "unknown topic"),
        (
            r#"{"op":"subscribe","topic":"game:../../etc"}"#,
            "unknown topic",
        ),
        (r#"{"op":"subscribe","topic":"game:1"}"#, "no game 1"),
        (r#"{"op":"unsubscribe","topic":"games"}"#, "not subscribed"),
    ] {
        assert!(send(&mut socket, request).await);
        let reply = next_json(&mut socket).await.unwrap();
        assert_eq!(reply["kind"], "error", "{request}: {reply}");
        assert!(
            reply["message"].as_str().unwrap().contains(expected),
            "{request}: {reply}"
        );
    }
    // Still usable: a garbage cursor gets a snapshot.
    assert!(
        send(
            &mut socket,
            &format!(r#"{{"op":"subscribe","topic":"game:{GAME}","cursor":"garbage"}}"#),
        )
        .await
    );
    let first = next_json(&mut socket).await.unwrap();
    assert_eq!(first["kind"], "snapshot");
    // An oversized frame closes the connection (4 KiB at most).
    send(
        &mut socket,
        &format!(r#"{{"op":"subscribe","topic":"{}"}}"#, "x".repeat(10_000)),
    )
    .await;
    let mut closed = false;
    for _ in 0..10_000 {
        if next_json(&mut socket).await.is_none() {
            closed = true;
            break;
        }
    }
    assert!(closed, "an oversized frame ends the connection");
    setup.store.clear().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_whose_redis_subscription_drops_backfills_what_it_missed() {
    let setup = setup(1500.0).await;
    let b_base = setup.b.base.clone();
    let clients: Vec<_> = (0..4)
        .map(|_| {
            let b_base = b_base.clone();
            tokio::spawn(async move {
                let mut seen = Vec::new();
                assert!(
                    listen(&b_base, None, &mut seen).await,
                    "finished without a break"
                );
                seen
            })
        })
        .collect();
    // Cut every pub/sub connection of the server in the middle of the match: the replicas
    // resubscribe, and entries published meanwhile reach their clients from the streams.
    setup.wait_for_minute(30).await;
    let client = redis::Client::open(support::redis_url()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let killed: i64 = redis::cmd("CLIENT")
        .arg("KILL")
        .arg("TYPE")
        .arg("pubsub")
        .query_async(&mut conn)
        .await
        .unwrap();
    assert!(
        killed >= 2,
        "the replicas' subscriptions were cut ({killed})"
    );
    for client in clients {
        let seen = client.await.unwrap();
        setup.assert_exact(&seen).await;
    }
    let metrics = reqwest::get(format!("{b_base}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        !metrics.contains("livescore_live_interruptions_total 0"),
        "the replica noticed: {metrics}"
    );
    setup.store.clear().await.unwrap();
}
