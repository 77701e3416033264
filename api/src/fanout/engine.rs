//! A shard's engine: its viewers' sockets, who follows which topic, and the sweeps that write
//! to them (see the module documentation of `fanout`). Single-threaded: it owns everything it
//! touches, so nothing here takes a lock.

use std::collections::{HashMap, VecDeque};
use std::os::fd::AsRawFd;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use livescore_server::{Detached, Permit};
use livescore_store::{Cursor, Kind, LogRead, MatchStore, Topic};
use livescore_wire::{ClientRequest, ServerFrame, sse};
use slab::Slab;
use tokio::io::Interest;
use tokio::net::TcpStream;
use tokio::sync::{mpsc, watch};
use tokio::task::AbortHandle;
use tokio::time::Instant;

use super::wire::{self, ClientMessage, close_code};
use super::writer::{Scratch, Write, Writer, sendmsg_parts};
use super::{Command, Ended, Joined, Stream};
use crate::ApiState;
use crate::hub::HubEvent;
use crate::message::Message;
use crate::metrics::ShardMetrics;
use crate::ws::MAX_SUBSCRIPTIONS;

/// How long a browser waits before reconnecting an SSE stream, in milliseconds.
const RETRY_MS: u64 = 2000;
/// No socket stays silent longer than this: a heartbeat goes to those nothing was written to.
const HEARTBEAT: Duration = Duration::from_secs(15);
/// Heartbeat rounds come this often, a third of `HEARTBEAT` (see `Quiet`).
const HEARTBEAT_ROUND: Duration = Duration::from_secs(HEARTBEAT.as_secs() / 3);
/// Live messages taken from the hub between two chunks of a sweep, at most.
const SWEEP: usize = 256;
/// Sockets written per chunk of a sweep: one io_uring submission.
const CHUNK: usize = 1024;
/// The most entries a catch-up reads from the store; further behind, a snapshot is sent.
const CATCH_UP_ENTRIES: usize = 1000;
/// Parts of a full socket's queue written by one `sendmsg`, at most.
const FLUSH_PARTS: usize = 64;

/// A socket of the engine: its slot, and which occupant of the slot (slots are reused).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ConnKey {
    index: usize,
    generation: u32,
}

struct Conn {
    generation: u32,
    stream: Rc<TcpStream>,
    websocket: bool,
    /// Its place under the server's connection limit.
    _permit: Permit,
    /// The topics it follows, each with its place in the topic's list of subscriptions.
    topics: Vec<(Topic, usize)>,
    /// What the socket has not taken yet, in order (empty unless `blocked`).
    pending: VecDeque<Bytes>,
    blocked: bool,
    /// When a blocked socket last took something: it is let go `slow_client` after that.
    progress_at: Instant,
    /// Close once `pending` is written.
    closing: bool,
    /// How long since something was written to it, in heartbeat rounds.
    quiet: Quiet,
    reader: AbortHandle,
    waiter: Option<AbortHandle>,
    /// A WebSocket following no topic: since when.
    idle_since: Option<Instant>,
    /// Gone, to be removed when the sweep in progress is over: nothing more is written to it.
    doomed: bool,
}

/// How long a socket has been silent, counted in heartbeat rounds (`HEARTBEAT_ROUND`, a third
/// of `HEARTBEAT`): a write sets it back to nothing. A heartbeat goes out at the third round
/// after the last write, so the socket has been silent for more than two rounds and less than
/// three, never longer than `HEARTBEAT`. (Rounds of a whole `HEARTBEAT` with a "wrote" flag
/// leave a socket written to just after a round silent for almost two: a client that allows
/// 20 s between frames gave up on a match stalled by a broker restart.)
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Quiet(u8);

impl Quiet {
    /// Something was written to the socket.
    fn written(&mut self) {
        self.0 = 0;
    }

    /// A heartbeat round has come: true when the socket is due a heartbeat now.
    fn round(&mut self) -> bool {
        self.0 += 1;
        if self.0 == 3 {
            self.0 = 0;
            return true;
        }
        false
    }
}

/// A store read in flight for viewers joining `topic` from `cursor`.
struct SharedRead {
    topic: Topic,
    cursor: Option<Cursor>,
    waiters: Vec<ConnKey>,
}

/// One socket following one topic.
struct Sub {
    conn: ConnKey,
    /// The sequence (in its topic's `Followers::log`) of the next live message it gets.
    next: u64,
    /// The position of the last message written (or queued) to it.
    last: Option<Cursor>,
    phase: Phase,
}

/// A topic's followers on this shard, and the live messages not yet swept to all of them.
/// The subscription at `position` of `topic`'s followers, if it is still there.
fn sub_at(
    topics: &mut HashMap<Topic, Followers>,
    topic: Topic,
    position: usize,
) -> Option<&mut Sub> {
    topics.get_mut(&topic)?.subs.get_mut(position)
}

