//! The fan-out engine: what writes every live message to every viewer's socket.
//!
//! One engine per shard of the server (`livescore_server`: a thread, a single-threaded runtime,
//! the connections the kernel gave that shard). An SSE request or a WebSocket handshake is
//! answered by its route, and once the response head is out the server hands the raw socket to
//! the shard's engine ([`EngineHandle::adopt`]). From then on the engine owns it, with no task
//! and no queue per message. How one message travels, file by file:
//!
//! 1. `hub.rs` (the replica's one store subscription) wraps each new entry in a `Message`
//!    (`message.rs`: encoded at most once per transport) and hands it to every shard's engine.
//! 2. `engine.rs` takes it: `topics.rs` adds it to its topic's log if anybody here follows it.
//! 3. `sweep.rs` goes round the topic's followers: `topics::route` stages the shared bytes for
//!    each in `outbox.rs` (within each socket's byte budget), or holds them for a follower still
//!    joining (`joins.rs`), or drops them for one that fell behind (it catches up from the store
//!    later).
//! 4. `outbox.rs` flushes: one `sendmsg` per socket, every socket at once through `writer.rs`
//!    (io_uring). What a full socket did not take is kept, the socket is blocked, its reader
//!    stops (`reader.rs`), and a task waits for it to drain.
//!
//! A WebSocket client's frames come the other way: `reader.rs` reads them
//! (`framing/websocket.rs` checks them) and `session.rs` answers, through the same outbox.
//! `housekeeping.rs` sends heartbeats, closes idle sockets and says goodbye at shutdown.
//! `presence` messages (`../presence.rs`) travel as live messages do, without a cursor: they
//! are not in any log, are never held or caught up, and are dropped for a socket with no room.

mod connections;
mod engine;
mod housekeeping;
mod joins;
mod outbox;
mod reader;
mod session;
mod sweep;
mod topics;

pub mod writer;

use livescore_server::{Detached, Shard};
use livescore_store::{Cursor, MatchStore, Topic};
use std::sync::Arc;
use tokio::sync::mpsc;

use crate::config::FanoutConfig;
use crate::hub::Hub;
use crate::metrics::Metrics;
use crate::presence::Presence;

pub use engine::RETRY_MS;
pub use housekeeping::HEARTBEAT;
pub use joins::CATCH_UP_ENTRIES;
pub use session::{MAX_SUBSCRIPTIONS, REQUEST_BURST, REQUESTS_PER_SECOND};

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
    events: mpsc::UnboundedSender<engine::Event>,
}

impl EngineHandle {
    /// How many sockets the engine holds, and how many follow each topic.
    pub async fn count(
        &self,
    ) -> Result<crate::presence::Counts, tokio::sync::oneshot::error::RecvError> {
        let (reply, counted) = tokio::sync::oneshot::channel();
        let _ = self.events.send(engine::Event::Count { reply });
        counted.await
    }

    /// Hands a socket whose response head was written to the engine.
    pub fn adopt(&self, detached: Detached, stream: Stream) {
        // The engine only stops at shutdown, when the socket may as well close.
        let _ = self.events.send(engine::Event::Adopt { detached, stream });
    }
}

/// Starts the engine of the shard this is called on, fed by the replica's hub.
pub(crate) fn start(
    store: Arc<dyn MatchStore>,
    hub: &Hub,
    presence: Arc<Presence>,
    metrics: &Metrics,
    config: &FanoutConfig,
    shard: &Shard,
) -> EngineHandle {
    let (engine, inputs, events) = engine::Engine::new(
        store,
        presence,
        config,
        shard.count(),
        metrics.shard(),
        hub.attach(),
        shard.shutdown(),
    );
    tracing::debug!(
        shard = shard.index(),
        writer = engine.writer_name(),
        "fan-out engine"
    );
    shard.spawn_local(engine.run(inputs));
    EngineHandle { events }
}
