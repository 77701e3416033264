//! The sockets a shard's engine owns: each one's slot and state, the keys that name them
//! (a slot and which occupant of it: slots are reused), and their removal, which waits while a
//! sweep walks the topics' lists of followers.

use std::rc::Rc;

use livescore_server::Permit;
use livescore_store::Topic;
use slab::Slab;
use tokio::net::TcpStream;
use tokio::task::AbortHandle;
use tokio::time::Instant;

use super::housekeeping::Quiet;
use super::outbox::SocketQueue;
use super::reader::ReadGate;
use super::session::RequestBudget;

/// A socket of the engine: its slot, and which occupant of the slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ConnKey {
    pub index: usize,
    generation: u32,
}

/// One viewer's socket and everything the engine keeps for it.
pub(crate) struct Conn {
    generation: u32,
    pub stream: Rc<TcpStream>,
    pub websocket: bool,
    /// Its place under the server's connection limit, given back when it is dropped.
    _permit: Permit,
    /// The topics it follows, each with its place in the topic's list of followers.
    pub topics: Vec<(Topic, usize)>,
    /// What is waiting to be written to it (the outbox's part).
    pub queue: SocketQueue,
    /// Its last bytes are queued (a close frame, the end of the stream): nothing more goes to
    /// it, and it is closed once they are out.
    pub closing: bool,
    /// How long since something was written to it (for heartbeats).
    pub quiet: Quiet,
    /// Its reading task, and what holds that task while the socket is blocked.
    pub reader: AbortHandle,
    pub gate: Rc<ReadGate>,
    /// A WebSocket following no topic: since when.
    pub idle_since: Option<Instant>,
    /// It has an entry in housekeeping's queue of idle sockets.
    pub idle_queued: bool,
    /// What a WebSocket client may still ask for.
    pub requests: RequestBudget,
    /// Gone, to be removed when the sweep in progress is over: nothing more is written to it.
    pub doomed: bool,
}

impl Conn {
    /// A socket just handed over, following nothing yet.
    pub fn new(
        stream: Rc<TcpStream>,
        websocket: bool,
        permit: Permit,
        reader: AbortHandle,
        gate: Rc<ReadGate>,
        now: Instant,
    ) -> Conn {
        Conn {
            generation: 0,
            stream,
            websocket,
            _permit: permit,
            topics: Vec::new(),
            queue: SocketQueue::new(now),
            closing: false,
            quiet: Quiet::default(),
            reader,
            gate,
            idle_since: None,
            idle_queued: false,
            requests: RequestBudget::new(now),
            doomed: false,
        }
    }

    /// Its key, given the slot it is in.
    pub fn key(&self, index: usize) -> ConnKey {
        ConnKey {
            index,
            generation: self.generation,
        }
    }
}

/// The engine's sockets.
#[derive(Default)]
pub(crate) struct Connections {
    slab: Slab<Conn>,
    generations: u32,
    /// A sweep is going on: sockets are only marked for removal (`doomed`).
    sweeping: bool,
    doomed: Vec<usize>,
}

impl Connections {
    /// The key the next socket will have.
    pub fn next_key(&self) -> ConnKey {
        ConnKey {
            index: self.slab.vacant_key(),
            generation: self.generations.wrapping_add(1),
        }
    }

    /// Adds `conn` under the key [`Connections::next_key`] gave.
    pub fn insert(&mut self, mut conn: Conn) -> ConnKey {
        self.generations = self.generations.wrapping_add(1);
        conn.generation = self.generations;
        let index = self.slab.insert(conn);
        ConnKey {
            index,
            generation: self.generations,
        }
    }

    /// The slot of `key` if it still holds the socket the key names.
    pub fn live(&self, key: ConnKey) -> Option<usize> {
        self.slab
            .get(key.index)
            .is_some_and(|conn| conn.generation == key.generation)
            .then_some(key.index)
    }

    pub fn key(&self, index: usize) -> Option<ConnKey> {
        self.slab.get(index).map(|conn| ConnKey {
            index,
            generation: conn.generation,
        })
    }

    pub fn get(&self, index: usize) -> Option<&Conn> {
        self.slab.get(index)
    }

    pub fn get_mut(&mut self, index: usize) -> Option<&mut Conn> {
        self.slab.get_mut(index)
    }

    pub fn iter_mut(&mut self) -> impl Iterator<Item = (usize, &mut Conn)> {
        self.slab.iter_mut()
    }

    /// Sockets held, those marked for removal included.
    pub fn len(&self) -> usize {
        self.slab.len()
    }

    pub fn is_empty(&self) -> bool {
        self.slab.is_empty()
    }

    /// The first `count` sockets' indexes (a drain step takes a few, not a list of them all).
    pub fn first(&self, count: usize) -> Vec<usize> {
        self.slab
            .iter()
            .map(|(index, _)| index)
            .take(count)
            .collect()
    }

    /// From now until [`Connections::end_sweep`], removals only mark the socket: removing a
    /// subscription moves another into its place in the topic's list, which the sweep's round
    /// could then skip.
    pub fn begin_sweep(&mut self) {
        self.sweeping = true;
    }

    /// The sockets marked for removal during the sweep.
    pub fn end_sweep(&mut self) -> Vec<usize> {
        self.sweeping = false;
        std::mem::take(&mut self.doomed)
    }

    /// Takes socket `index` out, to be torn down; during a sweep it is only marked, and `None`.
    pub fn remove(&mut self, index: usize) -> Option<Conn> {
        if self.sweeping {
            if let Some(conn) = self.slab.get_mut(index)
                && !conn.doomed
            {
                conn.doomed = true;
                self.doomed.push(index);
            }
            return None;
        }
        self.slab.try_remove(index)
    }

    /// The subscription of `moved` to `topic` now sits at `position` of the topic's list.
    pub fn repoint(&mut self, moved: ConnKey, topic: Topic, position: usize) {
        let Some(index) = self.live(moved) else {
            return;
        };
        for entry in self.slab[index]
            .topics
            .iter_mut()
            .filter(|(t, _)| *t == topic)
        {
            entry.1 = position;
        }
    }

    /// Where `key`'s subscription to `topic` sits in the topic's list.
    pub fn position(&self, key: ConnKey, topic: Topic) -> Option<usize> {
        let index = self.live(key)?;
        self.slab[index]
            .topics
            .iter()
            .find(|(t, _)| *t == topic)
            .map(|(_, position)| *position)
    }
}

/// Sets the kernel's send buffer of a viewer's socket (`SO_SNDBUF`): how much it may leave
/// unread before its messages queue in the engine.
pub(crate) fn set_send_buffer(stream: &TcpStream, bytes: usize) {
    if let Err(err) = socket2::SockRef::from(stream).set_send_buffer_size(bytes) {
        tracing::debug!("cannot set a viewer's send buffer: {err}");
    }
}
