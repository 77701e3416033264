//! The behaviour both match stores promise, run against each: the in-process store, and Redis
//! (REDIS_URL, default redis://127.0.0.1:6379; each test uses a key prefix of its own).

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use ::redis::AsyncCommands;

use livescore_domain::{MatchFold, MatchInfo, ReplayStatus, Speed, TeamRef};
use livescore_store::memory::MemoryStore;
use livescore_store::redis::{RedisConfig, RedisServer, RedisStore};
use livescore_store::{
    Cursor, EncodedEntry, Kind, LogMark, LogRead, MatchStore, MatchWrite, Published, Reflected,
    ReplayInfo, StoredMatch, Topic, WriteOutcome,
};

fn stored(match_id: u64, run: u64, seq: u64) -> StoredMatch {
    let team = |id, name: &str| TeamRef {
        id,
        name: name.into(),
    };
    let info = MatchInfo::of_teams(match_id, team(1, "Home"), team(2, "Away"));
    StoredMatch {
        run,
        seq,
        replay: ReplayInfo {
            run,
            status: ReplayStatus::Running,
            speed: Speed::Max,
            lost_records: 0,
            stalled: false,
        },
        fold: MatchFold::new(info),
    }
}

fn write(match_id: u64, expected: Option<(u64, u64)>, seq: u64, entries: &[&str]) -> MatchWrite {
    let stored = stored(match_id, 1, seq);
    let summary = stored.summary(seq, seq);
    MatchWrite {
        expected,
        stored,
        // The writer names each entry's kind; these test entries carry theirs in their tag.
        entries: entries
            .iter()
            .map(|json| EncodedEntry {
                kind: Kind::of_entry(Topic::Match(match_id), json).unwrap(),
                json: json.to_string(),
            })
            .collect(),
        summary: Some(summary),
        mark: None,
    }
}

fn written(outcome: WriteOutcome) -> Vec<Cursor> {
    match outcome {
        WriteOutcome::Written { cursors } => cursors,
        other => panic!("expected a write, got {other:?}"),
    }
}

fn jsons(read: LogRead) -> Vec<String> {
    match read {
        LogRead::After(entries) => entries.iter().map(|e| e.json.to_string()).collect(),
        other => panic!("expected entries, got {other:?}"),
    }
}

