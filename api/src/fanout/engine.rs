//! A shard's engine: the one owner of its viewers' sockets, and the loop that drives its parts.
//! Single-threaded: it owns everything it touches, so nothing here takes a lock. Each concern
//! is a module of its own, with its own state:
//!
//! | part | module | what it keeps |
//! |---|---|---|
//! | the sockets | `connections.rs` | each socket's slot and state, removal during a sweep |
//! | who follows what | `topics.rs` | each topic's followers and live messages not yet swept |
//! | joining a topic | `joins.rs` | the store reads in flight, shared by joiners |
//! | live messages | `sweep.rs` | (nothing: walks `topics` and stages into the outbox) |
//! | every write | `outbox.rs` | what each socket has staged or kept, its budget, the writer |
//! | WebSocket requests | `session.rs` | each client's request budget |
//! | heartbeats, idle sockets, goodbye | `housekeeping.rs` | idle WebSockets, the next round |
//! | reading | `reader.rs` | a task per socket, held while its socket is blocked |
//!
//! The loop waits for what comes next: a socket handed over, a store read answered, a blocked
//! socket drained (all [`Event`]s); what a client sent (through the readers' bounded queue);
//! live entries from the hub (a sweep); the housekeeping tick. Each is handled, then the outbox
//! is flushed: whatever it was, its writes go out together.

use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::body::Bytes;
use livescore_server::Detached;
use livescore_store::{Cursor, Topic};
use livescore_wire::sse;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

use super::Stream;
use super::connections::{Conn, ConnKey, Connections, set_send_buffer};
use super::housekeeping::{Drain, Goodbye, Housekeeping};
use super::joins::{Ended, Joined, Joins};
use super::outbox::{Drained, Outbox};
use super::reader::{self, ReadGate};
use super::topics::Topics;
use crate::config::FanoutConfig;
use crate::framing::chunked;
use crate::framing::websocket::{self, ClientMessage, Violation};
use crate::hub::HubEvent;
use crate::metrics::ShardMetrics;
use livescore_store::MatchStore;

/// How long a browser waits before reconnecting an SSE stream, in milliseconds: drawn per
/// stream in this range, so that the viewers of a replica that died do not all come back at
/// the same instant (a reconnect storm).
pub const RETRY_MS: std::ops::RangeInclusive<u64> = 1000..=3000;

/// A reconnect delay in [`RETRY_MS`], different for each stream. (`RandomState` is seeded from
/// the OS once per thread and then stepped: enough to spread reconnects, with no dependency.)
fn retry_ms() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let random = std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish();
    RETRY_MS.start() + random % (RETRY_MS.end() - RETRY_MS.start() + 1)
}

/// Batches the readers may hand the engine before they wait (per shard). A batch is what one
/// read of at most 8 KiB held, so this bounds what waits here to about a megabyte (a queue of
/// 1,024 held 18 MB under a flood of requests, measured with massif).
const READER_QUEUE: usize = 64;

/// What the engine is told besides live messages and what clients send. Each kind is bounded
/// by what the engine itself holds, so their queue needs no bound of its own: a socket is
/// handed over only within the server's connection limit, a read answers a read the engine
/// started, and a blocked socket has one task waiting for it.
pub(crate) enum Event {
    /// A socket whose response head was written.
    Adopt { detached: Detached, stream: Stream },
    /// A store read for joining followers answered.
    Read {
        id: u64,
        outcome: Result<Joined, Ended>,
    },
    /// A blocked socket can take more, or its deadline passed.
    Writable { conn: ConnKey, timed_out: bool },
    /// The presence task asks for the shard's counts.
    Count {
        reply: tokio::sync::oneshot::Sender<crate::presence::Counts>,
    },
}

/// What a socket's reader hands the engine, through a bounded queue.
pub(crate) enum FromReader {
    /// Whole messages a WebSocket client sent.
    Client {
        conn: ConnKey,
        messages: Vec<ClientMessage>,
    },
    /// A WebSocket client broke the protocol: close with this code.
    Violation { conn: ConnKey, violation: Violation },
    /// The viewer went away (end of stream, reset).
    Gone { conn: ConnKey },
}

