//! The replay manager: any number of replays at once, each a task sending one match's records
//! into the event log on its own virtual clock, controlled by commands.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use livescore_catalog::{Catalog, CatalogError, LoadedGame};
use livescore_domain::state::Clock;
use livescore_domain::{Breaks, Event, MatchInfo, ReplayStatus, Speed, schedule};
use livescore_eventlog::{Body, Control, Delivery, Envelope, EventLog, LogError, LogRecord};
use serde::Serialize;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tracing::Instrument;

use crate::clock::VirtualClock;
use crate::metrics::{ProducerMetrics, StatusLabel};

/// How many records may be on their way to the log at once before the replay waits.
const IN_FLIGHT: usize = 64;

/// The default of [`ReplayManager::with_delivery_timeout`].
pub const DELIVERY_TIMEOUT: Duration = Duration::from_secs(30);

/// A replay as the admin panel shows it.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct ReplayState {
    pub match_id: u64,
    pub run: u64,
    pub home: String,
    pub away: String,
    pub status: ReplayStatus,
    pub speed: Speed,
    pub events_sent: u32,
    pub events_total: u32,
    /// Match time of the last event sent, in milliseconds from kick-off (breaks included).
    pub match_time_ms: u64,
    /// The match clock of the last event sent.
    pub clock: Option<Clock>,
    /// Why the replay failed, when it did.
    pub error: Option<String>,
    /// How late events left against their scheduled wall-clock time (not at maximum speed).
    pub lateness: Option<Lateness>,
}

/// Percentiles of how late events were sent, in microseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Lateness {
    pub samples: usize,
    pub p50_us: u64,
    pub p99_us: u64,
    pub max_us: u64,
}

/// Every event's lateness, kept to report percentiles (a match has a few thousand events).
#[derive(Default)]
struct LatenessSamples(Vec<u64>);

impl LatenessSamples {
    fn record(&mut self, lateness: Duration) {
        self.0
            .push(lateness.as_micros().min(u128::from(u64::MAX)) as u64);
    }

