//! Joining a topic: an SSE stream opening, a WebSocket subscription, a follower that fell behind
//! catching up, or every follower after the hub said entries were missed.
//!
//! The follower's live messages are held while the store is read: with a cursor the store holds,
//! the entries after it (at most [`CATCH_UP_ENTRIES`]); without one, with one it does not hold
//! (too old, from before Redis lost its data, garbage), or that far behind, a snapshot read
//! atomically with the cursor it reflects. Then the store's answer is staged, then the held
//! messages, skipping any at or before the last cursor staged. Followers joining a topic from
//! the same cursor share one read while no live message of the topic has arrived since it was
//! sent (its answer covers all they could have missed): a connect or reconnect storm costs a few
//! reads, not one per viewer.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::body::Bytes;
use livescore_store::{Cursor, Kind, LogRead, MatchStore, StoreError, Topic};
use livescore_wire::{SnapshotReason, join};
use tokio::sync::mpsc;

use super::connections::ConnKey;
use super::engine::{Engine, Event};
use super::outbox::OverBudget;
use super::topics::{Phase, is_new};
use crate::framing::chunked::END_OF_STREAM;
use crate::framing::websocket::{self, close_code};
use crate::message::Message;
use crate::metrics::ShardMetrics;

/// The most entries a catch-up reads from the store; further behind, a snapshot is sent.
pub const CATCH_UP_ENTRIES: usize = 1000;

/// Why following a topic could not go on.
#[derive(Debug)]
pub(crate) enum Ended {
    /// A match the store does not hold.
    NoSuchTopic,
    Store(StoreError),
}

impl From<StoreError> for Ended {
    fn from(err: StoreError) -> Self {
        Ended::Store(err)
    }
}

/// What the store said when a follower joined a topic.
pub(crate) struct Joined {
    /// A snapshot (its data says why: [`SnapshotReason`]), or the entries after `after`.
    pub messages: Vec<Arc<Message>>,
    pub snapshot: bool,
    /// The cursor caught up after (None for a snapshot).
    pub after: Option<Cursor>,
    /// A snapshot sent because the follower's cursor could not be resumed after.
    pub resync: bool,
    /// For entries after a cursor: the `resumed` message that opens a new subscription (a
    /// follower catching up on a subscription it has does not get it again).
    pub resumed: Option<Arc<Message>>,
}

/// A store read in flight for followers joining `topic` from `cursor`.
pub(crate) struct SharedRead {
    pub topic: Topic,
    pub cursor: Option<Cursor>,
    pub waiters: Vec<ConnKey>,
}

/// The store reads in flight for joining followers.
pub(crate) struct Joins {
    store: Arc<dyn MatchStore>,
    /// Counts joins and the store reads they took: the second over the first is what a
    /// reconnect storm costs the store.
    metrics: Arc<ShardMetrics>,
    events: mpsc::UnboundedSender<Event>,
    reads: HashMap<u64, SharedRead>,
    /// The reads a follower joining a topic from a cursor may still share.
    open: HashMap<(Topic, Option<Cursor>), u64>,
    last_id: u64,
}

impl Joins {
    pub fn new(
        store: Arc<dyn MatchStore>,
        metrics: Arc<ShardMetrics>,
        events: mpsc::UnboundedSender<Event>,
    ) -> Joins {
        Joins {
            store,
            metrics,
            events,
            reads: HashMap::new(),
            open: HashMap::new(),
            last_id: 0,
        }
    }

    /// Reads the store for `conn` joining `topic` after `cursor`, or shares a read in flight;
    /// the answer comes back as [`Event::Read`].
    pub fn start(&mut self, conn: ConnKey, topic: Topic, cursor: Option<Cursor>) {
        self.metrics.joins.fetch_add(1, Ordering::Relaxed);
        let key = (topic, cursor);
        if let Some(id) = self.open.get(&key)
            && let Some(read) = self.reads.get_mut(id)
        {
            read.waiters.push(conn);
            return;
        }
        self.last_id += 1;
        let id = self.last_id;
        self.reads.insert(
            id,
            SharedRead {
                topic,
                cursor,
                waiters: vec![conn],
            },
        );
        self.open.insert(key, id);
        self.metrics.store_reads.fetch_add(1, Ordering::Relaxed);
        let store = Arc::clone(&self.store);
        let events = self.events.clone();
        tokio::task::spawn_local(async move {
            let outcome = join(store.as_ref(), topic, cursor).await;
            let _ = events.send(Event::Read { id, outcome });
        });
    }

