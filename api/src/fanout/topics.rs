//! Who follows which topic on this shard, and the live messages not yet swept to all of them.
//!
//! Each topic has a list of followers (one [`Sub`] per socket following it) and a log of the
//! live messages that arrived since its last sweep; each follower knows how far into that log
//! it has been written (`next`) and the cursor of the last message it got (`last`), so that
//! nothing reaches it twice or out of order, whichever way it came (live, catch-up, snapshot).

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::sync::Arc;

use livescore_store::{Cursor, Kind, Topic};

use super::connections::{ConnKey, Connections};
use super::outbox::{Outbox, OverBudget};
use crate::message::Message;

/// One socket following one topic.
pub(crate) struct Sub {
    pub conn: ConnKey,
    /// The sequence (in its topic's log) of the next live message it gets.
    pub next: u64,
    /// The position of the last message queued for it.
    pub last: Option<Cursor>,
    pub phase: Phase,
    /// Its first join is still to be answered: the answer opens with how it joined.
    pub first: bool,
}

pub(crate) enum Phase {
    Live,
    /// The store is being read for it; live messages wait here, up to the socket's budget.
    Joining {
        held: Vec<Arc<Message>>,
        held_bytes: usize,
        /// Some did not fit: read the store again after what it gets.
        overflowed: bool,
    },
    /// Its socket's queue was over budget: live messages are dropped until the socket has
    /// room again, then it catches up from the store after `last`.
    Behind,
}

impl Phase {
    /// Joining, with nothing held yet.
    pub fn joining() -> Phase {
        Phase::Joining {
            held: Vec::new(),
            held_bytes: 0,
            overflowed: false,
        }
    }
}

/// A topic's followers on this shard, and its live messages not yet swept to all of them.
#[derive(Default)]
pub(crate) struct Followers {
    pub subs: Vec<Sub>,
    /// Messages `base`, `base + 1`, ...: kept while a sweep is writing them.
    pub log: Vec<Arc<Message>>,
    pub base: u64,
    /// Waiting for a sweep.
    pub dirty: bool,
}

impl Followers {
    /// The sequence the next live message will have.
    pub fn head(&self) -> u64 {
        self.base + self.log.len() as u64
    }
}

/// Every topic followed on this shard.
#[derive(Default)]
pub(crate) struct Topics {
    followers: HashMap<Topic, Followers>,
    /// Topics with live messages to sweep.
    dirty: Vec<Topic>,
}

impl Topics {
    /// `conn` starts following `topic`, joining (its live messages held); its place in the
    /// topic's list.
    pub fn follow(&mut self, topic: Topic, conn: ConnKey) -> usize {
        let followers = self.followers.entry(topic).or_default();
        followers.subs.push(Sub {
            conn,
            next: followers.head(),
            last: None,
            phase: Phase::joining(),
            first: true,
        });
        followers.subs.len() - 1
    }

    /// The subscription at `position` of `topic`'s list.
    pub fn sub_mut(&mut self, topic: Topic, position: usize) -> Option<&mut Sub> {
        self.followers.get_mut(&topic)?.subs.get_mut(position)
    }

    pub fn followers_mut(&mut self, topic: Topic) -> Option<&mut Followers> {
        self.followers.get_mut(&topic)
    }

    /// Removes the subscription at `position` of `topic`'s list; the last one takes its place:
    /// returns whose it is, so that its socket learns its new position.
    pub fn unfollow(&mut self, topic: Topic, position: usize) -> Option<ConnKey> {
        let Entry::Occupied(mut entry) = self.followers.entry(topic) else {
            return None;
        };
        let followers = entry.get_mut();
        if position >= followers.subs.len() {
            return None;
        }
        followers.subs.swap_remove(position);
        let moved = followers.subs.get(position).map(|sub| sub.conn);
        if followers.subs.is_empty() && !followers.dirty {
            entry.remove();
        }
        moved
    }