    fn summary(&self) -> Option<Lateness> {
        let mut sorted = self.0.clone();
        sorted.sort_unstable();
        let at = |q: f64| sorted[((sorted.len() - 1) as f64 * q).round() as usize];
        (!sorted.is_empty()).then(|| Lateness {
            samples: sorted.len(),
            p50_us: at(0.5),
            p99_us: at(0.99),
            max_us: at(1.0),
        })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    #[error(transparent)]
    Catalog(#[from] CatalogError),
    #[error("game {0} has no replay")]
    NoReplay(u64),
    #[error("the replay of game {0} is over: start it again instead")]
    Over(u64),
    #[error("cannot load the game: {0}")]
    Load(String),
}

#[derive(Debug, Clone, Copy)]
enum Command {
    Pause,
    /// Pause at the end of this match minute (at once if it is past).
    PauseAt(u16),
    Resume,
    Speed(Speed),
    Stop,
}

struct Replay {
    state: Arc<Mutex<ReplayState>>,
    lateness: Arc<Mutex<LatenessSamples>>,
    commands: mpsc::UnboundedSender<Command>,
}

impl Replay {
    /// The replay's state as it is now, with its lateness percentiles worked out.
    fn snapshot(&self) -> ReplayState {
        let mut state = lock(&self.state).clone();
        state.lateness = lock(&self.lateness).summary();
        state
    }
}

pub struct ReplayManager {
    log: Arc<dyn EventLog>,
    catalog: Arc<Catalog>,
    breaks: Breaks,
    delivery_timeout: Duration,
    replays: Mutex<HashMap<u64, Replay>>,
    last_run: Mutex<u64>,
    metrics: Arc<ProducerMetrics>,
    /// The runtime the manager was made on: replays run there, not on whichever thread served
    /// the admin request that started them (an HTTP shard, which stops at shutdown).
    runtime: Option<tokio::runtime::Handle>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl ReplayManager {
    pub fn new(log: Arc<dyn EventLog>, catalog: Arc<Catalog>, breaks: Breaks) -> ReplayManager {
        ReplayManager {
            log,
            catalog,
            breaks,
            delivery_timeout: DELIVERY_TIMEOUT,
            replays: Mutex::new(HashMap::new()),
            last_run: Mutex::new(0),
            metrics: Arc::default(),
            runtime: tokio::runtime::Handle::try_current().ok(),
        }
    }

    /// How long a replay waits for the log to acknowledge a record before it fails. The log
    /// itself (librdkafka) keeps retrying for as long as it takes, so a broker that restarts
    /// within this time loses nothing and the replay goes on.
    pub fn with_delivery_timeout(self, timeout: Duration) -> ReplayManager {
        ReplayManager {
            delivery_timeout: timeout,
            ..self
        }
    }

    /// What the replays count and measure.
    pub fn metrics(&self) -> &Arc<ProducerMetrics> {
        &self.metrics
    }

    /// Sets the replays-by-status gauges from the replays as they are now (before a scrape).
    pub fn refresh_metrics(&self) {
        // Each replay's status alone: `list` would also clone its state and sort its lateness.
        let mut counts: HashMap<ReplayStatus, i64> = HashMap::new();
        for replay in lock(&self.replays).values() {
            *counts.entry(lock(&replay.state).status).or_default() += 1;
        }
        self.metrics.replays.clear();
        for (status, count) in counts {
            // Its name on the wire (snake_case), as the admin routes write it.
            let status = serde_json::to_value(status)
                .ok()
                .and_then(|status| status.as_str().map(str::to_owned))
                .unwrap_or_default();
            self.metrics
                .replays
                .get_or_create(&StatusLabel { status })
                .set(count);
        }
    }

    fn spawn_blocking<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> tokio::task::JoinHandle<T> {
        match &self.runtime {
            Some(runtime) => runtime.spawn_blocking(work),
            None => tokio::task::spawn_blocking(work),
        }
    }

    pub fn catalog(&self) -> &Catalog {
        &self.catalog
    }

    /// A run id larger than any before, across restarts of the producer: Unix milliseconds,
    /// bumped if two replays start within the same one.
    fn next_run(&self) -> u64 {
        let mut last = lock(&self.last_run);
        *last = unix_ms().max(*last + 1);
        *last
    }

    /// Starts a replay of `game_id` (checked against the catalog before any file is read). A
    /// replay of the same game still running is stopped first: the new one is a new run.
    pub async fn start(&self, game_id: &str, speed: Speed) -> Result<ReplayState, ReplayError> {
        self.start_holding(game_id, speed, None).await
    }

    /// Starts a replay as [`start`](Self::start) does, to be held at `pause_at` (a match minute;
    /// see [`pause_at`](Self::pause_at)) if given: set before its first event is sent.
    pub async fn start_holding(
        &self,
        game_id: &str,
        speed: Speed,
        pause_at: Option<u16>,
    ) -> Result<ReplayState, ReplayError> {
        let game = self.catalog.game(game_id)?;
        let match_id = game.id;
        let catalog = Arc::clone(&self.catalog);
        let id = match_id.to_string();
        // Reading and parsing a match takes a few milliseconds of CPU: off the async threads.
        let LoadedGame { info, events } = self
            .spawn_blocking(move || catalog.load(&id))
            .await
            .map_err(|err| ReplayError::Load(err.to_string()))??;
        if let Some(previous) = lock(&self.replays).remove(&match_id) {
            let _ = previous.commands.send(Command::Stop);
        }
        let run = self.next_run();
        let from = Resume {
            pause_at,
            ..Resume::fresh()
        };
        Ok(self.launch(info, events, run, speed, from))
    }

    /// Starts the task of run `run` from `from`, and registers it.
    fn launch(
        &self,
        info: MatchInfo,
        events: Vec<Event>,
        run: u64,
        speed: Speed,
        from: Resume,
    ) -> ReplayState {
        let match_id = info.match_id;
        let times = schedule(&events, &self.breaks);
        let state = Arc::new(Mutex::new(ReplayState {
            match_id,
            run,
            home: info.home.name.clone(),
            away: info.away.name.clone(),
            status: if from.paused {
                ReplayStatus::Paused
            } else {
                ReplayStatus::Running
            },
            speed,
            events_sent: u32::try_from(from.next_event).unwrap_or(u32::MAX),
            events_total: u32::try_from(events.len()).unwrap_or(u32::MAX),
            match_time_ms: 0,
            clock: None,
            error: None,
            lateness: None,
        }));
        let lateness = Arc::new(Mutex::new(LatenessSamples::default()));
        let (commands, inbox) = mpsc::unbounded_channel();
        let task = ReplayTask {
            log: Arc::clone(&self.log),
            state: Arc::clone(&state),
            inbox,
            match_id,
            run,
            seq: from.seq,
            in_flight: VecDeque::new(),
            delivery_timeout: self.delivery_timeout,
            lateness: Arc::clone(&lateness),
            metrics: Arc::clone(&self.metrics),
            pause_at: from.pause_at,
        };
        let span = tracing::info_span!("replay", match_id, run);
        let running = task.run(info, events, times, speed, from).instrument(span);
        match &self.runtime {
            Some(runtime) => drop(runtime.spawn(running)),
            None => drop(tokio::spawn(running)),
        }
        let replay = Replay {
            state,
            lateness,
            commands,
        };
        let snapshot = replay.snapshot();
        lock(&self.replays).insert(match_id, replay);
        snapshot
    }

    /// Resumes the replays that a previous producer left in the middle: for every match whose
    /// latest run in the log has neither finished, stopped nor failed, the same run goes on
    /// after its last record there, at the speed and pause it had, so the projector and the
    /// viewers see one run with nothing missing and nothing twice. Records the previous producer
    /// had queued and never got into the log are simply sent again. Call it once, at start-up,
    /// before any replay is started; it assumes no other producer writes the same runs.
    pub async fn resume_from_log(&self) -> Result<Vec<ReplayState>, ReplayError> {
        let records = self
            .log
            .read_to_end()
            .await
            .map_err(|err| ReplayError::Load(format!("cannot read the log: {err}")))?;
        let mut resumed = Vec::new();
        for open in open_runs(&records) {
            let Ok(game) = self.catalog.game(&open.match_id.to_string()) else {
                tracing::warn!(
                    match_id = open.match_id,
                    "a replay left open in the log is not in the catalog: not resumed"
                );
                continue;
            };
            let catalog = Arc::clone(&self.catalog);
            let id = game.id.to_string();
            let LoadedGame { info, events } = self
                .spawn_blocking(move || catalog.load(&id))
                .await
                .map_err(|err| ReplayError::Load(err.to_string()))??;
            let next_event = match open.last_event_index {
                Some(last) => events.partition_point(|event| event.index <= last),
                None => 0,
            };
            let times = schedule(&events, &self.breaks);
            let played = next_event
                .checked_sub(1)
                .and_then(|last| times.get(last).copied())
                .unwrap_or_default();
            {
                let mut last_run = lock(&self.last_run);
                *last_run = (*last_run).max(open.run);
            }
            tracing::info!(
                match_id = open.match_id,
                run = open.run,
                next_event,
                seq = open.next_seq,
                paused = open.paused,
                "resuming a replay where the log ends"
            );
            let from = Resume {
                next_event,
                seq: open.next_seq,
                played,
                paused: open.paused,
                pause_at: None,
            };
            resumed.push(self.launch(info, events, open.run, open.speed, from));
        }
        Ok(resumed)
    }

    pub fn pause(&self, match_id: u64) -> Result<ReplayState, ReplayError> {
        self.command(match_id, Command::Pause)
    }

    /// Holds the replay at the end of match minute `minute`, as the clock shows it: it pauses
    /// before sending the first event after it (at once if it is past), and waits there for
    /// `resume`. The replay's status says
    /// `paused` once it holds. What a demonstration, or a test, uses to act at a given moment
    /// of the match whatever the speed and the machine's load.
    pub fn pause_at(&self, match_id: u64, minute: u16) -> Result<ReplayState, ReplayError> {
        self.command(match_id, Command::PauseAt(minute))
    }

    pub fn resume(&self, match_id: u64) -> Result<ReplayState, ReplayError> {
        self.command(match_id, Command::Resume)
    }

    pub fn set_speed(&self, match_id: u64, speed: Speed) -> Result<ReplayState, ReplayError> {
        self.command(match_id, Command::Speed(speed))
    }

    pub fn stop(&self, match_id: u64) -> Result<ReplayState, ReplayError> {
        self.command(match_id, Command::Stop)
    }

    fn command(&self, match_id: u64, command: Command) -> Result<ReplayState, ReplayError> {
        let replays = lock(&self.replays);
        let replay = replays
            .get(&match_id)
            .ok_or(ReplayError::NoReplay(match_id))?;
        let state = replay.snapshot();
        if state.status.is_over() || replay.commands.send(command).is_err() {
            return Err(ReplayError::Over(match_id));
        }
        Ok(state)
    }

    pub fn status(&self, match_id: u64) -> Result<ReplayState, ReplayError> {
        lock(&self.replays)
            .get(&match_id)
            .map(Replay::snapshot)
            .ok_or(ReplayError::NoReplay(match_id))
    }

    /// Every replay, most recently started first.
    pub fn list(&self) -> Vec<ReplayState> {
        let mut list: Vec<ReplayState> =
            lock(&self.replays).values().map(Replay::snapshot).collect();
        list.sort_by_key(|state| std::cmp::Reverse(state.run));
        list
    }
}

/// Where a replay's task begins: at the start, or where a previous producer left the run.
#[derive(Debug, Clone, Copy)]
struct Resume {
    /// The first event to send (index into the match's events).
    next_event: usize,
    /// The seq of the next record.
    seq: u64,
    /// The match time of the last event sent.
    played: Duration,
    paused: bool,
    /// The match minute to hold at, if asked ([`ReplayManager::start_holding`]).
    pause_at: Option<u16>,
}

impl Resume {
    fn fresh() -> Resume {
        Resume {
            next_event: 0,
            seq: 0,
            played: Duration::ZERO,
            paused: false,
            pause_at: None,
        }
    }

    fn is_fresh(&self) -> bool {
        self.seq == 0
    }
}

/// A run the log holds that neither finished, stopped nor failed.
#[derive(Debug, Clone, PartialEq)]
struct OpenRun {
    match_id: u64,
    run: u64,
    next_seq: u64,
    /// The StatsBomb index of the last event the log holds.
    last_event_index: Option<u32>,
    speed: Speed,
    paused: bool,
}

/// The latest run of each match in `records`, if it is still open. Undecodable records are
/// not the producer's concern (the projector sets them aside).
fn open_runs(records: &[LogRecord]) -> Vec<OpenRun> {
    let mut latest: HashMap<u64, (OpenRun, bool)> = HashMap::new();
    for record in records {
        let Ok(envelope) = Envelope::from_json(&record.payload) else {
            continue;
        };
        if let Body::Control(Control::Started { speed, .. }) = &envelope.body {
            let newer = latest
                .get(&envelope.match_id)
                .is_none_or(|(open, _)| envelope.run > open.run);
            if newer {
                let open = OpenRun {
                    match_id: envelope.match_id,
                    run: envelope.run,
                    next_seq: envelope.seq + 1,
                    last_event_index: None,
                    speed: *speed,
                    paused: false,
                };
                latest.insert(envelope.match_id, (open, false));
            }
            continue;
        }
        let Some((open, over)) = latest.get_mut(&envelope.match_id) else {
            continue;
        };
        if envelope.run != open.run {
            continue;
        }
        open.next_seq = open.next_seq.max(envelope.seq + 1);
        match &envelope.body {
            Body::Event(event) => {
                open.last_event_index = open.last_event_index.max(Some(event.index));
            }
            Body::Control(control) => match control {
                Control::Paused => open.paused = true,
                Control::Resumed => open.paused = false,
                Control::SpeedChanged { speed } => open.speed = *speed,
                Control::Finished | Control::Stopped | Control::Failed { .. } => *over = true,
                Control::Started { .. } => {}
            },
        }
    }
    let mut open: Vec<OpenRun> = latest
        .into_values()
        .filter(|(_, over)| !over)
        .map(|(open, _)| open)
        .collect();
    open.sort_by_key(|open| open.match_id);
    open
}

/// One replay's task: sends the records of one run in order, on its virtual clock.
struct ReplayTask {
    log: Arc<dyn EventLog>,
    state: Arc<Mutex<ReplayState>>,
    inbox: mpsc::UnboundedReceiver<Command>,
    match_id: u64,
    run: u64,
    seq: u64,
    in_flight: VecDeque<InFlight>,
    delivery_timeout: Duration,
    lateness: Arc<Mutex<LatenessSamples>>,
    metrics: Arc<ProducerMetrics>,
    /// The match minute to pause at, if asked (`Command::PauseAt`).
    pause_at: Option<u16>,
}

/// A record sent and not yet acknowledged.
struct InFlight {
    sent_at: Instant,
    delivery: Delivery,
}

/// Why a replay ended early.
enum Ended {
    Stopped,
    Failed(NotWritten),
    /// The manager is gone (the producer is shutting down): nothing more is written, and the
    /// run stays open in the log for the next producer to carry on.
    Abandoned,
}

/// Why a record of the replay is not in the log.
#[derive(Debug, thiserror::Error)]
enum NotWritten {
    #[error(transparent)]
    Log(#[from] LogError),
    #[error("the log did not acknowledge a record within {0:?}")]
    TimedOut(Duration),
}

/// Waits for the oldest record in flight to be acknowledged, for at most what is left of
/// `timeout` since it was sent; pops it when it is. Cancel-safe: a delivery interrupted stays at
/// the front, and goes on where it was.
async fn settle_oldest(
    in_flight: &mut VecDeque<InFlight>,
    timeout: Duration,
) -> Result<(), NotWritten> {
    let Some(oldest) = in_flight.front_mut() else {
        return Ok(());
    };
    let deadline = oldest.sent_at + timeout;
    match tokio::time::timeout_at(deadline, &mut oldest.delivery).await {
        Ok(Ok(())) => {
            in_flight.pop_front();
            Ok(())
        }
        Ok(Err(err)) => Err(err.into()),
        Err(_late) => Err(NotWritten::TimedOut(timeout)),
    }
}

/// Resolves only when a record in flight fails or is late: watched while the replay waits for
/// its next event, so that a log gone away fails the replay even when it sends little.
async fn watch_in_flight(in_flight: &mut VecDeque<InFlight>, timeout: Duration) -> NotWritten {
    loop {
        if in_flight.is_empty() {
            return std::future::pending().await;
        }
        if let Err(err) = settle_oldest(in_flight, timeout).await {
            return err;
        }
    }
}

impl ReplayTask {
    async fn run(
        mut self,
        info: MatchInfo,
        events: Vec<Event>,
        times: Vec<Duration>,
        speed: Speed,
        from: Resume,
    ) {
        let outcome = self.play(info, &events, &times, speed, from).await;
        let outcome = match outcome {
            Ok(()) => self.flush().await.map(|()| ReplayStatus::Finished),
            Err(Ended::Stopped) => self.flush().await.map(|()| ReplayStatus::Stopped),
            Err(Ended::Failed(err)) => Err(Ended::Failed(err)),
            Err(Ended::Abandoned) => {
                tracing::info!("the producer is going away: the run stays open in the log");
                return;
            }
        };
        let failure = {
            let mut state = lock(&self.state);
            match outcome {
                Ok(status) => {
                    tracing::info!(?status, "replay over");
                    state.status = status;
                    None
                }
                Err(Ended::Failed(err)) => {
                    tracing::error!("replay failed: a record could not be written: {err}");
                    let reason = format!("a record could not be written to the log: {err}");
                    state.status = ReplayStatus::Failed;
                    state.error = Some(reason.clone());
                    Some(reason)
                }
                Err(Ended::Stopped | Ended::Abandoned) => {
                    state.status = ReplayStatus::Stopped;
                    None
                }
            }
        };
        if let Some(reason) = failure {
            self.record_failure(reason).await;
        }
    }

    /// Writes the run's `failed` record, however long the log takes to come back, so that the
    /// projector, and every viewer, learns that this match will not go on. Gives up only when
    /// the replay is stopped or replaced by a new run (whose `started` says it all).
    async fn record_failure(&mut self, reason: String) {
        // What is still in flight stays queued in the log, which retries it until the broker
        // takes it; the `failed` record queues behind it, so it is written after all of it.
        self.in_flight.clear();
        let envelope = Envelope {
            match_id: self.match_id,
            run: self.run,
            // The same seq on every attempt: if an attempt was written after all, the next is a
            // duplicate that the projector skips.
            seq: self.seq,
            emitted_at_ms: unix_ms(),
            body: Body::Control(Control::Failed { reason }),
        };
        let mut pause = Duration::from_secs(1);
        loop {
            let attempt = async {
                match self.log.send(&envelope) {
                    Ok(delivery) => delivery.await,
                    Err(err) => Err(err),
                }
            };
            let written = tokio::select! {
                written = attempt => written,
                command = self.inbox.recv() => match command {
                    None | Some(Command::Stop) => {
                        tracing::info!("replay replaced or stopped: its failure is not written");
                        return;
                    }
                    // A failed replay takes no other command (the manager refuses them).
                    Some(_) => continue,
                },
            };
            match written {
                Ok(()) => {
                    tracing::info!("the replay's failure is in the log");
                    return;
                }
                Err(err) => {
                    tracing::warn!(
                        "cannot write the replay's failure yet ({err}); again in {pause:?}"
                    );
                }
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_secs(30));
        }
    }

    async fn play(
        &mut self,
        info: MatchInfo,
        events: &[Event],
        times: &[Duration],
        speed: Speed,
        from: Resume,
    ) -> Result<(), Ended> {
        let total = u32::try_from(events.len()).unwrap_or(u32::MAX);
        if from.is_fresh() {
            self.send(Body::Control(Control::Started {
                info: Box::new(info),
                speed,
                events: total,
            }))
            .await?;
        }
        let mut played = from.played;
        let mut clock = VirtualClock::start_at(Instant::now(), speed, played);
        if from.paused {
            clock.pause(Instant::now(), played);
        }
        let remaining = events.iter().zip(times).enumerate().skip(from.next_event);
        for (sent, (event, &at)) in remaining {
            // Wait for the event's moment, obeying commands meanwhile.
            loop {
                // StatsBomb's minute is 0-based: its minute 30 is the clock's 31'.
                if self.pause_at.is_some_and(|minute| event.minute >= minute) {
                    self.pause_at = None;
                    self.obey(Command::Pause, &mut clock, played).await?;
                }
                let due = clock.wall_time_of(at);
                let timeout = self.delivery_timeout;
                let command = match due {
                    Some(due) if due <= Instant::now() => self.inbox.try_recv().ok(),
                    Some(due) => tokio::select! {
                        command = self.inbox.recv() => Some(command.ok_or(Ended::Abandoned)?),
                        () = tokio::time::sleep_until(due) => None,
                        err = watch_in_flight(&mut self.in_flight, timeout) => return Err(Ended::Failed(err)),
                    },
                    None => tokio::select! {
                        command = self.inbox.recv() => Some(command.ok_or(Ended::Abandoned)?),
                        err = watch_in_flight(&mut self.in_flight, timeout) => return Err(Ended::Failed(err)),
                    },
                };
                let Some(command) = command else { break };
                self.obey(command, &mut clock, played).await?;
            }
            let lateness = match (clock.speed(), clock.wall_time_of(at)) {
                (Speed::Factor(_), Some(due)) => {
                    Some(Instant::now().saturating_duration_since(due))
                }
                _ => None,
            };
            self.send(Body::Event(Box::new(event.clone()))).await?;
            played = at;
            if let Some(lateness) = lateness {
                lock(&self.lateness).record(lateness);
                self.metrics
                    .clock_lateness_seconds
                    .observe(lateness.as_secs_f64());
            }
            {
                let mut state = lock(&self.state);
                state.events_sent = sent as u32 + 1;
                state.match_time_ms = at.as_millis() as u64;
                state.clock = Some(Clock::at(event.period, event.minute));
            }
            if matches!(clock.speed(), Speed::Max) && sent % 256 == 255 {
                // At full speed nothing else makes this task wait: let the others run.
                tokio::task::yield_now().await;
            }
        }
        self.send(Body::Control(Control::Finished)).await
    }

    async fn obey(
        &mut self,
        command: Command,
        clock: &mut VirtualClock,
        played: Duration,
    ) -> Result<(), Ended> {
        let now = Instant::now();
        let (control, status) = match command {
            Command::Pause if !clock.is_paused() => {
                clock.pause(now, played);
                (Control::Paused, ReplayStatus::Paused)
            }
            Command::Resume if clock.is_paused() => {
                clock.resume(now, played);
                (Control::Resumed, ReplayStatus::Running)
            }
            Command::Speed(speed) => {
                clock.set_speed(now, played, speed);
                let mut state = lock(&self.state);
                state.speed = speed;
                (Control::SpeedChanged { speed }, state.status)
            }
            Command::Stop => {
                self.send(Body::Control(Control::Stopped)).await?;
                return Err(Ended::Stopped);
            }
            // Takes effect before the next event (`play`).
            Command::PauseAt(minute) => {
                self.pause_at = Some(minute);
                return Ok(());
            }
            // Pausing a paused replay, or resuming a running one, changes nothing.
            Command::Pause | Command::Resume => return Ok(()),
        };
        lock(&self.state).status = status;
        self.send(Body::Control(control)).await
    }

    /// Queues the next record; waits for the oldest one in flight when too many are.
    async fn send(&mut self, body: Body) -> Result<(), Ended> {
        let envelope = Envelope {
            match_id: self.match_id,
            run: self.run,
            seq: self.seq,
            emitted_at_ms: unix_ms(),
            body,
        };
        self.seq += 1;
        let delivery = self
            .log
            .send(&envelope)
            .map_err(|err| Ended::Failed(err.into()))?;
        let sent_at = Instant::now();
        let metrics = Arc::clone(&self.metrics);
        let delivery: Delivery = Box::pin(async move {
            let delivered = delivery.await;
            if delivered.is_ok() {
                metrics.records_sent.inc();
                metrics
                    .send_seconds
                    .observe(sent_at.elapsed().as_secs_f64());
            }
            delivered
        });
        self.in_flight.push_back(InFlight { sent_at, delivery });
        while self.in_flight.len() > IN_FLIGHT {
            settle_oldest(&mut self.in_flight, self.delivery_timeout)
                .await
                .map_err(Ended::Failed)?;
        }
        Ok(())
    }

    /// Waits until every record sent is durable.
    async fn flush(&mut self) -> Result<(), Ended> {
        while !self.in_flight.is_empty() {
            settle_oldest(&mut self.in_flight, self.delivery_timeout)
                .await
                .map_err(Ended::Failed)?;
        }
        Ok(())
    }
}

/// Unix milliseconds now: run ids and the records' emission times.
fn unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_millis() as u64)
}
