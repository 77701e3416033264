//! What an open port needs: a cap on connections (refused with a JSON `503`), a header read
//! timeout, and JSON error bodies whoever produced the error.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use crate::{MAX_BODY, ServerConfig};

/// File descriptors kept for everything but client connections: listeners, each runtime's
/// epoll and wake-up, the store's and the log's connections, files served, logs.
const RESERVED_FDS: u64 = 256;

/// What the listener enforces, resolved from the configuration.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    pub max_connections: usize,
    pub header_timeout: Duration,
    /// How long shutdown waits for what is still being served.
    pub drain: Duration,
}

impl Limits {
    /// `max_connections`, or when it is 0, what the process's file-descriptor limit leaves room
    /// for. Never more than that: past the limit `accept` fails, and the client would get no
    /// answer at all instead of the JSON `503`.
    pub fn of(config: &ServerConfig) -> Limits {
        let (soft, _) = rlimit::getrlimit(rlimit::Resource::NOFILE).unwrap_or((1024, 0));
        let room = soft.saturating_sub(RESERVED_FDS).max(16);
        let max_connections = match config.max_connections {
            0 => room,
            configured if configured > room => {
                tracing::warn!(
                    configured,
                    room,
                    "HTTP_MAX_CONNECTIONS is above what the open-file limit allows: using {room} \
                     (raise the limit: systemd LimitNOFILE=, compose ulimits: nofile, ulimit -n)"
                );
                room
            }
            configured => configured,
        };
        Limits {
            max_connections: usize::try_from(max_connections).unwrap_or(usize::MAX),
            header_timeout: config.header_timeout,
            drain: config.drain,
        }
    }
}

/// Connections refused because the limit was reached (logged now and then, not each time).
static REFUSED: AtomicU64 = AtomicU64::new(0);

/// Answers a connection over the limit with a `503` and closes it, without reading it.
pub(crate) async fn refuse(mut stream: TcpStream, max_connections: usize) {
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
pub async fn json_error_body(response: Response) -> Response {
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
    #![allow(clippy::unwrap_used)]
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