#[derive(Default)]
struct Followers {
    subs: Vec<Sub>,
    /// Messages `base`, `base + 1`, ...: kept while a sweep is writing them.
    log: Vec<Arc<Message>>,
    base: u64,
    /// Waiting for a sweep.
    dirty: bool,
}

impl Followers {
    fn head(&self) -> u64 {
        self.base + self.log.len() as u64
    }
}

enum Phase {
    Live,
    /// The store is being read; live messages wait here (at most `client_queue`).
    Joining {
        held: Vec<Arc<Message>>,
        overflowed: bool,
    },
    /// Its socket's queue was full: messages are dropped until it drains, then it catches up
    /// from the store after `last`.
    Behind,
}

impl Phase {
    /// Joining, with nothing held yet.
    fn joining() -> Phase {
        Phase::Joining {
            held: Vec::new(),
            overflowed: false,
        }
    }
}

/// Whether a message at `position` comes after `last` (a message without one never does).
fn is_new(position: Option<Cursor>, last: Option<Cursor>) -> bool {
    position.is_some() && (last.is_none() || position > last)
}

fn text_frame(frame: &ServerFrame<'_>) -> Bytes {
    wire::frame(wire::TEXT, frame.to_json().as_bytes())
}

fn error_frame(message: &str) -> Bytes {
    text_frame(&ServerFrame::error(message))
}

pub(crate) struct Engine {
    store: Arc<dyn MatchStore>,
    metrics: Arc<ShardMetrics>,
    commands: mpsc::UnboundedSender<Command>,
    patience: Duration,
    client_queue: usize,
    idle_socket: Duration,
    send_buffer: Option<usize>,
    conns: Slab<Conn>,
    topics: HashMap<Topic, Followers>,
    /// Topics with messages to sweep.
    dirty: Vec<Topic>,
    /// Store reads in flight for joining viewers, and who waits for each.
    reads: HashMap<u64, SharedRead>,
    /// The reads a viewer joining a topic from a cursor may still share: none of the topic's
    /// live messages has arrived since each was sent, so its answer covers all the viewer
    /// could have missed.
    open_reads: HashMap<(Topic, Option<Cursor>), u64>,
    read_ids: u64,
    /// A sweep is going on: sockets are only marked for removal (`doomed`).
    sweeping: bool,
    doomed: Vec<usize>,
    generations: u32,
    /// WebSockets that followed no topic, oldest first (checked against `idle_since`).
    idle: VecDeque<(Instant, ConnKey)>,
    heartbeat_at: Instant,
    writer: Writer,
    // A sweep's buffers, kept to reuse their memory.
    outgoing: Vec<(usize, Bytes)>,
    writes: Vec<Write>,
    owners: Vec<usize>,
    parts: Vec<Bytes>,
    results: Vec<isize>,
    scratch: Scratch,
}

impl Engine {
    pub fn new(
        state: &ApiState,
        metrics: Arc<ShardMetrics>,
        commands: mpsc::UnboundedSender<Command>,
    ) -> Engine {
        Engine {
            store: Arc::clone(&state.store),
            metrics,
            commands,
            patience: state.slow_client,
            client_queue: state.client_queue.max(1),
            idle_socket: state.idle_socket,
            send_buffer: state.send_buffer,
            conns: Slab::new(),
            topics: HashMap::new(),
            dirty: Vec::new(),
            reads: HashMap::new(),
            open_reads: HashMap::new(),
            read_ids: 0,
            sweeping: false,
            doomed: Vec::new(),
            generations: 0,
            idle: VecDeque::new(),
            heartbeat_at: Instant::now() + HEARTBEAT_ROUND,
            writer: Writer::new(state.io_uring),
            outgoing: Vec::new(),
            writes: Vec::new(),
            owners: Vec::new(),
            parts: Vec::new(),
            results: Vec::new(),
            scratch: Scratch::default(),
        }
    }