    /// A live message: added to its topic's log, if anybody here follows it.
    pub fn push(&mut self, message: Arc<Message>) -> bool {
        let Some(followers) = self.followers.get_mut(&message.topic) else {
            return false;
        };
        let topic = message.topic;
        followers.log.push(message);
        if !followers.dirty {
            followers.dirty = true;
            self.dirty.push(topic);
        }
        true
    }

    pub fn is_sweep_due(&self) -> bool {
        !self.dirty.is_empty()
    }

    /// The next topic with live messages to sweep.
    pub fn next_dirty(&mut self) -> Option<Topic> {
        self.dirty.pop()
    }

    /// Every follower of `topic` has its log: the log can go (and the topic, if nobody follows
    /// it any more).
    pub fn swept(&mut self, topic: Topic) {
        let Entry::Occupied(mut entry) = self.followers.entry(topic) else {
            return;
        };
        let followers = entry.get_mut();
        followers.base = followers.head();
        followers.log.clear();
        followers.dirty = false;
        if followers.subs.is_empty() {
            entry.remove();
        }
    }

    /// How many follow each topic followed here.
    pub fn counts(&self) -> HashMap<Topic, u64> {
        self.followers
            .iter()
            .filter(|(_, followers)| !followers.subs.is_empty())
            .map(|(topic, followers)| (*topic, followers.subs.len() as u64))
            .collect()
    }

    /// Every subscription, for a catch-up of them all.
    pub fn iter_mut(&mut self) -> impl Iterator<Item = (Topic, &mut Sub)> {
        self.followers
            .iter_mut()
            .flat_map(|(topic, followers)| followers.subs.iter_mut().map(move |sub| (*topic, sub)))
    }
}

/// Stages a `presence` message for a live follower with room for it; it moves no cursor.
fn stage_presence(
    sub: &Sub,
    message: &Message,
    conns: &mut Connections,
    outbox: &mut Outbox,
) -> bool {
    if !matches!(sub.phase, Phase::Live) {
        return false;
    }
    let Some(conn) = conns
        .get_mut(sub.conn.index)
        .filter(|conn| !conn.doomed && !conn.closing)
    else {
        return false;
    };
    let bytes = message.bytes_for(conn.websocket);
    outbox.stage(conn, sub.conn.index, bytes).is_ok()
}

/// Whether a message at `position` comes after `last` (a message without one never does).
pub(crate) fn is_new(position: Option<Cursor>, last: Option<Cursor>) -> bool {
    position.is_some() && (last.is_none() || position > last)
}

/// Hands live `messages` to one follower: staged for its socket, held while it joins, or dropped
/// while it is behind (it falls behind when its socket's budget is spent: `behind` gets its
/// socket, to catch up once there is room). Returns how many were staged.
pub(crate) fn route(
    sub: &mut Sub,
    messages: &[Arc<Message>],
    conns: &mut Connections,
    outbox: &mut Outbox,
    behind: &mut Vec<ConnKey>,
) -> u64 {
    let mut sent = 0;
    for message in messages {
        if message.kind == Kind::Presence {
            // Not in the log: only a follower that is live gets it, if its socket has room.
            sent += u64::from(stage_presence(sub, message, conns, outbox));
            continue;
        }
        match &mut sub.phase {
            Phase::Joining {
                held,
                held_bytes,
                overflowed,
            } => {
                if *held_bytes + message.json.len() <= outbox.budget() {
                    *held_bytes += message.json.len();
                    held.push(Arc::clone(message));
                } else {
                    *overflowed = true;
                }
            }
            Phase::Behind => {}
            Phase::Live => {
                if !is_new(message.cursor, sub.last) {
                    continue;
                }
                let Some(conn) = conns
                    .get_mut(sub.conn.index)
                    .filter(|conn| !conn.doomed && !conn.closing)
                else {
                    continue;
                };
                let bytes = message.bytes_for(conn.websocket);
                match outbox.stage(conn, sub.conn.index, bytes) {
                    Ok(()) => {
                        sub.last = message.cursor;
                        sent += 1;
                    }
                    Err(OverBudget) => {
                        sub.phase = Phase::Behind;
                        behind.push(sub.conn);
                    }
                }
            }
        }
    }
    sent
}
