//! What the store holds for each match, and what it hands to the API: the stored fold, the
//! list-level summary, and the entries of the per-match log that clients receive.

use livescore_domain::state::Incident;
use livescore_domain::{Headline, MatchFold, MatchInfo, MatchState, ReplayStatus, Speed, Update};
use livescore_wire::{Cursor, Kind, Topic};
use serde::{Deserialize, Serialize};

/// Where a match's replay stands, as viewers see it.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ReplayInfo {
    pub run: u64,
    pub status: ReplayStatus,
    pub speed: Speed,
    /// Records of the run that the event log lost for good (the projector read it again and
    /// they never came, or the producer failed before writing them): 0 when nothing is missing.
    #[serde(default)]
    pub lost_records: u64,
    /// Running, but no record has come for longer than its speed allows
    /// ([`livescore_domain::quiet_allowed`]): something upstream failed. Shown as delayed, not
    /// live, until records come again. Left out of the JSON when false.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub stalled: bool,
}

/// One match as the projector stores it: the fold (state and tallies), the replay, and the
/// `(run, seq)` of the last record applied, which makes applying idempotent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredMatch {
    pub run: u64,
    pub seq: u64,
    pub replay: ReplayInfo,
    pub fold: MatchFold,
}

impl StoredMatch {
    pub fn position(&self) -> (u64, u64) {
        (self.run, self.seq)
    }

    /// The games-list line; `emitted_at_ms` is when the producer sent the latest record behind it.
    pub fn summary(&self, updated_at_ms: u64, emitted_at_ms: u64) -> MatchSummary {
        let latest = self.fold.state.incidents.last().cloned();
        // The list shows only its latest incident's players: the nicknames of both squads
        // would go out with every change of every game.
        let named = latest.iter().flat_map(|incident| incident.detail.players());
        MatchSummary {
            match_id: self.fold.state.info.match_id,
            info: self.fold.state.info.naming(named),
            headline: Headline::of(&self.fold.state),
            latest,
            replay: self.replay,
            updated_at_ms,
            emitted_at_ms,
            republished: false,
        }
    }
}

/// A line of the games list: who plays, the scoreboard, and the replay.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct MatchSummary {
    pub match_id: u64,
    /// The match's info; of its nicknames, only those of the players `latest` names.
    pub info: MatchInfo,
    pub headline: Headline,
    /// The latest goal, card or substitution, for the scoreboard's line under the score.
    pub latest: Option<Incident>,
    pub replay: ReplayInfo,
    /// Unix milliseconds of the last change.
    pub updated_at_ms: u64,
    /// Unix milliseconds at which the producer emitted the latest record that changed this line:
    /// a viewer's end-to-end latency is its clock minus this (the load test measures it).
    #[serde(default)]
    pub emitted_at_ms: u64,
    /// The change comes from a record emitted before the store's epoch began (a rebuild from
    /// the event log): not news. Clients do not alert for it. Left out of the JSON when false.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub republished: bool,
}

/// One entry of a match's log, as clients receive it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum Entry {
    /// The whole state: the first entry of a run (a replay started or restarted).
    Snapshot {
        state: Box<MatchState>,
        replay: ReplayInfo,
    },
    /// A change a viewer can see (see `livescore_domain::Update`), and the Unix milliseconds at
    /// which the producer emitted the record it comes from (for end-to-end latency).
    Update {
        update: Box<Update>,
        #[serde(default)]
        emitted_at_ms: u64,
        /// From a record emitted before the store's epoch began: the store was rebuilt from the
        /// event log, and viewers saw this when it happened. Clients show it but do not alert.
        /// Left out of the JSON when false.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        republished: bool,
    },
    /// The replay was paused, resumed, sped up, stopped or finished.
    Replay { replay: ReplayInfo },
}

/// A log entry as the store takes it: its JSON, encoded once, and the kind its writer knows, so
/// that nobody reads the JSON again to learn it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncodedEntry {
    pub kind: Kind,
    pub json: String,
}

impl Entry {
    pub fn kind(&self) -> Kind {
        match self {
            Entry::Snapshot { .. } => Kind::Snapshot,
            Entry::Update { .. } => Kind::Update,
            Entry::Replay { .. } => Kind::Replay,
        }
    }

    pub fn encode(&self) -> EncodedEntry {
        EncodedEntry {
            kind: self.kind(),
            json: self.to_json(),
        }
    }

    pub fn to_json(&self) -> String {
        // Entries hold only strings, numbers and derived types: serializing cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// Everything one projector step writes for one match, atomically.
#[derive(Debug, Clone, PartialEq)]
pub struct MatchWrite {
    /// The `(run, seq)` the writer's copy was at, `None` if the match was not in the store: if
    /// the store holds something else, another writer got there first and nothing is written.
    pub expected: Option<(u64, u64)>,
    pub stored: StoredMatch,
    /// New log entries, in order, each serialized once.
    pub entries: Vec<EncodedEntry>,
    /// The new summary when the headline or the replay changed (it also goes to the feed).
    pub summary: Option<MatchSummary>,
    /// Where the write stands in the event log, for the projector to tell that the store lost
    /// writes; `None` for writes from outside a log (tests).
    pub mark: Option<LogMark>,
}

/// What a write says about its partition of the event log.
///
/// The store keeps, per partition, how far it reflects the partition ([`Reflected`]). Each write
/// raises the offset to `through`, counts itself, and is refused with [`WriteOutcome::Behind`]
/// if the store's count is not `writes_before`, what the writer saw it take: the store then
/// lost writes (restored from an older snapshot, a lagging replica promoted, an append-only
/// file cut short by a host crash), and the writer reads the partition again after the offset
/// the store still reflects. Per partition rather than per match, so that a match that will get
/// no more records (it ended), or that the store lost whole, is healed too; counted, so that a
/// lost write is seen even when a later write of the same batch was kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogMark {
    pub partition: i32,
    /// Every record of the partition up to this offset is reflected once the write is in.
    pub through: i64,
    /// How many marked writes of the partition the writer saw the store take before this one.
    pub writes_before: u64,
}

/// How far the store reflects one partition of the event log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reflected {
    /// Every record of the partition up to this offset is reflected (-1: none).
    pub through: i64,
    /// How many marked writes of the partition the store holds.
    pub writes: u64,
}

