//! Following a topic from a cursor: what both SSE and WebSocket clients get.
//!
//! 1. Subscribe to the topic's live entries first, so nothing written from now on is missed.
//! 2. With a cursor the store still holds: send every entry after it. Without one, or with one it
//!    does not hold (too old, from a store that lost its data, garbage): send a snapshot.
//! 3. Then send live entries, skipping any at or before the last cursor sent (the backfill and
//!    the live channel overlap). If the live channel lost entries (this client was slow, or the
//!    store subscription was interrupted), catch up from the store after the last cursor sent.
//!
//! So a client sees every entry once, in order, whichever replica it reconnects to.

use std::sync::Arc;
use std::time::Duration;

use livescore_store::{LogRead, MatchStore, StoreError, Topic, parse_cursor};
use tokio::sync::{broadcast, mpsc};
use tokio::task::JoinHandle;

use crate::ApiState;
use crate::hub::HubEvent;
use crate::message::Message;
use crate::metrics::Metrics;

/// Why a follow ended.
#[derive(Debug)]
pub enum Ended {
    /// The client went away.
    ClientGone,
    /// The client read nothing for too long while messages waited: it is let go, and resumes
    /// with its cursor when it reconnects.
    TooSlow,
    /// The topic does not exist (a match the store does not hold).
    NoSuchTopic,
    Store(StoreError),
}

impl From<StoreError> for Ended {
    fn from(err: StoreError) -> Self {
        Ended::Store(err)
    }
}

/// How many messages may wait for one client before following pauses (and, if the live channel
/// moves on meanwhile, catches up from the store). A client whose queue stays full for
/// `ApiState::slow_client` is let go: memory per client is bounded by this queue. The default of
/// `ApiState::client_queue`.
pub const CLIENT_QUEUE: usize = 256;

/// Starts following `topic` after `cursor`; messages arrive on the returned channel, which
/// closes when following ends (the reason is logged).
pub fn follow(
    state: &ApiState,
    topic: Topic,
    cursor: Option<String>,
) -> mpsc::Receiver<Arc<Message>> {
    let (out, receiver) = mpsc::channel(state.client_queue.max(1));
    follow_into(state, topic, cursor, out, std::convert::identity, None);
    receiver
}

/// Starts following `topic` after `cursor` into a queue the caller already has (a WebSocket's
/// outgoing frames, shared by its topics): each message goes in as `wrap` makes it, and if
/// following ends while the client is still there (too slow, the store failed), `farewell`
/// goes in last. Aborting the returned task stops following.
pub fn follow_into<T: Send + 'static>(
    state: &ApiState,
    topic: Topic,
    cursor: Option<String>,
    out: mpsc::Sender<T>,
    wrap: fn(Arc<Message>) -> T,
    farewell: Option<T>,
) -> JoinHandle<()> {
    let live = state.hub.subscribe(topic);
    let mut follower = Follower {
        store: Arc::clone(&state.store),
        metrics: Arc::clone(&state.metrics),
        patience: state.slow_client,
        topic,
        out,
        wrap,
        last: None,
    };
    tokio::spawn(async move {
        let ended = follower.run(live, cursor).await;
        match &ended {
            Ended::ClientGone => return,
            Ended::TooSlow => tracing::info!(?topic, "let a client go: it stopped reading"),
            Ended::NoSuchTopic => tracing::debug!(?topic, "no such topic"),
            Ended::Store(err) => tracing::warn!(?topic, "stopped following: {err}"),
        }
        if let Some(farewell) = farewell {
            let _ = tokio::time::timeout(Duration::from_secs(1), follower.out.send(farewell)).await;
        }
    })
}

struct Follower<T> {
    store: Arc<dyn MatchStore>,
    metrics: Arc<Metrics>,
    /// How long a message may wait for room in the client's queue.
    patience: Duration,
    topic: Topic,
    out: mpsc::Sender<T>,
    /// What goes into `out` for a message.
    wrap: fn(Arc<Message>) -> T,
    /// The cursor of the last message sent.
    last: Option<(u64, u64)>,
}

impl<T> Follower<T> {
    async fn run(
        &mut self,
        mut live: broadcast::Receiver<HubEvent>,
        cursor: Option<String>,
    ) -> Ended {
        let start = match cursor {
            Some(cursor) => self.catch_up(&cursor).await,
            None => self.snapshot().await,
        };
        if let Err(ended) = start {
            return ended;
        }
        loop {
            let caught_up = match live.recv().await {
                Ok(HubEvent::Entry(message)) => self.send_new(message).await,
                Ok(HubEvent::Missed) | Err(broadcast::error::RecvError::Lagged(_)) => {
                    Metrics::add(&self.metrics.catch_ups);
                    match self.last {
                        Some((ms, seq)) => self.catch_up(&format!("{ms}-{seq}")).await,
                        None => self.snapshot().await,
                    }
                }
                Err(broadcast::error::RecvError::Closed) => {
                    return Ended::Store(StoreError::Protocol("the live feed closed".into()));
                }
            };
            if let Err(ended) = caught_up {
                return ended;
            }
        }
    }

    /// Sends what came after `cursor`, or a snapshot if the store does not know the cursor.
    async fn catch_up(&mut self, cursor: &str) -> Result<(), Ended> {
        match self.store.read_after(self.topic, Some(cursor)).await? {
            LogRead::After(entries) => {
                if self.last.is_none() {
                    self.last = parse_cursor(cursor);
                }
                for entry in entries {
                    self.send_new(Message::of_entry(entry)).await?;
                }
                Ok(())
            }
            LogRead::Unknown => {
                Metrics::add(&self.metrics.resync_snapshots);
                self.snapshot().await
            }
        }
    }

    async fn snapshot(&mut self) -> Result<(), Ended> {
        let snapshot = self
            .store
            .snapshot(self.topic)
            .await?
            .ok_or(Ended::NoSuchTopic)?;
        let message = Message::new(
            self.topic,
            snapshot.cursor,
            "snapshot",
            Arc::from(snapshot.json),
        );
        self.last = message.position;
        self.send(message).await
    }

    /// Sends an entry unless it was sent already.
    async fn send_new(&mut self, message: Arc<Message>) -> Result<(), Ended> {
        let position = message.position;
        if position.is_none() || (self.last.is_some() && position <= self.last) {
            return Ok(());
        }
        self.last = position;
        self.send(message).await
    }

    async fn send(&self, message: Arc<Message>) -> Result<(), Ended> {
        match tokio::time::timeout(self.patience, self.out.send((self.wrap)(message))).await {
            Ok(Ok(())) => {
                Metrics::add(&self.metrics.messages_sent);
                Ok(())
            }
            Ok(Err(_)) => Err(Ended::ClientGone),
            Err(_) => {
                Metrics::add(&self.metrics.slow_client_closes);
                Err(Ended::TooSlow)
            }
        }
    }
}
