//! WebSocket `/ws`: the same topics as the SSE routes, several per connection.
//!
//! Client to server (text frames, JSON, at most 4 KiB):
//! - `{"op": "subscribe", "topic": "games" | "game:<id>", "cursor": "<optional>"}`
//! - `{"op": "unsubscribe", "topic": "..."}`
//!
//! Server to client:
//! - `{"topic": "...", "kind": "snapshot" | "update" | "replay" | "game", "cursor": "...", "data": {...}}`:
//!   each subscription opens with how it joined: `{"kind": "resumed", "data": {"kind":
//!   "resumed", "after": "<cursor>"}}` then exactly what came after the client's cursor, or a
//!   `snapshot` whose data names its `reason` (`no_cursor`, `cursor_unknown`, `too_far_behind`,
//!   `store_rebuilt`: `livescore_wire::SnapshotReason`); then entries
//! - `{"topic": "...", "kind": "unsubscribed"}`
//! - `{"kind": "error", "message": "..."}`: the request was not understood; the connection stays
//!
//! The server pings when it has sent nothing else for 10 to 15 s. When it shuts down it closes
//! with 1012 (service restart), so clients reconnect elsewhere and resubscribe with their
//! cursors. A connection that follows no topic for `WS_IDLE_TIMEOUT_MS` (30 s) is closed with
//! 1008; a frame over 4 KiB closes it with 1009, a frame that breaks the protocol with 1002, a
//! text frame (or close reason) that is not UTF-8 with 1007. At most 64 topics at once, and 10
//! requests a second in bursts of 64: the first request past that is answered with an error,
//! and a client that goes on is closed with 1008, as is one that lets its answers pile up
//! unread (see `fanout/session.rs`).
//!
//! This handler answers the handshake (RFC 6455 4.2.2); the shard's fan-out engine takes the
//! socket once the `101` is written, reads the client's frames and writes the topics' entries.

use axum::Extension;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use livescore_server::Detach;
use sha1::Digest;

use crate::fanout::Stream;
use crate::{ApiError, ShardApi};

pub use crate::fanout::MAX_SUBSCRIPTIONS;
pub use crate::framing::websocket::MAX_CLIENT_MESSAGE;

/// WebSocket: send `ClientRequest`s, receive `ServerFrame`s (see the module documentation).
#[utoipa::path(get, path = "/ws", tag = "live",
    params(
        ("Upgrade" = String, Header, description = "`websocket`", pattern = "^websocket$"),
        ("Connection" = String, Header, description = "`Upgrade`", pattern = "^Upgrade$"),
        ("Sec-WebSocket-Version" = String, Header, description = "`13`", pattern = "^13$"),
        ("Sec-WebSocket-Key" = String, Header, description = "16 random bytes in base64 (RFC 6455)",
            pattern = "^[A-Za-z0-9+/]{21}[AQgw]==$"),
    ),
    responses((status = 101, description = "switching to the WebSocket protocol"),
              (status = 400, description = "not a WebSocket handshake", body = crate::ErrorBody)))]
pub async fn upgrade(
    State(state): State<ShardApi>,
    headers: HeaderMap,
    detach: Option<Extension<Detach>>,
) -> Result<Response, ApiError> {
    let accept = accept_key(&headers)?;
    let Some(Extension(detach)) = detach else {
        return Err(ApiError(
            StatusCode::INTERNAL_SERVER_ERROR,
            "live streams need the replica's own server (livescore_server)".into(),
        ));
    };
    let engine = state.engine.clone();
    detach.after_head(move |detached| engine.adopt(detached, Stream::WebSocket));
    let mut response = StatusCode::SWITCHING_PROTOCOLS.into_response();
    let headers = response.headers_mut();
    headers.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
    headers.insert(header::SEC_WEBSOCKET_ACCEPT, accept);
    Ok(response)
}

/// Checks the handshake and answers its key: base64(SHA-1(key + the protocol's GUID)).
fn accept_key(headers: &HeaderMap) -> Result<HeaderValue, ApiError> {
    let has = |name: header::HeaderName, token: &str| {
        headers.get_all(name).iter().any(|value| {
            value.to_str().is_ok_and(|value| {
                value
                    .split(',')
                    .any(|part| part.trim().eq_ignore_ascii_case(token))
            })
        })
    };
    let bad = |what: &str| {
        ApiError(
            StatusCode::BAD_REQUEST,
            format!("not a WebSocket handshake: {what}"),
        )
    };
    if !has(header::UPGRADE, "websocket") || !has(header::CONNECTION, "upgrade") {
        return Err(bad("send Connection: Upgrade and Upgrade: websocket"));
    }
    if headers
        .get(header::SEC_WEBSOCKET_VERSION)
        .is_none_or(|version| version != "13")
    {
        return Err(bad("Sec-WebSocket-Version must be 13"));
    }
    let key = headers
        .get(header::SEC_WEBSOCKET_KEY)
        .ok_or_else(|| bad("no Sec-WebSocket-Key"))?;
    // RFC 6455 4.1: a nonce of 16 random bytes, in base64.
    let nonce = base64::engine::general_purpose::STANDARD.decode(key.as_bytes());
    if nonce.map_or(true, |nonce| nonce.len() != 16) {
        return Err(bad("Sec-WebSocket-Key must be 16 bytes in base64"));
    }
    let mut sha = sha1::Sha1::new();
    sha.update(key.as_bytes());
    sha.update(b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11");
    let accept = base64::engine::general_purpose::STANDARD.encode(sha.finalize());
    HeaderValue::from_str(&accept).map_err(|_| bad("bad key"))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn the_accept_key_is_the_one_of_the_rfc() {
        // RFC 6455 1.3's example.
        let mut headers = HeaderMap::new();
        headers.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
        headers.insert(
            header::CONNECTION,
            HeaderValue::from_static("keep-alive, Upgrade"),
        );
        headers.insert(
            header::SEC_WEBSOCKET_VERSION,
            HeaderValue::from_static("13"),
        );
        headers.insert(
            header::SEC_WEBSOCKET_KEY,
            HeaderValue::from_static("dGhlIHNhbXBsZSBub25jZQ=="),
        );
        assert_eq!(
            accept_key(&headers).ok().unwrap(),
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
        headers.remove(header::UPGRADE);
        assert!(accept_key(&headers).is_err());
    }
}
