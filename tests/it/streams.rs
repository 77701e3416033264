//! The fan-out engine's guarantees, on one API replica (built as `main` builds it) over the
//! in-process store: a live stream after other requests on the same connection (kept alive or
//! pipelined) is handed over like a first one; a viewer that stops reading is let go while the
//! others carry on; a viewer too slow for its queue catches up from the store and still sees
//! every entry once, in order.

use crate::support;

use std::sync::Arc;
use std::time::Duration;

use livescore_app::settings::HttpSettings;
use livescore_domain::{ReplayStatus, Speed};
use livescore_store::MatchStore;
use livescore_store::memory::MemoryStore;
use support::clients::{Seen, Transport, assert_exact, listen_once, next_json, next_text, send};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

const GAME: u64 = 7471;

/// A replica over an in-process store, and the producer that fills it.
struct Setup {
    store: Arc<dyn MatchStore>,
    replays: livescore_producer::ReplayManager,
    served: support::Served,
}

async fn setup(http: impl FnOnce(&mut HttpSettings)) -> Setup {
    let store: Arc<dyn MatchStore> = Arc::new(MemoryStore::new());
    let replays = support::replays_into(&store);
    let served = support::serve_api(Arc::clone(&store), http).await;
    Setup {
        store,
        replays,
        served,
    }
}

impl Setup {
    fn addr(&self) -> String {
        self.served.base.trim_start_matches("http://").to_owned()
    }

    /// Starts the game paused at kick-off, so that viewers join before it runs.
    async fn paused_game(&self) {
        self.replays
            .start(&GAME.to_string(), Speed::Factor(1.0))
            .await
            .unwrap();
        self.replays.pause(GAME).unwrap();
        self.until("the game paused in the store", || async {
            let game = self.store.load(GAME).await.unwrap();
            game.is_some_and(|m| m.replay.status == ReplayStatus::Paused)
        })
        .await;
    }

    fn run_at_max_speed(&self) {
        self.replays.set_speed(GAME, Speed::Max).unwrap();
        self.replays.resume(GAME).unwrap();
    }

    async fn metric(&self, name: &str) -> i64 {
        let text = support::scrape(&self.served.base).await;
        support::metric(&text, name).unwrap() as i64
    }

    /// Waits (30 s at most) for `condition`.
    async fn until<F: Future<Output = bool>>(&self, what: &str, condition: impl Fn() -> F) {
        support::until(what, Duration::from_secs(30), condition).await;
    }
}

