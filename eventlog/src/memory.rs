//! The in-process event log: partitions in memory, keyed by match id, with consumer groups and
//! committed offsets, so it behaves as the Kafka log does for one process.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::Notify;

use crate::{Delivery, Envelope, EventLog, LogConsumer, LogError, LogRecord, last_offsets};

/// A cheap handle: clones share the same log.
#[derive(Clone)]
pub struct MemoryLog {
    shared: Arc<Shared>,
}

struct Shared {
    state: Mutex<LogState>,
    /// Woken on every append, for consumers waiting on an empty log.
    appended: Notify,
}

struct LogState {
    partitions: Vec<Vec<LogRecord>>,
    /// Per group, the next offset of each partition.
    committed: HashMap<String, Vec<i64>>,
    dead_letters: Vec<(LogRecord, String)>,
}

impl MemoryLog {
    pub fn new(partitions: usize) -> MemoryLog {
        let partitions = partitions.max(1);
        MemoryLog {
            shared: Arc::new(Shared {
                state: Mutex::new(LogState {
                    partitions: vec![Vec::new(); partitions],
                    committed: HashMap::new(),
                    dead_letters: Vec::new(),
                }),
                appended: Notify::new(),
            }),
        }
    }

    /// Appends raw bytes, as a foreign producer could: for tests of undecodable records.
    pub fn append_raw(&self, key: &[u8], payload: Vec<u8>) {
        let mut state = self.lock();
        let partition = partition_of(key, state.partitions.len());
        let records = &mut state.partitions[partition];
        let offset = records.len() as i64;
        records.push(LogRecord {
            partition: partition as i32,
            offset,
            key: Some(key.to_vec()),
            payload,
        });
        drop(state);
        self.shared.appended.notify_waiters();
    }

    /// The records set aside as undecodable, with their reasons.
    pub fn dead_letters(&self) -> Vec<(LogRecord, String)> {
        self.lock().dead_letters.clone()
    }

    /// Every record of the log, partition by partition.
    pub fn records(&self) -> Vec<LogRecord> {
        self.lock().partitions.iter().flatten().cloned().collect()
    }

    fn lock(&self) -> MutexGuard<'_, LogState> {
        // A panic while holding this lock leaves plain data behind; carry on with it.
        self.shared
            .state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// The same key always goes to the same partition (FNV-1a: stable across runs and platforms).
fn partition_of(key: &[u8], partitions: usize) -> usize {
    let hash = key.iter().fold(0xcbf2_9ce4_8422_2325_u64, |hash, byte| {
        (hash ^ u64::from(*byte)).wrapping_mul(0x0100_0000_01b3)
    });
    (hash % partitions as u64) as usize
}

#[async_trait::async_trait]
impl EventLog for MemoryLog {
    fn send(&self, envelope: &Envelope) -> Result<Delivery, LogError> {
        self.append_raw(envelope.key().as_bytes(), envelope.to_json());
        Ok(Box::pin(async { Ok(()) }))
    }

    async fn consumer(&self, group: &str) -> Result<Box<dyn LogConsumer>, LogError> {
        let positions = {
            let mut state = self.lock();
            let partitions = state.partitions.len();
            state
                .committed
                .entry(group.to_owned())
                .or_insert_with(|| vec![0; partitions])
                .clone()
        };
        Ok(Box::new(MemoryConsumer {
            log: self.clone(),
            group: group.to_owned(),
            positions,
            reread: HashMap::new(),
        }))
    }

    async fn dead_letter(&self, record: &LogRecord, reason: &str) -> Result<(), LogError> {
        self.lock()
            .dead_letters
            .push((record.clone(), reason.to_owned()));
        Ok(())
    }

    async fn read_to_end(&self) -> Result<Vec<LogRecord>, LogError> {
        Ok(self.records())
    }
}

struct MemoryConsumer {
    log: MemoryLog,
    group: String,
    /// The next offset to read, per partition.
    positions: Vec<i64>,
    /// Partitions read again from an offset before their commit (`reread_from`), until the
    /// next commit: where `reread_uncommitted` starts them.
    reread: HashMap<i32, i64>,
}

impl MemoryConsumer {
    fn unread(&self) -> Vec<(i32, i64)> {
        let state = self.log.lock();
        state
            .partitions
            .iter()
            .zip(&self.positions)
            .enumerate()
            .map(|(partition, (records, read))| (partition as i32, records.len() as i64 - read))
            .collect()
    }

    fn take_ready(&mut self, max: usize) -> Vec<LogRecord> {
        let state = self.log.lock();
        let mut batch = Vec::new();
        for (partition, records) in state.partitions.iter().enumerate() {
            let from = self.positions[partition] as usize;
            let take = records.len().saturating_sub(from).min(max - batch.len());
            batch.extend_from_slice(&records[from..from + take]);
            self.positions[partition] += take as i64;
            if batch.len() == max {
                break;
            }
        }
        batch
    }
}

#[async_trait::async_trait]
impl LogConsumer for MemoryConsumer {
    fn lag(&self) -> Vec<(i32, i64)> {
        self.unread()
    }

    async fn next_batch(&mut self, max: usize) -> Result<Vec<LogRecord>, LogError> {
        let max = max.max(1);
        loop {
            // Register for the wake-up before looking, so an append in between is not missed.
            let shared = Arc::clone(&self.log.shared);
            let appended = shared.appended.notified();
            tokio::pin!(appended);
            appended.as_mut().enable();
            let batch = self.take_ready(max);
            if !batch.is_empty() {
                return Ok(batch);
            }
            appended.await;
        }
    }

    fn commit(&mut self, records: &[LogRecord]) -> Result<(), LogError> {
        let mut state = self.log.lock();
        let partitions = state.partitions.len();
        let committed = state
            .committed
            .entry(self.group.clone())
            .or_insert_with(|| vec![0; partitions]);
        for (partition, last) in last_offsets(records) {
            if let Some(slot) = committed.get_mut(partition as usize) {
                *slot = last + 1;
            }
            self.reread.remove(&partition);
        }
        Ok(())
    }

    async fn rewind(&mut self) -> Result<(), LogError> {
        self.positions.iter_mut().for_each(|p| *p = 0);
        self.reread.clear();
        // The group's commits go back too: stopped during a rebuild, it resumes the rebuild.
        if let Some(committed) = self.log.lock().committed.get_mut(&self.group) {
            committed.iter_mut().for_each(|c| *c = 0);
        }
        Ok(())
    }

    async fn reread_from(&mut self, partition: i32, offset: i64) -> Result<(), LogError> {
        if let Some(position) = usize::try_from(partition)
            .ok()
            .and_then(|partition| self.positions.get_mut(partition))
        {
            *position = offset.max(0);
        }
        let floor = self.reread.entry(partition).or_insert(offset.max(0));
        *floor = (*floor).min(offset.max(0));
        Ok(())
    }

    async fn reread_uncommitted(&mut self) -> Result<(), LogError> {
        let state = self.log.lock();
        if let Some(committed) = state.committed.get(&self.group) {
            self.positions.clone_from(committed);
        }
        for (&partition, &floor) in &self.reread {
            if let Some(position) = self.positions.get_mut(partition as usize) {
                *position = (*position).min(floor);
            }
        }
        Ok(())
    }
}
