//! Who is watching: each match's viewers and the site's, across every replica.
//!
//! Once a window (`PRESENCE_INTERVAL_MS`, 2 s by default), halfway through it, the replica asks
//! each shard's engine how many sockets it holds and how many follow each topic, adds those
//! counts to the store's window, and reads the window before, which every replica has added to
//! by then (`livescore_store::presence`). The sum is what the REST routes show
//! (`GET /games`, `GET /games/{id}`: `presence`). Viewers get it as a `presence` message on the
//! topics they follow: at most every [`PUSH_EVERY`], and only for topics whose counts changed.
//! A viewer who joins a topic gets the latest one straight after its first message.
//!
//! What it costs: per window, one message per shard (the counts), one store round trip to add
//! and one to read, whatever the number of viewers; per push, one message per changed topic,
//! fanned out as every entry is.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use livescore_store::presence::{SITE, window_of};
use livescore_store::{Kind, MatchStore, Topic, now_ms};
use serde::Serialize;

use crate::fanout::EngineHandle;
use crate::hub::Hub;
use crate::message::Message;
use crate::metrics::Metrics;

/// Viewers get a topic's counts at most this often (and only when they changed as shown).
pub const PUSH_EVERY: Duration = Duration::from_secs(5);

/// A count as a screen shows it, to two significant figures (87, 1,200, 35,000): viewers get a
/// new count only when this changes, so that a big audience coming and going does not send
/// each of its members a message every few seconds. (The message carries the exact count.)
pub fn as_shown(count: u64) -> u64 {
    let mut scale = 1;
    while count / scale >= 100 {
        scale *= 10;
    }
    count / scale * scale
}

/// How long a shard may take to answer with its counts before the window goes without them.
const COUNT_TIMEOUT: Duration = Duration::from_millis(500);

/// What one replica's shards hold, or what every replica's add up to.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counts {
    /// Connections (SSE streams and WebSockets), whatever they follow.
    pub site: u64,
    /// Followers of each topic.
    pub topics: HashMap<Topic, u64>,
}

impl Counts {
    /// How many follow `topic`.
    pub fn watching(&self, topic: Topic) -> u64 {
        self.topics.get(&topic).copied().unwrap_or(0)
    }

    /// Adds another shard's counts.
    pub fn add(&mut self, other: &Counts) {
        self.site += other.site;
        for (topic, count) in &other.topics {
            *self.topics.entry(*topic).or_insert(0) += count;
        }
    }

    /// As the store's fields: `site`, then one per topic.
    pub fn fields(&self) -> Vec<(String, u64)> {
        std::iter::once((SITE.to_owned(), self.site))
            .chain(
                self.topics
                    .iter()
                    .map(|(topic, count)| (topic.to_string(), *count)),
            )
            .collect()
    }

    /// From the store's fields; one that is neither `site` nor a topic is not counted.
    pub fn of_fields(fields: &HashMap<String, u64>) -> Counts {
        let mut counts = Counts::default();
        for (field, count) in fields {
            if field == SITE {
                counts.site = *count;
            } else if let Ok(topic) = field.parse::<Topic>()
                && *count > 0
            {
                counts.topics.insert(topic, *count);
            }
        }
        counts
    }

    /// A match's line as the REST routes show it.
    pub fn of_match(&self, match_id: u64) -> Watching {
        Watching {
            watching: self.watching(Topic::Match(match_id)),
            site: self.site,
        }
    }

    /// The `presence` message of a match: `{"kind":"presence","watching","site"}`.
    pub fn match_message_json(&self, match_id: u64) -> String {
        serde_json::json!({
            "kind": Kind::Presence,
            "watching": self.watching(Topic::Match(match_id)),
            "site": self.site,
        })
        .to_string()
    }

    /// The games list's `presence` message: `{"kind":"presence","site","games":{"<id>": n}}`,
    /// with the counts of `games` (0 for a game nobody watches any more). The list's viewers
    /// get every watched game's count when they join, then only the games whose count changed:
    /// with a thousand matches live, the whole set would be some 15 KB to every list viewer
    /// at every push.
    pub fn list_message_json(&self, games: impl IntoIterator<Item = u64>) -> String {
        let games: serde_json::Map<String, serde_json::Value> = games
            .into_iter()
            .map(|id| (id.to_string(), self.watching(Topic::Match(id)).into()))
            .collect();
        serde_json::json!({ "kind": Kind::Presence, "site": self.site, "games": games }).to_string()
    }