impl Reflected {
    /// A partition no write has marked.
    pub const NONE: Reflected = Reflected {
        through: -1,
        writes: 0,
    };
}

impl MatchWrite {
    pub fn match_id(&self) -> u64 {
        self.stored.fold.state.info.match_id
    }

    /// The summary as it goes into the feed and the games list, serialized once.
    pub(crate) fn summary_json(&self) -> Option<String> {
        // A summary holds only strings, numbers and derived types: serializing cannot fail.
        self.summary
            .as_ref()
            .map(|summary| serde_json::to_string(summary).unwrap_or_default())
    }
}

/// What became of a [`MatchWrite`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WriteOutcome {
    /// Written; the cursors of the new log entries, in order.
    Written { cursors: Vec<Cursor> },
    /// The store holds another `(run, seq)` than expected: reload and try again.
    Conflict,
    /// The store is not the one the writer knew (it lost its data, or was cleared): rebuild.
    EpochChanged,
    /// The store holds another count of writes for the partition than the writer saw: it lost
    /// writes. Nothing was written; read the partition again after `reflected.through`.
    Behind { reflected: Reflected },
}

/// An entry as it is pushed live: its topic, its cursor in the stream, its kind, and its JSON,
/// serialized once for every client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Published {
    pub topic: Topic,
    pub cursor: Cursor,
    pub kind: Kind,
    pub json: std::sync::Arc<str>,
}

impl Published {
    /// An entry of `topic` as the store holds it, with the kind it was written with. A feed
    /// entry is a game line; a match entry stored without its kind (by a store from before
    /// writers named it) has it read from its `kind` tag, and one with neither is corrupt.
    pub fn stored(
        topic: Topic,
        cursor: Cursor,
        kind: Option<Kind>,
        json: std::sync::Arc<str>,
    ) -> Result<Published, livescore_wire::WireError> {
        let kind = match (topic, kind) {
            (_, Some(kind)) => kind,
            (Topic::Feed, None) => Kind::Game,
            (Topic::Match(_), None) => Kind::of_entry(topic, &json)?,
        };
        Ok(Published {
            topic,
            cursor,
            kind,
            json,
        })
    }
}

/// What a store subscription delivers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Live {
    /// A new entry, as it was written.
    Entry(Published),
    /// The subscription was interrupted (Redis connection lost and re-established): entries may
    /// have been missed, and readers should catch up from the streams with their cursors.
    Interrupted,
}

/// The answer to "what came after this cursor?".
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogRead {
    /// Everything after the cursor, in order (possibly nothing).
    After(Vec<Published>),
    /// The cursor is not in the retained log (trimmed, or never handed out by this store): the
    /// client needs a fresh snapshot.
    Unknown,
    /// More entries than the reader's limit follow the cursor: a snapshot serves it better.
    TooMany,
    /// The cursor is from before the store's epoch began: the store lost its data since and was
    /// rebuilt from the event log. The client needs a fresh snapshot.
    Rebuilt,
}

/// A topic as it stands, with the cursor of the last entry it reflects: a client shows it, then
/// follows the topic after that cursor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    /// `None` when the topic's stream has no entry yet.
    pub cursor: Option<Cursor>,
    /// For a match, a `snapshot` [`Entry`]; for the feed, `{"kind": "snapshot", "games": [...]}`
    /// with every game's summary.
    pub json: String,
}

/// The feed's snapshot: every game's summary, most recently changed first.
pub fn games_snapshot_json(games: &[MatchSummary]) -> String {
    serde_json::json!({ "kind": "snapshot", "games": games }).to_string()
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use livescore_domain::TeamRef;
    use livescore_domain::state::{Card, Clock, IncidentDetail, Player, Side};

    use super::*;

    #[test]
    fn the_games_list_carries_only_the_nicknames_its_latest_incident_shows() {
        let team = |id, name: &str| TeamRef {
            id,
            name: name.into(),
        };
        let mut info = MatchInfo::of_teams(1, team(1, "Home"), team(2, "Away"));
        info.nicknames = BTreeMap::from([(10, "Ten".to_owned()), (11, "Eleven".to_owned())]);
        let mut stored = StoredMatch {
            run: 1,
            seq: 0,
            replay: ReplayInfo {
                run: 1,
                status: ReplayStatus::Running,
                speed: Speed::Max,
                lost_records: 0,
                stalled: false,
            },
            fold: MatchFold::new(info.clone()),
        };
        assert!(
            stored.summary(0, 0).info.nicknames.is_empty(),
            "no incident yet"
        );

        stored.fold.state.incidents.push(Incident {
            id: "card".into(),
            period: 1,
            clock: Clock {
                minute: 9,
                added: 0,
            },
            side: Side::Home,
            detail: IncidentDetail::Card {
                player: Player {
                    id: 11,
                    name: "Eleven In Full".into(),
                },
                card: Card::Yellow,
            },
        });
        let summary = stored.summary(0, 0);
        assert_eq!(
            summary.info.nicknames,
            BTreeMap::from([(11, "Eleven".to_owned())])
        );
        assert_eq!(
            stored.fold.state.info.nicknames, info.nicknames,
            "the match keeps them all"
        );
    }
}
