//! Failover without loss: two `livescore api` processes on one Redis; SSE or WebSocket clients
//! follow a replay on replica A; A is killed (SIGKILL) mid-match; the clients reconnect to B
//! with their last cursor (Last-Event-ID, or the WebSocket `cursor`); each client's sequence
//! equals the match's log exactly, with no gap and no duplicate. Needs Redis (REDIS_URL, which
//! `scripts/test` provides; the test that cuts Redis connections starts a Redis of its own).
//!
//! The replay is held at chosen minutes (`ReplayManager::pause_at`) while the clients join and
//! while a replica is killed: what happens when depends on no race with the replay's speed.

use crate::support;

use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use livescore_domain::{ReplayStatus, Speed};
use livescore_producer::ReplayManager;
use livescore_store::MatchStore;
use support::clients::{
    Seen, Transport, assert_exact, last_cursor, listen_once, next_json, send, ws,
};
use support::services::Server;

const GAME: u64 = 7471;

/// How long a client may take to follow the match to its end once it runs again.
const TO_THE_END: Duration = Duration::from_secs(60);

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

async fn replica(redis_url: &str, prefix: &str) -> Replica {
    let port = support::services::free_port();
    let child = Command::new(env!("CARGO_BIN_EXE_livescore"))
        .arg("api")
        .env("REDIS_URL", redis_url)
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

/// Two replicas on a Redis prefix of their own, and a replay of 7471 held at minute 10.
struct Setup {
    store: Arc<dyn MatchStore>,
    a: Option<Replica>,
    b: Replica,
    replays: ReplayManager,
    /// The Redis of the test's own, if it has one.
    _redis: Option<Server>,
    /// The replicas' key prefix, its keys deleted once the rest is gone.
    _prefix: support::Owned,
}

/// The replay runs at this speed between holds: 1500x, a minute of football in 40 ms.
const SPEED: Speed = Speed::Factor(1500.0);

/// On the shared test Redis, under a prefix of the test's own.
async fn setup() -> Setup {
    setup_on(support::redis_url(), None).await
}

/// On a Redis of the test's own, for a test that cuts every connection of its server.
async fn setup_on_own_redis() -> Setup {
    let redis = Server::redis().await;
    setup_on(redis.url(), Some(redis)).await
}

async fn setup_on(redis_url: String, redis: Option<Server>) -> Setup {
    let prefix = support::owned("failover");
    let store = support::redis_store_at(&redis_url, &prefix).await;
    let a = replica(&redis_url, &prefix).await;
    let b = replica(&redis_url, &prefix).await;
    // The pipeline, in this process, writing to the replicas' Redis.
    let replays = support::replays_into(&store);
    replays
        .start_holding(&GAME.to_string(), SPEED, Some(10))
        .await
        .unwrap();
    let setup = Setup {
        store,
        a: Some(a),
        b,
        replays,
        _redis: redis,
        _prefix: prefix,
    };
    setup.wait_until_held().await;
    setup
}

impl Setup {
    /// Waits until the store shows the replay paused (held at a minute).
    async fn wait_until_held(&self) {
        let store = &self.store;
        support::until("the replay held", Duration::from_secs(30), async || {
            store
                .load(GAME)
                .await
                .unwrap()
                .is_some_and(|m| m.replay.status == ReplayStatus::Paused)
        })
        .await;
    }

    /// Lets the replay run to the end of `minute`, and waits until it holds there.
    async fn run_to(&self, minute: u16) {
        self.replays.pause_at(GAME, minute).unwrap();
        self.replays.resume(GAME).unwrap();
        // The store says `running` first (the resume), then `paused` again.
        let store = &self.store;
        support::until("the replay running", Duration::from_secs(30), async || {
            store
                .load(GAME)
                .await
                .unwrap()
                .is_some_and(|m| m.replay.status != ReplayStatus::Paused)
        })
        .await;
        self.wait_until_held().await;
    }

    async fn assert_exact(&self, seen: &[Seen]) {
        assert_exact(self.store.as_ref(), GAME, seen).await;
    }
}

/// Eight clients follow the match on A over `transport` from minute 10; A is killed at minute
/// 30; each finishes on B with exactly the log after its snapshot.
async fn clients_fail_over(transport: Transport) {
    let mut setup = setup().await;
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

    // Every client on A, the match runs to minute 30 and holds; A dies; the match goes on
    // while the clients move to B.
    support::wait_for_subscribers(&a_base, 8).await;
    setup.run_to(30).await;
    setup.a = None;
    setup.replays.resume(GAME).unwrap();

    for client in clients {
        let (seen, switched_at) = support::within("a client's end", TO_THE_END, client)
            .await
            .unwrap();
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
    let setup = setup().await;
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
    // Cutting connections is a server-wide command: on a Redis of the test's own.
    let setup = setup_on_own_redis().await;
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
    support::wait_for_subscribers(&b_base, 4).await;
    // Held at minute 30, every pub/sub connection of the server is cut: the replicas
    // resubscribe, and what the match publishes meanwhile reaches the clients from the streams.
    setup.run_to(30).await;
    let url = setup._redis.as_ref().unwrap().url();
    let mut conn = redis::Client::open(url)
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
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
    setup.replays.resume(GAME).unwrap();
    for client in clients {
        let seen = support::within("a client's end", TO_THE_END, client)
            .await
            .unwrap();
        setup.assert_exact(&seen).await;
    }
    let metrics = support::scrape(&b_base).await;
    let interruptions = support::metric(&metrics, "livescore_live_interruptions_total");
    assert!(
        interruptions.is_some_and(|count| count > 0.0),
        "replica B noticed its subscription cut: livescore_live_interruptions_total is {interruptions:?}"
    );
    setup.store.clear().await.unwrap();
}