    /// Read `id` answered: who was waiting for it.
    pub fn answered(&mut self, id: u64) -> Option<SharedRead> {
        let read = self.reads.remove(&id)?;
        let key = (read.topic, read.cursor);
        if self.open.get(&key) == Some(&id) {
            self.open.remove(&key);
        }
        Some(read)
    }

    /// A live message of `topic` arrived: the reads in flight for it may have missed it, so
    /// nobody joins them any more.
    pub fn topic_moved(&mut self, topic: Topic) {
        if !self.open.is_empty() {
            self.open.retain(|(t, _), _| *t != topic);
        }
    }
}

/// What a follower joining `topic` after `cursor` gets from the store.
async fn join(
    store: &dyn MatchStore,
    topic: Topic,
    cursor: Option<Cursor>,
) -> Result<Joined, Ended> {
    let reason = match cursor {
        None => SnapshotReason::NoCursor,
        Some(cursor) => match store
            .read_after(topic, Some(cursor), CATCH_UP_ENTRIES)
            .await?
        {
            LogRead::After(entries) => {
                return Ok(Joined {
                    messages: entries.into_iter().map(Message::of_entry).collect(),
                    snapshot: false,
                    after: Some(cursor),
                    resync: false,
                    resumed: Some(Message::new(
                        topic,
                        None,
                        Kind::Resumed,
                        Arc::from(join::resumed(cursor)),
                    )),
                });
            }
            LogRead::Unknown => SnapshotReason::CursorUnknown,
            LogRead::TooMany => SnapshotReason::TooFarBehind,
            LogRead::Rebuilt => SnapshotReason::StoreRebuilt,
        },
    };
    let snapshot = store.snapshot(topic).await?.ok_or(Ended::NoSuchTopic)?;
    Ok(Joined {
        messages: vec![Message::new(
            topic,
            snapshot.cursor,
            Kind::Snapshot,
            Arc::from(join::with_reason(&snapshot.json, reason)),
        )],
        snapshot: true,
        after: None,
        resync: cursor.is_some(),
        resumed: None,
    })
}

impl Engine {
    /// A store read answered: each follower waiting for it gets its share.
    pub(super) fn read_answered(&mut self, id: u64, outcome: Result<Joined, Ended>) {
        let Some(read) = self.joins.answered(id) else {
            return;
        };
        for conn in read.waiters {
            self.joined(conn, read.topic, &outcome);
        }
    }

    /// A joining follower's share of a store read: the answer, then the live messages held
    /// meanwhile, staged for its socket as far as its budget allows (the rest is caught up
    /// once the socket has room).
    fn joined(&mut self, key: ConnKey, topic: Topic, outcome: &Result<Joined, Ended>) {
        let Some(position) = self.conns.position(key, topic) else {
            return;
        };
        let index = key.index;
        let joined = match outcome {
            Ok(joined) => joined,
            Err(ended) => return self.cannot_follow(index, topic, ended),
        };
        if joined.resync {
            ShardMetrics::add(&self.metrics.resync_snapshots, 1);
        }
        let Some(sub) = self.topics.sub_mut(topic, position) else {
            return;
        };
        let Phase::Joining {
            held, overflowed, ..
        } = std::mem::replace(&mut sub.phase, Phase::Live)
        else {
            return;
        };
        let Some(conn) = self.conns.get_mut(index) else {
            return;
        };
        if !joined.snapshot && sub.last.is_none() {
            sub.last = joined.after;
        }
        // A new subscription that resumed says so first (it has no cursor: `last` stays).
        let first = std::mem::take(&mut sub.first);
        if first
            && let Some(resumed) = &joined.resumed
            && self
                .outbox
                .stage(conn, index, resumed.bytes_for(conn.websocket))
                .is_ok()
        {
            ShardMetrics::add(&self.metrics.messages_sent, 1);
        }
        // A snapshot goes out whatever its cursor; entries and held messages only if new.
        let (snapshot, stored) = if joined.snapshot {
            (&joined.messages[..], &[][..])
        } else {
            (&[][..], &joined.messages[..])
        };
        let in_order = (snapshot.iter().map(|message| (message, true)))
            .chain(stored.iter().chain(&held).map(|message| (message, false)));
        let mut sent = 0;
        let mut behind = false;
        for (message, always) in in_order {
            if !always && !is_new(message.cursor, sub.last) {
                continue;
            }
            let bytes = message.bytes_for(conn.websocket);
            if let Err(OverBudget) = self.outbox.stage(conn, index, bytes) {
                // The rest is caught up from the store once the socket has room.
                behind = true;
                break;
            }
            sub.last = message.cursor;
            sent += 1;
        }
        // A new follower learns at once who else is watching (the counts go out only when
        // they change).
        if first
            && !behind
            && let Some(presence) = self.presence.latest(topic)
            && self
                .outbox
                .stage(conn, index, presence.bytes_for(conn.websocket))
                .is_ok()
        {
            sent += 1;
        }
        ShardMetrics::add(&self.metrics.messages_sent, sent);
        if behind {
            sub.phase = Phase::Behind;
            self.behind.push(key);
        } else if overflowed {
            // Live messages were dropped while it joined: read again after what it has.
            sub.phase = Phase::joining();
            let cursor = sub.last;
            ShardMetrics::add(&self.metrics.catch_ups, 1);
            self.joins.start(key, topic, cursor);
        }
    }

