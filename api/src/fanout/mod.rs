//! The fan-out engine: what writes every live message to every viewer's socket.
//!
//! One engine per shard of the server (`livescore_server`: a thread, a single-threaded runtime,
//! the connections the kernel gave that shard). An SSE request or a WebSocket handshake is
//! answered by its route, and once the response head is out the server hands the raw socket to
//! the shard's engine ([`EngineHandle::adopt`]). From then on:
//!
//! - **Live messages.** The replica's hub (`hub.rs`) sends each new entry of the store to every
//!   shard, once. The engine looks up who follows its topic on this shard and writes the bytes
//!   the hub's `Message` encoded once per transport to all of them in one *sweep*: one
//!   `sendmsg` per socket, all submitted to io_uring together (`writer.rs`), so a goal reaching
//!   10,000 viewers wakes one task per shard and costs a few system calls in all. Several
//!   messages for one socket in a sweep go out in one `sendmsg`.
//! - **A viewer that does not keep up.** A socket that takes less than it was given keeps the
//!   rest in a queue of its own (bounded: `ApiState::client_queue` messages) and gets a task
//!   waiting for it to drain, with one deadline: if it makes no progress for
//!   `ApiState::slow_client`, it is closed and resumes with its cursor when it comes back. Past
//!   the bound its topics stop queueing and catch up from the store once it has drained.
//! - **Joining a topic** (an SSE stream, a WebSocket subscription, or every topic after the hub
//!   said entries were missed): the viewer's live messages are held while the store is read
//!   (what came after its cursor, else a snapshot), then the store's answer is written and
//!   the held messages after it, skipping any at or before the last cursor written. So a viewer
//!   sees every entry once, in order, on any replica it reconnects to.
//! - **Reading.** Each socket has a small task that waits for it to be readable: for SSE, to see
//!   the viewer leave; for WebSocket, to read its frames (`wire.rs`): subscribe, unsubscribe,
//!   ping, close.
//! - **Housekeeping**, once a second: a heartbeat (an SSE comment, a WebSocket ping) to the
//!   sockets nothing was written to for more than two rounds of 5 s, so none is silent longer
//!   than 15 s; and WebSockets that follow no topic for `ApiState::idle_socket` closed (1008).
//!   On shutdown every viewer gets the end of its stream (SSE) or a close 1012 (WebSocket) and
//!   reconnects elsewhere.

mod engine;
mod reader;
pub mod wire;
pub mod writer;

use livescore_server::{Detached, Shard};
use livescore_store::{Cursor, StoreError, Topic};
use tokio::sync::mpsc;

use crate::ApiState;
use crate::message::Message;
use std::sync::Arc;

pub(crate) use engine::ConnKey;

/// What a handed-over socket carries.
#[derive(Debug)]
pub enum Stream {
    /// One topic as Server-Sent Events, from after `cursor` (or a snapshot).
    Sse {
        topic: Topic,
        cursor: Option<Cursor>,
    },
    /// WebSocket frames; its topics come as the client subscribes.
    WebSocket,
}

/// A shard's engine, as its routes see it.
#[derive(Clone)]
pub struct EngineHandle {
    commands: mpsc::UnboundedSender<Command>,
}

impl EngineHandle {
    /// Hands a socket whose response head was written to the engine.
    pub fn adopt(&self, detached: Detached, stream: Stream) {
        // The engine only stops at shutdown, when the socket may as well close.
        let _ = self.commands.send(Command::Adopt { detached, stream });
    }
}

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

/// What the store said when a viewer joined a topic.
pub(crate) struct Joined {
    /// A snapshot (first, or the cursor was unknown), or the entries after `after`.
    pub messages: Vec<Arc<Message>>,
    pub snapshot: bool,
    /// The cursor caught up after (None for a snapshot).
    pub after: Option<Cursor>,
    /// A snapshot sent because the viewer's cursor was unknown.
    pub resync: bool,
}

/// What the engine is told, besides live messages.
pub(crate) enum Command {
    Adopt {
        detached: Detached,
        stream: Stream,
    },
    /// A store read for joining viewers (see `Engine::spawn_join`) answered.
    Read {
        id: u64,
        outcome: Result<Joined, Ended>,
    },
    /// Whole messages a WebSocket client sent.
    Client {
        conn: ConnKey,
        messages: Vec<wire::ClientMessage>,
    },
    /// A WebSocket client broke the protocol: close with this reason.
    Violation {
        conn: ConnKey,
        violation: wire::Violation,
    },
    /// The viewer went away (end of stream, reset).
    Gone {
        conn: ConnKey,
    },
    /// A socket that was full can take more, or its deadline passed.
    Writable {
        conn: ConnKey,
        timed_out: bool,
    },
}

/// Starts the engine of the shard this is called on, fed by the replica's hub.
pub(crate) fn start(state: &ApiState, shard: &Shard) -> EngineHandle {
    let (commands, receiver) = mpsc::unbounded_channel();
    let live = state.hub.attach();
    let metrics = state.metrics.shard();
    let engine = engine::Engine::new(state, metrics, commands.clone());
    tracing::debug!(
        shard = shard.index(),
        writer = engine.writer_name(),
        "fan-out engine"
    );
    shard.spawn_local(engine.run(live, receiver, shard.shutdown()));
    EngineHandle { commands }
}