async fn writes_check_the_expected_position(store: &dyn MatchStore) {
    let epoch = store.epoch().await.unwrap();
    assert_eq!(store.epoch().await.unwrap(), epoch, "the epoch is stable");
    assert_eq!(store.load(5).await.unwrap(), None);

    written(
        store
            .write(&epoch, &write(5, None, 0, &[r#"{"kind":"update","n":0}"#]))
            .await
            .unwrap(),
    );
    assert_eq!(store.load(5).await.unwrap(), Some(stored(5, 1, 0)));
    // A second writer that also thought the match was new loses.
    let outcome = store
        .write(&epoch, &write(5, None, 0, &[r#"{"kind":"update","n":0}"#]))
        .await
        .unwrap();
    assert_eq!(outcome, WriteOutcome::Conflict);
    let outcome = store
        .write(&epoch, &write(5, Some((1, 7)), 8, &[]))
        .await
        .unwrap();
    assert_eq!(outcome, WriteOutcome::Conflict);
    written(
        store
            .write(
                &epoch,
                &write(5, Some((1, 0)), 1, &[r#"{"kind":"update","n":1}"#]),
            )
            .await
            .unwrap(),
    );
    assert_eq!(store.load(5).await.unwrap().unwrap().seq, 1);
    // Nothing of a refused write was kept.
    assert_eq!(
        jsons(
            store
                .read_after(Topic::Match(5), None, usize::MAX)
                .await
                .unwrap()
        ),
        vec![r#"{"kind":"update","n":0}"#, r#"{"kind":"update","n":1}"#]
    );
    let outcome = store
        .write("another epoch", &write(5, Some((1, 1)), 2, &[]))
        .await
        .unwrap();
    assert_eq!(outcome, WriteOutcome::EpochChanged);
}

async fn entries_are_published_and_read_back_by_cursor(store: &dyn MatchStore) {
    let epoch = store.epoch().await.unwrap();
    let mut live = store.subscribe().await.unwrap();
    let entries = [
        r#"{"kind":"update","n":1}"#,
        r#"{"kind":"update","n":2}"#,
        r#"{"kind":"update","n":3}"#,
    ];
    let cursors = written(
        store
            .write(&epoch, &write(9, None, 0, &entries))
            .await
            .unwrap(),
    );
    assert_eq!(cursors.len(), 3);

    // Live: the three entries then the feed summary, each with its cursor.
    let mut received = Vec::new();
    while received.len() < 4 {
        let live = tokio::time::timeout(Duration::from_secs(10), live.recv())
            .await
            .expect("published in time")
            .unwrap();
        match live {
            livescore_store::Live::Entry(published) => received.push(published),
            livescore_store::Live::Interrupted => panic!("no interruption here"),
        }
    }
    let match_entries: Vec<_> = received
        .iter()
        .filter(|p| p.topic == Topic::Match(9))
        .collect();
    assert_eq!(
        match_entries.iter().map(|p| p.cursor).collect::<Vec<_>>(),
        cursors
    );
    assert_eq!(&*match_entries[1].json, entries[1]);
    assert!(
        received
            .iter()
            .any(|p| p.topic == Topic::Feed && p.json.contains("\"match_id\":9"))
    );

    // Read back: after the first cursor come the other two.
    let after_first = jsons(
        store
            .read_after(Topic::Match(9), Some(cursors[0]), usize::MAX)
            .await
            .unwrap(),
    );
    assert_eq!(after_first, vec![entries[1], entries[2]]);
    let after_last = jsons(
        store
            .read_after(Topic::Match(9), Some(cursors[2]), usize::MAX)
            .await
            .unwrap(),
    );
    assert!(after_last.is_empty());
    // A reader that sets a limit gets the entries if there are at most that many, and is told
    // when there are more.
    let limited = |cursor, limit| store.read_after(Topic::Match(9), cursor, limit);
    assert_eq!(
        jsons(limited(Some(cursors[0]), 2).await.unwrap()),
        vec![entries[1], entries[2]]
    );
    assert_eq!(
        limited(Some(cursors[0]), 1).await.unwrap(),
        LogRead::TooMany
    );
    assert_eq!(limited(None, 2).await.unwrap(), LogRead::TooMany);
    assert_eq!(jsons(limited(None, 3).await.unwrap()).len(), 3);
    assert_eq!(jsons(limited(Some(cursors[2]), 0).await.unwrap()).len(), 0);
    // Before the epoch began (so before the first entry), after the last: not cursors this
    // store handed out; the first is from an earlier lifetime of the store.
    for (cursor, read) in [
        (Cursor::new(0, 1), LogRead::Rebuilt),
        (Cursor::new(99_999_999_999_999, 0), LogRead::Unknown),
    ] {
        assert_eq!(
            store
                .read_after(Topic::Match(9), Some(cursor), usize::MAX)
                .await
                .unwrap(),
            read,
            "{cursor:?}"
        );
    }
    let list = store.list().await.unwrap();
    assert_eq!(list.iter().map(|s| s.match_id).collect::<Vec<_>>(), vec![9]);

    // Snapshots carry the cursor of the last entry they reflect.
    let snapshot = store.snapshot(Topic::Match(9)).await.unwrap().unwrap();
    assert_eq!(snapshot.cursor, Some(cursors[2]));
    let entry: livescore_store::Entry = serde_json::from_str(&snapshot.json).unwrap();
    assert!(matches!(entry, livescore_store::Entry::Snapshot { .. }));
    let feed = store.snapshot(Topic::Feed).await.unwrap().unwrap();
    assert!(feed.cursor.is_some());
    let games: serde_json::Value = serde_json::from_str(&feed.json).unwrap();
    assert_eq!(games["games"][0]["match_id"], 9);
    assert_eq!(store.snapshot(Topic::Match(404)).await.unwrap(), None);
}

async fn each_entry_keeps_the_kind_it_was_written_with(store: &dyn MatchStore) {
    let epoch = store.epoch().await.unwrap();
    let mut live = store.subscribe().await.unwrap();
    let entries = [r#"{"kind":"replay","n":1}"#, r#"{"kind":"update","n":2}"#];
    store
        .write(&epoch, &write(4, None, 0, &entries))
        .await
        .unwrap();
    let kinds = |published: &[Published]| published.iter().map(|p| p.kind).collect::<Vec<_>>();
    let LogRead::After(read) = store
        .read_after(Topic::Match(4), None, usize::MAX)
        .await
        .unwrap()
    else {
        panic!("the log of match 4 is there");
    };
    assert_eq!(kinds(&read), [Kind::Replay, Kind::Update]);
    let LogRead::After(feed) = store
        .read_after(Topic::Feed, None, usize::MAX)
        .await
        .unwrap()
    else {
        panic!("the feed is there");
    };
    assert_eq!(kinds(&feed), [Kind::Game]);
    let mut received = Vec::new();
    while received.len() < 3 {
        let next = tokio::time::timeout(Duration::from_secs(10), live.recv()).await;
        if let livescore_store::Live::Entry(published) = next.expect("published in time").unwrap() {
            received.push(published);
        }
    }
    assert_eq!(kinds(&received), [Kind::Replay, Kind::Update, Kind::Game]);
}

async fn a_cleared_store_has_a_new_epoch_and_forgets_cursors(store: &dyn MatchStore) {
    let epoch = store.epoch().await.unwrap();
    let cursors = written(
        store
            .write(&epoch, &write(3, None, 0, &[r#"{"kind":"update"}"#]))
            .await
            .unwrap(),
    );
    store.clear().await.unwrap();
    let outcome = store
        .write(&epoch, &write(3, Some((1, 0)), 1, &[]))
        .await
        .unwrap();
    assert_eq!(outcome, WriteOutcome::EpochChanged);
    // No epoch yet: the store cannot tell where an unknown cursor is from.
    assert_eq!(
        store
            .read_after(Topic::Match(3), Some(cursors[0]), usize::MAX)
            .await
            .unwrap(),
        LogRead::Unknown
    );
    let fresh = store.epoch().await.unwrap();
    assert_ne!(fresh, epoch);
    assert_eq!(store.load(3).await.unwrap(), None);
    assert!(store.list().await.unwrap().is_empty());
    // Once the new epoch began, a cursor from before it is known to be from the lost store,
    // whether or not the match has entries again; one past the log is merely unknown.
    let read = async |cursor| {
        store
            .read_after(Topic::Match(3), Some(cursor), usize::MAX)
            .await
            .unwrap()
    };
    assert_eq!(read(cursors[0]).await, LogRead::Rebuilt);
    let again = written(
        store
            .write(&fresh, &write(3, None, 0, &[r#"{"kind":"update"}"#]))
            .await
            .unwrap(),
    );
    assert_eq!(read(cursors[0]).await, LogRead::Rebuilt);
    assert_eq!(read(again[0]).await, LogRead::After(Vec::new()));
    let beyond = Cursor::new(again[0].ms + 60_000, 0);
    assert_eq!(read(beyond).await, LogRead::Unknown);
}

async fn presence_sums_every_replicas_counts_per_window_and_forgets_them(store: &dyn MatchStore) {
    use std::time::Duration;
    // A window far from any other test's (and from now): its own.
    let window = 7_000_000 + u64::from(std::process::id());
    let counts = |pairs: &[(&str, u64)]| -> Vec<(String, u64)> {
        pairs.iter().map(|(f, n)| ((*f).to_owned(), *n)).collect()
    };
    let ttl = Duration::from_secs(60);
    assert!(store.presence(window).await.unwrap().is_empty());
    store
        .add_presence(
            window,
            &counts(&[("site", 3), ("game:7", 2), ("games", 1)]),
            ttl,
        )
        .await
        .unwrap();
    store
        .add_presence(
            window,
            &counts(&[("site", 4), ("game:7", 1), ("game:8", 3)]),
            ttl,
        )
        .await
        .unwrap();
    let summed = store.presence(window).await.unwrap();
    let expected = counts(&[("site", 7), ("game:7", 3), ("games", 1), ("game:8", 3)]);
    assert_eq!(summed, expected.into_iter().collect());
    assert!(
        store.presence(window + 1).await.unwrap().is_empty(),
        "windows apart"
    );
    // A replica with nobody watching still says so: the window exists with a zero site.
    store.add_presence(window + 2, &[], ttl).await.unwrap();
    assert_eq!(
        store.presence(window + 2).await.unwrap().get("site"),
        Some(&0)
    );
    // Forgotten after its time to live (polled: Redis expires keys on its own clock).
    store
        .add_presence(
            window + 3,
            &counts(&[("site", 1)]),
            Duration::from_millis(50),
        )
        .await
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !store.presence(window + 3).await.unwrap().is_empty() {
        assert!(
            std::time::Instant::now() < deadline,
            "the window outlived its ttl"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Runs each behaviour above as a test against both implementations: `memory::<name>` on a
/// fresh in-process store, `redis::<name>` on the test Redis under a key prefix of its own
/// (cleared afterwards).
/// A write of match `match_id` in partition 0 that reflects it through `through`, made by a
/// writer that saw the store take `writes_before` writes of the partition.
fn marked(
    match_id: u64,
    expected: Option<(u64, u64)>,
    seq: u64,
    through: i64,
    writes_before: u64,
) -> MatchWrite {
    MatchWrite {
        mark: Some(LogMark {
            partition: 0,
            through,
            writes_before,
        }),
        ..write(match_id, expected, seq, &[r#"{"kind":"update","n":0}"#])
    }
}

async fn marks_count_writes_and_refuse_a_writer_that_saw_more(store: &dyn MatchStore) {
    let epoch = store.epoch().await.unwrap();
    assert_eq!(
        store.reflected(&[0, 1]).await.unwrap(),
        vec![Reflected::NONE; 2],
        "no write has marked a partition yet"
    );
    written(
        store
            .write(&epoch, &marked(7, None, 0, 9, 0))
            .await
            .unwrap(),
    );
    written(
        store
            .write(&epoch, &marked(8, None, 0, 4, 1))
            .await
            .unwrap(),
    );
    assert_eq!(
        store.reflected(&[0, 1]).await.unwrap(),
        vec![
            Reflected {
                through: 9,
                writes: 2
            },
            Reflected::NONE
        ],
        "the offset only grows, and each write is counted"
    );

    // A writer that saw more writes than the store holds: the store lost some. Nothing is
    // written, not even a write that would otherwise conflict.
    let held = Reflected {
        through: 9,
        writes: 2,
    };
    assert_eq!(
        store
            .write(&epoch, &marked(7, Some((1, 0)), 1, 12, 3))
            .await
            .unwrap(),
        WriteOutcome::Behind { reflected: held }
    );
    assert_eq!(
        store
            .write(&epoch, &marked(9, None, 0, 12, 5))
            .await
            .unwrap(),
        WriteOutcome::Behind { reflected: held }
    );
    assert_eq!(
        store.load(9).await.unwrap(),
        None,
        "a refused write writes nothing"
    );
    assert_eq!(store.reflected(&[0]).await.unwrap(), vec![held]);

    // A conflicting write is not counted.
    assert_eq!(
        store
            .write(&epoch, &marked(7, Some((1, 5)), 6, 12, 2))
            .await
            .unwrap(),
        WriteOutcome::Conflict
    );
    written(
        store
            .write(&epoch, &marked(7, Some((1, 0)), 1, 12, 2))
            .await
            .unwrap(),
    );
    assert_eq!(
        store.reflected(&[0]).await.unwrap(),
        vec![Reflected {
            through: 12,
            writes: 3
        }]
    );

    store.clear().await.unwrap();
    assert_eq!(store.reflected(&[0]).await.unwrap(), vec![Reflected::NONE]);
}

macro_rules! on_both_stores {
    ($($behaviour:ident),* $(,)?) => {
        mod memory {
            use super::*;
            $(
                #[tokio::test]
                async fn $behaviour() {
                    super::$behaviour(&MemoryStore::new()).await;
                }
            )*
        }

        mod redis {
            use super::*;
            $(
                #[tokio::test]
                async fn $behaviour() {
                    let store = redis_store(stringify!($behaviour)).await;
                    super::$behaviour(&store).await;
                    store.clear().await.unwrap();
                }
            )*
        }
    };
}

on_both_stores!(
    writes_check_the_expected_position,
    entries_are_published_and_read_back_by_cursor,
    each_entry_keeps_the_kind_it_was_written_with,
    a_cleared_store_has_a_new_epoch_and_forgets_cursors,
    marks_count_writes_and_refuse_a_writer_that_saw_more,
    presence_sums_every_replicas_counts_per_window_and_forgets_them,
);

/// A store under a key prefix of its own, on the test Redis.
async fn redis_store(name: &str) -> RedisStore {
    redis_store_with_prefix(&unique_prefix(name)).await
}

/// `test:<name>:<now in nanoseconds>`: a key prefix no other test, or earlier run, uses.
fn unique_prefix(name: &str) -> String {
    let unique = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("test:{name}:{unique}")
}

fn redis_url() -> String {
    std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

async fn redis_store_with_prefix(prefix: &str) -> RedisStore {
    RedisStore::connect(RedisConfig {
        server: RedisServer::Url(redis_url()),
        prefix: prefix.to_owned(),
    })
    .await
    .expect("Redis must be running for these tests: scripts/test starts it")
}

/// A stream entry from a store written before writers named kinds (no `k` field) still reads,
/// its kind taken from its tag.
#[tokio::test]
async fn an_entry_stored_without_its_kind_reads_by_its_tag() {
    let prefix = unique_prefix("legacy");
    let store = redis_store_with_prefix(&prefix).await;
    let epoch = store.epoch().await.unwrap();
    store
        .write(&epoch, &write(6, None, 0, &[r#"{"kind":"update","n":1}"#]))
        .await
        .unwrap();
    let LogRead::After(read) = store
        .read_after(Topic::Match(6), None, usize::MAX)
        .await
        .unwrap()
    else {
        panic!("the log of match 6 is there");
    };
    assert_eq!(read.len(), 1);
    let mut conn = ::redis::Client::open(redis_url())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    // This store's log of match 6, under this test's prefix only (SCAN, not the server-wide
    // KEYS, which could also find one left by an earlier run).
    let mut keys: Vec<String> = Vec::new();
    let mut scan = conn
        .scan_match::<_, String>(format!("{prefix}:*match:6:log"))
        .await
        .unwrap();
    while let Some(key) = scan.next_item().await {
        keys.push(key.unwrap());
    }
    drop(scan);
    assert_eq!(keys.len(), 1, "one log of match 6 under {prefix}: {keys:?}");
    let _: String = ::redis::cmd("XADD")
        .arg(&keys[0])
        .arg("*")
        .arg("e")
        .arg(r#"{"kind":"replay","n":2}"#)
        .query_async(&mut conn)
        .await
        .unwrap();
    let LogRead::After(read) = store
        .read_after(Topic::Match(6), None, usize::MAX)
        .await
        .unwrap()
    else {
        panic!("the log of match 6 is there");
    };
    assert_eq!(read.len(), 2, "{read:?}");
    assert_eq!(read[1].kind, Kind::Replay);
    store.clear().await.unwrap();
}
