//! The in-process match store: the same behaviour as the Redis store, in one process's memory.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::broadcast;

use crate::{
    Cursor, Kind, LOG_RETAINED, Live, LogRead, MatchStore, MatchSummary, MatchWrite, Published,
    Reflected, Snapshot, StoreError, StoredMatch, Topic, WriteOutcome, games_snapshot_json,
};

/// A cheap handle: clones share the same store.
#[derive(Clone)]
pub struct MemoryStore {
    shared: Arc<Shared>,
}

struct Shared {
    state: Mutex<StoreState>,
    live: broadcast::Sender<Live>,
}

#[derive(Default, Clone)]
struct StoreState {
    epoch: Option<String>,
    epochs_made: u64,
    /// The last stream id handed out when the epoch began: cursors up to it are from before.
    epoch_began: u64,
    matches: HashMap<u64, StoredMatch>,
    summaries: HashMap<u64, MatchSummary>,
    logs: HashMap<Topic, VecDeque<Published>>,
    /// The last stream id handed out, as in Redis: ids only grow.
    last_id: u64,
    /// Per partition of the event log, how far it is reflected.
    reflected: HashMap<i32, Reflected>,
    /// Presence windows: the summed counts, and when each window is forgotten.
    presence: HashMap<u64, (HashMap<String, u64>, std::time::Instant)>,
}

/// A [`MemoryStore`] as it stood: see [`MemoryStore::checkpoint`].
pub struct Checkpoint(StoreState);

impl Default for MemoryStore {
    fn default() -> Self {
        MemoryStore::new()
    }
}

impl MemoryStore {
    pub fn new() -> MemoryStore {
        let (live, _) = broadcast::channel(4096);
        MemoryStore {
            shared: Arc::new(Shared {
                state: Mutex::new(StoreState::default()),
                live,
            }),
        }
    }

    /// The store as it stands, for [`MemoryStore::restore`].
    pub fn checkpoint(&self) -> Checkpoint {
        Checkpoint(self.lock().clone())
    }

    /// Goes back to `checkpoint`, losing every write since, as a Redis restored from an older
    /// snapshot does (stream ids still only grow, as Redis's time-based ids do): for tests of a
    /// store that lost its last writes.
    pub fn restore(&self, checkpoint: Checkpoint) {
        let mut state = self.lock();
        let last_id = state.last_id;
        *state = checkpoint.0;
        state.last_id = last_id;
    }

    fn lock(&self) -> MutexGuard<'_, StoreState> {
        self.shared
            .state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl StoreState {
    fn reflected_of(&self, partition: i32) -> Reflected {
        self.reflected
            .get(&partition)
            .copied()
            .unwrap_or(Reflected::NONE)
    }

    fn append(&mut self, topic: Topic, kind: Kind, json: &str) -> Published {
        self.last_id += 1;
        let entry = Published {
            topic,
            cursor: Cursor::new(self.last_id, 0),
            kind,
            json: Arc::from(json),
        };
        let log = self.logs.entry(topic).or_default();
        log.push_back(entry.clone());
        if log.len() > LOG_RETAINED {
            log.pop_front();
        }
        entry
    }
}

#[async_trait::async_trait]
impl MatchStore for MemoryStore {
    async fn epoch(&self) -> Result<String, StoreError> {
        let mut state = self.lock();
        if state.epoch.is_none() {
            state.epochs_made += 1;
            state.epoch = Some(format!("{}-memory-{}", crate::now_ms(), state.epochs_made));
            state.epoch_began = state.last_id;
        }
        Ok(state.epoch.clone().unwrap_or_default())
    }

    async fn load(&self, match_id: u64) -> Result<Option<StoredMatch>, StoreError> {
        Ok(self.lock().matches.get(&match_id).cloned())
    }

    async fn write(&self, epoch: &str, write: &MatchWrite) -> Result<WriteOutcome, StoreError> {
        let match_id = write.match_id();
        let mut published = Vec::new();
        {
            let mut state = self.lock();
            if state.epoch.as_deref() != Some(epoch) {
                return Ok(WriteOutcome::EpochChanged);
            }
            if let Some(mark) = write.mark {
                let held = state.reflected_of(mark.partition);
                if held.writes != mark.writes_before {
                    return Ok(WriteOutcome::Behind { reflected: held });
                }
            }
            let current = state.matches.get(&match_id).map(StoredMatch::position);
            if current != write.expected {
                return Ok(WriteOutcome::Conflict);
            }
            if let Some(mark) = write.mark {
                let held = state
                    .reflected
                    .entry(mark.partition)
                    .or_insert(Reflected::NONE);
                held.through = held.through.max(mark.through);
                held.writes += 1;
            }
            state.matches.insert(match_id, write.stored.clone());
            for entry in &write.entries {
                published.push(state.append(Topic::Match(match_id), entry.kind, &entry.json));
            }
            if let (Some(summary), Some(json)) = (&write.summary, write.summary_json()) {
                state.summaries.insert(match_id, summary.clone());
                let feed = state.append(Topic::Feed, Kind::Game, &json);
                published.push(feed);
            }
        }
        let cursors = published
            .iter()
            .filter(|p| p.topic != Topic::Feed)
            .map(|p| p.cursor)
            .collect();
        for entry in published {
            // No subscriber is fine: nobody is watching.
            let _ = self.shared.live.send(Live::Entry(entry));
        }
        Ok(WriteOutcome::Written { cursors })
    }

