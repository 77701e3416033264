//! One record applied to one stored match: pure, no I/O. The projector's loop does the reading
//! and writing around it.
//!
//! A record is applied only if it is the next one for its match: a larger `run` begins with its
//! `started` record and starts the match afresh; within a run, `seq` must be one more than the
//! stored one. An older record was applied already (a redelivery after a crash) and is skipped,
//! so applying is idempotent; a record further ahead means records are missing, and is refused.

use livescore_domain::{Headline, MatchFold, ReplayStatus};
use livescore_eventlog::{Body, Control, Envelope};
use livescore_store::{Entry, ReplayInfo, StoredMatch};

/// What a record did to a match.
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    /// Applied: the match as it now stands, and the entries viewers receive.
    Applied {
        stored: Box<StoredMatch>,
        entries: Vec<Entry>,
    },
    /// Not newer than the stored match: applied before.
    AlreadyApplied,
    /// A record of a run whose `started` record was never seen (the log was trimmed, or a
    /// rebuild began in the middle of it): there is no match to apply it to.
    NoRun,
    /// Records of the run are missing before this one: `seq` jumped past `expected`. Applying it
    /// would lose them; the log must be read again.
    Gap { expected: u64 },
}

pub fn apply(current: Option<&StoredMatch>, envelope: &Envelope) -> Step {
    step(current, envelope, true)
}

/// Applies a record although records before it are missing: for when the log has lost them for
/// good, and the match must go on without them.
pub fn apply_despite_gap(current: Option<&StoredMatch>, envelope: &Envelope) -> Step {
    step(current, envelope, false)
}

fn step(current: Option<&StoredMatch>, envelope: &Envelope, contiguous: bool) -> Step {
    let position = (envelope.run, envelope.seq);
    if let Body::Control(Control::Started { info, speed, .. }) = &envelope.body {
        if current.is_some_and(|current| current.run >= envelope.run) {
            return Step::AlreadyApplied;
        }
        let replay = ReplayInfo {
            run: envelope.run,
            status: ReplayStatus::Running,
            speed: *speed,
            lost_records: 0,
            stalled: false,
        };
        let fold = MatchFold::new((**info).clone());
        let entries = vec![Entry::Snapshot {
            state: Box::new(fold.state.clone()),
            replay,
        }];
        let stored = StoredMatch {
            run: envelope.run,
            seq: envelope.seq,
            replay,
            fold,
        };
        return Step::Applied {
            stored: Box::new(stored),
            entries,
        };
    }

    let Some(current) = current else {
        return Step::NoRun;
    };
    if envelope.run < current.run || position <= current.position() {
        return Step::AlreadyApplied;
    }
    if envelope.run > current.run {
        return Step::NoRun;
    }
    let missing = envelope.seq - current.seq - 1;
    // The producer's `failed` says itself that records before it may be missing: no use
    // reading the log again for them.
    let failed = matches!(envelope.body, Body::Control(Control::Failed { .. }));
    if contiguous && missing > 0 && !failed {
        return Step::Gap {
            expected: current.seq + 1,
        };
    }
    let mut stored = current.clone();
    stored.seq = envelope.seq;
    stored.replay.lost_records += missing;
    // A record came: whatever held the replay up is over.
    let was_stalled = std::mem::take(&mut stored.replay.stalled);
    let entries = match &envelope.body {
        Body::Event(event) => {
            // Viewers learn it is live again before they see what it missed.
            let live_again = was_stalled.then_some(Entry::Replay {
                replay: stored.replay,
            });
            live_again
                .into_iter()
                .chain(
                    stored
                        .fold
                        .apply(event)
                        .into_iter()
                        .map(|update| Entry::Update {
                            update: Box::new(update),
                            emitted_at_ms: envelope.emitted_at_ms,
                            republished: false,
                        }),
                )
                .collect()
        }
        Body::Control(control) => {
            match control {
                Control::Paused => stored.replay.status = ReplayStatus::Paused,
                Control::Resumed => stored.replay.status = ReplayStatus::Running,
                Control::SpeedChanged { speed } => stored.replay.speed = *speed,
                Control::Stopped => stored.replay.status = ReplayStatus::Stopped,
                Control::Finished => stored.replay.status = ReplayStatus::Finished,
                Control::Failed { .. } => stored.replay.status = ReplayStatus::Failed,
                Control::Started { .. } => {}
            }
            vec![Entry::Replay {
                replay: stored.replay,
            }]
        }
    };
    Step::Applied {
        stored: Box::new(stored),
        entries,
    }
}

