//! The projector: consumes the event log, folds each match with the domain, and writes the match
//! store. It is the store's only writer.
//!
//! Exactly-once in effect: offsets are committed only after the store write, and a record the
//! store already reflects (its `(run, seq)` is not newer) is skipped, so a crash and redelivery
//! change nothing. A record whose `seq` skips ahead means the log delivered a match's records
//! with some missing: the projector writes what came before, and reads the log again from its
//! last commit. A record that cannot be decoded goes to the dead-letter log and is counted; the
//! projector carries on. If the store's epoch changes (it lost its data, or was cleared), the
//! projector rebuilds it from the start of the log.
//!
//! If the store loses only its last writes (restored from an older snapshot, a lagging replica
//! promoted), the log's commits are already past them. Every write therefore marks, in the
//! store, how far it reflects its partition and how many writes it holds ([`LogMark`]); a write
//! or the periodic check that finds fewer than the projector made reads the partition again
//! from where the store stands, and the lost records are applied again.

pub mod apply;

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use livescore_eventlog::{Envelope, EventLog, LogConsumer, LogError, LogRecord, first_offsets};
use livescore_store::{
    Entry, LogMark, MatchStore, MatchSummary, MatchWrite, Reflected, StoreError, StoredMatch,
    WriteOutcome, now_ms,
};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use tracing::Instrument;

use crate::apply::{Step, apply, apply_despite_gap, stall, summary_changed};

#[derive(Debug, Clone)]
pub struct ProjectorConfig {
    /// The consumer group: projectors in one group share the log's partitions.
    pub group: String,
    /// At most this many records are read and written together.
    pub batch: usize,
    /// Clear the store and rebuild it from the start of the log before anything else.
    pub rebuild: bool,
    /// How often an idle projector checks that the store still has its data (and its matches
    /// for a stall).
    pub epoch_check: Duration,
    /// How much longer than its speed allows a running replay may go without a record before
    /// it is marked stalled ([`livescore_domain::quiet_allowed`]).
    pub stall_grace: Duration,
}

impl Default for ProjectorConfig {
    fn default() -> Self {
        ProjectorConfig {
            group: "livescore-projector".into(),
            batch: 500,
            rebuild: false,
            epoch_check: Duration::from_secs(1),
            stall_grace: STALL_GRACE,
        }
    }
}

/// What the projector counts and measures, for tests and for Prometheus (see
/// [`ProjectorStats::register`]).
#[derive(Debug)]
pub struct ProjectorStats {
    pub records: Counter,
    pub applied: Counter,
    pub already_applied: Counter,
    pub without_run: Counter,
    pub dead_letters: Counter,
    pub conflicts: Counter,
    pub rebuilds: Counter,
    /// Times the log delivered a match's records with some missing, and was read again.
    pub gaps: Counter,
    /// Times the store was found to have lost writes, and a partition was read again.
    pub store_heals: Counter,
    /// Failures of the log or the store that were retried.
    pub retries: Counter,
    /// Running matches marked stalled: no record for longer than their speed allows.
    pub stalls: Counter,
    /// Seconds each store write took (one per match per batch).
    pub store_write_seconds: Histogram,
    /// Seconds from the producer emitting a record to its write to the store.
    pub record_age_seconds: Histogram,
    /// Per partition: records in the log not read yet.
    pub consumer_lag: Family<PartitionLabel, Gauge>,
    /// 1 while the last step (a batch, or the store's epoch check) succeeded.
    pub ready: Gauge,
}

/// `registry.register(name, help, metric.clone())` for each `name: metric, help;`.
macro_rules! register {
    ($registry:expr, $($name:literal: $metric:expr, $help:literal;)*) => {
        $($registry.register($name, $help, $metric.clone());)*
    };
}

/// A partition of the event log, as a metric label.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct PartitionLabel {
    pub partition: i32,
}

impl Default for ProjectorStats {
    fn default() -> Self {
        ProjectorStats {
            records: Counter::default(),
            applied: Counter::default(),
            already_applied: Counter::default(),
            without_run: Counter::default(),
            dead_letters: Counter::default(),
            conflicts: Counter::default(),
            rebuilds: Counter::default(),
            gaps: Counter::default(),
            store_heals: Counter::default(),
            retries: Counter::default(),
            stalls: Counter::default(),
            store_write_seconds: Histogram::new(latency_buckets()),
            record_age_seconds: Histogram::new(latency_buckets()),
            consumer_lag: Family::default(),
            ready: Gauge::default(),
        }
    }
}

