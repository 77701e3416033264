//! Which Redis server the store talks to, and finding it again when that changes.
//!
//! Given one address (`REDIS_URL`), the store keeps one connection to it, which reconnects to
//! the same address by itself. Given Redis Sentinel (`REDIS_SENTINELS`), the store asks the
//! sentinels where the primary is (or a replica, for an API replica that reads from one), and
//! asks again whenever the server it holds stops answering or stops being what it needs: an I/O
//! error, `READONLY` (a primary turned into a replica), `MASTERDOWN` or `LOADING` (a replica that
//! lost its primary, or is still loading). A failover is followed without anyone being told.
//!
//! Reads and the subscription share one resolved server, so that a viewer's snapshot and the
//! live entries after it come from the same copy of the data: two replicas that lag differently
//! could otherwise leave a gap between them.

use std::sync::Mutex;
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::sentinel::{Sentinel, SentinelNodeConnectionInfo};
use redis::{Client, RedisError};

use crate::StoreError;

/// Which copy of the data a store reads and subscribes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ReadFrom {
    /// The primary: the projector, which writes, and `livescore up`.
    #[default]
    Primary,
    /// A replica, when there is one (else the primary): API replicas, so that readers scale
    /// with Redis replicas and leave the primary to the projector.
    Replica,
}

/// Redis Sentinel: the sentinels to ask, and the name of the primary they watch.
#[derive(Debug, Clone)]
pub struct SentinelConfig {
    /// `host:port` of each sentinel (any one answering is enough).
    pub sentinels: Vec<String>,
    /// The name the sentinels monitor the primary under (`sentinel monitor <name> ...`).
    pub master: String,
    pub read_from: ReadFrom,
}

/// How the server is found.
enum Locate {
    /// One address, for good.
    Fixed(Client),
    /// Asked of the sentinels, each time the server held is found wanting.
    Sentinel {
        sentinel: tokio::sync::Mutex<Sentinel>,
        master: String,
        read_from: ReadFrom,
    },
}

/// The server found: a client for it (the subscription opens its own connection) and the
/// shared connection every command uses.
#[derive(Clone)]
struct Found {
    client: Client,
    conn: ConnectionManager,
    /// Counts resolutions, so that a failure seen on an older one does not discard a newer.
    generation: u64,
}

pub(super) struct Node {
    locate: Locate,
    found: Mutex<Option<Found>>,
    generation: std::sync::atomic::AtomicU64,
}

/// redis-rs times requests out after 500 ms by default: too eager for a busy machine, and a
/// write whose answer is lost is retried by the projector anyway.
fn manager_config() -> ConnectionManagerConfig {
    ConnectionManagerConfig::new()
        .set_response_timeout(Some(Duration::from_secs(5)))
        .set_connection_timeout(Some(Duration::from_secs(5)))
}

/// Whether an error says the server held is gone or is no longer the one needed.
fn means_another_server(err: &RedisError) -> bool {
    err.is_io_error()
        || err.is_connection_refusal()
        || err.is_connection_dropped()
        || err.is_timeout()
        || matches!(err.code(), Some("READONLY" | "MASTERDOWN" | "LOADING"))
}

impl Node {
    /// A node at one address.
    pub(super) async fn fixed(url: &str) -> Result<Node, StoreError> {
        let client = Client::open(url)?;
        let node = Node {
            locate: Locate::Fixed(client),
            found: Mutex::new(None),
            generation: 0.into(),
        };
        node.found().await?;
        Ok(node)
    }

    /// A node found through Redis Sentinel; fails if no sentinel can name a server now.
    pub(super) async fn sentinel(config: &SentinelConfig) -> Result<Node, StoreError> {
        if config.sentinels.is_empty() {
            return Err(StoreError::Protocol("no sentinel given".to_owned()));
        }
        let urls: Vec<String> = config
            .sentinels
            .iter()
            .map(|address| format!("redis://{address}"))
            .collect();
        let node = Node {
            locate: Locate::Sentinel {
                sentinel: tokio::sync::Mutex::new(Sentinel::build(urls)?),
                master: config.master.clone(),
                read_from: config.read_from,
            },
            found: Mutex::new(None),
            generation: 0.into(),
        };
        node.found().await?;
        Ok(node)
    }

