//! The Redis match store. Keys live under a configurable prefix, so several stores (tests, or
//! deployments) can share one server:
//!
//! - `{prefix}:epoch`: the store's lifetime; gone after a flush, which tells the projector to rebuild
//! - `{prefix}:match:{id}`: a hash of `run`, `seq` and `doc` (the [`StoredMatch`] JSON)
//! - `{prefix}:match:{id}:log`: a stream of the match's [`crate::Entry`]s, fields `k` (its kind)
//!   and `e` (its JSON)
//! - `{prefix}:feed`: a stream of every match's summaries, field `e`
//! - `{prefix}:games`: a hash of match id to its latest summary, for the games list
//! - `{prefix}:reflected`: per event-log partition, the offset the store reflects it through
//!   (field `{partition}`) and its count of marked writes (`{partition}:writes`), see
//!   [`crate::LogMark`]
//! - channel `{prefix}:live`: every new stream entry, with its topic, kind and cursor
//!
//! A write is one Lua script (one round trip, atomic): check the epoch and the expected
//! `(run, seq)`, write the state, XADD the entries and the summary, PUBLISH each.

mod node;

use std::sync::Arc;

use futures_util::StreamExt;
use redis::streams::StreamRangeReply;
use redis::{AsyncCommands, Script};
use serde::Deserialize;
use serde_json::value::RawValue;
use tokio::sync::{OnceCell, broadcast};

use crate::{
    Cursor, Kind, LOG_RETAINED, Live, LogRead, MatchStore, MatchSummary, MatchWrite, Published,
    Reflected, Snapshot, StoreError, StoredMatch, Topic, WriteOutcome, games_snapshot_json,
};

impl From<redis::RedisError> for StoreError {
    fn from(err: redis::RedisError) -> Self {
        StoreError::Unavailable {
            engine: "redis",
            message: err.to_string(),
        }
    }
}

/// The one write: checks the epoch and the match's `(run, seq)`, then writes the state, appends
/// the log entries and the feed summary and publishes each with its cursor, atomically
/// ([`MatchStore::write`]'s contract).
const WRITE_SCRIPT: &str = include_str!("write.lua");

/// Creates the epoch if there is none (`<Redis ms>-<pid>-<n>`) and answers the one there is.
const EPOCH_SCRIPT: &str = r"
local now = redis.call('TIME')
local fresh = now[1] .. string.format('%03d', math.floor(tonumber(now[2]) / 1000)) .. '-' .. ARGV[1]
local before = redis.call('SET', KEYS[1], fresh, 'NX', 'GET')
if before then return before end
return fresh
";

use node::Node;
pub use node::{ReadFrom, SentinelConfig};

/// Where the store lives: one server, or the servers Redis Sentinel watches.
#[derive(Debug, Clone)]
pub enum RedisServer {
    /// `redis://host:port[/db]`
    Url(String),
    Sentinel(SentinelConfig),
}

impl std::fmt::Display for RedisServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RedisServer::Url(url) => f.write_str(url),
            RedisServer::Sentinel(config) => write!(
                f,
                "{} through sentinels {} (reading from the {})",
                config.master,
                config.sentinels.join(","),
                match config.read_from {
                    ReadFrom::Primary => "primary",
                    ReadFrom::Replica => "replicas",
                }
            ),
        }
    }
}

#[derive(Debug, Clone)]
pub struct RedisConfig {
    pub server: RedisServer,
    /// Prefix of every key and channel.
    pub prefix: String,
}

pub struct RedisStore {
    node: Arc<Node>,
    prefix: String,
    write_script: Script,
    /// The replica's one subscription, started on the first `subscribe`.
    live: OnceCell<broadcast::Sender<Live>>,
}

impl RedisStore {
    pub async fn connect(config: RedisConfig) -> Result<RedisStore, StoreError> {
        let node = match &config.server {
            RedisServer::Url(url) => Node::fixed(url).await?,
            RedisServer::Sentinel(sentinel) => Node::sentinel(sentinel).await?,
        };
        Ok(RedisStore {
            node: Arc::new(node),
            prefix: config.prefix,
            write_script: Script::new(WRITE_SCRIPT),
            live: OnceCell::new(),
        })
    }

    fn key(&self, suffix: &str) -> String {
        format!("{}:{suffix}", self.prefix)
    }

    fn match_key(&self, match_id: u64) -> String {
        self.key(&format!("match:{match_id}"))
    }