/// 0.5 ms to about 16 s.
fn latency_buckets() -> impl Iterator<Item = f64> {
    exponential_buckets(0.0005, 2.0, 16)
}

impl ProjectorStats {
    pub fn get(counter: &Counter) -> u64 {
        counter.get()
    }

    fn add(counter: &Counter, n: u64) {
        counter.inc_by(n);
    }

    /// Registers every metric, named `livescore_projector_*`.
    pub fn register(&self, registry: &mut Registry) {
        let registry = registry.sub_registry_with_prefix("livescore_projector");
        register!(registry,
            // What was read, and what became of it.
            "records": self.records, "Records read from the event log";
            "records_applied": self.applied, "Records applied to the store";
            "records_already_applied": self.already_applied, "Records the store already reflected (redelivered)";
            "records_without_run": self.without_run, "Records of no run the projector knows (skipped)";
            "dead_letters": self.dead_letters, "Records set aside in the dead-letter log";
            // What went wrong, and was ridden out.
            "write_conflicts": self.conflicts, "Store writes refused because another writer got there first";
            "rebuilds": self.rebuilds, "Rebuilds of the store from the start of the log";
            "gaps": self.gaps, "Batches with records missing, read again";
            "store_heals": self.store_heals, "Times the store had lost writes and a partition was read again";
            "retries": self.retries, "Failures of the log or the store, retried";
            "stalls": self.stalls, "Running matches marked stalled: no record for longer than their speed allows";
            // How fast, and how far behind.
            "store_write_seconds": self.store_write_seconds, "Seconds each store write took";
            "record_age_seconds": self.record_age_seconds, "Seconds from the producer emitting a record to its write to the store";
            "consumer_lag_records": self.consumer_lag, "Records in the event log not read yet, per partition";
            "ready": self.ready, "1 while the projector's last step succeeded";
        );
    }