/// Whether a record emitted at `emitted_at_ms` is old news in a store whose epoch began at
/// `epoch_began_ms`: the store was rebuilt from the event log after the record first went out,
/// so its viewers saw it then. (Records without an emission time, and epochs without a start,
/// are never old news.)
pub fn republished(emitted_at_ms: u64, epoch_began_ms: Option<u64>) -> bool {
    epoch_began_ms.is_some_and(|began| emitted_at_ms > 0 && emitted_at_ms < began)
}

/// Marks `entry` as republished (see [`republished`]): only updates carry the mark.
pub fn mark_republished(entry: &mut Entry) {
    if let Entry::Update { republished, .. } = entry {
        *republished = true;
    }
}

/// Marks a running replay as stalled (its records stopped coming: see
/// [`livescore_domain::quiet_allowed`]), with the replay entry that tells its viewers; `None`
/// for a replay that is not running, or already marked.
pub fn stall(current: &StoredMatch) -> Option<(StoredMatch, Vec<Entry>)> {
    if current.replay.status != ReplayStatus::Running || current.replay.stalled {
        return None;
    }
    let mut stored = current.clone();
    stored.replay.stalled = true;
    let entries = vec![Entry::Replay {
        replay: stored.replay,
    }];
    Some((stored, entries))
}