    fn stream_key(&self, topic: Topic) -> String {
        match topic {
            Topic::Match(match_id) => self.key(&format!("match:{match_id}:log")),
            Topic::Feed => self.key("feed"),
        }
    }

    fn channel(&self) -> String {
        self.key("live")
    }

    /// Opens a subscription to the `live` channel on the server the node holds (the one reads
    /// go to); returns it, with that server's generation, once Redis has confirmed it.
    async fn open_live(
        node: &Node,
        channel: &str,
    ) -> Result<(redis::aio::PubSub, u64), StoreError> {
        let (client, generation) = node.client().await?;
        let subscribed = async {
            let mut pubsub = client.get_async_pubsub().await?;
            pubsub.subscribe(channel).await?;
            Ok::<_, redis::RedisError>(pubsub)
        };
        let pubsub = subscribed
            .await
            .map_err(|err| node.failed(generation, err))?;
        Ok((pubsub, generation))
    }

    /// Forwards the `live` channel into `sender`, resubscribing if the connection drops, and
    /// then saying so with [`Live::Interrupted`]: readers catch up from the streams.
    async fn forward_live(
        node: Arc<Node>,
        channel: String,
        (mut pubsub, mut generation): (redis::aio::PubSub, u64),
        sender: broadcast::Sender<Live>,
    ) {
        loop {
            let mut messages = pubsub.on_message();
            while let Some(message) = messages.next().await {
                match decode_live(message.get_payload_bytes()) {
                    Ok(published) => {
                        // No receiver is fine: nobody is watching right now.
                        let _ = sender.send(Live::Entry(published));
                    }
                    // Viewers catch up from the stream, which the message only announced.
                    Err(err) => {
                        tracing::warn!("a malformed message on {channel}: {err}");
                        let _ = sender.send(Live::Interrupted);
                    }
                }
            }
            drop(messages);
            tracing::warn!("the redis subscription to {channel} ended; resubscribing");
            // The server may be gone, or no longer a replica or the primary (Sentinel kills
            // the clients of a server it reconfigures): find it again.
            node.forget(generation);
            let mut attempts = 0u32;
            pubsub = loop {
                // Every half second, so that viewers are live again soon after Redis is; said
                // once, not every time.
                tokio::time::sleep(std::time::Duration::from_millis(500)).await;
                attempts += 1;
                match RedisStore::open_live(&node, &channel).await {
                    Ok((opened, on)) => {
                        tracing::info!("resubscribed to {channel} (attempt {attempts})");
                        generation = on;
                        let _ = sender.send(Live::Interrupted);
                        break opened;
                    }
                    Err(err) if attempts == 1 => {
                        tracing::warn!(
                            "cannot resubscribe to {channel} yet, trying every 0.5 s: {err}"
                        );
                    }
                    Err(err) => tracing::debug!("cannot resubscribe to {channel}: {err}"),
                }
            };
        }
    }
}

/// What the write script publishes for each entry (see `write.lua`); a feed entry has no kind.
#[derive(Deserialize)]
struct LiveMessage<'a> {
    topic: Topic,
    #[serde(default)]
    kind: Option<Kind>,
    cursor: Cursor,
    #[serde(borrow)]
    data: &'a RawValue,
}

fn decode_live(payload: &[u8]) -> Result<Published, String> {
    let message: LiveMessage = serde_json::from_slice(payload).map_err(|err| err.to_string())?;
    let json = Arc::from(message.data.get());
    Published::stored(message.topic, message.cursor, message.kind, json)
        .map_err(|err| err.to_string())
}

fn parse_summaries(games: Vec<(u64, String)>) -> Result<Vec<MatchSummary>, StoreError> {
    games
        .into_iter()
        .map(|(match_id, summary)| {
            serde_json::from_str::<MatchSummary>(&summary)
                .map_err(|source| StoreError::Corrupt { match_id, source })
        })
        .collect()
}

fn protocol(what: impl Into<String>) -> StoreError {
    StoreError::Protocol(what.into())
}

