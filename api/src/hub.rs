//! The replica's fan-out: one subscription to the store, shared by every client of the replica.
//!
//! Entries arrive once from the store, already serialized; the hub encodes each one once for SSE
//! and WebSocket (`message.rs`) and hands it by reference count to each topic's subscribers
//! through a bounded broadcast channel: no per-client copy, and a slow client only loses its
//! place in the ring, which it recovers from the store (see `follow.rs`).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use livescore_store::{Live, MatchStore, Published, StoreError, Topic, now_ms, parse_cursor};

use crate::message::Message;
use crate::metrics::Metrics;
use tokio::sync::broadcast;

/// What a topic's subscribers receive.
#[derive(Debug, Clone)]
pub enum HubEvent {
    /// A new entry of the topic, encoded for the wire.
    Entry(Arc<Message>),
    /// Entries may have been missed (the replica's store subscription was interrupted, or the
    /// hub fell behind it): catch up from the store.
    Missed,
}

/// How many entries a topic's channel holds for its slowest subscriber.
const TOPIC_CAPACITY: usize = 1024;

pub struct Hub {
    topics: Mutex<HashMap<Topic, broadcast::Sender<HubEvent>>>,
    metrics: Arc<Metrics>,
}

impl Hub {
    /// Subscribes to the store once and starts dispatching to topics.
    pub async fn start(
        store: &dyn MatchStore,
        metrics: Arc<Metrics>,
    ) -> Result<Arc<Hub>, StoreError> {
        let live = store.subscribe().await?;
        let hub = Arc::new(Hub {
            topics: Mutex::new(HashMap::new()),
            metrics,
        });
        tokio::spawn(Arc::clone(&hub).dispatch(live));
        Ok(hub)
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<Topic, broadcast::Sender<HubEvent>>> {
        self.topics
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The live entries of `topic`, from now on.
    pub fn subscribe(&self, topic: Topic) -> broadcast::Receiver<HubEvent> {
        self.lock()
            .entry(topic)
            .or_insert_with(|| broadcast::channel(TOPIC_CAPACITY).0)
            .subscribe()
    }

    /// How many clients follow each topic.
    pub fn subscribers(&self) -> usize {
        self.lock()
            .values()
            .map(broadcast::Sender::receiver_count)
            .sum()
    }

    async fn dispatch(self: Arc<Hub>, mut live: broadcast::Receiver<Live>) {
        loop {
            match live.recv().await {
                Ok(Live::Entry(entry)) => {
                    self.record_lag(&entry);
                    let topic = entry.topic;
                    // Encoded only for a topic somebody follows, and outside the lock.
                    let Some(sender) = self.lock().get(&topic).cloned() else {
                        continue;
                    };
                    if sender
                        .send(HubEvent::Entry(Message::of_entry(entry)))
                        .is_err()
                    {
                        // Nobody follows the topic any more (unless someone just subscribed).
                        let mut topics = self.lock();
                        if topics.get(&topic).is_some_and(|s| s.receiver_count() == 0) {
                            topics.remove(&topic);
                        }
                    }
                }
                Ok(Live::Interrupted) | Err(broadcast::error::RecvError::Lagged(_)) => {
                    tracing::warn!("live entries may have been missed: every client catches up");
                    Metrics::add(&self.metrics.live_interruptions);
                    for sender in self.lock().values() {
                        let _ = sender.send(HubEvent::Missed);
                    }
                }
                Err(broadcast::error::RecvError::Closed) => {
                    tracing::error!("the store subscription closed: no more live entries");
                    return;
                }
            }
        }
    }
}

impl Hub {
    /// Redis stream ids start with the write's Unix milliseconds: now minus that is the lag.
    fn record_lag(&self, entry: &Published) {
        let written_ms = parse_cursor(&entry.cursor).map_or(0, |(ms, _)| ms);
        // In-process stores count from 1 instead: no lag to measure there.
        if written_ms > 1_000_000_000_000 {
            let lag = now_ms().saturating_sub(written_ms);
            self.metrics
                .subscription_lag_ms
                .store(lag as i64, std::sync::atomic::Ordering::Relaxed);
        }
    }
}
