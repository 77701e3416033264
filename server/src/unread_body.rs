//! `connection: close` on an answer given without reading the request's body to the end.
//!
//! A route may answer before it reads the body: a `413` for a body over the limit, a `401`
//! before the body of an admin request, a `405`. The unread bytes stay on the connection, so
//! hyper closes it after the answer. Whether the answer says so depends on whether hyper noticed
//! before it wrote the head: a race, and a client that lost it reuses the connection for its next
//! request and gets it cut off (seen as `IncompleteMessage` by reqwest, in
//! `tests/it/http_limits.rs`). This layer says so every time, as RFC 9112 (9.6) asks.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};

use axum::body::{Body, Bytes};
use axum::extract::Request;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::middleware::Next;
use axum::response::Response;
use http_body::{Frame, SizeHint};

/// Runs the route, and closes the connection after its answer if the request announced a body
/// that the route did not read to the end.
pub async fn close_if_body_unread(request: Request, next: Next) -> Response {
    if !announces_body(request.headers()) {
        return next.run(request).await;
    }
    let read = Arc::new(AtomicBool::new(false));
    let request = request.map(|body| {
        Body::new(Watched {
            body,
            read: Arc::clone(&read),
        })
    });
    let mut response = next.run(request).await;
    if !read.load(Ordering::Acquire) {
        response
            .headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    response
}

/// Whether the request says a body follows: a non-zero `content-length`, or a
/// `transfer-encoding` (chunked).
fn announces_body(headers: &HeaderMap) -> bool {
    headers.contains_key(header::TRANSFER_ENCODING)
        || headers
            .get(header::CONTENT_LENGTH)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.parse::<u64>().ok())
            .is_some_and(|length| length > 0)
}

/// A request body that notes when it has been read to the end.
struct Watched {
    body: Body,
    read: Arc<AtomicBool>,
}

impl http_body::Body for Watched {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let polled = Pin::new(&mut self.body).poll_frame(cx);
        if matches!(polled, Poll::Ready(None)) || self.body.is_end_stream() {
            self.read.store(true, Ordering::Release);
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use axum::Router;
    use axum::routing::post;
    use tower::ServiceExt;

    async fn connection_header(request: axum::http::Request<Body>) -> Option<HeaderValue> {
        let app = Router::new()
            .route("/ignores", post(|| async { "not read" }))
            .route("/reads", post(|body: String| async move { body }))
            .layer(axum::middleware::from_fn(close_if_body_unread));
        let response = app.oneshot(request).await.unwrap();
        response.headers().get(header::CONNECTION).cloned()
    }

    fn post_to(path: &str, body: &'static str) -> axum::http::Request<Body> {
        axum::http::Request::post(path)
            .header(header::CONTENT_LENGTH, body.len())
            .body(Body::from(body))
            .unwrap()
    }

    #[tokio::test]
    async fn an_answer_that_left_the_body_unread_closes_the_connection() {
        assert_eq!(
            connection_header(post_to("/ignores", "a body")).await,
            Some(HeaderValue::from_static("close"))
        );
        assert_eq!(connection_header(post_to("/reads", "a body")).await, None);
        assert_eq!(connection_header(post_to("/ignores", "")).await, None);
    }
}