/// A stream's entries: field `e` the JSON, `k` its kind (absent in the feed, and in entries
/// written before writers named kinds). One that is not ours (no `e`, an id or a kind we do
/// not know) is corrupt data, said as such rather than skipped: a viewer would miss it.
fn entries_of(topic: Topic, reply: StreamRangeReply) -> Result<Vec<Published>, StoreError> {
    reply
        .ids
        .into_iter()
        .map(|entry| {
            let json: String = entry
                .get("e")
                .ok_or_else(|| protocol(format!("{topic} entry {} has no e field", entry.id)))?;
            let cursor = entry
                .id
                .parse()
                .map_err(|err| protocol(format!("{topic}: {err}")))?;
            let kind = entry
                .get::<String>("k")
                .map(|kind| kind.parse::<Kind>())
                .transpose()
                .map_err(|err| protocol(format!("{topic} entry {}: {err}", entry.id)))?;
            Published::stored(topic, cursor, kind, Arc::from(json))
                .map_err(|err| protocol(format!("{topic} entry {}: {err}", entry.id)))
        })
        .collect()
}

/// The cursor of the one entry a `COUNT 1` range answered, if any.
fn cursor_of(reply: &StreamRangeReply) -> Result<Option<Cursor>, StoreError> {
    reply
        .ids
        .first()
        .map(|entry| entry.id.parse().map_err(|err| protocol(format!("{err}"))))
        .transpose()
}

#[async_trait::async_trait]
impl MatchStore for RedisStore {
    async fn epoch(&self) -> Result<String, StoreError> {
        let key = self.key("epoch");
        let (mut conn, on) = self.node.conn().await?;
        // Unique across processes (pid) and within one (a counter), whatever the clock does.
        static MADE: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let made = MADE.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        // One script: sets the epoch if there is none and answers the one there is, so a
        // `clear` in between cannot leave us reading a key that just vanished. A new epoch
        // begins with Redis's own clock in milliseconds, the clock of the stream ids: a cursor
        // at or before it is from an earlier lifetime of the store (`read_after`).
        let epoch: String = redis::Script::new(EPOCH_SCRIPT)
            .key(&key)
            .arg(format!("{}-{made}", std::process::id()))
            .invoke_async(&mut conn)
            .await
            .map_err(|err| self.node.failed(on, err))?;
        Ok(epoch)
    }

    async fn load(&self, match_id: u64) -> Result<Option<StoredMatch>, StoreError> {
        let (mut conn, on) = self.node.conn().await?;
        let doc: Option<String> = conn
            .hget(self.match_key(match_id), "doc")
            .await
            .map_err(|err| self.node.failed(on, err))?;
        doc.map(|doc| {
            serde_json::from_str(&doc).map_err(|source| StoreError::Corrupt { match_id, source })
        })
        .transpose()
    }

    async fn write(&self, epoch: &str, write: &MatchWrite) -> Result<WriteOutcome, StoreError> {
        let match_id = write.match_id();
        let doc = serde_json::to_string(&write.stored)
            .map_err(|source| StoreError::Corrupt { match_id, source })?;
        let (expected_run, expected_seq) = write
            .expected
            .map_or((String::new(), String::new()), |(run, seq)| {
                (run.to_string(), seq.to_string())
            });
        let mut invocation = self.write_script.prepare_invoke();
        invocation
            .key(self.key("epoch"))
            .key(self.match_key(match_id))
            .key(self.stream_key(Topic::Match(match_id)))
            .key(self.stream_key(Topic::Feed))
            .key(self.key("games"))
            .key(self.key("reflected"))
            .arg(epoch)
            .arg(expected_run)
            .arg(expected_seq)
            .arg(write.stored.run)
            .arg(write.stored.seq)
            .arg(doc)
            .arg(match_id)
            .arg(write.summary_json().unwrap_or_default())
            .arg(LOG_RETAINED)
            .arg(self.channel());
        match write.mark {
            Some(mark) => invocation
                .arg(mark.partition)
                .arg(mark.through)
                .arg(mark.writes_before),
            None => invocation.arg("").arg("").arg(""),
        };
        for entry in &write.entries {
            invocation.arg(entry.kind.as_str()).arg(&entry.json);
        }
        let (mut conn, on) = self.node.conn().await?;
        let reply: Vec<String> = invocation
            .invoke_async(&mut conn)
            .await
            .map_err(|err| self.node.failed(on, err))?;
        match reply.first().map(String::as_str) {
            Some("OK") => Ok(WriteOutcome::Written {
                cursors: reply[1..]
                    .iter()
                    .map(|id| id.parse().map_err(|err| protocol(format!("XADD: {err}"))))
                    .collect::<Result<_, _>>()?,
            }),
            Some("CONFLICT") => Ok(WriteOutcome::Conflict),
            Some("EPOCH") => Ok(WriteOutcome::EpochChanged),
            Some("BEHIND") => {
                let field = |at: usize| {
                    reply
                        .get(at)
                        .ok_or_else(|| protocol("BEHIND without the store's mark"))
                };
                let through = field(1)?.parse();
                let writes = field(2)?.parse();
                match (through, writes) {
                    (Ok(through), Ok(writes)) => Ok(WriteOutcome::Behind {
                        reflected: Reflected { through, writes },
                    }),
                    _ => Err(protocol(format!(
                        "BEHIND with a mark not a number: {reply:?}"
                    ))),
                }
            }
            other => Err(protocol(format!("write script answered {other:?}"))),
        }
    }