    /// Whether the projector's last step succeeded: what `/readyz` answers.
    pub fn is_ready(&self) -> bool {
        self.ready.get() == 1
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ProjectorError {
    /// The log failed at start-up (later failures are retried).
    #[error("event log: {0}")]
    Log(#[from] LogError),
    /// The store failed at start-up (later failures are retried).
    #[error("match store: {0}")]
    Store(#[from] StoreError),
    #[error("match {0}: the store refused the write {WRITE_ATTEMPTS} times (another writer?)")]
    Contention(u64),
}

/// Conflicting writes are retried from a fresh read this many times.
const WRITE_ATTEMPTS: usize = 5;

pub struct Projector {
    log: Arc<dyn EventLog>,
    store: Arc<dyn MatchStore>,
    config: ProjectorConfig,
    stats: Arc<ProjectorStats>,
}

/// What became of a batch.
enum Batch {
    Done,
    /// Records of a match are missing from what the log delivered: what came before the gap is
    /// written, nothing is committed; read again from the last commit.
    Gap,
    /// The store's epoch changed under the batch: nothing more was written; rebuild.
    EpochChanged,
    /// The store reflects these partitions less far than the batch needs: nothing more was
    /// written; read each again after what the store reflects.
    Behind(Vec<Behind>),
}

/// A partition the store reflects less far than the projector needs.
#[derive(Debug, Clone, Copy)]
struct Behind {
    partition: i32,
    reflected: Reflected,
    /// The store holds fewer writes than this projector made: it lost some. Otherwise the
    /// partition is new to the projector (its start, or a rebalance) and the store's mark lags
    /// the group's commit by up to a batch, which is read again.
    lost: bool,
}

/// The default of [`ProjectorConfig::stall_grace`]: a pipeline on a busy machine can take
/// seconds; a replay at 60x that is 10 s late is ten minutes of football behind.
pub const STALL_GRACE: Duration = Duration::from_secs(10);

/// How many times in a row a gap is read again before the projector accepts it as a loss.
const GAP_RETRIES: u32 = 20;

/// The longest pause between two attempts after a failure of the log or the store.
const RETRY_PAUSE_MAX: Duration = Duration::from_secs(5);

/// Where the projector stands: the store's epoch it writes to, what it knows the store holds,
/// and how often in a row the log has delivered a gap.
struct Position {
    epoch: String,
    /// When the epoch began (see `livescore_store::epoch_began_ms`): entries of records emitted
    /// before are marked republished.
    epoch_began_ms: Option<u64>,
    known: HashMap<u64, StoredMatch>,
    /// Per partition, how far the store reflects it as this projector last saw: its next write
    /// there expects that count of writes. A partition missing here is read from the store
    /// before the projector writes it.
    marks: HashMap<i32, Reflected>,
    gap_retries: u32,
    /// When this projector last wrote a record of each match it projects: a running match
    /// that stays quiet for longer than its speed allows is marked stalled.
    heard: HashMap<u64, std::time::Instant>,
}

impl Projector {
    pub fn new(
        log: Arc<dyn EventLog>,
        store: Arc<dyn MatchStore>,
        config: ProjectorConfig,
    ) -> Projector {
        Projector {
            log,
            store,
            config,
            stats: Arc::default(),
        }
    }

    pub fn stats(&self) -> Arc<ProjectorStats> {
        Arc::clone(&self.stats)
    }

    /// Runs until `shutdown` completes. Failures of the log or the store on the way (a broker
    /// or Redis restarting) are retried with a growing pause, from the last commit; only a
    /// failure to start is returned.
    pub async fn run(self, shutdown: impl Future<Output = ()>) -> Result<(), ProjectorError> {
        let mut consumer = self.log.consumer(&self.config.group).await?;
        if self.config.rebuild {
            tracing::info!("rebuilding the store from the start of the log, on request");
            self.store.clear().await?;
            consumer.rewind().await?;
            ProjectorStats::add(&self.stats.rebuilds, 1);
        }
        let epoch = self.store.epoch().await?;
        let mut position = Position {
            epoch_began_ms: livescore_store::epoch_began_ms(&epoch),
            epoch,
            known: HashMap::new(),
            marks: HashMap::new(),
            gap_retries: 0,
            heard: HashMap::new(),
        };
        let mut epoch_check = tokio::time::interval(self.config.epoch_check);
        epoch_check.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut failures = 0u32;
        tokio::pin!(shutdown);
        loop {
            // `next_batch` is cancel-safe: when the timer wins, the records it had are kept.
            let (batch_step, result) = tokio::select! {
                () = &mut shutdown => return Ok(()),
                _ = epoch_check.tick() => (false, self.check_epoch(consumer.as_mut(), &mut position).await),
                batch = consumer.next_batch(self.config.batch) => (true, match batch {
                    Ok(batch) => self.handle(consumer.as_mut(), &batch, &mut position).await,
                    Err(err) => Err(err.into()),
                }),
            };
            for (partition, lag) in consumer.lag() {
                self.stats
                    .consumer_lag
                    .get_or_create(&PartitionLabel { partition })
                    .set(lag);
            }
            let Err(err) = result else {
                // Only a batch written shows the log is back; the store answering the epoch
                // check does not (else a log that is down would be retried every 200 ms).
                if batch_step {
                    failures = 0;
                }
                self.stats.ready.set(1);
                continue;
            };
            self.stats.ready.set(0);
            failures += 1;
            let pause = Duration::from_millis(100 * 2u64.pow(failures.min(6))).min(RETRY_PAUSE_MAX);
            tracing::warn!("projector step failed, retrying in {pause:?}: {err}");
            ProjectorStats::add(&self.stats.retries, 1);
            // The store may or may not have taken the last write: forget what we think it holds.
            position.known.clear();
            tokio::select! {
                () = &mut shutdown => return Ok(()),
                () = tokio::time::sleep(pause) => {}
            }
            if let Err(err) = consumer.reread_uncommitted().await {
                tracing::warn!("cannot go back to the last commit: {err}");
            }
        }
    }

    /// Rebuilds if the store lost its data while the projector had nothing to write, and reads
    /// partitions again if it lost only some writes.
    async fn check_epoch(
        &self,
        consumer: &mut dyn LogConsumer,
        position: &mut Position,
    ) -> Result<(), ProjectorError> {
        if self.store.epoch().await? != position.epoch {
            return self.rebuild(consumer, position).await;
        }
        // Stalls are looked for even when the marks cannot be (a broker that lost the topic
        // fails the consumer's seeks): that is when they happen.
        let marks = self.check_marks(consumer, position).await;
        let stalls = self.mark_stalled(position).await;
        marks.map(|_| ())?;
        stalls
    }

    /// Marks stalled each running match of this projector's that has had no record for longer
    /// than its speed allows, so that no match stays shown as live whatever failed upstream
    /// (the producer, the broker, a topic lost). The next record clears the mark (`apply`).
    /// A match another projector writes now (the group moved its partition) is not marked: the
    /// write expects the match as this projector last wrote it, and is refused.
    async fn mark_stalled(&self, position: &mut Position) -> Result<(), ProjectorError> {
        let now = std::time::Instant::now();
        // No speed allows less quiet than the grace: the matches heard from within it (nearly
        // all, while replays run) are not looked at, let alone loaded.
        let quiet: Vec<(u64, std::time::Instant)> = position
            .heard
            .iter()
            .filter(|(_, at)| now.duration_since(**at) > self.config.stall_grace)
            .map(|(id, at)| (*id, *at))
            .collect();
        for (match_id, heard_at) in quiet {
            let current = match position.known.get(&match_id) {
                Some(stored) => Some(stored.clone()),
                None => self.store.load(match_id).await?,
            };
            let Some(current) = current else {
                position.heard.remove(&match_id);
                continue;
            };
            if current.replay.status.is_over() {
                position.heard.remove(&match_id);
                continue;
            }
            let allowed = livescore_domain::quiet_allowed(
                current.replay.speed,
                current.fold.state.status,
                self.config.stall_grace,
            );
            if now.duration_since(heard_at) <= allowed {
                continue;
            }
            let Some((stalled, entries)) = stall(&current) else {
                continue;
            };
            let write = MatchWrite {
                expected: Some(current.position()),
                summary: Some(stalled.summary(now_ms(), 0)),
                stored: stalled,
                entries: entries.iter().map(Entry::encode).collect(),
                mark: None,
            };
            match self.store.write(&position.epoch, &write).await? {
                WriteOutcome::Written { .. } => {
                    tracing::warn!(
                        match_id,
                        quiet_for = ?now.duration_since(heard_at),
                        "no record for longer than the replay's speed allows: marked stalled"
                    );
                    ProjectorStats::add(&self.stats.stalls, 1);
                    position.known.insert(match_id, write.stored);
                }
                WriteOutcome::Conflict => {
                    // Written since by another projector: not ours to watch any more.
                    position.known.remove(&match_id);
                    position.heard.remove(&match_id);
                }
                // The epoch and mark checks deal with these.
                WriteOutcome::EpochChanged | WriteOutcome::Behind { .. } => {}
            }
        }
        Ok(())
    }

    /// Compares the store's marks with what this projector wrote: a partition where the store
    /// holds fewer writes lost some, and is read again; one where it holds more was written by
    /// another projector since (the group moved it), and is read from the store before this one
    /// writes it again. True if a partition is read again.
    async fn check_marks(
        &self,
        consumer: &mut dyn LogConsumer,
        position: &mut Position,
    ) -> Result<bool, ProjectorError> {
        let partitions: Vec<i32> = position.marks.keys().copied().collect();
        let held = self.store.reflected(&partitions).await?;
        let mut behind = Vec::new();
        for (partition, reflected) in partitions.into_iter().zip(held) {
            let Some(mark) = position.marks.get(&partition) else {
                continue;
            };
            match reflected.writes.cmp(&mark.writes) {
                std::cmp::Ordering::Less => behind.push(Behind {
                    partition,
                    reflected,
                    lost: true,
                }),
                std::cmp::Ordering::Greater => {
                    position.marks.remove(&partition);
                }
                std::cmp::Ordering::Equal => {}
            }
        }
        if behind.is_empty() {
            return Ok(false);
        }
        self.read_again(consumer, position, &behind).await?;
        Ok(true)
    }

    /// Reads each partition of `behind` again after what the store reflects of it (and the
    /// others from their last commit: the batch they were read in was not finished).
    async fn read_again(
        &self,
        consumer: &mut dyn LogConsumer,
        position: &mut Position,
        behind: &[Behind],
    ) -> Result<(), ProjectorError> {
        position.known.clear();
        consumer.reread_uncommitted().await?;
        for &Behind {
            partition,
            reflected,
            lost,
        } in behind
        {
            let from = reflected.through + 1;
            if lost {
                tracing::warn!(
                    partition,
                    from,
                    "the store lost writes (restored from an older snapshot, or a lagging replica \
                     promoted): reading the partition again from where it stands"
                );
                ProjectorStats::add(&self.stats.store_heals, 1);
            } else {
                tracing::info!(
                    partition,
                    from,
                    "reading the partition from where the store stands"
                );
            }
            consumer.reread_from(partition, from).await?;
            position.marks.insert(partition, reflected);
        }
        Ok(())
    }

    /// Applies and writes one batch, then commits it (or reads again, or rebuilds).
    async fn handle(
        &self,
        consumer: &mut dyn LogConsumer,
        batch: &[LogRecord],
        position: &mut Position,
    ) -> Result<(), ProjectorError> {
        match self.process(batch, position).await? {
            Batch::Done => {
                position.gap_retries = 0;
                consumer.commit(batch)?;
            }
            Batch::Gap => {
                // Records missing from the store, not the log, are read again from there.
                if self.check_marks(consumer, position).await? {
                    return Ok(());
                }
                position.gap_retries += 1;
                ProjectorStats::add(&self.stats.gaps, 1);
                consumer.reread_uncommitted().await?;
            }
            Batch::EpochChanged => self.rebuild(consumer, position).await?,
            Batch::Behind(behind) => self.read_again(consumer, position, &behind).await?,
        }
        Ok(())
    }

    async fn rebuild(
        &self,
        consumer: &mut dyn LogConsumer,
        position: &mut Position,
    ) -> Result<(), ProjectorError> {
        tracing::warn!("the store lost its data (its epoch changed): rebuilding from the log");
        ProjectorStats::add(&self.stats.rebuilds, 1);
        position.known.clear();
        position.marks.clear();
        position.heard.clear();
        consumer.rewind().await?;
        position.epoch = self.store.epoch().await?;
        position.epoch_began_ms = livescore_store::epoch_began_ms(&position.epoch);
        Ok(())
    }

    async fn process(
        &self,
        batch: &[LogRecord],
        position: &mut Position,
    ) -> Result<Batch, ProjectorError> {
        ProjectorStats::add(&self.stats.records, batch.len() as u64);
        // Where each partition of the batch begins: every record before was written before.
        let firsts = first_offsets(batch);
        if let Some(behind) = self.new_partitions(&firsts, position).await? {
            return Ok(behind);
        }
        let accept_gaps = position.gap_retries >= GAP_RETRIES;
        // Records of the same match, in log order, are applied and written together.
        let mut by_match: Vec<(u64, i32, Vec<Envelope>)> = Vec::new();
        for record in batch {
            let envelope = match Envelope::from_json(&record.payload) {
                Ok(envelope) => envelope,
                Err(err) => {
                    let reason = format!("not a livescore record: {err}");
                    self.log.dead_letter(record, &reason).await?;
                    ProjectorStats::add(&self.stats.dead_letters, 1);
                    continue;
                }
            };
            match by_match
                .iter_mut()
                .find(|(id, _, _)| *id == envelope.match_id)
            {
                Some((_, _, envelopes)) => envelopes.push(envelope),
                None => by_match.push((envelope.match_id, record.partition, vec![envelope])),
            }
        }
        let mut outcome = Batch::Done;
        for (match_id, partition, envelopes) in by_match {
            let span = tracing::info_span!("project", match_id);
            let first = firsts
                .iter()
                .find(|(p, _)| *p == partition)
                .map_or(0, |(_, first)| *first);
            match self
                .project_match(
                    match_id,
                    (partition, first),
                    &envelopes,
                    position,
                    accept_gaps,
                )
                .instrument(span)
                .await?
            {
                Batch::Done => {}
                // The other matches of the batch are still written: they will be skipped when
                // the batch is read again.
                Batch::Gap => outcome = Batch::Gap,
                stop @ (Batch::EpochChanged | Batch::Behind(_)) => return Ok(stop),
            }
        }
        Ok(outcome)
    }

    /// For the partitions this projector has not written yet, reads how far the store reflects
    /// them; those the batch begins past are read again from there.
    async fn new_partitions(
        &self,
        firsts: &[(i32, i64)],
        position: &mut Position,
    ) -> Result<Option<Batch>, ProjectorError> {
        let new: Vec<i32> = firsts
            .iter()
            .map(|(partition, _)| *partition)
            .filter(|partition| !position.marks.contains_key(partition))
            .collect();
        if new.is_empty() {
            return Ok(None);
        }
        let held = self.store.reflected(&new).await?;
        let mut behind = Vec::new();
        for (partition, reflected) in new.into_iter().zip(held) {
            let first = firsts
                .iter()
                .find(|(p, _)| *p == partition)
                .map_or(0, |(_, first)| *first);
            if reflected.through + 1 < first {
                behind.push(Behind {
                    partition,
                    reflected,
                    lost: false,
                });
            } else {
                position.marks.insert(partition, reflected);
            }
        }
        Ok((!behind.is_empty()).then_some(Batch::Behind(behind)))
    }

    /// Applies one match's records and writes the result, retrying from a fresh read if the
    /// store holds something other than expected.
    async fn project_match(
        &self,
        match_id: u64,
        (partition, first): (i32, i64),
        envelopes: &[Envelope],
        position: &mut Position,
        accept_gaps: bool,
    ) -> Result<Batch, ProjectorError> {
        let Position {
            epoch,
            epoch_began_ms,
            known,
            marks,
            heard,
            ..
        } = position;
        // Records of the match came: whether or not the store takes them now (it may be down),
        // the replay is not stalled.
        heard.insert(match_id, std::time::Instant::now());
        for _ in 0..WRITE_ATTEMPTS {
            let before = match known.get(&match_id) {
                Some(stored) => Some(stored.clone()),
                None => self.store.load(match_id).await?,
            };
            let mut current = before.clone();
            let mut entries = Vec::new();
            let (mut applied, mut already, mut without_run) = (0, 0, 0);
            let mut last_emitted_at_ms = 0;
            let mut last_republished = false;
            let mut gap = false;
            for envelope in envelopes {
                let mut step = apply(current.as_ref(), envelope);
                if let Step::Gap { expected } = step {
                    if !accept_gaps {
                        tracing::warn!(
                            expected,
                            got = envelope.seq,
                            "records missing from what the log delivered: reading it again"
                        );
                        gap = true;
                        break;
                    }
                    tracing::error!(
                        expected,
                        got = envelope.seq,
                        "records still missing after {GAP_RETRIES} reads: the log lost them"
                    );
                    step = apply_despite_gap(current.as_ref(), envelope);
                }
                match step {
                    Step::Applied {
                        stored,
                        entries: mut new,
                    } => {
                        current = Some(*stored);
                        last_republished =
                            apply::republished(envelope.emitted_at_ms, *epoch_began_ms);
                        if last_republished {
                            new.iter_mut().for_each(apply::mark_republished);
                        }
                        entries.extend(new.iter().map(Entry::encode));
                        applied += 1;
                        last_emitted_at_ms = envelope.emitted_at_ms;
                    }
                    Step::AlreadyApplied | Step::Gap { .. } => already += 1,
                    Step::NoRun => {
                        tracing::warn!(
                            run = envelope.run,
                            seq = envelope.seq,
                            "skipping a record of a run whose start is not in the log"
                        );
                        without_run += 1;
                    }
                }
            }
            ProjectorStats::add(&self.stats.already_applied, already);
            ProjectorStats::add(&self.stats.without_run, without_run);
            let done = if gap { Batch::Gap } else { Batch::Done };
            let Some(after) = current else {
                return Ok(done);
            };
            if applied == 0 {
                known.insert(match_id, after);
                return Ok(done);
            }
            let summary = summary_changed(before.as_ref(), &after).then(|| MatchSummary {
                republished: last_republished,
                ..after.summary(now_ms(), last_emitted_at_ms)
            });
            let mark = marks.get(&partition).copied().unwrap_or(Reflected::NONE);
            let write = MatchWrite {
                expected: before.as_ref().map(StoredMatch::position),
                stored: after,
                entries,
                summary,
                mark: Some(LogMark {
                    partition,
                    // Every record before the batch was written before it.
                    through: first - 1,
                    writes_before: mark.writes,
                }),
            };
            let began = std::time::Instant::now();
            let outcome = self.store.write(epoch.as_str(), &write).await?;
            self.stats
                .store_write_seconds
                .observe(began.elapsed().as_secs_f64());
            match outcome {
                WriteOutcome::Written { .. } => {
                    ProjectorStats::add(&self.stats.applied, applied);
                    if last_emitted_at_ms > 0 {
                        let age_ms = now_ms().saturating_sub(last_emitted_at_ms);
                        self.stats
                            .record_age_seconds
                            .observe(age_ms as f64 / 1000.0);
                    }
                    known.insert(match_id, write.stored);
                    marks.insert(
                        partition,
                        Reflected {
                            through: mark.through.max(first - 1),
                            writes: mark.writes + 1,
                        },
                    );
                    return Ok(done);
                }
                WriteOutcome::Conflict => {
                    tracing::info!("the store changed under us: reloading the match");
                    ProjectorStats::add(&self.stats.conflicts, 1);
                    known.remove(&match_id);
                }
                WriteOutcome::EpochChanged => return Ok(Batch::EpochChanged),
                WriteOutcome::Behind { reflected } => {
                    return Ok(Batch::Behind(vec![Behind {
                        partition,
                        reflected,
                        lost: reflected.writes < mark.writes,
                    }]));
                }
            }
        }
        Err(ProjectorError::Contention(match_id))
    }
}