    pub fn writer_name(&self) -> &'static str {
        self.writer.name()
    }

    pub async fn run(
        mut self,
        mut live: mpsc::Receiver<HubEvent>,
        mut commands: mpsc::UnboundedReceiver<Command>,
        mut shutdown: watch::Receiver<bool>,
    ) {
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                biased;
                _ = shutdown.wait_for(|stop| *stop) => break,
                Some(command) = commands.recv() => {
                    self.handle(command);
                    while let Ok(command) = commands.try_recv() {
                        self.handle(command);
                    }
                }
                event = live.recv() => {
                    let Some(event) = event else { break };
                    self.take(event);
                    self.sweep(&mut live).await;
                }
                _ = tick.tick() => self.housekeep(),
            }
        }
        self.goodbye();
    }

    fn handle(&mut self, command: Command) {
        match command {
            Command::Adopt { detached, stream } => self.adopt(detached, stream),
            Command::Read { id, outcome } => {
                let Some(read) = self.reads.remove(&id) else {
                    return;
                };
                let key = (read.topic, read.cursor);
                if self.open_reads.get(&key) == Some(&id) {
                    self.open_reads.remove(&key);
                }
                for conn in read.waiters {
                    self.joined(conn, key.0, &outcome);
                }
            }
            Command::Client { conn, messages } => self.client(conn, messages),
            Command::Violation { conn, violation } => {
                if let Some(index) = self.live_index(conn) {
                    self.close_after(index, wire::close(violation.code, violation.reason));
                }
            }
            Command::Gone { conn } => {
                if let Some(index) = self.live_index(conn) {
                    self.remove(index);
                }
            }
            Command::Writable { conn, timed_out } => self.writable(conn, timed_out),
        }
    }

    /// The slot of `conn` if it is still the socket the key names.
    fn live_index(&self, conn: ConnKey) -> Option<usize> {
        self.conns
            .get(conn.index)
            .is_some_and(|c| c.generation == conn.generation)
            .then_some(conn.index)
    }

    fn key(&self, index: usize) -> Option<ConnKey> {
        self.conns.get(index).map(|conn| ConnKey {
            index,
            generation: conn.generation,
        })
    }

    fn adopt(&mut self, detached: Detached, carried: Stream) {
        let Detached { stream, permit } = detached;
        if let Some(size) = self.send_buffer {
            let size = libc::c_int::try_from(size).unwrap_or(libc::c_int::MAX);
            // SAFETY: SO_SNDBUF takes an int; the descriptor is this socket's.
            unsafe {
                libc::setsockopt(
                    stream.as_raw_fd(),
                    libc::SOL_SOCKET,
                    libc::SO_SNDBUF,
                    (&size as *const libc::c_int).cast(),
                    std::mem::size_of::<libc::c_int>() as libc::socklen_t,
                );
            }
        }
        let stream = Rc::new(stream);
        self.generations = self.generations.wrapping_add(1);
        let generation = self.generations;
        let entry = self.conns.vacant_entry();
        let key = ConnKey {
            index: entry.key(),
            generation,
        };
        let websocket = matches!(carried, Stream::WebSocket);
        let reader = tokio::task::spawn_local(super::reader::read(
            Rc::clone(&stream),
            key,
            websocket,
            self.commands.clone(),
        ))
        .abort_handle();
        let now = Instant::now();
        entry.insert(Conn {
            generation,
            stream,
            websocket,
            _permit: permit,
            topics: Vec::new(),
            pending: VecDeque::new(),
            blocked: false,
            progress_at: now,
            closing: false,
            quiet: Quiet::default(),
            reader,
            waiter: None,
            idle_since: websocket.then_some(now),
            doomed: false,
        });
        self.metrics.connected(websocket, 1);
        match carried {
            Stream::Sse { topic, cursor } => {
                self.send_to(
                    key.index,
                    vec![wire::chunk(sse::retry(RETRY_MS).as_bytes())],
                );
                self.subscribe(key.index, topic, cursor);
            }
            Stream::WebSocket => self.idle.push_back((now, key)),
        }
    }

    /// Starts following `topic` on socket `index`, from after `cursor` (or a snapshot).
    fn subscribe(&mut self, index: usize, topic: Topic, cursor: Option<Cursor>) {
        let Some(key) = self.key(index) else { return };
        let followers = self.topics.entry(topic).or_default();
        let next = followers.head();
        let subs = &mut followers.subs;
        subs.push(Sub {
            conn: key,
            next,
            last: None,
            phase: Phase::joining(),
        });
        let position = subs.len() - 1;
        if let Some(conn) = self.conns.get_mut(index) {
            conn.topics.push((topic, position));
            conn.idle_since = None;
        }
        self.metrics.subscribed(1);
        self.spawn_join(key, topic, cursor);
    }

    /// Reads the store for a joining subscription; the answer comes back as `Read`. Viewers
    /// joining the same topic from the same cursor share one read while it is open (a connect
    /// or reconnect storm costs a few reads, not one per viewer).
    fn spawn_join(&mut self, conn: ConnKey, topic: Topic, cursor: Option<Cursor>) {
        let key = (topic, cursor);
        if let Some(id) = self.open_reads.get(&key)
            && let Some(read) = self.reads.get_mut(id)
        {
            read.waiters.push(conn);
            return;
        }
        self.read_ids += 1;
        let id = self.read_ids;
        let cursor = key.1;
        self.reads.insert(
            id,
            SharedRead {
                topic,
                cursor,
                waiters: vec![conn],
            },
        );
        self.open_reads.insert(key, id);
        let store = Arc::clone(&self.store);
        let commands = self.commands.clone();
        tokio::task::spawn_local(async move {
            let outcome = join(store.as_ref(), topic, cursor).await;
            let _ = commands.send(Command::Read { id, outcome });
        });
    }

    /// Where `conn`'s subscription to `topic` sits in the topic's list.
    fn sub_position(&self, conn: ConnKey, topic: Topic) -> Option<usize> {
        let index = self.live_index(conn)?;
        self.conns[index]
            .topics
            .iter()
            .find(|(t, _)| *t == topic)
            .map(|(_, position)| *position)
    }

    /// A joining viewer's share of a store read (one read may answer many viewers: see
    /// `spawn_join`).
    fn joined(&mut self, key: ConnKey, topic: Topic, outcome: &Result<Joined, Ended>) {
        let Some(position) = self.sub_position(key, topic) else {
            return;
        };
        let index = key.index;
        let websocket = self.conns[index].websocket;
        let joined = match outcome {
            Ok(joined) => joined,
            Err(ended) => {
                match &ended {
                    Ended::NoSuchTopic => tracing::debug!(?topic, "no such topic"),
                    Ended::Store(err) => tracing::warn!(?topic, "stopped following: {err}"),
                }
                match (websocket, ended) {
                    (true, Ended::NoSuchTopic) => {
                        self.unsubscribe(index, topic);
                        let Topic::Match(id) = topic else { return };
                        self.send_to(index, vec![error_frame(&format!("no game {id}"))]);
                    }
                    (true, Ended::Store(_)) => {
                        let reason =
                            format!("{topic}: stream ended; reconnect and resume with your cursor");
                        self.close_after(index, wire::close(close_code::AGAIN, &reason));
                    }
                    (false, _) => self.close_after(index, Bytes::from_static(wire::END_OF_STREAM)),
                }
                return;
            }
        };
        if joined.resync {
            ShardMetrics::add(&self.metrics.resync_snapshots, 1);
        }
        let Some(sub) = sub_at(&mut self.topics, topic, position) else {
            return;
        };
        let Phase::Joining { held, overflowed } = std::mem::replace(&mut sub.phase, Phase::Live)
        else {
            return;
        };
        let mut parts = Vec::with_capacity(joined.messages.len() + held.len());
        if joined.snapshot {
            for message in &joined.messages {
                sub.last = message.cursor;
                parts.push(message.bytes_for(websocket));
            }
        } else if sub.last.is_none() {
            sub.last = joined.after;
        }
        let stored = if joined.snapshot {
            &[][..]
        } else {
            &joined.messages[..]
        };
        for message in stored.iter().chain(&held) {
            if is_new(message.cursor, sub.last) {
                sub.last = message.cursor;
                parts.push(message.bytes_for(websocket));
            }
        }
        let again = overflowed.then_some(sub.last);
        if let Some(cursor) = again {
            sub.phase = Phase::joining();
            ShardMetrics::add(&self.metrics.catch_ups, 1);
            self.spawn_join(key, topic, cursor);
        }
        ShardMetrics::add(&self.metrics.messages_sent, parts.len() as u64);
        self.send_to(index, parts);
    }

    /// A live event from the hub: a message joins its topic's log (if anybody here follows
    /// it), or every subscription catches up from the store.
    fn take(&mut self, event: HubEvent) {
        match event {
            HubEvent::Entry(message) => {
                if !self.open_reads.is_empty() {
                    self.open_reads
                        .retain(|(topic, _), _| *topic != message.topic);
                }
                let Some(followers) = self.topics.get_mut(&message.topic) else {
                    return;
                };
                if self.dirty.is_empty() {
                    let waited = message.arrived.elapsed().as_micros() as u64;
                    ShardMetrics::add(&self.metrics.sweep_wait_us, waited);
                }
                followers.log.push(message);
                if !followers.dirty {
                    followers.dirty = true;
                    self.dirty.push(followers.log[0].topic);
                }
            }
            HubEvent::Missed => self.catch_up_all(),
        }
    }

    /// Takes what the hub has sent meanwhile, without waiting.
    fn take_arrived(&mut self, live: &mut mpsc::Receiver<HubEvent>) {
        for _ in 0..SWEEP {
            match live.try_recv() {
                Ok(event) => self.take(event),
                Err(_) => return,
            }
        }
    }

    /// Writes every dirty topic's log to its followers. A rolling sweep: it goes round each
    /// topic's followers, a chunk at a time, and between chunks takes the messages that have
    /// arrived meanwhile, so the followers not reached yet get them in the same write, and a
    /// message waits at most one round, not the rest of a sweep and then a whole one.
    async fn sweep(&mut self, live: &mut mpsc::Receiver<HubEvent>) {
        let began = std::time::Instant::now();
        self.sweeping = true;
        self.take_arrived(live);
        while let Some(topic) = self.dirty.pop() {
            loop {
                let (wrote, head) = self.round(topic, live).await;
                let Some(followers) = self.topics.get_mut(&topic) else {
                    break;
                };
                if !wrote && followers.head() == head {
                    // Every follower has everything: the log can go.
                    followers.base = followers.head();
                    followers.log.clear();
                    followers.dirty = false;
                    if followers.subs.is_empty() {
                        self.topics.remove(&topic);
                    }
                    break;
                }
            }
        }
        self.sweeping = false;
        for index in std::mem::take(&mut self.doomed) {
            self.remove(index);
        }
        ShardMetrics::add(&self.metrics.sweeps, 1);
        ShardMetrics::add(&self.metrics.sweep_us, began.elapsed().as_micros() as u64);
    }

    /// One round over `topic`'s followers; whether anything was written, and the head of the
    /// log that every follower had reached at the end of the round.
    async fn round(&mut self, topic: Topic, live: &mut mpsc::Receiver<HubEvent>) -> (bool, u64) {
        let mut wrote = false;
        let mut position = 0;
        loop {
            let Some(followers) = self.topics.get_mut(&topic) else {
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
            // Sockets are not removed during a sweep (see `remove`), so every follower is
            // visited each round and none is left behind the log's base.
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
                &mut self.outgoing,
                self.client_queue,
            );
            ShardMetrics::add(&self.metrics.messages_sent, sent);
            if self.outgoing.len() >= CHUNK {
                self.flush_outgoing();
                self.take_arrived(live);
                // The shard's other tasks (readers, HTTP requests) get a turn.
                tokio::task::yield_now().await;
            }
        }
        // The head every follower has now reached, before taking what arrived meanwhile: the
        // caller trims the log only if nothing did.
        let head = self.topics.get(&topic).map_or(0, Followers::head);
        self.flush_outgoing();
        self.take_arrived(live);
        (wrote, head)
    }

    /// The hub missed entries: every subscription catches up from the store after its last.
    fn catch_up_all(&mut self) {
        let mut joins = Vec::new();
        for (topic, followers) in &mut self.topics {
            for sub in followers.subs.iter_mut() {
                if matches!(sub.phase, Phase::Joining { .. }) {
                    // Its store read may have missed them too: read again after it.
                    if let Phase::Joining { overflowed, .. } = &mut sub.phase {
                        *overflowed = true;
                    }
                    continue;
                }
                sub.phase = Phase::joining();
                joins.push((sub.conn, *topic, sub.last));
            }
        }
        ShardMetrics::add(&self.metrics.catch_ups, joins.len() as u64);
        for (conn, topic, cursor) in joins {
            self.spawn_join(conn, topic, cursor);
        }
    }

    /// Writes the sweep's queued messages: each socket's in one `sendmsg`, all together.
    fn flush_outgoing(&mut self) {
        if self.outgoing.is_empty() {
            return;
        }
        let mut outgoing = std::mem::take(&mut self.outgoing);
        let mut writes = std::mem::take(&mut self.writes);
        let mut owners = std::mem::take(&mut self.owners);
        let mut parts = std::mem::take(&mut self.parts);
        let mut results = std::mem::take(&mut self.results);
        // Stable: each socket's messages stay in order.
        outgoing.sort_by_key(|(index, _)| *index);
        let mut queued = outgoing.drain(..).peekable();
        while let Some((index, bytes)) = queued.next() {
            let start = parts.len();
            parts.push(bytes);
            while let Some((_, bytes)) = queued.next_if(|(next, _)| *next == index) {
                parts.push(bytes);
            }
            let Some(conn) = self.conns.get(index).filter(|conn| !conn.doomed) else {
                parts.truncate(start);
                continue;
            };
            writes.push(Write {
                fd: conn.stream.as_raw_fd(),
                parts: start..parts.len(),
            });
            owners.push(index);
        }
        drop(queued);
        self.writer
            .send(&writes, &parts, &mut self.scratch, &mut results);
        for ((write, &index), &result) in writes.iter().zip(&owners).zip(&results) {
            self.wrote(index, &parts[write.parts.clone()], result);
        }
        parts.clear();
        writes.clear();
        owners.clear();
        (
            self.outgoing,
            self.writes,
            self.owners,
            self.parts,
            self.results,
        ) = (outgoing, writes, owners, parts, results);
    }

    /// Writes `parts` to socket `index` now (or queues them behind what it has not taken).
    fn send_to(&mut self, index: usize, parts: Vec<Bytes>) {
        let Some(conn) = self.conns.get_mut(index) else {
            return;
        };
        if parts.is_empty() {
            return;
        }
        if conn.blocked {
            conn.pending.extend(parts);
            return;
        }
        let mut written = 0;
        while written < parts.len() {
            let batch = &parts[written..(written + 1024).min(parts.len())];
            let result = sendmsg_parts(conn.stream.as_raw_fd(), batch);
            let total: usize = batch.iter().map(Bytes::len).sum();
            if result < 0 || result as usize != total {
                self.wrote(index, batch, result);
                if let Some(conn) = self.conns.get_mut(index) {
                    conn.pending
                        .extend(parts[written + batch.len()..].iter().cloned());
                }
                return;
            }
            written += batch.len();
        }
        if let Some(conn) = self.conns.get_mut(index) {
            conn.quiet.written();
        }
    }

    /// What a socket did with `parts` (`result`: bytes taken, or a negated errno).
    fn wrote(&mut self, index: usize, parts: &[Bytes], result: isize) {
        let Some(conn) = self.conns.get_mut(index) else {
            return;
        };
        if result < 0 && result != -(libc::EAGAIN as isize) {
            // Reset, broken pipe: the viewer is gone.
            self.remove(index);
            return;
        }
        let mut skip = result.max(0) as usize;
        if skip > 0 {
            conn.quiet.written();
        }
        let was_blocked = conn.blocked;
        for part in parts {
            if skip >= part.len() {
                skip -= part.len();
            } else {
                conn.pending.push_back(part.slice(skip..));
                skip = 0;
            }
        }
        if !was_blocked && !conn.pending.is_empty() {
            conn.blocked = true;
            conn.progress_at = Instant::now();
            self.wait_writable(index);
        }
    }

    /// A task that says when socket `index` can take more, or that its deadline passed.
    fn wait_writable(&mut self, index: usize) {
        let Some(key) = self.key(index) else { return };
        let conn = &mut self.conns[index];
        let stream = Rc::clone(&conn.stream);
        let commands = self.commands.clone();
        let deadline = conn.progress_at + self.patience;
        let waiter = tokio::task::spawn_local(async move {
            let timed_out = tokio::time::timeout_at(deadline, stream.writable())
                .await
                .is_err();
            let _ = commands.send(Command::Writable {
                conn: key,
                timed_out,
            });
        });
        conn.waiter = Some(waiter.abort_handle());
    }

    fn writable(&mut self, key: ConnKey, timed_out: bool) {
        let Some(index) = self.live_index(key) else {
            return;
        };
        let conn = &mut self.conns[index];
        conn.waiter = None;
        if !conn.blocked {
            return;
        }
        let mut progress = false;
        while !conn.pending.is_empty() {
            let count = conn.pending.len().min(FLUSH_PARTS);
            let batch: Vec<Bytes> = conn.pending.iter().take(count).cloned().collect();
            let fd = conn.stream.as_raw_fd();
            // Through tokio, so that a full socket clears its readiness and the next wait
            // really waits.
            let sent = conn
                .stream
                .try_io(Interest::WRITABLE, || match sendmsg_parts(fd, &batch) {
                    n if n == -(libc::EAGAIN as isize) => {
                        Err(std::io::ErrorKind::WouldBlock.into())
                    }
                    n if n < 0 => Err(std::io::Error::from_raw_os_error(-n as i32)),
                    n => Ok(n as usize),
                });
            match sent {
                Ok(mut taken) => {
                    progress |= taken > 0;
                    while taken > 0 {
                        let Some(front) = conn.pending.front_mut() else {
                            break;
                        };
                        if taken >= front.len() {
                            taken -= front.len();
                            conn.pending.pop_front();
                        } else {
                            *front = front.slice(taken..);
                            taken = 0;
                        }
                    }
                }
                Err(err) if err.kind() == std::io::ErrorKind::WouldBlock => break,
                Err(_) => {
                    self.remove(index);
                    return;
                }
            }
        }
        if progress {
            conn.progress_at = Instant::now();
            conn.quiet.written();
        }
        if !conn.pending.is_empty() {
            if timed_out && !progress || conn.progress_at + self.patience <= Instant::now() {
                ShardMetrics::add(&self.metrics.slow_client_closes, 1);
                tracing::info!("let a viewer go: it stopped reading");
                self.remove(index);
            } else {
                self.wait_writable(index);
            }
            return;
        }
        conn.blocked = false;
        if conn.closing {
            self.remove(index);
            return;
        }
        // Drained: the topics that dropped messages meanwhile catch up from the store.
        let topics = conn.topics.clone();
        for (topic, position) in topics {
            let Some(sub) = sub_at(&mut self.topics, topic, position) else {
                continue;
            };
            if matches!(sub.phase, Phase::Behind) {
                sub.phase = Phase::joining();
                let cursor = sub.last;
                ShardMetrics::add(&self.metrics.catch_ups, 1);
                self.spawn_join(key, topic, cursor);
            }
        }
    }

    /// Writes `last` (a close frame, the end of the stream) and closes the socket once it is out.
    fn close_after(&mut self, index: usize, last: Bytes) {
        self.send_to(index, vec![last]);
        let Some(conn) = self.conns.get_mut(index) else {
            return;
        };
        conn.closing = true;
        if !conn.blocked {
            self.remove(index);
        }
    }

    /// Closes socket `index`: its tasks stop, its subscriptions go, the socket is closed.
    /// During a sweep it is only marked, and removed once the sweep is over: removing a
    /// subscription moves another into its place in the topic's list, which the sweep's
    /// round could then skip.
    fn remove(&mut self, index: usize) {
        if self.sweeping {
            if let Some(conn) = self.conns.get_mut(index)
                && !conn.doomed
            {
                conn.doomed = true;
                self.doomed.push(index);
            }
            return;
        }
        let Some(conn) = self.conns.try_remove(index) else {
            return;
        };
        conn.reader.abort();
        if let Some(waiter) = &conn.waiter {
            waiter.abort();
        }
        for (topic, position) in &conn.topics {
            self.unlink(*topic, *position);
        }
        self.metrics.connected(conn.websocket, -1);
    }

    /// Removes the subscription at `position` of `topic`'s list.
    fn unlink(&mut self, topic: Topic, position: usize) {
        let Some(followers) = self.topics.get_mut(&topic) else {
            return;
        };
        let subs = &mut followers.subs;
        if position >= subs.len() {
            return;
        }
        subs.swap_remove(position);
        if let Some(moved) = subs.get(position)
            && let Some(owner) = self.conns.get_mut(moved.conn.index)
        {
            for entry in owner.topics.iter_mut().filter(|(t, _)| *t == topic) {
                entry.1 = position;
            }
        }
        if subs.is_empty() && !followers.dirty {
            self.topics.remove(&topic);
        }
        self.metrics.subscribed(-1);
    }

    fn unsubscribe(&mut self, index: usize, topic: Topic) -> bool {
        let Some(conn) = self.conns.get_mut(index) else {
            return false;
        };
        let Some(at) = conn.topics.iter().position(|(t, _)| *t == topic) else {
            return false;
        };
        let (_, position) = conn.topics.swap_remove(at);
        if conn.topics.is_empty() && conn.websocket {
            let now = Instant::now();
            conn.idle_since = Some(now);
            let key = ConnKey {
                index,
                generation: conn.generation,
            };
            self.idle.push_back((now, key));
        }
        self.unlink(topic, position);
        true
    }

    /// What a WebSocket client sent.
    fn client(&mut self, key: ConnKey, messages: Vec<ClientMessage>) {
        for message in messages {
            let Some(index) = self.live_index(key) else {
                return;
            };
            match message {
                ClientMessage::Text(text) => self.request(index, &text),
                ClientMessage::Binary => {
                    self.send_to(index, vec![error_frame("frames must be JSON text")]);
                }
                ClientMessage::Ping(payload) => {
                    self.send_to(index, vec![wire::frame(wire::PONG, &payload)]);
                }
                ClientMessage::Pong => {}
                ClientMessage::Close(_) => {
                    self.close_after(index, wire::close(close_code::NORMAL, ""));
                    return;
                }
            }
        }
    }

    /// A subscribe or unsubscribe request (see `ws.rs`).
    fn request(&mut self, index: usize, text: &str) {
        let request: ClientRequest = match serde_json::from_str(text) {
            Ok(request) => request,
            Err(err) => {
                let message = format!(
                    "not a request ({err}); send {{\"op\": \"subscribe\", \"topic\": \"games\"}} \
                     or {{\"op\": \"subscribe\", \"topic\": \"game:<id>\", \"cursor\": \"<optional>\"}}"
                );
                return self.send_to(index, vec![error_frame(&message)]);
            }
        };
        let reply = match request {
            ClientRequest::Subscribe { topic, cursor } => {
                let following = &self.conns[index].topics;
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
        self.send_to(index, vec![reply]);
    }

    /// Once a second: heartbeats when due, and WebSockets idle too long closed.
    fn housekeep(&mut self) {
        let now = Instant::now();
        while let Some(&(since, key)) = self.idle.front() {
            if since + self.idle_socket > now {
                break;
            }
            self.idle.pop_front();
            let Some(index) = self.live_index(key) else {
                continue;
            };
            if self.conns[index].idle_since == Some(since) && !self.conns[index].closing {
                let reason = format!(
                    "no subscription for {} s: subscribe when you need a topic",
                    self.idle_socket.as_secs()
                );
                self.close_after(index, wire::close(close_code::POLICY, &reason));
            }
        }
        if now < self.heartbeat_at {
            return;
        }
        self.heartbeat_at = now + HEARTBEAT_ROUND;
        let sse = wire::chunk(sse::HEARTBEAT.as_bytes());
        let ping = wire::frame(wire::PING, b"");
        for (index, conn) in &mut self.conns {
            if conn.quiet.round() && !conn.blocked && !conn.closing {
                let beat = if conn.websocket { &ping } else { &sse };
                self.outgoing.push((index, beat.clone()));
            }
        }
        self.flush_outgoing();
    }

    /// Shutdown: every viewer gets the end of its stream or a close 1012, then its socket closes.
    fn goodbye(&mut self) {
        let sse = Bytes::from_static(wire::END_OF_STREAM);
        let ws = wire::close(
            close_code::RESTART,
            "server restarting: reconnect and resubscribe with your cursors",
        );
        for (index, conn) in &self.conns {
            if !conn.blocked {
                let last = if conn.websocket { &ws } else { &sse };
                self.outgoing.push((index, last.clone()));
            }
        }
        self.flush_outgoing();
        let indexes: Vec<usize> = self.conns.iter().map(|(index, _)| index).collect();
        for index in indexes {
            self.remove(index);
        }
    }
}

/// Queues `messages` for one follower: to write now (`outgoing`), behind what its socket has
/// not taken, held while it joins, or dropped while it is behind. Returns how many were queued.
fn route(
    sub: &mut Sub,
    messages: &[Arc<Message>],
    conns: &mut Slab<Conn>,
    outgoing: &mut Vec<(usize, Bytes)>,
    client_queue: usize,
) -> u64 {
    let mut sent = 0;
    for message in messages {
        match &mut sub.phase {
            Phase::Joining { held, overflowed } => {
                if held.len() < client_queue {
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
                let Some(conn) = conns.get_mut(sub.conn.index).filter(|conn| !conn.doomed) else {
                    continue;
                };
                let bytes = message.bytes_for(conn.websocket);
                if !conn.blocked {
                    outgoing.push((sub.conn.index, bytes));
                } else if conn.pending.len() < client_queue {
                    conn.pending.push_back(bytes);
                } else {
                    sub.phase = Phase::Behind;
                    continue;
                }
                sub.last = message.cursor;
                sent += 1;
            }
        }
    }
    sent
}

/// What a viewer joining `topic` after `cursor` gets from the store.
async fn join(
    store: &dyn MatchStore,
    topic: Topic,
    cursor: Option<Cursor>,
) -> Result<Joined, Ended> {
    let mut resync = false;
    if let Some(cursor) = cursor {
        match store.read_after(topic, Some(cursor), CATCH_UP_ENTRIES).await? {
            LogRead::After(entries) => {
                return Ok(Joined {
                    messages: entries.into_iter().map(Message::of_entry).collect(),
                    snapshot: false,
                    after: Some(cursor),
                    resync: false,
                });
            }
            LogRead::Unknown | LogRead::TooMany => resync = true,
        }
    }
    let snapshot = store.snapshot(topic).await?.ok_or(Ended::NoSuchTopic)?;
    Ok(Joined {
        messages: vec![Message::new(
            topic,
            snapshot.cursor,
            Kind::Snapshot,
            Arc::from(snapshot.json),
        )],
        snapshot: true,
        after: None,
        resync,
    })
}

#[cfg(test)]
mod tests {
    use super::Quiet;

    /// The longest silence, in rounds, that `Quiet` allows when the socket is written to in
    /// the rounds marked true: counted from just after the round before a write.
    fn longest_silence(writes: &[bool]) -> usize {
        let mut quiet = Quiet::default();
        let mut silent = 0;
        let mut longest = 0;
        for &wrote in writes {
            // A write just after the previous round: silent for this whole round at least.
            silent = if wrote { 1 } else { silent + 1 };
            if wrote {
                quiet.written();
            }
            if quiet.round() {
                longest = longest.max(silent);
                silent = 0;
            }
            longest = longest.max(silent);
        }
        longest
    }

    #[test]
    fn a_silent_socket_gets_a_heartbeat_every_third_round() {
        // The heartbeat starts the count again, as any write does.
        let mut quiet = Quiet::default();
        let beats: Vec<bool> = (0..6).map(|_| quiet.round()).collect();
        assert_eq!(beats, [false, false, true, false, false, true]);
    }

    #[test]
    fn a_write_puts_the_next_heartbeat_off() {
        let mut quiet = Quiet::default();
        assert!(!quiet.round());
        quiet.written();
        assert!(!quiet.round(), "written to: no heartbeat");
        assert!(!quiet.round());
        assert!(quiet.round());
    }

    #[test]
    fn no_pattern_of_writes_leaves_a_socket_silent_for_three_rounds() {
        // Every pattern of writes over 12 rounds.
        for pattern in 0u32..1 << 12 {
            let writes: Vec<bool> = (0..12).map(|bit| pattern & 1 << bit != 0).collect();
            assert!(longest_silence(&writes) <= 3, "{writes:?}");
        }
    }
}