    /// The shared connection to the server, found again first if the last one failed.
    pub(super) async fn conn(&self) -> Result<(ConnectionManager, u64), StoreError> {
        let found = self.found().await?;
        Ok((found.conn, found.generation))
    }

    /// A client for the server, for a connection of its own (the subscription).
    pub(super) async fn client(&self) -> Result<(Client, u64), StoreError> {
        let found = self.found().await?;
        Ok((found.client, found.generation))
    }

    /// The store's error for a command that failed on the server of `generation`; an error
    /// that means the server is gone or changed role makes the next command find the server
    /// again (with Sentinel; a fixed address is kept, and its connection reconnects by itself).
    pub(super) fn failed(&self, generation: u64, err: RedisError) -> StoreError {
        if means_another_server(&err) {
            self.forget(generation);
        }
        err.into()
    }

    /// Drops the server found at `generation`, if it is still the one held.
    pub(super) fn forget(&self, generation: u64) {
        if matches!(self.locate, Locate::Fixed(_)) {
            return;
        }
        let mut found = self.held();
        if found.as_ref().is_some_and(|f| f.generation == generation) {
            *found = None;
        }
    }

    /// The server found, if any (a poisoned lock still holds a usable value: a clone or a swap).
    fn held(&self) -> std::sync::MutexGuard<'_, Option<Found>> {
        self.found
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    async fn found(&self) -> Result<Found, StoreError> {
        if let Some(found) = self.held().clone() {
            return Ok(found);
        }
        let client = match &self.locate {
            Locate::Fixed(client) => client.clone(),
            Locate::Sentinel {
                sentinel,
                master,
                read_from,
            } => {
                // One resolution at a time: the others wait for it, then take what it found.
                let mut sentinel = sentinel.lock().await;
                if let Some(found) = self.held().clone() {
                    return Ok(found);
                }
                Node::ask(&mut sentinel, master, *read_from).await?
            }
        };
        let conn = ConnectionManager::new_with_config(client.clone(), manager_config()).await?;
        let generation = self
            .generation
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
            + 1;
        let found = Found {
            client,
            conn,
            generation,
        };
        *self.held() = Some(found.clone());
        Ok(found)
    }

    /// The sentinels' answer: the primary (which redis-rs checks with `ROLE`), or a replica in
    /// sync with it, or the primary when no replica is.
    async fn ask(
        sentinel: &mut Sentinel,
        master: &str,
        read_from: ReadFrom,
    ) -> Result<Client, StoreError> {
        let info = SentinelNodeConnectionInfo::default();
        if read_from == ReadFrom::Replica {
            match sentinel.async_replica_for(master, Some(&info)).await {
                Ok(client) if Node::in_sync(&client).await => {
                    tracing::info!(master, server = %client.get_connection_info().addr(), "redis: reading from a replica");
                    return Ok(client);
                }
                Ok(client) => {
                    tracing::warn!(master, server = %client.get_connection_info().addr(), "redis: the replica is not in sync with the primary, reading from the primary");
                }
                Err(err) => {
                    tracing::warn!(
                        master,
                        "redis: no replica to read from, reading from the primary: {err}"
                    );
                }
            }
        }
        let client = sentinel.async_master_for(master, Some(&info)).await?;
        tracing::info!(master, server = %client.get_connection_info().addr(), "redis: the primary");
        Ok(client)
    }

    /// Whether a replica is linked to its primary now. The sentinels also name a replica that
    /// is resynchronising, or one that just came back with the data it had as a primary, and
    /// such a replica serves what it holds: old data, and cursors no viewer was given.
    async fn in_sync(client: &Client) -> bool {
        let asked = async {
            let mut conn = client.get_multiplexed_async_connection().await?;
            redis::cmd("INFO")
                .arg("replication")
                .query_async::<String>(&mut conn)
                .await
        };
        match tokio::time::timeout(Duration::from_secs(2), asked).await {
            Ok(Ok(info)) => info
                .lines()
                .any(|line| line.trim() == "master_link_status:up"),
            _ => false,
        }
    }
}
