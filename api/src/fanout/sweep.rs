//! Sweeps: how live messages reach the followers of their topic. A batch of entries from the hub
//! is one sweep; for each topic with new messages, the sweep goes round its followers a chunk of
//! [`CHUNK`] sockets at a time, staging the shared bytes for each (`topics::route`) and flushing
//! each chunk through the outbox (one io_uring submission). Between chunks it takes what has
//! arrived from the hub meanwhile, so the followers not reached yet get it in the same write: a
//! rolling sweep, where a message waits at most one round, not the rest of a sweep and then a
//! whole one.

use tokio::sync::mpsc;

use super::engine::Engine;
use super::topics::route;
use crate::hub::HubEvent;
use crate::metrics::ShardMetrics;
use livescore_store::Topic;

/// Live messages taken from the hub between two chunks of a sweep, at most.
const TAKEN_BETWEEN_CHUNKS: usize = 256;
/// Sockets staged per chunk of a sweep: one flush, one io_uring submission.
const CHUNK: usize = 1024;

impl Engine {
    /// Takes what the hub has sent meanwhile, without waiting.
    fn take_arrived(&mut self, live: &mut mpsc::Receiver<HubEvent>) {
        for _ in 0..TAKEN_BETWEEN_CHUNKS {
            match live.try_recv() {
                Ok(event) => self.take(event),
                Err(_) => return,
            }
        }
    }

    /// Writes every topic's new messages to its followers.
    pub(super) async fn sweep(&mut self, live: &mut mpsc::Receiver<HubEvent>) {
        let began = std::time::Instant::now();
        self.conns.begin_sweep();
        self.take_arrived(live);
        while let Some(topic) = self.topics.next_dirty() {
            loop {
                let (wrote, head) = self.round(topic, live).await;
                let Some(followers) = self.topics.followers_mut(topic) else {
                    break;
                };
                if !wrote && followers.head() == head {
                    // Every follower has everything: the log can go.
                    self.topics.swept(topic);
                    break;
                }
            }
        }
        for index in self.conns.end_sweep() {
            self.remove(index);
        }
        self.catch_up_behind();
        ShardMetrics::add(&self.metrics.sweeps, 1);
        ShardMetrics::add(
            &self.metrics.sweep_nanoseconds,
            began.elapsed().as_nanos() as u64,
        );
    }

    /// One round over `topic`'s followers; whether anything was staged, and the head of the
    /// log that every follower had reached at the end of the round.
    async fn round(&mut self, topic: Topic, live: &mut mpsc::Receiver<HubEvent>) -> (bool, u64) {
        let mut wrote = false;
        let mut position = 0;
        let mut staged = 0;
        loop {
            let Some(followers) = self.topics.followers_mut(topic) else {
                return (wrote, 0);
            };
            let head = followers.head();
            let Some(sub) = followers.subs.get_mut(position) else {
                break;
            };
            position += 1;
            if sub.next >= head {
                continue;
            }
            wrote = true;
            // Sockets are not removed during a sweep (see `Connections::remove`), so every
            // follower is visited each round and none is left behind the log's base.
            debug_assert!(
                sub.next >= followers.base,
                "a follower behind the log's base"
            );
            let from = sub.next.saturating_sub(followers.base) as usize;
            let new = &followers.log[from.min(followers.log.len())..];
            sub.next = head;
            let sent = route(
                sub,
                new,
                &mut self.conns,
                &mut self.outbox,
                &mut self.behind,
            );
            ShardMetrics::add(&self.metrics.messages_sent, sent);
            staged += 1;
            if staged >= CHUNK {
                staged = 0;
                self.flush();
                self.take_arrived(live);
                // The shard's other tasks (readers, HTTP requests) get a turn.
                tokio::task::yield_now().await;
            }
        }
        // The head every follower has now reached, before taking what arrived meanwhile: the
        // caller trims the log only if nothing did.
        let head = self
            .topics
            .followers_mut(topic)
            .map_or(0, |followers| followers.head());
        self.flush();
        self.take_arrived(live);
        (wrote, head)
    }
}
