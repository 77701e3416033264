//! The HTTP server every role serves on (the API, the producer, `livescore up`).
//!
//! - **Shards** (`shard.rs`): one thread per core, each with a single-threaded tokio runtime and
//!   a listening socket of its own on the shared port (`SO_REUSEPORT`: the kernel spreads new
//!   connections over the shards). A process holds as many connections as its open-file limit
//!   allows; with `reuse_port`, several processes serve one port, as nginx's workers do.
//! - **Limits** (`limits.rs`): a header read timeout (hyper's; it also bounds an idle keep-alive
//!   connection), a cap on open connections past which a client gets a JSON `503`, and every
//!   error answer turned into JSON (`{"error": "..."}`), whoever produced it.
//! - **Unread bodies** (`unread_body.rs`): an answer given without reading the request's body
//!   to the end says `connection: close`, so that no client reuses a connection hyper closes.
//! - **Hand-over** (`detach.rs`): a handler can ask for its connection once the response head
//!   is written; the raw socket then leaves hyper (and its two 8 KiB buffers) for the caller.
//!   The API's live streams (SSE and WebSocket) are written that way, by its fan-out engine.
//!
//! Graceful shutdown: on the signal every shard stops accepting, each HTTP connection finishes
//! its current request (at most `DRAIN`), and the tasks a shard's app spawned with
//! [`Shard::spawn`] (the fan-out engine) say goodbye to their clients.

mod detach;
mod limits;
mod shard;
pub mod telemetry;
mod unread_body;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

pub use detach::{Detach, Detached, Permit};
pub use limits::json_error_body;
pub use shard::Shard;
pub use telemetry::Telemetry;
pub use unread_body::close_if_body_unread;

/// What a server enforces and how it spreads its work; every field has a meaning at 0 or its
/// default (see [`ServerConfig::default`]).
#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub listen: SocketAddr,
    /// Open connections at most (0: what the process's file-descriptor limit leaves room for).
    pub max_connections: u64,
    /// A client must send a whole request head within this.
    pub header_timeout: Duration,
    /// Shards (threads, each with its own runtime and listener); 0: one per core.
    pub shards: usize,
    /// Let other processes listen on the same port (`SO_REUSEPORT`): several replicas on one
    /// host share it, and the kernel spreads connections over all of them. Off: a port in use
    /// is an error.
    pub reuse_port: bool,
    /// How long shutdown waits for connections to finish, and for the tasks shards spawned
    /// (the API's engines, which close their viewers over a drain window of their own).
    pub drain: Duration,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            max_connections: 0,
            header_timeout: Duration::from_secs(10),
            shards: 0,
            reuse_port: false,
            drain: DRAIN,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("cannot start shard {index}: {source}")]
    Shard {
        index: usize,
        source: std::io::Error,
    },
    #[error("shard {index} stopped unexpectedly")]
    ShardLost { index: usize },
}

/// The largest request body any route takes (the producer's `{"speed": 600}` is a few bytes).
pub const MAX_BODY: usize = 16 * 1024;

/// How long shutdown waits for connections to finish their current request, by default.
pub const DRAIN: Duration = Duration::from_secs(5);

/// Builds a shard's app: called once in each shard's thread, inside its runtime, so that what
/// the app spawns (with [`Shard::spawn`]) runs on that shard.
pub type MakeApp = Arc<dyn Fn(&Shard) -> axum::Router + Send + Sync>;

/// A server whose shards are listening (so its address is known, port 0 resolved) but not yet
/// serving: see [`Server::serve`].
pub struct Server {
    local_addr: SocketAddr,
    shards: Vec<shard::Starting>,
    limits: limits::Limits,
}

impl Server {
    /// Starts the shards' threads and binds their listeners. Fails if the address is taken.
    pub fn bind(config: &ServerConfig) -> Result<Server, ServerError> {
        let count = match config.shards {
            0 => std::thread::available_parallelism().map_or(1, usize::from),
            n => n,
        };
        let limits = limits::Limits::of(config);
        let shards = shard::Starting::spawn_all(count, config.listen, config.reuse_port)?;
        let addr = shards
            .first()
            .map_or(config.listen, |shard| shard.local_addr);
        tracing::info!(
            listen = %addr,
            shards = count,
            max_connections = limits.max_connections,
            header_timeout_ms = limits.header_timeout.as_millis() as u64,
            "HTTP listening"
        );
        Ok(Server {
            local_addr: addr,
            shards,
            limits,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Serves the app `make_app` builds on every shard until `shutdown` turns true, then drains.
    pub async fn serve(
        self,
        make_app: MakeApp,
        shutdown: tokio::sync::watch::Receiver<bool>,
    ) -> Result<(), ServerError> {
        let permits = Arc::new(tokio::sync::Semaphore::new(self.limits.max_connections));
        let running: Vec<_> = self
            .shards
            .into_iter()
            .map(|starting| {
                starting.start(shard::Go {
                    make_app: Arc::clone(&make_app),
                    shutdown: shutdown.clone(),
                    permits: Arc::clone(&permits),
                    limits: self.limits,
                })
            })
            .collect();
        let mut result = Ok(());
        for (index, done) in running.into_iter().enumerate() {
            if done.await.is_err() && result.is_ok() {
                result = Err(ServerError::ShardLost { index });
            }
        }
        result
    }
}

/// Binds and serves until `shutdown`: [`Server::bind`] then [`Server::serve`].
pub async fn serve(
    config: &ServerConfig,
    make_app: MakeApp,
    shutdown: tokio::sync::watch::Receiver<bool>,
) -> Result<(), ServerError> {
    Server::bind(config)?.serve(make_app, shutdown).await
}
