//! The HTTP listener every role serves on (the API, the producer, `up`), with the limits an
//! open port needs:
//!
//! - a header read timeout (hyper's, which needs a timer): a client that has not sent a whole
//!   request head within it is disconnected. It also bounds a keep-alive connection left idle
//!   between requests, since hyper starts the timer again when it waits for the next head. A
//!   live stream (SSE, an upgraded WebSocket) is not waiting for a head and is not affected.
//! - a limit on open connections: past it a connection gets an immediate `503` with a JSON
//!   error and is closed, so a flood of idle sockets cannot take every file descriptor;
//! - every error answer is JSON (`{"error": "..."}`), whoever produced it: our handlers, axum's
//!   extractors (a body over 16 KiB: `413`), the router (`405`), the static files (`404`).
//!
//! Graceful shutdown: on the signal the listener closes and each connection finishes its
//! current request (SSE streams end themselves at shutdown; WebSockets are closed by the API).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::Context;
use axum::body::Body;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderValue, Request, header};
use axum::response::{IntoResponse, Response};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::sync::{Semaphore, watch};
use tower::ServiceExt;

use crate::config::HttpArgs;

/// The largest request body any route takes (the producer's `{"speed": 600}` is a few bytes).
pub const MAX_BODY: usize = 16 * 1024;

/// File descriptors kept for everything but client connections (Redis, Kafka, logs, files).
const RESERVED_FDS: u64 = 256;

/// How long shutdown waits for connections to finish their current request.
const DRAIN: Duration = Duration::from_secs(5);

/// What the listener enforces, resolved from the configuration.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_connections: usize,
    pub header_timeout: Duration,
}

impl Limits {
    /// `HTTP_MAX_CONNECTIONS`, or when it is 0, what the file-descriptor limit leaves room for.
    pub fn of(args: &HttpArgs) -> Limits {
        let max_connections = match args.http_max_connections {
            0 => {
                let (soft, _) = rlimit::getrlimit(rlimit::Resource::NOFILE).unwrap_or((1024, 0));
                soft.saturating_sub(RESERVED_FDS).max(16)
            }
            configured => configured,
        };
        Limits {
            max_connections: usize::try_from(max_connections).unwrap_or(usize::MAX),
            header_timeout: Duration::from_millis(args.http_header_timeout_ms),
        }
    }
}

/// Connections refused because the limit was reached (logged now and then, not each time).
static REFUSED: AtomicU64 = AtomicU64::new(0);

/// Serves `app` on `args.listen` until `shutdown` turns true.
pub async fn serve(
    args: &HttpArgs,
    app: axum::Router,
    mut shutdown: watch::Receiver<bool>,
) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    let limits = Limits::of(args);
    tracing::info!(
        listen = %args.listen,
        max_connections = limits.max_connections,
        header_timeout_ms = limits.header_timeout.as_millis() as u64,
        "HTTP listening"
    );
    // `with_state(())` once here builds the routes once: served as a plain `Router` per
    // connection, axum 0.8 would rebuild its routing tables for each (about 9 KB per open
    // connection, measured with heaptrack on 10,000 SSE viewers).
    let app = app
        .layer(axum::middleware::map_response(json_error_body))
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .with_state(());
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout);
    builder
        .http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(Some(Duration::from_secs(20)))
        .enable_connect_protocol();
    let permits = Arc::new(Semaphore::new(limits.max_connections));
    let graceful = GracefulShutdown::new();
    loop {
        let (stream, _peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(err) => {
                    // Out of file descriptors, most likely: wait for some to come back rather
                    // than spin on accept.
                    tracing::warn!("cannot accept a connection: {err}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = shutdown.wait_for(|stop| *stop) => break,
        };
        let Ok(permit) = Arc::clone(&permits).try_acquire_owned() else {
            tokio::spawn(refuse(stream, limits.max_connections));
            continue;
        };
        let _ = stream.set_nodelay(true);
        let service = TowerToHyperService::new(
            app.clone()
                .map_request(|request: Request<Incoming>| request.map(Body::new)),
        );
        let connection = builder
            .serve_connection_with_upgrades(TokioIo::new(stream), service)
            .into_owned();
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            // A header timeout, a reset or a malformed request: the connection is over.
            if let Err(err) = connection.await {
                tracing::debug!("connection ended: {err}");
            }
            drop(permit);
        });
    }
    drop(listener);
    if tokio::time::timeout(DRAIN, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::info!("connections still busy {DRAIN:?} after the signal: leaving them");
    }
    Ok(())
}

/// Answers a connection over the limit with a `503` and closes it, without reading it.
async fn refuse(mut stream: TcpStream, max_connections: usize) {
    let refused = REFUSED.fetch_add(1, Ordering::Relaxed) + 1;
    if refused.is_power_of_two() {
        tracing::warn!(
            max_connections,
            refused,
            "refusing connections: the limit of open connections is reached"
        );
    }
    let body = serde_json::json!({
        "error": format!(
            "too many open connections (at most {max_connections}); try again shortly"
        )
    })
    .to_string();
    let answer = format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\n\
         retry-after: 1\r\nconnection: close\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    );
    let _ = tokio::time::timeout(Duration::from_secs(1), async {
        let _ = stream.write_all(answer.as_bytes()).await;
        let _ = stream.shutdown().await;
    })
    .await;
}

/// Makes every error answer JSON: one that is not already gets `{"error": "..."}`, from its own
/// text when it has one (cut short), else from its status.
async fn json_error_body(response: Response) -> Response {
    let status = response.status();
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.starts_with("application/json"));
    if !(status.is_client_error() || status.is_server_error()) || is_json {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let text = axum::body::to_bytes(body, MAX_BODY)
        .await
        .map(|bytes| String::from_utf8_lossy(&bytes).trim().to_owned())
        .unwrap_or_default();
    let reason = status.canonical_reason().unwrap_or("error").to_lowercase();
    let error = if text.is_empty() {
        reason
    } else {
        livescore_domain::excerpt(&text)
    };
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    let body = serde_json::json!({ "error": error }).to_string();
    (parts, body).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::StatusCode;

    #[tokio::test]
    async fn error_answers_become_json_and_others_are_left_alone() {
        let plain = (StatusCode::PAYLOAD_TOO_LARGE, "length limit exceeded").into_response();
        let json = json_error_body(plain).await;
        assert_eq!(json.status(), StatusCode::PAYLOAD_TOO_LARGE);
        assert_eq!(json.headers()[header::CONTENT_TYPE], "application/json");
        let body = axum::body::to_bytes(json.into_body(), 1024).await.unwrap();
        assert_eq!(&body[..], br#"{"error":"length limit exceeded"}"#);

        let empty = StatusCode::METHOD_NOT_ALLOWED.into_response();
        let body = axum::body::to_bytes(json_error_body(empty).await.into_body(), 1024)
            .await
            .unwrap();
        assert_eq!(&body[..], br#"{"error":"method not allowed"}"#);

        let ok = (StatusCode::OK, "fine").into_response();
        let body = axum::body::to_bytes(json_error_body(ok).await.into_body(), 1024)
            .await
            .unwrap();
        assert_eq!(&body[..], b"fine");
    }
}