    /// The games watched now, for a list viewer who joins.
    pub fn watched_games(&self) -> impl Iterator<Item = u64> + '_ {
        self.topics.keys().filter_map(|topic| match topic {
            Topic::Match(id) => Some(*id),
            Topic::Feed => None,
        })
    }
}

/// How many are watching a match, and the site, as `GET /games` and `GET /games/{id}` show it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Watching {
    /// Viewers following the match, on every replica.
    pub watching: u64,
    /// Viewers of the site, on every replica.
    pub site: u64,
}

/// The replica's view of who is watching.
pub struct Presence {
    interval: Duration,
    /// Every replica's counts, as of the last window read.
    totals: RwLock<Arc<Counts>>,
    /// The last `presence` message pushed per topic, for viewers who join it.
    latest: RwLock<HashMap<Topic, Arc<Message>>>,
    /// The shards' engines, asked for their counts each window.
    engines: Mutex<Vec<EngineHandle>>,
}

impl Presence {
    pub fn new(interval: Duration) -> Arc<Presence> {
        Arc::new(Presence {
            interval: interval.max(Duration::from_millis(10)),
            totals: RwLock::default(),
            latest: RwLock::default(),
            engines: Mutex::default(),
        })
    }

    /// Every replica's counts, as of the last window read.
    pub fn totals(&self) -> Arc<Counts> {
        Arc::clone(&self.totals.read().unwrap_or_else(|p| p.into_inner()))
    }

    /// The last `presence` message of `topic`, if any went out.
    pub(crate) fn latest(&self, topic: Topic) -> Option<Arc<Message>> {
        let latest = self.latest.read().unwrap_or_else(|p| p.into_inner());
        latest.get(&topic).cloned()
    }

    /// A shard's engine, counted from the next window on.
    pub(crate) fn attach(&self, engine: EngineHandle) {
        self.engines
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(engine);
    }

    /// This replica's counts: every shard's, summed. A shard that does not answer in time
    /// (stopped, or far behind) is left out of this window.
    async fn own(&self) -> Counts {
        let engines = self
            .engines
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let mut counts = Counts::default();
        for engine in engines {
            if let Ok(Ok(shard)) = tokio::time::timeout(COUNT_TIMEOUT, engine.count()).await {
                counts.add(&shard);
            }
        }
        counts
    }

    /// Runs for ever: adds this replica's counts each window, reads everyone's, and pushes
    /// what changed to the viewers through `hub`.
    pub async fn run(
        self: Arc<Self>,
        store: Arc<dyn MatchStore>,
        hub: Arc<Hub>,
        metrics: Arc<Metrics>,
    ) {
        let interval_ms = u64::try_from(self.interval.as_millis()).unwrap_or(u64::MAX);
        // A window is kept for three: long enough for the slowest reader, then it goes.
        let ttl = self.interval * 3;
        let mut pushed = Counts::default();
        let mut pushed_at: Option<tokio::time::Instant> = None;
        loop {
            // Halfway through the next window: the window before is complete by then.
            let now = now_ms();
            let window = window_of(now, interval_ms) + 1;
            let halfway = window * interval_ms + interval_ms / 2;
            tokio::time::sleep(Duration::from_millis(halfway.saturating_sub(now))).await;
            let own = self.own().await;
            let added = store.add_presence(window, &own.fields(), ttl).await;
            let read = match added {
                Ok(()) => store.presence(window - 1).await,
                Err(err) => Err(err),
            };
            let totals = match read {
                Ok(fields) => Counts::of_fields(&fields),
                Err(err) => {
                    tracing::warn!("presence: the store did not answer: {err}");
                    metrics.presence_failures.inc();
                    continue;
                }
            };
            metrics.presence_site_viewers.set(totals.site as i64);
            *self.totals.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(totals.clone());
            let due = pushed_at.is_none_or(|at| at.elapsed() >= PUSH_EVERY);
            if due {
                let sent = self.push(&hub, &pushed, &totals);
                if sent > 0 {
                    metrics.presence_messages.inc_by(sent);
                    pushed = totals;
                    pushed_at = Some(tokio::time::Instant::now());
                }
            }
        }
    }

