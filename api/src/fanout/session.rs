//! A WebSocket viewer's session: what its client sends (subscribe, unsubscribe, ping, close) and
//! the answers, within limits chosen so that no client makes the engine do, or queue, more than
//! they allow:
//!
//! - at most [`MAX_SUBSCRIPTIONS`] topics at once;
//! - requests (text or binary messages) at [`REQUESTS_PER_SECOND`], in bursts of up to
//!   [`REQUEST_BURST`]: past that a request is refused, the first refusal of a run says so
//!   (`{"kind": "error"}`), and a client that goes on regardless for another
//!   [`REQUEST_BURST`] requests is closed with 1008 (a client following [`MAX_SUBSCRIPTIONS`]
//!   topics subscribes to them all within five seconds);
//! - pings answered with one pong per read, for the last of them (RFC 6455 5.5.3 allows it);
//! - answers count against the socket's byte budget like anything else: a client that asks and
//!   does not read is closed with 1008 once its answers pass it (its frames are not even read
//!   while its socket is full: see `reader.rs`).

use axum::body::Bytes;
use livescore_store::Topic;
use livescore_wire::{ClientRequest, ServerFrame};
use tokio::time::Instant;

use super::connections::ConnKey;
use super::engine::Engine;
use super::outbox::OverBudget;
use crate::framing::websocket::{self, ClientMessage, close_code};
use crate::metrics::ShardMetrics;

/// Topics one connection may follow at once.
pub const MAX_SUBSCRIPTIONS: usize = 64;

/// Requests a client may send a second, on average.
pub const REQUESTS_PER_SECOND: u32 = 10;

/// Requests a client may send at once (the web UI sends one or two).
pub const REQUEST_BURST: u32 = 16;

/// What a client may still ask for: a token bucket, in thousandths of a request.
pub(crate) struct RequestBudget {
    tokens: u64,
    refilled_at: Instant,
    /// Requests refused since the last one granted.
    refused: u32,
}

/// What the budget says of a request.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Verdict {
    Granted,
    /// Refused; `first` of a run of refusals (the client is told once).
    Refused {
        first: bool,
    },
    /// Refused again and again: close the connection.
    Exhausted,
}

const MILLI: u64 = 1000;

impl RequestBudget {
    pub fn new(now: Instant) -> RequestBudget {
        RequestBudget {
            tokens: u64::from(REQUEST_BURST) * MILLI,
            refilled_at: now,
            refused: 0,
        }
    }

    pub fn take(&mut self, now: Instant) -> Verdict {
        let elapsed = now.saturating_duration_since(self.refilled_at);
        // REQUESTS_PER_SECOND requests a second is that many thousandths a millisecond.
        let refill = elapsed.as_millis() as u64 * u64::from(REQUESTS_PER_SECOND);
        if refill > 0 {
            self.tokens = (self.tokens + refill).min(u64::from(REQUEST_BURST) * MILLI);
            self.refilled_at = now;
        }
        if self.tokens >= MILLI {
            self.tokens -= MILLI;
            self.refused = 0;
            return Verdict::Granted;
        }
        self.refused += 1;
        if self.refused > REQUEST_BURST {
            return Verdict::Exhausted;
        }
        Verdict::Refused {
            first: self.refused == 1,
        }
    }
}

pub(crate) fn text_frame(frame: &ServerFrame<'_>) -> Bytes {
    websocket::frame(websocket::TEXT, frame.to_json().as_bytes())
}

pub(crate) fn error_frame(message: &str) -> Bytes {
    text_frame(&ServerFrame::error(message))
}

impl Engine {
    /// What a WebSocket client sent, in order.
    pub(super) fn client(&mut self, key: ConnKey, messages: Vec<ClientMessage>) {
        let mut ping = None;
        for message in messages {
            let Some(index) = self.conns.live(key) else {
                return;
            };
            if self.conns.get(index).is_none_or(|conn| conn.closing) {
                return;
            }
            match message {
                ClientMessage::Text(text) => self.request(index, Some(&text)),
                ClientMessage::Binary => self.request(index, None),
                ClientMessage::Ping(payload) => ping = Some(payload),
                ClientMessage::Pong => {}
                ClientMessage::Close(code) => {
                    // Echo its code (RFC 6455 5.5.1), or a normal closure.
                    let code = code.unwrap_or(close_code::NORMAL);
                    return self.close_after(index, websocket::close(code, ""));
                }
            }
        }
        if let (Some(payload), Some(index)) = (ping, self.conns.live(key)) {
            self.reply(index, websocket::frame(websocket::PONG, &payload));
        }
    }

