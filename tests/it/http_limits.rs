//! The HTTP listener under abuse, on a real `livescore up` (every role serves through the same
//! listener, `livescore_server`): half-open connections are closed after the header timeout,
//! connections past the limit get a clear JSON refusal, a WebSocket that never subscribes is
//! closed, and error answers are JSON that quote at most a short prefix of bad input.

use crate::support;

use std::time::Duration;

use futures_util::StreamExt;
use support::services::{Role, free_port};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

const MAX_CONNECTIONS: usize = 300;
const HEADER_TIMEOUT: Duration = Duration::from_secs(1);
const IDLE_SOCKET: Duration = Duration::from_secs(1);

/// `livescore up` (in-process engines) with small limits, and its address.
async fn up() -> (Role, String) {
    up_with_header_timeout(HEADER_TIMEOUT).await
}

async fn up_with_header_timeout(header_timeout: Duration) -> (Role, String) {
    let port = free_port();
    let repo = env!("CARGO_MANIFEST_DIR");
    let role = Role::start(
        "up",
        &[
            ("LISTEN", format!("127.0.0.1:{port}")),
            ("DATA_DIR", format!("{repo}/data")),
            ("WEB_DIR", format!("{repo}/web")),
            ("ADMIN_TOKEN", "limits-test".to_owned()),
            ("HTTP_MAX_CONNECTIONS", MAX_CONNECTIONS.to_string()),
            (
                "HTTP_HEADER_TIMEOUT_MS",
                header_timeout.as_millis().to_string(),
            ),
            ("WS_IDLE_TIMEOUT_MS", IDLE_SOCKET.as_millis().to_string()),
        ],
    );
    let base = format!("http://127.0.0.1:{port}");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while reqwest::get(format!("{base}/healthz")).await.is_err() {
        assert!(tokio::time::Instant::now() < deadline, "up never answered");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    (role, base)
}

fn addr(base: &str) -> String {
    base.trim_start_matches("http://").to_owned()
}

/// Reads until the server closes the connection (or `limit` passes); what it sent.
async fn read_until_closed(stream: &mut TcpStream, limit: Duration) -> Option<Vec<u8>> {
    let mut received = Vec::new();
    let mut buffer = [0u8; 1024];
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut buffer)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return Some(received),
            Ok(Ok(n)) => received.extend_from_slice(&buffer[..n]),
            Err(_still_open) => return None,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_half_open_connections_are_closed_after_the_header_timeout() {
    let (_up, base) = up().await;
    let mut sockets = Vec::new();
    for _ in 0..200 {
        let mut socket = TcpStream::connect(addr(&base)).await.unwrap();
        // Half a request head, and then nothing: slowloris.
        socket
            .write_all(b"GET /games HTTP/1.1\r\nHost: x\r\nX-Slow: ")
            .await
            .unwrap();
        sockets.push(socket);
    }
    let held_since = tokio::time::Instant::now();
    let closing: Vec<_> = sockets
        .into_iter()
        .map(|mut socket| {
            tokio::spawn(
                async move { read_until_closed(&mut socket, Duration::from_secs(10)).await },
            )
        })
        .collect();
    for socket in closing {
        assert!(
            socket.await.unwrap().is_some(),
            "a half-open connection was still open 10 s later"
        );
    }
    assert!(
        held_since.elapsed() >= HEADER_TIMEOUT / 2,
        "closed by the timeout, not at once"
    );
    // The server is still there for everybody else.
    let games = reqwest::get(format!("{base}/games")).await.unwrap();
    assert_eq!(games.status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_past_the_limit_get_a_json_503_and_the_rest_carry_on() {
    // A header timeout long enough that the held connections stay while the test needs them.
    let (_up, base) = up_with_header_timeout(Duration::from_secs(60)).await;
    // The limit's worth of kept-alive connections, each answered once: connected is not yet
    // accepted, and the shards accept from queues of their own, so a connection still queued
    // at one shard could be refused after the extra one below took the last place at another.
    let mut held = Vec::new();
    for _ in 0..MAX_CONNECTIONS {
        let mut socket = TcpStream::connect(addr(&base)).await.unwrap();
        socket
            .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        let mut answer = Vec::new();
        while !answer.ends_with(b"\r\n\r\nok") {
            let mut buffer = [0u8; 512];
            let n = tokio::time::timeout(Duration::from_secs(5), socket.read(&mut buffer))
                .await
                .expect("a held connection is answered")
                .unwrap();
            assert!(n > 0, "a held connection was closed: {answer:?}");
            answer.extend_from_slice(&buffer[..n]);
        }
        held.push(socket);
    }
    // The next one is refused at once, with a reason.
    let mut extra = TcpStream::connect(addr(&base)).await.unwrap();
    let answer = read_until_closed(&mut extra, Duration::from_secs(5))
        .await
        .expect("the refusal closes the connection");
    let answer = String::from_utf8(answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
    assert!(answer.contains("application/json"), "{answer}");
    assert!(answer.contains("too many open connections"), "{answer}");
    // Once the held ones go, connections are served again.
    drop(held);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        if let Ok(response) = reqwest::get(format!("{base}/games")).await
            && response.status() == 200
        {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "never served again");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_websocket_that_never_subscribes_is_closed() {
    let (_up, base) = up().await;
    let url = format!("{}/ws", base.replace("http://", "ws://"));
    let (mut socket, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    let deadline = Duration::from_secs(10);
    let close = loop {
        match tokio::time::timeout(deadline, socket.next()).await {
            Ok(Some(Ok(Message::Close(frame)))) => break frame,
            Ok(Some(Ok(_))) => continue,
            other => panic!("expected a close frame, got {other:?}"),
        }
    };
    let close = close.unwrap();
    assert_eq!(close.code, CloseCode::Policy);
    assert!(close.reason.contains("no subscription"), "{close:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn error_answers_are_json_and_quote_only_a_prefix_of_bad_input() {
    let (_up, base) = up().await;
    let http = reqwest::Client::new();

    // A 10,000-character game id: 404, with a short message.
    let long_id = "9".repeat(5_000) + &"x".repeat(5_000);
    let (body, error) = error_answer(http.get(format!("{base}/games/{long_id}")), 404).await;
    assert!(body.len() < 200, "{} bytes: {body}", body.len());
    assert!(error.contains("no game"), "{error}");

    // A huge body: 413, as JSON, and the connection closed (its body was not read), saying so,
    // so that the next request does not go out on it.
    let huge = || {
        http.post(format!("{base}/games/7471"))
            .bearer_auth("limits-test")
            .header("content-type", "application/json")
            .body(vec![b' '; 1 << 20])
    };
    error_answer(huge(), 413).await;
    let refused = huge().send().await.unwrap();
    assert_eq!(refused.headers()["connection"], "close");

    // A method the route does not take, and a bad speed: JSON too.
    let (_, error) = error_answer(http.delete(format!("{base}/games")), 405).await;
    assert_eq!(error, "method not allowed");
    let bad_speed = http
        .post(format!("{base}/games/7471?speed={}", "f".repeat(5_000)))
        .bearer_auth("limits-test");
    let (body, error) = error_answer(bad_speed, 400).await;
    assert!(body.len() < 300, "{} bytes: {body}", body.len());
    assert!(error.contains("not a speed"), "{error}");
}

/// Sends `request`, checks the answer has `status` and a JSON body `{"error": "..."}`; returns
/// the body and the error.
async fn error_answer(request: reqwest::RequestBuilder, status: u16) -> (String, String) {
    let response = request.send().await.unwrap();
    assert_eq!(response.status(), status);
    let body = response.text().await.unwrap();
    let json: serde_json::Value =
        serde_json::from_str(&body).unwrap_or_else(|_| panic!("not JSON: {body}"));
    let error = json["error"]
        .as_str()
        .unwrap_or_else(|| panic!("no error: {body}"));
    (body.clone(), error.to_owned())
}
