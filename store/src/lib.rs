//! The match store: the seam between the projector, its only writer, and the API replicas, which
//! read and subscribe. Two implementations with the same behaviour: [`redis::RedisStore`] and
//! [`memory::MemoryStore`] (in-process, for `livescore up` with nothing else installed, and tests).
//!
//! The contract both keep:
//! - [`MatchStore::write`] is atomic: it checks the store's epoch and the match's `(run, seq)`,
//!   writes the state, appends the log entries and the feed summary, and publishes each entry
//!   with its cursor, or does none of it;
//! - a match's log and the feed are streams whose entry ids are the clients' resume cursors;
//! - the epoch names the store's lifetime: if the store loses its data, the epoch changes and the
//!   projector rebuilds it from the event log; an epoch begins with the Unix milliseconds it
//!   began at ([`epoch_began_ms`]), and a cursor from before it reads as [`LogRead::Rebuilt`];
//! - per partition of the event log, the store keeps the offset it reflects ([`LogMark`]): if it
//!   loses only its last writes, the projector reads them again from there.

pub mod memory;
pub mod model;
pub mod presence;
pub mod redis;

pub use livescore_wire::{Cursor, Kind, Topic};
pub use model::{
    EncodedEntry, Entry, Live, LogMark, LogRead, MatchSummary, MatchWrite, Published, Reflected,
    ReplayInfo, Snapshot, StoredMatch, WriteOutcome, games_snapshot_json,
};
use tokio::sync::broadcast;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The store did not answer, or refused (the engine's own error, as text: the seam
    /// carries no Redis type).
    #[error("{engine}: {message}")]
    Unavailable {
        engine: &'static str,
        message: String,
    },
    #[error("stored data for match {match_id} is not valid: {source}")]
    Corrupt {
        match_id: u64,
        source: serde_json::Error,
    },
    #[error("unexpected answer from the store: {0}")]
    Protocol(String),
}

/// How many entries a match's log keeps (a whole match has about 200) and the feed keeps.
pub const LOG_RETAINED: usize = 10_000;

#[async_trait::async_trait]
pub trait MatchStore: Send + Sync + 'static {
    /// The store's epoch, created if there is none yet.
    async fn epoch(&self) -> Result<String, StoreError>;

    /// A match as last written.
    async fn load(&self, match_id: u64) -> Result<Option<StoredMatch>, StoreError>;

    /// Applies one projector step atomically, if the epoch and the expected `(run, seq)` hold.
    async fn write(&self, epoch: &str, write: &MatchWrite) -> Result<WriteOutcome, StoreError>;

    /// How far the store reflects each partition of the event log (see [`LogMark`]);
    /// [`Reflected::NONE`] for a partition no write has marked.
    async fn reflected(&self, partitions: &[i32]) -> Result<Vec<Reflected>, StoreError>;

    /// Every match's summary, most recently changed first.
    async fn list(&self) -> Result<Vec<MatchSummary>, StoreError>;

    /// The entries of `topic` after `cursor` (all retained entries when `cursor` is `None`), if
    /// there are at most `limit`: a reader that far behind is better served by a snapshot.
    async fn read_after(
        &self,
        topic: Topic,
        cursor: Option<Cursor>,
        limit: usize,
    ) -> Result<LogRead, StoreError>;

    /// The topic as it stands and the cursor it reflects, read atomically; `None` for a match
    /// the store does not hold.
    async fn snapshot(&self, topic: Topic) -> Result<Option<Snapshot>, StoreError>;

    /// Live entries of every topic, as they are written.
    async fn subscribe(&self) -> Result<broadcast::Receiver<Live>, StoreError>;

    /// Adds one API replica's viewer counts (`site`, `games`, `game:<id>`: see
    /// [`presence`]) to the presence window `window`, which the store forgets after `ttl`.
    /// Every replica adds its own each window; a replica that stops (killed, say) is simply
    /// absent from the next window.
    async fn add_presence(
        &self,
        window: u64,
        counts: &[(String, u64)],
        ttl: std::time::Duration,
    ) -> Result<(), StoreError>;

    /// Every replica's counts added to `window`, summed per field (empty if none, or
    /// forgotten).
    async fn presence(
        &self,
        window: u64,
    ) -> Result<std::collections::HashMap<String, u64>, StoreError>;

    /// Deletes everything, epoch included: the projector will rebuild from the event log.
    async fn clear(&self) -> Result<(), StoreError>;

    /// Answers when the store does (Redis: PING).
    async fn ping(&self) -> Result<(), StoreError>;
}

/// Unix milliseconds now, for `updated_at_ms` (display only: never used for ordering).
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_millis() as u64)
}

/// When an epoch began, in Unix milliseconds: its first part (both stores write epochs as
/// `<ms>-...`; Redis's with its own clock). `None` for an epoch of another form.
pub fn epoch_began_ms(epoch: &str) -> Option<u64> {
    epoch.split('-').next()?.parse().ok()
}

/// A match's snapshot entry.
pub(crate) fn match_snapshot_json(stored: &StoredMatch) -> String {
    Entry::Snapshot {
        state: Box::new(stored.fold.state.clone()),
        replay: stored.replay,
    }
    .to_json()
}

/// Orders a games list as the API shows it: most recently changed first.
pub(crate) fn most_recent_first(list: &mut [MatchSummary]) {
    list.sort_by_key(|summary| std::cmp::Reverse((summary.updated_at_ms, summary.match_id)));
}