    async fn reflected(&self, partitions: &[i32]) -> Result<Vec<Reflected>, StoreError> {
        if partitions.is_empty() {
            return Ok(Vec::new());
        }
        let (mut conn, on) = self.node.conn().await?;
        let mut fields = redis::cmd("HMGET");
        fields.arg(self.key("reflected"));
        for partition in partitions {
            fields.arg(partition).arg(format!("{partition}:writes"));
        }
        let held: Vec<Option<i64>> = fields
            .query_async(&mut conn)
            .await
            .map_err(|err| self.node.failed(on, err))?;
        Ok(held
            .chunks(2)
            .map(|pair| Reflected {
                through: pair.first().copied().flatten().unwrap_or(-1),
                writes: pair
                    .get(1)
                    .copied()
                    .flatten()
                    .map_or(0, |writes| writes.max(0) as u64),
            })
            .collect())
    }

    async fn list(&self) -> Result<Vec<MatchSummary>, StoreError> {
        let (mut conn, on) = self.node.conn().await?;
        let games: Vec<(u64, String)> = conn
            .hgetall(self.key("games"))
            .await
            .map_err(|err| self.node.failed(on, err))?;
        let mut list = parse_summaries(games)?;
        crate::most_recent_first(&mut list);
        Ok(list)
    }

    async fn read_after(
        &self,
        topic: Topic,
        cursor: Option<Cursor>,
        limit: usize,
    ) -> Result<LogRead, StoreError> {
        let key = self.stream_key(topic);
        let (mut conn, on) = self.node.conn().await?;
        // One more than the limit: whether there are more than that is all it needs to know.
        let count = limit.saturating_add(1).min(i64::MAX as usize);
        let at_most = |reply: StreamRangeReply| -> Result<LogRead, StoreError> {
            if reply.ids.len() > limit {
                return Ok(LogRead::TooMany);
            }
            Ok(LogRead::After(entries_of(topic, reply)?))
        };
        let Some(after) = cursor else {
            let all: StreamRangeReply = conn
                .xrange_count(&key, "-", "+", count)
                .await
                .map_err(|err| self.node.failed(on, err))?;
            return at_most(all);
        };
        let (first, last, rest, epoch): (
            StreamRangeReply,
            StreamRangeReply,
            StreamRangeReply,
            Option<String>,
        ) = redis::pipe()
            .cmd("XRANGE")
            .arg(&key)
            .arg("-")
            .arg("+")
            .arg("COUNT")
            .arg(1)
            .cmd("XREVRANGE")
            .arg(&key)
            .arg("+")
            .arg("-")
            .arg("COUNT")
            .arg(1)
            .cmd("XRANGE")
            .arg(&key)
            .arg(format!("({after}"))
            .arg("+")
            .arg("COUNT")
            .arg(count)
            .cmd("GET")
            .arg(self.key("epoch"))
            .query_async(&mut conn)
            .await
            .map_err(|err| self.node.failed(on, err))?;
        match (cursor_of(&first)?, cursor_of(&last)?) {
            (Some(first), Some(last)) if after >= first && after <= last => at_most(rest),
            // Outside the retained range: from before the store lost its data (at or before
            // the epoch's first millisecond), trimmed, or never handed out.
            _ => match epoch.as_deref().and_then(crate::epoch_began_ms) {
                Some(began) if after.ms <= began => Ok(LogRead::Rebuilt),
                _ => Ok(LogRead::Unknown),
            },
        }
    }