/// True when the games list shows something new: the scoreboard, the latest incident or the
/// replay changed.
pub fn summary_changed(before: Option<&StoredMatch>, after: &StoredMatch) -> bool {
    match before {
        None => true,
        Some(before) => {
            before.replay != after.replay
                || Headline::of(&before.fold.state) != Headline::of(&after.fold.state)
                || before.fold.state.incidents.last() != after.fold.state.incidents.last()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use livescore_domain::{MatchInfo, Speed, TeamRef};

    fn info() -> MatchInfo {
        let team = |id, name: &str| TeamRef {
            id,
            name: name.into(),
        };
        MatchInfo::of_teams(1, team(1, "H"), team(2, "A"))
    }

    fn record(run: u64, seq: u64, body: Body) -> Envelope {
        Envelope {
            match_id: 1,
            run,
            seq,
            emitted_at_ms: 0,
            body,
        }
    }

    fn started(run: u64) -> Envelope {
        record(
            run,
            0,
            Body::Control(Control::Started {
                info: Box::new(info()),
                speed: Speed::Max,
                events: 0,
            }),
        )
    }

    fn applied(step: Step) -> (StoredMatch, Vec<Entry>) {
        match step {
            Step::Applied { stored, entries } => (*stored, entries),
            other => panic!("expected Applied, got {other:?}"),
        }
    }

    #[test]
    fn a_run_starts_with_a_snapshot_and_replays_go_on_in_order() {
        let (stored, entries) = applied(apply(None, &started(5)));
        assert!(matches!(entries[..], [Entry::Snapshot { .. }]));
        let paused = record(5, 1, Body::Control(Control::Paused));
        let (paused_match, entries) = applied(apply(Some(&stored), &paused));
        assert_eq!(paused_match.replay.status, ReplayStatus::Paused);
        assert_eq!(paused_match.position(), (5, 1));
        assert!(matches!(entries[..], [Entry::Replay { .. }]));
        assert!(summary_changed(Some(&stored), &paused_match));
    }

    #[test]
    fn records_applied_before_are_skipped() {
        let (stored, _) = applied(apply(None, &started(5)));
        let (stored, _) = applied(apply(
            Some(&stored),
            &record(5, 1, Body::Control(Control::Paused)),
        ));
        for old in [
            started(5),
            started(4),
            record(5, 1, Body::Control(Control::Resumed)),
            record(4, 9, Body::Control(Control::Resumed)),
        ] {
            assert_eq!(apply(Some(&stored), &old), Step::AlreadyApplied, "{old:?}");
        }
    }

    #[test]
    fn a_new_run_starts_afresh_and_records_without_a_run_are_refused() {
        let (stored, _) = applied(apply(None, &started(5)));
        let (restarted, _) = applied(apply(Some(&stored), &started(6)));
        assert_eq!(restarted.position(), (6, 0));
        let orphan = record(7, 3, Body::Control(Control::Paused));
        assert_eq!(apply(Some(&restarted), &orphan), Step::NoRun);
        assert_eq!(apply(None, &orphan), Step::NoRun);
    }

    #[test]
    fn a_record_after_missing_ones_is_a_gap_not_applied() {
        let (stored, _) = applied(apply(None, &started(5)));
        let skipped_ahead = record(5, 3, Body::Control(Control::Paused));
        assert_eq!(
            apply(Some(&stored), &skipped_ahead),
            Step::Gap { expected: 1 }
        );
    }

    #[test]
    fn a_gap_accepted_as_lost_is_counted_in_the_replay() {
        let (stored, _) = applied(apply(None, &started(5)));
        let skipped_ahead = record(5, 4, Body::Control(Control::Paused));
        let (after, _) = applied(apply_despite_gap(Some(&stored), &skipped_ahead));
        assert_eq!(after.position(), (5, 4));
        assert_eq!(after.replay.lost_records, 3, "seq 1, 2 and 3 never came");
        assert_eq!(after.replay.status, ReplayStatus::Paused);
    }

    #[test]
    fn a_failed_replay_ends_the_match_even_after_missing_records() {
        let (stored, _) = applied(apply(None, &started(5)));
        let failed = record(
            5,
            10,
            Body::Control(Control::Failed {
                reason: "the log timed out".into(),
            }),
        );
        let (after, entries) = applied(apply(Some(&stored), &failed));
        assert_eq!(after.replay.status, ReplayStatus::Failed);
        assert_eq!(after.replay.lost_records, 9);
        assert!(matches!(
            entries[..],
            [Entry::Replay { replay }] if replay.status == ReplayStatus::Failed
        ));
        assert!(
            summary_changed(Some(&stored), &after),
            "the games list shows it"
        );
    }

    #[test]
    fn a_running_replay_is_marked_stalled_once_and_the_next_record_clears_it() {
        let (running, _) = applied(apply(None, &started(5)));
        let (stalled, entries) = stall(&running).expect("a running replay can stall");
        assert!(stalled.replay.stalled);
        assert_eq!(
            stalled.position(),
            running.position(),
            "no record was applied"
        );
        assert!(matches!(
            entries[..],
            [Entry::Replay { replay }] if replay.stalled
        ));
        assert!(
            summary_changed(Some(&running), &stalled),
            "the games list shows it"
        );
        assert_eq!(stall(&stalled), None, "marked once");

        let (live, entries) = applied(apply(
            Some(&stalled),
            &record(
                5,
                1,
                Body::Control(Control::SpeedChanged { speed: Speed::Max }),
            ),
        ));
        assert!(!live.replay.stalled, "a record came");
        assert!(matches!(
            entries[..],
            [Entry::Replay { replay }] if !replay.stalled
        ));

        let (paused, _) = applied(apply(
            Some(&live),
            &record(5, 2, Body::Control(Control::Paused)),
        ));
        assert_eq!(stall(&paused), None, "a paused replay is quiet on purpose");
    }

    #[test]
    fn a_stalled_replay_travels_as_before_when_it_is_not() {
        let (running, _) = applied(apply(None, &started(5)));
        let json = serde_json::to_string(&running.replay).unwrap();
        assert!(!json.contains("stalled"), "{json}");
        let (stalled, _) = stall(&running).unwrap();
        let json = serde_json::to_string(&stalled.replay).unwrap();
        assert!(json.contains("\"stalled\":true"), "{json}");
    }
}