/// Where the engine's inputs come from.
pub(crate) struct Inputs {
    pub live: mpsc::Receiver<HubEvent>,
    pub events: mpsc::UnboundedReceiver<Event>,
    pub readers: mpsc::Receiver<FromReader>,
    pub shutdown: watch::Receiver<bool>,
}

pub(crate) struct Engine {
    pub(super) conns: Connections,
    pub(super) topics: Topics,
    pub(super) joins: Joins,
    pub(super) outbox: Outbox,
    pub(super) house: Housekeeping,
    pub(super) metrics: Arc<ShardMetrics>,
    /// The replica's counts of viewers: a joining follower gets its topic's latest.
    pub(super) presence: Arc<crate::presence::Presence>,
    /// Sockets with a topic that fell behind: each catches up once its socket has room.
    pub(super) behind: Vec<ConnKey>,
    readers: mpsc::Sender<FromReader>,
    send_buffer: Option<usize>,
    /// At shutdown, the window the viewers are closed over (and excess viewers, shed).
    drain: Duration,
    /// This shard's share of the replica's load-shedding limit.
    shed_above: Option<usize>,
}

impl Engine {
    /// An engine, and the senders of its events (for the routes: `Adopt`).
    pub fn new(
        store: Arc<dyn MatchStore>,
        presence: Arc<crate::presence::Presence>,
        config: &FanoutConfig,
        shards: usize,
        metrics: Arc<ShardMetrics>,
        live: mpsc::Receiver<HubEvent>,
        shutdown: watch::Receiver<bool>,
    ) -> (Engine, Inputs, mpsc::UnboundedSender<Event>) {
        let (events, events_in) = mpsc::unbounded_channel();
        let (readers, readers_in) = mpsc::channel(READER_QUEUE);
        let engine = Engine {
            conns: Connections::default(),
            topics: Topics::default(),
            joins: Joins::new(store, Arc::clone(&metrics), events.clone()),
            outbox: Outbox::new(
                config.queue_bytes,
                config.slow_client,
                config.io_uring,
                events.clone(),
            ),
            house: Housekeeping::new(config.idle_socket),
            metrics,
            presence,
            behind: Vec::new(),
            readers,
            send_buffer: config.send_buffer,
            drain: config.drain,
            // The kernel spreads connections evenly over the shards' listeners.
            shed_above: config.shed_above.map(|limit| limit.div_ceil(shards.max(1))),
        };
        engine.note_writer();
        let inputs = Inputs {
            live,
            events: events_in,
            readers: readers_in,
            shutdown,
        };
        (engine, inputs, events)
    }

