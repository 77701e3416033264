//! Test support: the shipped matches, and fixtures derived from them for what they lack (extra
//! time, a shoot-out, a second yellow...). Fixtures are edited as JSON and then go through the real
//! parser, so they test the same path as a data file.

#![allow(dead_code, clippy::unwrap_used)]

use std::path::PathBuf;

use livescore_catalog::{Catalog, LoadedGame};
use livescore_domain::state::start_minute;
use livescore_domain::{Event, MatchFold, MatchInfo, Update, fold_match, parse_events};
use serde_json::{Value, json};

pub fn data_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../data")
}

pub fn catalog() -> Catalog {
    Catalog::open(data_dir()).expect("the shipped data directory opens")
}

pub fn load(id: u64) -> LoadedGame {
    catalog()
        .load(&id.to_string())
        .expect("a shipped match loads")
}

pub fn fold(id: u64) -> (MatchFold, Vec<Update>) {
    let game = load(id);
    fold_match(game.info, &game.events)
}

/// A shipped match's events as raw JSON, to derive fixtures from.
pub fn raw_events(id: u64) -> Vec<Value> {
    let bytes = std::fs::read(data_dir().join(format!("events/{id}.json"))).expect("events file");
    serde_json::from_slice(&bytes).expect("events JSON")
}

/// Parses edited JSON events the way a data file is parsed and folds them as match `id`
/// (with its shipped metadata).
pub fn fold_raw(id: u64, raw: &[Value]) -> (MatchInfo, Vec<Event>, MatchFold, Vec<Update>) {
    let bytes = serde_json::to_vec(raw).expect("serialise fixture");
    let events = parse_events(&bytes).expect("fixture parses");
    let info = MatchInfo::new(id, catalog().metadata(id), &events).expect("fixture is a match");
    let (fold, updates) = fold_match(info.clone(), &events);
    (info, events, fold, updates)
}

pub fn type_name(event: &Value) -> &str {
    event["type"]["name"].as_str().unwrap_or_default()
}

pub fn fmt_timestamp(ms: u64) -> String {
    format!(
        "{:02}:{:02}:{:02}.{:03}",
        ms / 3_600_000,
        ms / 60_000 % 60,
        ms / 1000 % 60,
        ms % 1000
    )
}

/// Renumbers `index` from 1 in order, as StatsBomb files are.
pub fn renumber(events: &mut [Value]) {
    for (i, event) in events.iter_mut().enumerate() {
        event["index"] = json!(i + 1);
    }
}

/// A copy of `event` moved to `period` at `ms` into it, with a new id.
pub fn moved(event: &Value, period: u8, ms: u64, id_suffix: &str) -> Value {
    let mut event = event.clone();
    let minute = u64::from(start_minute(period)) + ms / 60_000;
    event["period"] = json!(period);
    event["timestamp"] = json!(fmt_timestamp(ms));
    event["minute"] = json!(minute);
    event["second"] = json!(ms / 1000 % 60);
    event["id"] = json!(format!(
        "{}-{id_suffix}",
        event["id"].as_str().unwrap_or("x")
    ));
    event["related_events"] = json!([]);
    event
}

/// The first half's "Half Start" (or "Half End") pair: one event per team.
pub fn first_half_markers(raw: &[Value], marker: &str) -> Vec<Value> {
    raw.iter()
        .filter(|e| type_name(e) == marker && e["period"] == json!(1))
        .cloned()
        .collect()
}

/// Appends a period to a match: its "Half Start" pair, the first `minutes` (plus `added` minutes of
/// stoppage time) of the match's first half replayed in it, and its "Half End" pair.
pub fn append_period(raw: &mut Vec<Value>, period: u8, minutes: u64, added: u64) {
    let halves = first_half_markers(raw, "Half Start");
    let ends = first_half_markers(raw, "Half End");
    let limit_ms = (minutes + added) * 60_000 - 1;
    let body: Vec<Value> = raw
        .iter()
        .filter(|e| e["period"] == json!(1))
        .filter(|e| !matches!(type_name(e), "Half Start" | "Half End" | "Starting XI"))
        .filter(|e| parse_ms(e) <= limit_ms)
        .cloned()
        .collect();
    let tag = format!("p{period}");
    for half in &halves {
        raw.push(moved(half, period, 0, &tag));
    }
    for event in &body {
        raw.push(moved(event, period, parse_ms(event), &tag));
    }
    for end in &ends {
        raw.push(moved(end, period, limit_ms, &tag));
    }
    renumber(raw);
}

pub fn parse_ms(event: &Value) -> u64 {
    let text = event["timestamp"].as_str().unwrap_or("00:00:00.000");
    let (clock, millis) = text.split_once('.').unwrap_or((text, "0"));
    let mut parts = clock.split(':').map(|p| p.parse::<u64>().unwrap_or(0));
    let (h, m, s) = (
        parts.next().unwrap_or(0),
        parts.next().unwrap_or(0),
        parts.next().unwrap_or(0),
    );
    ((h * 60 + m) * 60 + s) * 1000 + millis.parse::<u64>().unwrap_or(0)
}

/// The first event of the match of this type whose team is `team_id`.
pub fn first_of(raw: &[Value], type_name_wanted: &str, team_id: u64) -> Value {
    raw.iter()
        .find(|e| type_name(e) == type_name_wanted && e["team"]["id"] == json!(team_id))
        .cloned()
        .unwrap_or_else(|| panic!("no {type_name_wanted} for team {team_id}"))
}

/// Inserts `event` after every event that happens no later than it, and renumbers.
pub fn insert_in_order(raw: &mut Vec<Value>, event: Value) {
    let key = |e: &Value| (e["period"].as_u64().unwrap_or(0), parse_ms(e));
    let at = raw
        .iter()
        .position(|e| key(e) > key(&event))
        .unwrap_or(raw.len());
    raw.insert(at, event);
    renumber(raw);
}
