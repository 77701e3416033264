//! The replay manager on tokio's paused clock: events leave at their scheduled match time divided
//! by the speed; pauses, resumes and speed changes keep the schedule; replays run side by side.

#![allow(clippy::unwrap_used)]

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use livescore_catalog::Catalog;
use livescore_domain::{Breaks, ReplayStatus, Speed, schedule};
use livescore_eventlog::memory::MemoryLog;
use livescore_eventlog::{Body, Control, Envelope, EventLog, LogConsumer};
use livescore_producer::ReplayManager;
use tokio::time::Instant;

fn catalog() -> Arc<Catalog> {
    Arc::new(Catalog::open(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../data")).unwrap())
}

fn manager(log: &MemoryLog) -> ReplayManager {
    ReplayManager::new(Arc::new(log.clone()), catalog(), Breaks::default())
}

/// Records as they arrive, with the (paused) clock's time of arrival.
async fn receive(
    consumer: &mut dyn LogConsumer,
    mut until: impl FnMut(&Envelope) -> bool,
) -> Vec<(Instant, Envelope)> {
    let mut received = Vec::new();
    loop {
        for record in consumer.next_batch(1000).await.unwrap() {
            let envelope = Envelope::from_json(&record.payload).unwrap();
            let done = until(&envelope);
            received.push((Instant::now(), envelope));
            if done {
                return received;
            }
        }
    }
}

fn is_finished(envelope: &Envelope) -> bool {
    matches!(envelope.body, Body::Control(Control::Finished))
}

/// The scheduled match time of every event of `id`.
fn times(id: u64) -> Vec<Duration> {
    let game = catalog().load(&id.to_string()).unwrap();
    schedule(&game.events, &Breaks::default())
}

/// Arrival times of the event records, relative to the first event.
fn event_arrivals(received: &[(Instant, Envelope)]) -> Vec<Duration> {
    let events: Vec<Instant> = received
        .iter()
        .filter(|(_, e)| matches!(e.body, Body::Event(_)))
        .map(|(at, _)| *at)
        .collect();
    events.iter().map(|at| *at - events[0]).collect()
}

#[tokio::test(start_paused = true)]
async fn at_speed_n_each_event_leaves_at_its_match_time_over_n() {
    let log = MemoryLog::new(6);
    let mut consumer = log.consumer("test").await.unwrap();
    let replays = manager(&log);
    replays.start("7471", Speed::Factor(600.0)).await.unwrap();
    let received = receive(consumer.as_mut(), is_finished).await;

    let expected: Vec<Duration> = times(7471).iter().map(|t| t.div_f64(600.0)).collect();
    let arrivals = event_arrivals(&received);
    assert_eq!(arrivals.len(), expected.len());
    for (i, (arrived, due)) in arrivals.iter().zip(&expected).enumerate() {
        let late = arrived.abs_diff(*due);
        assert!(
            late <= Duration::from_millis(1),
            "event {i}: at {arrived:?}, due {due:?}"
        );
    }
    // A whole match (about 110 minutes with half-time) in about 11 seconds.
    assert!((Duration::from_secs(10)..Duration::from_secs(12)).contains(expected.last().unwrap()));
    // seq counts every record of the run, in order, from the `started` record.
    let seqs: Vec<u64> = received.iter().map(|(_, e)| e.seq).collect();
    assert_eq!(seqs, (0..seqs.len() as u64).collect::<Vec<_>>());
    assert!(matches!(
        received[0].1.body,
        Body::Control(Control::Started { .. })
    ));
    assert_eq!(replays.status(7471).unwrap().status, ReplayStatus::Finished);
    assert_eq!(
        replays.status(7471).unwrap().events_sent,
        expected.len() as u32
    );
    // Its metrics: every record acknowledged, every event's lateness measured, one replay
    // finished. (The last delivery may settle just after the status says finished: wait.)
    let metrics = || {
        replays.refresh_metrics();
        let mut registry = prometheus_client::registry::Registry::default();
        replays.metrics().register(&mut registry);
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
        text
    };
    let sent = format!("livescore_producer_records_sent_total {}", seqs.len());
    let settled = tokio::time::timeout(Duration::from_secs(10), async {
        while !metrics().contains(&sent) {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    });
    assert!(settled.await.is_ok(), "{}", metrics());
    let text = metrics();
    let lateness = format!(
        "livescore_producer_clock_lateness_seconds_count {}",
        expected.len()
    );
    assert!(text.contains(&lateness), "{text}");
    assert!(
        text.contains("livescore_producer_replays{status=\"finished\"} 1"),
        "{text}"
    );
}

#[tokio::test(start_paused = true)]
async fn pause_resume_and_speed_changes_keep_the_schedule() {
    let log = MemoryLog::new(6);
    let mut consumer = log.consumer("test").await.unwrap();
    let replays = manager(&log);
    replays.start("7471", Speed::Factor(60.0)).await.unwrap();
    let scheduled = times(7471);

    // Play the first 500 events, then pause for an hour of wall-clock time.
    let mut received = receive(consumer.as_mut(), |e| e.seq == 500).await;
    replays.pause(7471).unwrap();
    received.extend(
        receive(consumer.as_mut(), |e| {
            matches!(e.body, Body::Control(Control::Paused))
        })
        .await,
    );
    let paused_at = Instant::now();
    tokio::time::sleep(Duration::from_secs(3600)).await;
    assert_eq!(replays.status(7471).unwrap().status, ReplayStatus::Paused);
    assert_eq!(
        replays.status(7471).unwrap().events_sent,
        500,
        "nothing leaves while paused"
    );

    // Resume at 600x: the events left keep their spacing, ten times closer.
    replays.resume(7471).unwrap();
    replays.set_speed(7471, Speed::Factor(600.0)).unwrap();
    let rest = receive(consumer.as_mut(), is_finished).await;
    // (arrival, position in the schedule) of each event: StatsBomb indexes count from 1.
    let events: Vec<(Instant, usize)> = rest
        .iter()
        .filter_map(|(at, e)| match &e.body {
            Body::Event(event) => Some((*at, event.index as usize - 1)),
            Body::Control(_) => None,
        })
        .collect();
    assert!(events[0].0 >= paused_at + Duration::from_secs(3600));
    assert_eq!(events[0].1, 500, "it carries on where it paused");
    let (first_at, first) = events[0];
    for (at, position) in &events {
        let due = (scheduled[*position] - scheduled[first]).div_f64(600.0);
        assert!(
            (*at - first_at).abs_diff(due) <= Duration::from_millis(1),
            "event {position}"
        );
    }
    let controls: Vec<_> = rest
        .iter()
        .filter_map(|(_, e)| match &e.body {
            Body::Control(control) => Some(control.clone()),
            Body::Event(_) => None,
        })
        .collect();
    assert_eq!(
        controls,
        vec![
            Control::Resumed,
            Control::SpeedChanged {
                speed: Speed::Factor(600.0)
            },
            Control::Finished
        ]
    );
    assert!(received.iter().all(|(_, e)| e.seq <= 501));
}

#[tokio::test(start_paused = true)]
async fn two_replays_run_side_by_side_each_on_its_clock() {
    let log = MemoryLog::new(6);
    let mut consumer = log.consumer("test").await.unwrap();
    let replays = manager(&log);
    replays.start("7471", Speed::Factor(600.0)).await.unwrap();
    replays.start("7457", Speed::Factor(300.0)).await.unwrap();
    let mut finished = 0;
    let received = receive(consumer.as_mut(), |e| {
        finished += usize::from(is_finished(e));
        finished == 2
    })
    .await;
    for (id, speed) in [(7471, 600.0), (7457, 300.0)] {
        let mine: Vec<(Instant, Envelope)> = received
            .iter()
            .filter(|(_, e)| e.match_id == id)
            .cloned()
            .collect();
        let expected: Vec<Duration> = times(id).iter().map(|t| t.div_f64(speed)).collect();
        let arrivals = event_arrivals(&mine);
        assert_eq!(arrivals.len(), expected.len(), "match {id}");
        for (arrived, due) in arrivals.iter().zip(&expected) {
            assert!(
                arrived.abs_diff(*due) <= Duration::from_millis(1),
                "match {id}"
            );
        }
    }
    // They overlapped: 7457 (at half the speed) was still running when 7471 finished.
    let finished_7471 = received
        .iter()
        .position(|(_, e)| e.match_id == 7471 && is_finished(e))
        .unwrap();
    assert!(
        received[finished_7471..]
            .iter()
            .any(|(_, e)| e.match_id == 7457)
    );
}

#[tokio::test]
async fn a_stopped_replay_says_so_and_a_restart_is_a_new_run() {
    let log = MemoryLog::new(6);
    let mut consumer = log.consumer("test").await.unwrap();
    let replays = manager(&log);
    let first = replays.start("7471", Speed::Factor(1.0)).await.unwrap();
    receive(consumer.as_mut(), |e| e.seq == 0).await;
    replays.stop(7471).unwrap();
    let stopped = receive(consumer.as_mut(), |e| {
        matches!(e.body, Body::Control(Control::Stopped))
    })
    .await;
    assert_eq!(stopped.last().unwrap().1.run, first.run);
    let second = replays.start("7471", Speed::Max).await.unwrap();
    assert!(second.run > first.run);
    let rest = receive(consumer.as_mut(), is_finished).await;
    assert!(rest.iter().all(|(_, e)| e.run == second.run));
    assert!(matches!(
        replays.pause(7471),
        Err(livescore_producer::ReplayError::Over(7471))
    ));
}

/// The in-process log, except that the deliveries of the sends numbered in `failing` fail
/// (`silent`: never resolve, as librdkafka's while the broker is away): what a producer sees
/// when Kafka is gone, and then comes back.
struct FailingLog {
    inner: MemoryLog,
    sent: std::sync::atomic::AtomicUsize,
    failing: std::ops::Range<usize>,
    silent: bool,
}

impl FailingLog {
    fn over(inner: &MemoryLog, failing: std::ops::Range<usize>, silent: bool) -> Arc<FailingLog> {
        Arc::new(FailingLog {
            inner: inner.clone(),
            sent: Default::default(),
            failing,
            silent,
        })
    }
}

#[async_trait::async_trait]
impl EventLog for FailingLog {
    fn send(
        &self,
        envelope: &Envelope,
    ) -> Result<livescore_eventlog::Delivery, livescore_eventlog::LogError> {
        let n = self.sent.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        if self.failing.contains(&n) && self.silent {
            return Ok(Box::pin(std::future::pending()));
        }
        if self.failing.contains(&n) {
            return Ok(Box::pin(async {
                Err(livescore_eventlog::LogError::Unavailable {
                    engine: "kafka",
                    message: "Message timed out".into(),
                })
            }));
        }
        self.inner.send(envelope)
    }

    async fn consumer(
        &self,
        group: &str,
    ) -> Result<Box<dyn LogConsumer>, livescore_eventlog::LogError> {
        self.inner.consumer(group).await
    }

    async fn dead_letter(
        &self,
        record: &livescore_eventlog::LogRecord,
        reason: &str,
    ) -> Result<(), livescore_eventlog::LogError> {
        self.inner.dead_letter(record, reason).await
    }

    async fn read_to_end(
        &self,
    ) -> Result<Vec<livescore_eventlog::LogRecord>, livescore_eventlog::LogError> {
        self.inner.read_to_end().await
    }
}

/// Waits (at most `within`) for 7471's replay to be over; checks that it failed with `error`.
async fn failed_replay(
    replays: &ReplayManager,
    within: Duration,
    error: &str,
) -> livescore_producer::ReplayState {
    let deadline = Instant::now() + within;
    let status = loop {
        let status = replays.status(7471).unwrap();
        if status.status.is_over() {
            break status;
        }
        assert!(Instant::now() < deadline, "the replay never stopped");
        tokio::time::sleep(Duration::from_millis(5)).await;
    };
    assert_eq!(status.status, ReplayStatus::Failed);
    assert!(
        status.error.as_deref().unwrap().contains(error),
        "{status:?}"
    );
    status
}

#[tokio::test(start_paused = true)]
async fn a_record_that_cannot_be_written_fails_the_replay_and_the_failure_is_logged_later() {
    let inner = MemoryLog::new(6);
    // Down from the 1000th send for 66 sends: the rest of the run (it stops within its
    // in-flight window of 64) and the first tries at writing the failure, which is written
    // once the log is back.
    let log = FailingLog::over(&inner, 1000..1066, false);
    let replays = ReplayManager::new(log, catalog(), Breaks::default());
    replays.start("7471", Speed::Max).await.unwrap();
    let began = Instant::now();
    let status = failed_replay(&replays, Duration::from_secs(30), "Message timed out").await;
    assert!(
        status.events_sent < 1000 + 64,
        "it stopped within the in-flight window"
    );
    // The log holds a gapless prefix of the run (nothing was sent past the failed record), then,
    // once the log came back, the run's `failed` record with the next seq.
    let mut consumer = inner.consumer("check").await.unwrap();
    let received = receive(consumer.as_mut(), |e| {
        matches!(e.body, Body::Control(Control::Failed { .. }))
    })
    .await;
    let seqs: Vec<u64> = received.iter().map(|(_, e)| e.seq).collect();
    assert_eq!(seqs[..1000], (0..1000).collect::<Vec<_>>());
    assert_eq!(seqs.len(), 1001, "nothing but the failure after the prefix");
    let (_, failed) = &received[1000];
    assert!(
        failed.seq > u64::from(status.events_sent),
        "after every record of the run that was sent"
    );
    assert!(
        matches!(&failed.body, Body::Control(Control::Failed { reason }) if reason.contains("Message timed out")),
        "{failed:?}"
    );
    assert!(
        began.elapsed() >= Duration::from_secs(1),
        "the failure was tried again after a pause, not in a busy loop"
    );
}

#[tokio::test(start_paused = true)]
async fn a_log_that_stops_answering_fails_the_replay_after_the_delivery_timeout() {
    // At 60x a match sends a record every second or so: far fewer than the in-flight window,
    // yet the replay notices the silence once its oldest record is 30 s late.
    let inner = MemoryLog::new(6);
    let log = FailingLog::over(&inner, 100..usize::MAX, true);
    let replays = ReplayManager::new(log, catalog(), Breaks::default())
        .with_delivery_timeout(Duration::from_secs(30));
    replays.start("7471", Speed::Factor(60.0)).await.unwrap();
    let started = Instant::now();
    let status = failed_replay(
        &replays,
        Duration::from_secs(600),
        "did not acknowledge a record within 30s",
    )
    .await;
    assert!(status.events_sent < 100 + 64, "{status:?}");
    // The 100th record left about when the 100th event was due, and was given 30 s.
    let due = times(7471)[99] / 60;
    let failed_after = started.elapsed();
    assert!(
        failed_after >= due + Duration::from_secs(30)
            && failed_after < due + Duration::from_secs(32),
        "failed after {failed_after:?}; the 100th record was due at {due:?}"
    );
}

/// The records of the log, decoded, in order (one match: one partition).
fn envelopes(log: &MemoryLog) -> Vec<Envelope> {
    log.records()
        .iter()
        .map(|record| Envelope::from_json(&record.payload).unwrap())
        .collect()
}

/// A log holding the first `count` records of `full`, as a producer killed after writing them
/// leaves it.
fn cut_after(full: &MemoryLog, count: usize) -> MemoryLog {
    let cut = MemoryLog::new(6);
    for record in &full.records()[..count] {
        cut.append_raw(record.key.as_deref().unwrap(), record.payload.clone());
    }
    cut
}

async fn wait_for_the_end(log: &MemoryLog) {
    let mut consumer = log.consumer("end").await.unwrap();
    receive(consumer.as_mut(), is_finished).await;
}

#[tokio::test(start_paused = true)]
async fn a_replay_cut_short_is_resumed_where_the_log_ends_and_ends_as_if_never_stopped() {
    let full = MemoryLog::new(6);
    manager(&full).start("7471", Speed::Max).await.unwrap();
    wait_for_the_end(&full).await;
    let complete = envelopes(&full);

    // The producer died after its 1000th record; a new one reads the log and goes on.
    let cut = cut_after(&full, 1000);
    let replays = manager(&cut);
    let resumed = replays.resume_from_log().await.unwrap();
    assert_eq!(resumed.len(), 1);
    assert_eq!(resumed[0].run, complete[0].run, "the same run goes on");
    assert_eq!(
        resumed[0].events_sent, 999,
        "the started record and 999 events were there"
    );
    wait_for_the_end(&cut).await;
    let after = envelopes(&cut);
    let without_times = |envelopes: &[Envelope]| -> Vec<(u64, u64, Body)> {
        envelopes
            .iter()
            .map(|e| (e.run, e.seq, e.body.clone()))
            .collect()
    };
    assert_eq!(
        without_times(&after),
        without_times(&complete),
        "every record once, in order, as if the producer had never stopped"
    );
    assert_eq!(replays.status(7471).unwrap().status, ReplayStatus::Finished);
}

#[tokio::test(start_paused = true)]
async fn a_paused_replay_is_resumed_paused_and_an_ended_one_not_at_all() {
    let full = MemoryLog::new(6);
    let replays = manager(&full);
    replays.start("7471", Speed::Factor(60.0)).await.unwrap();
    replays.start("7457", Speed::Max).await.unwrap();
    // 7471 pauses once it has kicked off; 7457 finishes.
    let mut consumer = full.consumer("watch").await.unwrap();
    receive(consumer.as_mut(), |e| e.match_id == 7471 && e.seq == 20).await;
    replays.pause(7471).unwrap();
    receive(consumer.as_mut(), |e| {
        matches!(e.body, Body::Control(Control::Paused))
    })
    .await;
    let deadline = Instant::now() + Duration::from_secs(60);
    while replays.status(7457).unwrap().status != ReplayStatus::Finished {
        assert!(Instant::now() < deadline, "7457 never finished");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let records_before = full.records().len();

    let restarted = manager(&full);
    let resumed = restarted.resume_from_log().await.unwrap();
    assert_eq!(resumed.len(), 1, "{resumed:?}");
    assert_eq!(resumed[0].match_id, 7471);
    assert_eq!(resumed[0].status, ReplayStatus::Paused);
    // Paused: nothing is sent until it is resumed (the old manager is gone with its process;
    // here it stays paused too).
    tokio::time::sleep(Duration::from_secs(600)).await;
    assert_eq!(full.records().len(), records_before);
    restarted.resume(7471).unwrap();
    let resumed_record = receive(consumer.as_mut(), |e| {
        matches!(e.body, Body::Control(Control::Resumed))
    })
    .await;
    let (_, last) = resumed_record.last().unwrap();
    assert_eq!(last.match_id, 7471);
}

/// The match minute of each event record received, in order.
fn event_minutes(received: &[(Instant, Envelope)]) -> Vec<u16> {
    received
        .iter()
        .filter_map(|(_, e)| match &e.body {
            Body::Event(event) => Some(event.minute),
            _ => None,
        })
        .collect()
}

#[tokio::test(start_paused = true)]
async fn a_replay_held_at_a_minute_pauses_before_its_first_event_and_goes_on_when_resumed() {
    let log = MemoryLog::new(2);
    let replays = manager(&log);
    let mut consumer = log.consumer("watch").await.unwrap();
    // Held from the start, at full speed: nothing after minute 30 (StatsBomb's 0-based minute 30
    // or later, the clock's 31' on) leaves before `resume`.
    replays
        .start_holding("7471", Speed::Max, Some(30))
        .await
        .unwrap();
    let before = receive(consumer.as_mut(), |e| {
        matches!(e.body, Body::Control(Control::Paused))
    })
    .await;
    let match_minutes: Vec<u16> = catalog()
        .load("7471")
        .unwrap()
        .events
        .iter()
        .map(|event| event.minute)
        .collect();
    let before_30 = match_minutes.iter().filter(|&&minute| minute < 30).count();
    assert_eq!(
        event_minutes(&before).len(),
        before_30,
        "held after every event before minute 30, before any later one"
    );
    let held = replays.status(7471).unwrap();
    assert_eq!(held.status, ReplayStatus::Paused);
    assert!(
        held.clock.is_some_and(|clock| clock.minute == 30),
        "the clock shows 30': {held:?}"
    );
    let records = log.records().len();
    tokio::time::sleep(Duration::from_secs(600)).await;
    assert_eq!(log.records().len(), records, "nothing leaves while held");

    // Held again while running, further on; then to the end.
    replays.pause_at(7471, 60).unwrap();
    replays.resume(7471).unwrap();
    let middle = receive(consumer.as_mut(), |e| {
        matches!(e.body, Body::Control(Control::Paused))
    })
    .await;
    let minutes = event_minutes(&middle);
    assert!(
        minutes.first().is_some_and(|&minute| minute >= 30),
        "{minutes:?}"
    );
    assert!(minutes.iter().all(|&minute| minute < 60), "{minutes:?}");
    // A minute already past holds it before its next event. (Both commands are queued before
    // the replay's task runs again: this test runs on one thread.)
    replays.resume(7471).unwrap();
    replays.pause_at(7471, 10).unwrap();
    let past = receive(consumer.as_mut(), |e| {
        matches!(e.body, Body::Control(Control::Paused | Control::Finished))
    })
    .await;
    assert!(
        matches!(
            past.last().map(|(_, e)| &e.body),
            Some(Body::Control(Control::Paused))
        ),
        "held at once"
    );
    replays.resume(7471).unwrap();
    let rest = receive(consumer.as_mut(), is_finished).await;
    let all: Vec<u16> = [before, middle, past, rest]
        .iter()
        .flat_map(|part| event_minutes(part))
        .collect();
    assert_eq!(
        all, match_minutes,
        "every event once, in order, held or not"
    );
}