    /// Sends a `presence` message on each match whose count changed as shown ([`as_shown`])
    /// from `before` to `now` (a change of the site's count changes every match's), and one on
    /// the list naming those matches; returns how many.
    fn push(&self, hub: &Hub, before: &Counts, now: &Counts) -> u64 {
        let site_changed = as_shown(before.site) != as_shown(now.site);
        let shown = |counts: &Counts, id| as_shown(counts.watching(Topic::Match(id)));
        let changed_games: BTreeSet<u64> = now
            .watched_games()
            .chain(before.watched_games())
            .filter(|id| site_changed || shown(before, *id) != shown(now, *id))
            .collect();
        if !site_changed && changed_games.is_empty() {
            return 0;
        }
        let presence = |topic, json: String| Message::new(topic, None, Kind::Presence, json.into());
        let mut latest = self.latest.write().unwrap_or_else(|p| p.into_inner());
        for &id in &changed_games {
            let topic = Topic::Match(id);
            let message = presence(topic, now.match_message_json(id));
            if now.watching(topic) == 0 {
                latest.remove(&topic);
            } else {
                latest.insert(topic, Arc::clone(&message));
            }
            hub.publish(message);
        }
        // The list's followers get the games that changed; one who joins gets them all.
        let joining = presence(Topic::Feed, now.list_message_json(now.watched_games()));
        latest.insert(Topic::Feed, joining);
        let changed = now.list_message_json(changed_games.iter().copied());
        hub.publish(presence(Topic::Feed, changed));
        changed_games.len() as u64 + 1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counts(site: u64, topics: &[(Topic, u64)]) -> Counts {
        Counts {
            site,
            topics: topics.iter().copied().collect(),
        }
    }

    #[test]
    fn counts_go_to_the_store_and_back_as_fields() {
        let own = counts(5, &[(Topic::Feed, 2), (Topic::Match(7), 3)]);
        let fields: HashMap<String, u64> = own.fields().into_iter().collect();
        assert_eq!(fields["site"], 5);
        assert_eq!(fields["game:7"], 3);
        assert_eq!(Counts::of_fields(&fields), own);
        let odd: HashMap<String, u64> = [("site".into(), 1), ("nonsense".into(), 9)].into();
        assert_eq!(Counts::of_fields(&odd), counts(1, &[]));
    }

    #[test]
    fn shards_add_up() {
        let mut total = counts(1, &[(Topic::Match(7), 1)]);
        total.add(&counts(2, &[(Topic::Match(7), 2), (Topic::Match(8), 1)]));
        assert_eq!(
            total,
            counts(3, &[(Topic::Match(7), 3), (Topic::Match(8), 1)])
        );
        assert_eq!(
            total.of_match(7),
            Watching {
                watching: 3,
                site: 3
            }
        );
        assert_eq!(
            total.of_match(9),
            Watching {
                watching: 0,
                site: 3
            }
        );
    }

    #[test]
    fn counts_are_shown_to_two_significant_figures() {
        for (count, shown) in [
            (0, 0),
            (7, 7),
            (99, 99),
            (100, 100),
            (123, 120),
            (1_234, 1_200),
            (35_071, 35_000),
            (1_999_999, 1_900_000),
        ] {
            assert_eq!(as_shown(count), shown, "{count}");
        }
    }

    #[test]
    fn messages_say_who_watches_a_match_and_the_matches_on_the_list() {
        let totals = counts(
            12,
            &[(Topic::Feed, 4), (Topic::Match(7), 5), (Topic::Match(8), 3)],
        );
        let json = |text: String| serde_json::from_str::<serde_json::Value>(&text).unwrap();
        assert_eq!(
            json(totals.match_message_json(7)),
            serde_json::json!({"kind": "presence", "watching": 5, "site": 12})
        );
        assert_eq!(
            json(totals.list_message_json(totals.watched_games())),
            serde_json::json!({"kind": "presence", "site": 12, "games": {"7": 5, "8": 3}})
        );
        // A change names only the games it is about, a game nobody watches any more with 0.
        assert_eq!(
            json(totals.list_message_json([8, 9])),
            serde_json::json!({"kind": "presence", "site": 12, "games": {"8": 3, "9": 0}})
        );
    }
}