    /// A request: `text` (a binary message has none), within the client's request budget.
    fn request(&mut self, index: usize, text: Option<&str>) {
        let Some(conn) = self.conns.get_mut(index) else {
            return;
        };
        match conn.requests.take(Instant::now()) {
            Verdict::Granted => {}
            Verdict::Refused { first } => {
                ShardMetrics::add(&self.metrics.requests_refused, 1);
                if first {
                    let message = format!(
                        "too many requests: at most {REQUESTS_PER_SECOND} a second \
                         ({REQUEST_BURST} at once); this one and the next are ignored until \
                         then, and a client that goes on is disconnected"
                    );
                    self.reply(index, error_frame(&message));
                }
                return;
            }
            Verdict::Exhausted => {
                ShardMetrics::add(&self.metrics.requests_refused, 1);
                ShardMetrics::add(&self.metrics.policy_closes, 1);
                let reason = "too many requests: slow down, then reconnect";
                return self.close_after(index, websocket::close(close_code::POLICY, reason));
            }
        }
        let Some(text) = text else {
            return self.reply(index, error_frame("frames must be JSON text"));
        };
        let request: ClientRequest = match serde_json::from_str(text) {
            Ok(request) => request,
            Err(err) => {
                let message = format!(
                    "not a request ({err}); send {{\"op\": \"subscribe\", \"topic\": \"games\"}} \
                     or {{\"op\": \"subscribe\", \"topic\": \"game:<id>\", \"cursor\": \"<optional>\"}}"
                );
                return self.reply(index, error_frame(&message));
            }
        };
        let answer = match request {
            ClientRequest::Subscribe { topic, cursor } => {
                let following = self.conns.get(index).map_or(&[][..], |conn| &conn.topics);
                if following.iter().any(|(t, _)| *t == topic) {
                    error_frame(&format!("already subscribed to {topic}"))
                } else if following.len() >= MAX_SUBSCRIPTIONS {
                    error_frame(&format!(
                        "at most {MAX_SUBSCRIPTIONS} topics per connection"
                    ))
                } else {
                    return self.subscribe(index, topic, cursor);
                }
            }
            ClientRequest::Unsubscribe { topic } => {
                if self.unsubscribe(index, topic) {
                    text_frame(&ServerFrame::unsubscribed(topic))
                } else {
                    error_frame(&format!("not subscribed to {topic}"))
                }
            }
        };
        self.reply(index, answer);
    }

    /// An answer to socket `index`, within its budget: a client that lets its answers pile up
    /// unread is closed.
    pub(super) fn reply(&mut self, index: usize, answer: Bytes) {
        let Some(conn) = self.conns.get_mut(index) else {
            return;
        };
        if let Err(OverBudget) = self.outbox.stage(conn, index, answer) {
            ShardMetrics::add(&self.metrics.policy_closes, 1);
            let reason = "too much unread: read the answers to your requests";
            self.close_after(index, websocket::close(close_code::POLICY, reason));
        }
    }

    /// Stops following `topic` on socket `index`; whether it did.
    pub(super) fn unsubscribe(&mut self, index: usize, topic: Topic) -> bool {
        let Some(conn) = self.conns.get_mut(index) else {
            return false;
        };
        let Some(at) = conn.topics.iter().position(|(t, _)| *t == topic) else {
            return false;
        };
        let (_, position) = conn.topics.swap_remove(at);
        if conn.topics.is_empty() && conn.websocket {
            let key = conn.key(index);
            self.house.idle(conn, key, Instant::now());
        }
        self.unfollow(topic, position);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_burst_is_granted_then_the_rate_and_a_client_that_goes_on_is_closed() {
        let start = Instant::now();
        let mut budget = RequestBudget::new(start);
        for _ in 0..REQUEST_BURST {
            assert_eq!(budget.take(start), Verdict::Granted);
        }
        assert_eq!(budget.take(start), Verdict::Refused { first: true });
        assert_eq!(budget.take(start), Verdict::Refused { first: false });
        // A tenth of a second later: one more request.
        let later = start + Duration::from_millis(1000 / u64::from(REQUESTS_PER_SECOND));
        assert_eq!(budget.take(later), Verdict::Granted);
        assert_eq!(budget.take(later), Verdict::Refused { first: true });
        for _ in 1..REQUEST_BURST {
            assert_eq!(budget.take(later), Verdict::Refused { first: false });
        }
        assert_eq!(budget.take(later), Verdict::Exhausted);
    }

    #[test]
    fn a_quiet_client_gets_its_whole_burst_back_and_no_more() {
        let start = Instant::now();
        let mut budget = RequestBudget::new(start);
        for _ in 0..REQUEST_BURST {
            budget.take(start);
        }
        let much_later = start + Duration::from_secs(3600);
        for _ in 0..REQUEST_BURST {
            assert_eq!(budget.take(much_later), Verdict::Granted);
        }
        assert_eq!(budget.take(much_later), Verdict::Refused { first: true });
    }
}