    pub fn writer_name(&self) -> &'static str {
        self.outbox.writer_name()
    }

    /// Tells the metrics which writer the shard uses (it falls back to system calls for good
    /// if its ring fails).
    fn note_writer(&self) {
        let uring = self.writer_name() == "io_uring";
        self.metrics.io_uring.store(uring, Ordering::Relaxed);
    }

    pub async fn run(mut self, mut inputs: Inputs) {
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // After the shutdown signal: viewers go a few at a time, every step, until all are gone.
        let mut draining: Option<Drain> = None;
        // Past the load-shedding limit: the excess goes the same way, and the rest stay.
        let mut shedding: Option<Drain> = None;
        let mut drain_step = tokio::time::interval(Drain::STEP);
        loop {
            tokio::select! {
                biased;
                _ = inputs.shutdown.wait_for(|stop| *stop), if draining.is_none() => {
                    tracing::info!(viewers = self.conns.len(), window = ?self.drain, "draining");
                    draining = Some(Drain::new(Instant::now(), self.drain, self.conns.len()));
                    shedding = None;
                    drain_step.reset_immediately();
                }
                _ = drain_step.tick(), if draining.is_some() || shedding.is_some() => {
                    let now = Instant::now();
                    if let Some(drain) = draining.as_mut() {
                        self.goodbye(drain.due(now), Goodbye::Restart);
                        if drain.over(now) || self.conns.is_empty() {
                            break;
                        }
                    } else if let Some(shed) = shedding.as_mut() {
                        let due = shed.due(now);
                        ShardMetrics::add(&self.metrics.shed, due as u64);
                        self.goodbye(due, Goodbye::Shed);
                        if shed.over(now) {
                            shedding = None;
                        }
                    }
                }
                Some(event) = inputs.events.recv() => {
                    self.handle(event);
                    while let Ok(event) = inputs.events.try_recv() {
                        self.handle(event);
                    }
                }
                Some(said) = inputs.readers.recv() => {
                    self.heard(said);
                    // What else is there, but not so much that live messages wait for it.
                    for _ in 0..READER_QUEUE {
                        let Ok(said) = inputs.readers.try_recv() else { break };
                        self.heard(said);
                    }
                }
                event = inputs.live.recv() => {
                    let Some(event) = event else { break };
                    self.take(event);
                    self.sweep(&mut inputs.live).await;
                }
                _ = tick.tick() => {
                    self.housekeep();
                    self.note_writer();
                    if draining.is_none() && shedding.is_none()
                        && let Some(excess) = self.excess()
                    {
                        tracing::info!(viewers = self.conns.len(), excess, window = ?self.drain, "shedding viewers past the limit");
                        shedding = Some(Drain::new(Instant::now(), self.drain, excess));
                        drain_step.reset_immediately();
                    }
                }
            }
            self.flush();
            self.catch_up_behind();
        }
        // Whoever is left (all of them with no drain window, or adopted meanwhile).
        self.goodbye(usize::MAX, Goodbye::Restart);
    }

    /// How many viewers to shed: past the limit, down to nine tenths of it, so that the ones
    /// that come back through the load balancer do not set it off again at once.
    fn excess(&self) -> Option<usize> {
        let limit = self.shed_above?;
        let viewers = self.conns.len();
        (viewers > limit).then(|| viewers - limit * 9 / 10)
    }

    fn handle(&mut self, event: Event) {
        match event {
            Event::Adopt { detached, stream } => self.adopt(detached, stream),
            Event::Read { id, outcome } => self.read_answered(id, outcome),
            Event::Writable { conn, timed_out } => self.writable(conn, timed_out),
            Event::Count { reply } => {
                let _ = reply.send(crate::presence::Counts {
                    site: self.conns.len() as u64,
                    topics: self.topics.counts(),
                });
            }
        }
    }

    fn heard(&mut self, said: FromReader) {
        match said {
            FromReader::Client { conn, messages } => self.client(conn, messages),
            FromReader::Violation { conn, violation } => {
                if let Some(index) = self.conns.live(conn) {
                    let close = websocket::close(violation.code, violation.reason);
                    self.close_after(index, close);
                }
            }
            FromReader::Gone { conn } => {
                if let Some(index) = self.conns.live(conn) {
                    self.remove(index);
                }
            }
        }
    }

    /// Writes what is staged; closes the sockets that are gone or said goodbye.
    pub(super) fn flush(&mut self) {
        let finished = self.outbox.flush(&mut self.conns);
        for &index in &finished {
            self.remove(index);
        }
        self.outbox.recycle(finished);
    }

    /// A socket handed over by its route, once its response head is written.
    fn adopt(&mut self, detached: Detached, carried: Stream) {
        let Detached { stream, permit } = detached;
        if let Some(bytes) = self.send_buffer {
            set_send_buffer(&stream, bytes);
        }
        let stream = Rc::new(stream);
        let websocket = matches!(carried, Stream::WebSocket);
        let gate = ReadGate::new();
        let key = self.conns.next_key();
        let reader = tokio::task::spawn_local(reader::read(
            Rc::clone(&stream),
            Rc::clone(&gate),
            key,
            websocket,
            self.readers.clone(),
        ))
        .abort_handle();
        let now = Instant::now();
        let key = self
            .conns
            .insert(Conn::new(stream, websocket, permit, reader, gate, now));
        self.metrics.connected(websocket, 1);
        match carried {
            Stream::Sse { topic, cursor } => {
                if let Some(conn) = self.conns.get_mut(key.index) {
                    let retry = chunked::chunk(sse::retry(retry_ms()).as_bytes());
                    let _ = self.outbox.stage(conn, key.index, retry);
                }
                self.subscribe(key.index, topic, cursor);
            }
            Stream::WebSocket => {
                if let Some(conn) = self.conns.get_mut(key.index) {
                    self.house.idle(conn, key, now);
                }
            }
        }
    }

    /// Starts following `topic` on socket `index`, from after `cursor` (or a snapshot).
    pub(super) fn subscribe(&mut self, index: usize, topic: Topic, cursor: Option<Cursor>) {
        let Some(key) = self.conns.key(index) else {
            return;
        };
        let position = self.topics.follow(topic, key);
        if let Some(conn) = self.conns.get_mut(index) {
            conn.topics.push((topic, position));
            conn.idle_since = None;
        }
        self.metrics.subscribed(1);
        self.joins.start(key, topic, cursor);
    }

    /// Removes the subscription at `position` of `topic`'s list.
    pub(super) fn unfollow(&mut self, topic: Topic, position: usize) {
        if let Some(moved) = self.topics.unfollow(topic, position) {
            self.conns.repoint(moved, topic, position);
        }
        self.metrics.subscribed(-1);
    }

    /// A live event from the hub: a message joins its topic's log (if anybody here follows
    /// it), or every subscription catches up from the store.
    pub(super) fn take(&mut self, event: HubEvent) {
        match event {
            HubEvent::Entry(message) => {
                // A presence count is no log entry: a store read in flight misses nothing.
                if message.kind != livescore_store::Kind::Presence {
                    self.joins.topic_moved(message.topic);
                }
                let waited = message.arrived.elapsed();
                let first = !self.topics.is_sweep_due();
                if self.topics.push(message) && first {
                    ShardMetrics::add(
                        &self.metrics.sweep_wait_nanoseconds,
                        waited.as_nanos() as u64,
                    );
                }
            }
            HubEvent::Missed => self.catch_up_all(),
        }
    }

    /// A blocked socket can take more, or its deadline passed.
    fn writable(&mut self, key: ConnKey, timed_out: bool) {
        let Some(index) = self.conns.live(key) else {
            return;
        };
        let Some(conn) = self.conns.get_mut(index) else {
            return;
        };
        match self.outbox.drain(conn, key, timed_out) {
            Drained::Blocked => {}
            Drained::Gone => self.remove(index),
            Drained::TooSlow => {
                ShardMetrics::add(&self.metrics.slow_client_closes, 1);
                tracing::info!("let a viewer go: it stopped reading");
                self.remove(index);
            }
            Drained::Done => {
                if conn.closing {
                    self.remove(index);
                } else {
                    // The topics that dropped messages meanwhile catch up from the store.
                    self.catch_up(index);
                }
            }
        }
    }

    /// Queues `last` (a close frame, the end of the stream): the socket closes once it is out.
    pub(super) fn close_after(&mut self, index: usize, last: Bytes) {
        if let Some(conn) = self.conns.get_mut(index) {
            self.outbox.stage_last(conn, index, last);
        }
    }

    /// Closes socket `index`: its tasks stop, its subscriptions go, the socket is closed (during
    /// a sweep, once the sweep is over).
    pub(super) fn remove(&mut self, index: usize) {
        let Some(mut conn) = self.conns.remove(index) else {
            return;
        };
        conn.reader.abort();
        conn.queue.stop_waiting();
        for (topic, position) in std::mem::take(&mut conn.topics) {
            self.unfollow(topic, position);
        }
        self.metrics.connected(conn.websocket, -1);
    }
}

#[cfg(test)]
mod tests {
    use super::{RETRY_MS, retry_ms};

    #[test]
    fn reconnect_delays_are_in_range_and_spread() {
        let delays: Vec<u64> = (0..200).map(|_| retry_ms()).collect();
        assert!(
            delays.iter().all(|delay| RETRY_MS.contains(delay)),
            "{delays:?}"
        );
        let (low, high) = (delays.iter().min(), delays.iter().max());
        // 200 draws over 2,001 values: all within a quarter of the range would be no spread.
        assert!(
            high.zip(low).is_some_and(|(high, low)| high - low > 500),
            "{delays:?}"
        );
    }
}
