//! The loss check: after the run, read each topic's log once from the server (an SSE request
//! resuming from the earliest cursor any viewer started at) and compare every viewer with it.
//!
//! A viewer must have received exactly the entries after its snapshot's cursor, up to the end
//! of the topic (if it saw the replays end) or up to the last it saw (if the run was cut short).
//! With prefix counts and prefix sums of cursor hashes over the reference, that is two
//! subtractions per viewer, whatever the number of entries: no viewer keeps its entries.

use std::collections::BTreeMap;
use std::time::Duration;

use futures_util::StreamExt;
use serde::Serialize;

use livescore_wire::{Kind, sse};

use crate::client::{Cursor, Seen, Topic, cursor_hash};

/// One topic's log as the server holds it.
struct Reference {
    cursors: Vec<Cursor>,
    /// `prefix[i]` = sum of hashes of `cursors[..i]`.
    prefix: Vec<u64>,
}

impl Reference {
    fn new(cursors: Vec<Cursor>) -> Self {
        let mut prefix = Vec::with_capacity(cursors.len() + 1);
        prefix.push(0u64);
        for cursor in &cursors {
            let last = prefix.last().copied().unwrap_or(0);
            prefix.push(last.wrapping_add(cursor_hash(*cursor)));
        }
        Reference { cursors, prefix }
    }

    /// Count and hash sum of the entries in `(after, up_to]`.
    fn range(&self, after: Cursor, up_to: Cursor) -> (u64, u64) {
        let from = self.cursors.partition_point(|c| *c <= after);
        let to = self.cursors.partition_point(|c| *c <= up_to);
        if to <= from {
            return (0, 0);
        }
        (
            (to - from) as u64,
            self.prefix[to].wrapping_sub(self.prefix[from]),
        )
    }
}

/// What the check found, over all viewers.
#[derive(Debug, Default, Clone, Serialize)]
pub struct Integrity {
    pub viewers: u64,
    pub checked: u64,
    pub completed: u64,
    pub never_connected: u64,
    pub missing: u64,
    pub duplicated: u64,
    pub out_of_order: u64,
    pub mismatched: u64,
    pub resyncs: u64,
    pub problems: Vec<String>,
}

impl Integrity {
    pub fn clean(&self) -> bool {
        self.missing == 0
            && self.duplicated == 0
            && self.out_of_order == 0
            && self.mismatched == 0
            && self.resyncs == 0
            && self.problems.is_empty()
    }
}