    async fn snapshot(&self, topic: Topic) -> Result<Option<Snapshot>, StoreError> {
        let (mut conn, on) = self.node.conn().await?;
        let stream = self.stream_key(topic);
        // MULTI/EXEC: the state and the stream's last id are read as of the same write.
        let mut pipe = redis::pipe();
        pipe.atomic();
        match topic {
            Topic::Match(match_id) => pipe.hget(self.match_key(match_id), "doc"),
            Topic::Feed => pipe.hgetall(self.key("games")),
        };
        pipe.cmd("XREVRANGE")
            .arg(&stream)
            .arg("+")
            .arg("-")
            .arg("COUNT")
            .arg(1);
        match topic {
            Topic::Match(match_id) => {
                let (doc, last): (Option<String>, StreamRangeReply) = pipe
                    .query_async(&mut conn)
                    .await
                    .map_err(|err| self.node.failed(on, err))?;
                let Some(doc) = doc else { return Ok(None) };
                let stored: StoredMatch = serde_json::from_str(&doc)
                    .map_err(|source| StoreError::Corrupt { match_id, source })?;
                Ok(Some(Snapshot {
                    cursor: cursor_of(&last)?,
                    json: crate::match_snapshot_json(&stored),
                }))
            }
            Topic::Feed => {
                let (games, last): (Vec<(u64, String)>, StreamRangeReply) = pipe
                    .query_async(&mut conn)
                    .await
                    .map_err(|err| self.node.failed(on, err))?;
                let mut list = parse_summaries(games)?;
                crate::most_recent_first(&mut list);
                Ok(Some(Snapshot {
                    cursor: cursor_of(&last)?,
                    json: games_snapshot_json(&list),
                }))
            }
        }
    }

    async fn subscribe(&self) -> Result<broadcast::Receiver<Live>, StoreError> {
        let sender = self
            .live
            .get_or_try_init(|| async {
                let opened = RedisStore::open_live(&self.node, &self.channel()).await?;
                let (sender, _) = broadcast::channel(4096);
                tokio::spawn(RedisStore::forward_live(
                    Arc::clone(&self.node),
                    self.channel(),
                    opened,
                    sender.clone(),
                ));
                Ok::<_, StoreError>(sender)
            })
            .await?;
        Ok(sender.subscribe())
    }

    async fn add_presence(
        &self,
        window: u64,
        counts: &[(String, u64)],
        ttl: std::time::Duration,
    ) -> Result<(), StoreError> {
        let key = self.key(&format!("presence:{window}"));
        let mut pipe = redis::pipe();
        for (field, count) in counts.iter().filter(|(_, count)| *count > 0) {
            pipe.cmd("HINCRBY")
                .arg(&key)
                .arg(field)
                .arg(*count)
                .ignore();
        }
        // Even with nobody watching: the window exists, and expires.
        pipe.cmd("HINCRBY")
            .arg(&key)
            .arg(crate::presence::SITE)
            .arg(0)
            .ignore();
        pipe.cmd("PEXPIRE")
            .arg(&key)
            .arg(u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1))
            .ignore();
        let (mut conn, on) = self.node.conn().await?;
        pipe.query_async::<()>(&mut conn)
            .await
            .map_err(|err| self.node.failed(on, err))
    }

    async fn presence(
        &self,
        window: u64,
    ) -> Result<std::collections::HashMap<String, u64>, StoreError> {
        let (mut conn, on) = self.node.conn().await?;
        conn.hgetall(self.key(&format!("presence:{window}")))
            .await
            .map_err(|err| self.node.failed(on, err))
    }

    async fn ping(&self) -> Result<(), StoreError> {
        let (mut conn, on) = self.node.conn().await?;
        let _: String = redis::cmd("PING")
            .query_async(&mut conn)
            .await
            .map_err(|err| self.node.failed(on, err))?;
        Ok(())
    }

    async fn clear(&self) -> Result<(), StoreError> {
        let (mut conn, on) = self.node.conn().await?;
        let pattern = format!("{}:*", self.prefix);
        let keys: Vec<String> = {
            let mut iter = conn
                .scan_match::<_, String>(&pattern)
                .await
                .map_err(|err| self.node.failed(on, err))?;
            let mut keys = Vec::new();
            while let Some(key) = iter.next_item().await {
                keys.push(key.map_err(|err| self.node.failed(on, err))?);
            }
            keys
        };
        for chunk in keys.chunks(500) {
            let _: () = redis::cmd("UNLINK")
                .arg(chunk)
                .query_async(&mut conn)
                .await
                .map_err(|err| self.node.failed(on, err))?;
        }
        Ok(())
    }
}