/// Reads from `stream` until `what` has arrived (10 s at most); everything read.
async fn read_until(stream: &mut TcpStream, what: &str) -> String {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !String::from_utf8_lossy(&got).contains(what) {
        let n = tokio::time::timeout_at(deadline, stream.read(&mut buf))
            .await
            .unwrap_or_else(|_| panic!("no {what:?} in {:?}", String::from_utf8_lossy(&got)))
            .unwrap();
        assert!(
            n > 0,
            "closed before {what:?}: {:?}",
            String::from_utf8_lossy(&got)
        );
        got.extend_from_slice(&buf[..n]);
    }
    String::from_utf8_lossy(&got).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_after_other_requests_on_the_same_connection_is_handed_over() {
    let setup = setup(|_| {}).await;
    setup.paused_game().await;
    let request = |path: &str| format!("GET {path} HTTP/1.1\r\nHost: test\r\n\r\n");

    // Kept alive: a REST answer, then the stream on the same connection.
    let mut stream = TcpStream::connect(setup.addr()).await.unwrap();
    stream
        .write_all(request("/games").as_bytes())
        .await
        .unwrap();
    let answer = read_until(&mut stream, "\"match_id\":7471").await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    stream
        .write_all(request(&format!("/sse/games/{GAME}")).as_bytes())
        .await
        .unwrap();
    let events = read_until(&mut stream, "event: snapshot").await;
    assert!(events.starts_with("HTTP/1.1 200"), "{events}");
    assert!(events.contains("transfer-encoding: chunked"), "{events}");
    // The body's `retry:`, read by the wire's own SSE reader (a chunk's size line is a field it
    // does not know, and skips).
    let mut body = livescore_wire::sse::Reader::default();
    body.push(
        events
            .split_once("\r\n\r\n")
            .map_or("", |(_, body)| body)
            .as_bytes(),
    );
    body.next_event();
    assert!(
        body.retry
            .is_some_and(|millis| livescore_api::fanout::RETRY_MS.contains(&millis)),
        "{events}"
    );

    // Pipelined: both requests in one write.
    let mut stream = TcpStream::connect(setup.addr()).await.unwrap();
    let both = request("/healthz") + &request("/sse/games");
    stream.write_all(both.as_bytes()).await.unwrap();
    let both = read_until(&mut stream, "event: snapshot").await;
    assert!(
        both.contains("ok") && both.matches("HTTP/1.1 200").count() == 2,
        "{both}"
    );

    // A WebSocket handshake after a REST answer on the same connection.
    let mut stream = TcpStream::connect(setup.addr()).await.unwrap();
    stream
        .write_all(request("/healthz").as_bytes())
        .await
        .unwrap();
    read_until(&mut stream, "\r\n\r\nok").await;
    let url = format!("ws://{}/ws", setup.addr());
    let (mut socket, _) = tokio_tungstenite::client_async(url, stream).await.unwrap();
    assert!(
        send(
            &mut socket,
            &format!(r#"{{"op":"subscribe","topic":"game:{GAME}"}}"#)
        )
        .await
    );
    let first = next_json(&mut socket).await.unwrap();
    assert_eq!(first["kind"], "snapshot", "{first}");

    // Both streams carry on live.
    setup.run_at_max_speed();
    let mut seen = Vec::new();
    assert!(listen_once(Transport::Sse, &setup.served.base, GAME, None, &mut seen).await);
    assert_exact(setup.store.as_ref(), GAME, &seen).await;
    let mut frames = 0;
    while let Some(frame) = next_json(&mut socket).await {
        frames += 1;
        if frame["data"]["replay"]["status"] == "finished" {
            break;
        }
    }
    assert!(
        frames > 100,
        "the WebSocket followed the match: {frames} frames"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_viewer_that_stops_reading_is_let_go_and_the_others_carry_on() {
    let setup = setup(|http| {
        // Long beside any pause of a healthy reader on a loaded machine (the reader below must
        // not be let go), short beside the test's 30 s wait for the stalled one's close.
        http.slow_client_ms = 5000;
        // A few messages' worth.
        http.client_queue_bytes = 4096;
        http.send_buffer_bytes = Some(4096);
    })
    .await;
    setup.paused_game().await;
    // A viewer that never reads, with a small window.
    let socket = TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(2048).unwrap();
    let mut stalled = socket.connect(setup.addr().parse().unwrap()).await.unwrap();
    let request = format!("GET /sse/games/{GAME} HTTP/1.1\r\nHost: test\r\n\r\n");
    stalled.write_all(request.as_bytes()).await.unwrap();
    let reader = {
        let base = setup.served.base.clone();
        tokio::spawn(async move {
            let mut seen = Vec::new();
            assert!(listen_once(Transport::Sse, &base, GAME, None, &mut seen).await);
            seen
        })
    };
    setup
        .until("both viewers subscribed", || async {
            setup.metric("livescore_topic_subscribers").await == 2
        })
        .await;
    setup.run_at_max_speed();

    let seen: Vec<Seen> = tokio::time::timeout(Duration::from_secs(60), reader)
        .await
        .unwrap()
        .unwrap();
    assert_exact(setup.store.as_ref(), GAME, &seen).await;
    setup
        .until("the stalled viewer let go", || async {
            setup.metric("livescore_slow_client_closes_total").await == 1
        })
        .await;
    // The stalled viewer's socket was closed: reading it now ends.
    let mut rest = Vec::new();
    let ended = tokio::time::timeout(Duration::from_secs(10), stalled.read_to_end(&mut rest)).await;
    assert!(
        ended.is_ok(),
        "the stalled viewer's connection is still open"
    );
    assert_eq!(
        setup
            .metric("livescore_connections{transport=\"sse\"}")
            .await,
        0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_viewer_too_slow_for_its_queue_catches_up_and_misses_nothing() {
    let setup = setup(|http| {
        // A message or two.
        http.client_queue_bytes = 1024;
        http.send_buffer_bytes = Some(4096);
    })
    .await;
    setup.paused_game().await;
    let socket = TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(2048).unwrap();
    let stream = socket.connect(setup.addr().parse().unwrap()).await.unwrap();
    let url = format!("ws://{}/ws", setup.addr());
    let config =
        tokio_tungstenite::tungstenite::protocol::WebSocketConfig::default().read_buffer_size(1024);
    let (mut socket, _) = tokio_tungstenite::client_async_with_config(url, stream, Some(config))
        .await
        .unwrap();
    assert!(
        send(
            &mut socket,
            &format!(r#"{{"op":"subscribe","topic":"game:{GAME}"}}"#)
        )
        .await
    );
    setup
        .until("the viewer subscribed", || async {
            setup.metric("livescore_topic_subscribers").await == 1
        })
        .await;
    setup.run_at_max_speed();
    let mut seen = Vec::new();
    while let Some(text) = next_text(&mut socket).await {
        // A viewer slower than the replay: its queue fills while it naps.
        tokio::time::sleep(Duration::from_millis(5)).await;
        let event = Seen::of_frame(&text);
        let finished = event.event == "replay" && event.data.contains("\"status\":\"finished\"");
        seen.push(event);
        if finished {
            break;
        }
    }
    assert_exact(setup.store.as_ref(), GAME, &seen).await;
    assert!(
        setup.metric("livescore_catch_ups_total").await >= 1,
        "the viewer fell behind and caught up"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn viewers_leaving_mid_match_do_not_disturb_the_others() {
    let setup = setup(|_| {}).await;
    setup.paused_game().await;
    // Forty viewers; half will leave after a few entries, without a word.
    let mut stayers = Vec::new();
    let mut leavers = Vec::new();
    for i in 0..40 {
        let base = setup.served.base.clone();
        let transport = if i % 2 == 0 {
            Transport::Sse
        } else {
            Transport::WebSocket
        };
        if i % 4 < 2 {
            stayers.push(tokio::spawn(async move {
                let mut seen = Vec::new();
                assert!(listen_once(transport, &base, GAME, None, &mut seen).await);
                seen
            }));
        } else {
            leavers.push(tokio::spawn(async move {
                let mut seen = Vec::new();
                listen_once(transport, &base, GAME, None, &mut seen).await;
            }));
        }
    }
    setup
        .until("40 viewers subscribed", || async {
            setup.metric("livescore_topic_subscribers").await == 40
        })
        .await;
    setup.run_at_max_speed();
    setup
        .until("20 messages to each viewer", || async {
            setup.metric("livescore_messages_sent_total").await > 40 * 20
        })
        .await;
    for leaver in leavers {
        leaver.abort();
    }
    for stayer in stayers {
        let seen = tokio::time::timeout(Duration::from_secs(60), stayer)
            .await
            .unwrap()
            .unwrap();
        assert_exact(setup.store.as_ref(), GAME, &seen).await;
    }
    // The engine still serves a newcomer.
    let mut newcomer = TcpStream::connect(setup.addr()).await.unwrap();
    let request = format!("GET /sse/games/{GAME} HTTP/1.1\r\nHost: test\r\n\r\n");
    newcomer.write_all(request.as_bytes()).await.unwrap();
    read_until(&mut newcomer, "event: snapshot").await;
}