/// Reads `topic` from `base`, resuming after `after`, until an entry at or past `until`. A
/// stream that breaks on the way (a replica restarting) is resumed after the last entry read,
/// as any viewer would.
async fn read_reference(
    http: &reqwest::Client,
    base: &str,
    topic: Topic,
    after: Cursor,
    until: Cursor,
) -> Result<Vec<Cursor>, String> {
    let mut cursors = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let mut last_problem = String::new();
    while tokio::time::Instant::now() < deadline {
        let from = cursors.last().copied().unwrap_or(after);
        match read_reference_once(http, base, topic, from, until, deadline, &mut cursors).await {
            Ok(()) => return Ok(cursors),
            Err(Broken::Fatal(problem)) => return Err(problem),
            Err(Broken::Again(problem)) => last_problem = problem,
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    Err(format!(
        "{topic:?}: the reference log did not reach {until:?} within 60 s ({last_problem})"
    ))
}

/// Why one reading of the reference stopped.
enum Broken {
    /// The stream broke or was refused: read again from where it stopped.
    Again(String),
    /// The server does not hold the start any more: there is no reference.
    Fatal(String),
}

async fn read_reference_once(
    http: &reqwest::Client,
    base: &str,
    topic: Topic,
    after: Cursor,
    until: Cursor,
    deadline: tokio::time::Instant,
    cursors: &mut Vec<Cursor>,
) -> Result<(), Broken> {
    let response = http
        .get(format!("{base}{}", topic.sse_path()))
        .header("Last-Event-ID", after.to_string())
        .send()
        .await
        .and_then(reqwest::Response::error_for_status)
        .map_err(|err| Broken::Again(format!("cannot read the reference log: {err}")))?;
    let mut body = response.bytes_stream();
    let mut reader = sse::Reader::default();
    loop {
        let chunk = tokio::time::timeout_at(deadline, body.next())
            .await
            .map_err(|_| Broken::Again("the reference log stalled".into()))?;
        let Some(Ok(chunk)) = chunk else {
            return Err(Broken::Again("the reference stream broke".into()));
        };
        reader.push(&chunk);
        while let Some(event) = reader.next_event() {
            if event.kind() == Some(Kind::Snapshot) {
                return Err(Broken::Fatal(format!(
                    "{topic}: the server no longer holds cursor {after}: no reference"
                )));
            }
            if let Some(cursor) = event.cursor() {
                cursors.push(cursor);
                if cursor >= until {
                    return Ok(());
                }
            }
        }
    }
}

/// Per topic: the earliest start and the latest end any viewer saw.
type Spans = BTreeMap<Topic, (Cursor, Cursor)>;

fn spans(seen: &[Seen]) -> Spans {
    let mut spans = Spans::new();
    for viewer in seen {
        if let (Some(topic), Some(first), Some(last)) = (viewer.topic, viewer.first, viewer.last) {
            let span = spans.entry(topic).or_insert((first, last));
            span.0 = span.0.min(first);
            span.1 = span.1.max(last);
        }
    }
    spans
}

/// Compares every viewer with its topic's log, read from `base`.
pub async fn check(http: &reqwest::Client, base: &str, seen: &[Seen]) -> Integrity {
    let spans = spans(seen);
    let mut references = BTreeMap::new();
    let mut problems = Vec::new();
    for (topic, (first, last)) in &spans {
        if first == last {
            references.insert(*topic, Reference::new(Vec::new()));
            continue;
        }
        match read_reference(http, base, *topic, *first, *last).await {
            Ok(cursors) => {
                references.insert(*topic, Reference::new(cursors));
            }
            Err(problem) => problems.push(problem),
        }
    }
    let mut result = verify(seen, &spans, &references);
    result.problems.extend(problems);
    result
}

/// The check itself, given each topic's reference log.
fn verify(seen: &[Seen], spans: &Spans, references: &BTreeMap<Topic, Reference>) -> Integrity {
    let mut result = Integrity {
        viewers: seen.len() as u64,
        ..Integrity::default()
    };
    for viewer in seen {
        result.duplicated += viewer.duplicates;
        result.out_of_order += viewer.out_of_order;
        result.resyncs += viewer.resyncs;
        result.completed += u64::from(viewer.completed);
        if !viewer.connected_once {
            result.never_connected += 1;
        }
        let (Some(topic), Some(first), Some(last)) = (viewer.topic, viewer.first, viewer.last)
        else {
            continue;
        };
        let Some(reference) = references.get(&topic) else {
            continue;
        };
        // A viewer that saw the end must have everything up to the topic's end.
        let up_to = if viewer.completed {
            spans.get(&topic).map_or(last, |span| span.1)
        } else {
            last
        };
        let (count, hash) = reference.range(first, up_to);
        result.checked += 1;
        if viewer.count < count {
            result.missing += count - viewer.count;
        } else if viewer.count > count {
            result.duplicated += viewer.count - count;
        } else if viewer.hash != hash {
            result.mismatched += 1;
        }
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(ms: u64, seq: u64) -> Cursor {
        Cursor::new(ms, seq)
    }

    #[test]
    fn ranges_count_and_hash_the_entries_between_two_cursors() {
        let reference = Reference::new(vec![c(1, 0), c(1, 1), c(2, 0), c(3, 0)]);
        let (count, hash) = reference.range(c(1, 0), c(2, 0));
        assert_eq!(count, 2);
        assert_eq!(
            hash,
            cursor_hash(c(1, 1)).wrapping_add(cursor_hash(c(2, 0)))
        );
        assert_eq!(reference.range(c(3, 0), c(3, 0)), (0, 0));
        assert_eq!(reference.range(c(0, 0), c(9, 0)).0, 4);
    }

    /// A viewer that received `cursors` after a snapshot at `first`, and saw the end.
    fn viewer(first: Cursor, cursors: &[Cursor]) -> Seen {
        Seen {
            topic: Some(Topic::Feed),
            first: Some(first),
            last: cursors.last().copied().or(Some(first)),
            count: cursors.len() as u64,
            hash: cursors
                .iter()
                .fold(0u64, |sum, c| sum.wrapping_add(cursor_hash(*c))),
            completed: true,
            connected_once: true,
            ..Seen::default()
        }
    }

    #[test]
    fn a_viewer_that_missed_an_entry_or_got_another_is_caught() {
        let log = vec![c(1, 0), c(2, 0), c(3, 0), c(4, 0)];
        let references = BTreeMap::from([(Topic::Feed, Reference::new(log))]);
        let exact = viewer(c(1, 0), &[c(2, 0), c(3, 0), c(4, 0)]);
        let late = viewer(c(2, 0), &[c(3, 0), c(4, 0)]);
        let missed = viewer(c(1, 0), &[c(2, 0), c(4, 0)]);
        // As many entries as it should, but one of them is not the log's.
        let swapped = viewer(c(1, 0), &[c(2, 0), c(3, 5), c(4, 0)]);
        let seen = [exact, late];
        let clean = verify(&seen, &spans(&seen), &references);
        assert!(clean.clean() && clean.checked == 2, "{clean:?}");

        let seen = [
            missed.clone(),
            viewer(c(1, 0), &[c(2, 0), c(3, 0), c(4, 0)]),
        ];
        let result = verify(&seen, &spans(&seen), &references);
        assert_eq!(result.missing, 1);
        assert!(!result.clean());

        // The end it did not see counts as missing too.
        let mut stopped_early = viewer(c(1, 0), &[c(2, 0)]);
        stopped_early.completed = true;
        let seen = [stopped_early, viewer(c(1, 0), &[c(2, 0), c(3, 0), c(4, 0)])];
        assert_eq!(verify(&seen, &spans(&seen), &references).missing, 2);

        let seen = [swapped];
        assert_eq!(verify(&seen, &spans(&seen), &references).mismatched, 1);
    }
}
