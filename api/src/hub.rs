//! The replica's fan-out from the store: one subscription to the store, shared by every viewer
//! of the replica.
//!
//! Entries arrive once from the store, already serialized. The hub wraps each in a `Message`
//! (encoded at most once per transport, on first use) and hands it by reference count to the
//! fan-out engine of every shard (`fanout/`), through a bounded queue per shard: one wake-up per
//! shard per entry, whatever the number of viewers. A shard whose queue is full misses entries;
//! it is told so, and its viewers catch up from the store.

use std::sync::{Arc, Mutex, MutexGuard};

use livescore_store::{Live, MatchStore, Published, StoreError, now_ms};
use tokio::sync::{broadcast, mpsc};

use crate::message::Message;
use crate::metrics::Metrics;

/// What a shard's engine receives.
#[derive(Debug, Clone)]
pub enum HubEvent {
    /// A new entry of some topic, encoded for the wire.
    Entry(Arc<Message>),
    /// Entries may have been missed (the replica's store subscription was interrupted, or the
    /// shard fell behind the hub): every viewer catches up from the store.
    Missed,
}

/// How many entries may wait for a shard's engine.
const SHARD_QUEUE: usize = 4096;

struct ShardLink {
    queue: mpsc::Sender<HubEvent>,
    /// Entries were dropped since the last `Missed` it got.
    missed: bool,
}

pub struct Hub {
    shards: Mutex<Vec<ShardLink>>,
    metrics: Arc<Metrics>,
}

impl Hub {
    /// Subscribes to the store once and starts dispatching to the shards.
    pub async fn start(
        store: &dyn MatchStore,
        metrics: Arc<Metrics>,
    ) -> Result<Arc<Hub>, StoreError> {
        let live = store.subscribe().await?;
        let hub = Arc::new(Hub {
            shards: Mutex::new(Vec::new()),
            metrics,
        });
        tokio::spawn(Arc::clone(&hub).dispatch(live));
        Ok(hub)
    }

    fn lock(&self) -> MutexGuard<'_, Vec<ShardLink>> {
        self.shards
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// A shard's queue of live entries, from now on.
    pub(crate) fn attach(&self) -> mpsc::Receiver<HubEvent> {
        let (queue, receiver) = mpsc::channel(SHARD_QUEUE);
        self.lock().push(ShardLink {
            queue,
            missed: false,
        });
        receiver
    }

    /// Hands a message that is not a store entry (a `presence` count) to every shard.
    pub(crate) fn publish(&self, message: Arc<Message>) {
        self.broadcast(&HubEvent::Entry(message));
    }

    /// Hands `event` to every shard; a full shard is told later that it missed entries.
    fn broadcast(&self, event: &HubEvent) {
        self.lock().retain_mut(|shard| {
            if shard.missed {
                match shard.queue.try_send(HubEvent::Missed) {
                    Ok(()) => shard.missed = false,
                    Err(mpsc::error::TrySendError::Full(_)) => return true,
                    Err(mpsc::error::TrySendError::Closed(_)) => return false,
                }
            }
            match shard.queue.try_send(event.clone()) {
                Ok(()) => true,
                Err(mpsc::error::TrySendError::Full(_)) => {
                    shard.missed = true;
                    true
                }
                // The shard stopped (shutdown).
                Err(mpsc::error::TrySendError::Closed(_)) => false,
            }
        });
    }

    async fn dispatch(self: Arc<Hub>, mut live: broadcast::Receiver<Live>) {
        loop {
            match live.recv().await {
                Ok(Live::Entry(entry)) => {
                    self.record_lag(&entry);
                    self.broadcast(&HubEvent::Entry(Message::of_entry(entry)));
                }
                Ok(Live::Interrupted) | Err(broadcast::error::RecvError::Lagged(_)) => {
                    tracing::warn!("live entries may have been missed: every client catches up");
                    self.metrics.live_interruptions.inc();
                    self.broadcast(&HubEvent::Missed);
                }
                Err(broadcast::error::RecvError::Closed) => {
                    tracing::error!("the store subscription closed: no more live entries");
                    return;
                }
            }
        }
    }

    /// How late the entry is: since the producer emitted its record (`emitted_at_ms`, in
    /// updates and game lines), and since the store wrote it. Redis stream ids start with the
    /// write's Unix milliseconds (in-process stores count instead: no lag to measure there).
    fn record_lag(&self, entry: &Published) {
        #[derive(serde::Deserialize)]
        struct Emitted {
            #[serde(default)]
            emitted_at_ms: u64,
        }
        if let Ok(Emitted { emitted_at_ms }) = serde_json::from_str(&entry.json)
            && emitted_at_ms > 0
        {
            let delivered_ms = now_ms().saturating_sub(emitted_at_ms);
            self.metrics
                .delivery_seconds
                .observe(delivered_ms as f64 / 1000.0);
        }
        if let Some(written_ms) = entry.cursor.written_at_ms() {
            let lag_ms = now_ms().saturating_sub(written_ms);
            self.metrics
                .subscription_lag_seconds
                .observe(lag_ms as f64 / 1000.0);
        }
    }
}