    /// The store cannot give `topic` to socket `index`: a WebSocket is told (an unknown match)
    /// or asked to come back; an SSE stream ends (the browser reconnects with its cursor).
    fn cannot_follow(&mut self, index: usize, topic: Topic, ended: &Ended) {
        match ended {
            Ended::NoSuchTopic => tracing::debug!(%topic, "no such topic"),
            Ended::Store(err) => tracing::warn!(%topic, "stopped following: {err}"),
        }
        let Some(websocket) = self.conns.get(index).map(|conn| conn.websocket) else {
            return;
        };
        match (websocket, ended) {
            (true, Ended::NoSuchTopic) => {
                self.unsubscribe(index, topic);
                if let Topic::Match(id) = topic {
                    self.reply(index, super::session::error_frame(&format!("no game {id}")));
                }
            }
            (true, Ended::Store(_)) => {
                let reason =
                    format!("{topic}: stream ended; reconnect and resume with your cursor");
                self.close_after(index, websocket::close(close_code::AGAIN, &reason));
            }
            (false, _) => self.close_after(index, Bytes::from_static(END_OF_STREAM)),
        }
    }

    /// Socket `index` has room again: its topics that fell behind catch up from the store.
    pub(super) fn catch_up(&mut self, index: usize) {
        let Some(conn) = self.conns.get(index) else {
            return;
        };
        if conn.queue.is_blocked() || conn.closing {
            return;
        }
        let key = conn.key(index);
        for (topic, position) in conn.topics.clone() {
            let Some(sub) = self.topics.sub_mut(topic, position) else {
                continue;
            };
            if matches!(sub.phase, Phase::Behind) {
                sub.phase = Phase::joining();
                let cursor = sub.last;
                ShardMetrics::add(&self.metrics.catch_ups, 1);
                self.joins.start(key, topic, cursor);
            }
        }
    }

    /// The sockets whose topics fell behind since the last call, where they have room now.
    pub(super) fn catch_up_behind(&mut self) {
        for key in std::mem::take(&mut self.behind) {
            if let Some(index) = self.conns.live(key) {
                self.catch_up(index);
            }
        }
    }

    /// The hub missed entries: every subscription catches up from the store after its last.
    pub(super) fn catch_up_all(&mut self) {
        let mut joins = Vec::new();
        for (topic, sub) in self.topics.iter_mut() {
            match &mut sub.phase {
                // Its store read may have missed them too: read again after it.
                Phase::Joining { overflowed, .. } => *overflowed = true,
                Phase::Live | Phase::Behind => {
                    sub.phase = Phase::joining();
                    joins.push((sub.conn, topic, sub.last));
                }
            }
        }
        ShardMetrics::add(&self.metrics.catch_ups, joins.len() as u64);
        for (conn, topic, cursor) in joins {
            self.joins.start(conn, topic, cursor);
        }
    }
}