    async fn reflected(&self, partitions: &[i32]) -> Result<Vec<Reflected>, StoreError> {
        let state = self.lock();
        Ok(partitions
            .iter()
            .map(|partition| state.reflected_of(*partition))
            .collect())
    }

    async fn list(&self) -> Result<Vec<MatchSummary>, StoreError> {
        let mut list: Vec<MatchSummary> = self.lock().summaries.values().cloned().collect();
        crate::most_recent_first(&mut list);
        Ok(list)
    }

    async fn read_after(
        &self,
        topic: Topic,
        cursor: Option<Cursor>,
        limit: usize,
    ) -> Result<LogRead, StoreError> {
        let state = self.lock();
        let unknown = |after: Cursor| {
            if state.epoch.is_some() && after.ms <= state.epoch_began {
                LogRead::Rebuilt
            } else {
                LogRead::Unknown
            }
        };
        let Some(log) = state.logs.get(&topic) else {
            return Ok(match cursor {
                None => LogRead::After(Vec::new()),
                Some(after) => unknown(after),
            });
        };
        let Some(after) = cursor else {
            return Ok(at_most(log.iter().cloned().collect(), limit));
        };
        let retained = |p: &Published| p.cursor;
        let (Some(first), Some(last)) = (log.front(), log.back()) else {
            return Ok(unknown(after));
        };
        // Outside the retained range: from before the store lost its data, trimmed, or never
        // handed out.
        if after < retained(first) || after > retained(last) {
            return Ok(unknown(after));
        }
        let rest = log.iter().filter(|p| retained(p) > after);
        Ok(at_most(
            rest.take(limit.saturating_add(1)).cloned().collect(),
            limit,
        ))
    }

    async fn snapshot(&self, topic: Topic) -> Result<Option<Snapshot>, StoreError> {
        let state = self.lock();
        let cursor = state
            .logs
            .get(&topic)
            .and_then(|log| log.back())
            .map(|last| last.cursor);
        let json = match topic {
            Topic::Match(match_id) => match state.matches.get(&match_id) {
                Some(stored) => crate::match_snapshot_json(stored),
                None => return Ok(None),
            },
            Topic::Feed => {
                let mut games: Vec<MatchSummary> = state.summaries.values().cloned().collect();
                crate::most_recent_first(&mut games);
                games_snapshot_json(&games)
            }
        };
        Ok(Some(Snapshot { cursor, json }))
    }

    async fn subscribe(&self) -> Result<broadcast::Receiver<Live>, StoreError> {
        Ok(self.shared.live.subscribe())
    }

    async fn add_presence(
        &self,
        window: u64,
        counts: &[(String, u64)],
        ttl: std::time::Duration,
    ) -> Result<(), StoreError> {
        let now = std::time::Instant::now();
        let mut state = self.lock();
        state.presence.retain(|_, (_, expires)| *expires > now);
        let (sums, expires) = state
            .presence
            .entry(window)
            .or_insert_with(|| (HashMap::new(), now));
        *expires = now + ttl;
        sums.entry(crate::presence::SITE.to_owned()).or_insert(0);
        for (field, count) in counts.iter().filter(|(_, count)| *count > 0) {
            *sums.entry(field.clone()).or_insert(0) += count;
        }
        Ok(())
    }

    async fn presence(&self, window: u64) -> Result<HashMap<String, u64>, StoreError> {
        let now = std::time::Instant::now();
        let state = self.lock();
        Ok(state
            .presence
            .get(&window)
            .filter(|(_, expires)| *expires > now)
            .map(|(sums, _)| sums.clone())
            .unwrap_or_default())
    }

    async fn ping(&self) -> Result<(), StoreError> {
        Ok(())
    }

    async fn clear(&self) -> Result<(), StoreError> {
        let mut state = self.lock();
        let made = state.epochs_made;
        let last_id = state.last_id;
        *state = StoreState {
            epochs_made: made,
            last_id,
            ..StoreState::default()
        };
        Ok(())
    }
}

/// `entries`, if there are at most `limit` of them.
fn at_most(entries: Vec<Published>, limit: usize) -> LogRead {
    if entries.len() > limit {
        LogRead::TooMany
    } else {
        LogRead::After(entries)
    }
}
