//! The REST side of an API replica, over the in-process engines: games and their filter, one
//! game, health, readiness and metrics, and clear errors.

use crate::support;

use std::sync::Arc;
use std::time::Duration;

use axum::http::StatusCode;
use futures_util::StreamExt;
use livescore_domain::{ReplayStatus, Speed};
use livescore_store::memory::MemoryStore;
use livescore_store::{Entry, MatchStore, MatchWrite, WriteOutcome};

/// A store holding two finished replays (7471, 7457) and one paused one (15986), and the
/// producer that keeps it so (once it is gone, its replays stop, and 15986 would no longer be
/// paused).
async fn fixture() -> (Arc<dyn MatchStore>, livescore_producer::ReplayManager) {
    let store: Arc<dyn MatchStore> = Arc::new(MemoryStore::new());
    let replays = support::replays_into(&store);
    replays.start("7471", Speed::Max).await.unwrap();
    replays.start("7457", Speed::Max).await.unwrap();
    replays.start("15986", Speed::Factor(10.0)).await.unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    // Paused once it has kicked off.
    while replays.status(15986).unwrap().events_sent < 10 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "15986 never sent 10 events"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    replays.pause(15986).unwrap();
    loop {
        let list = store.list().await.unwrap();
        let done = list
            .iter()
            .filter(|g| g.replay.status == ReplayStatus::Finished)
            .count();
        let paused = list.iter().any(|g| g.replay.status == ReplayStatus::Paused);
        if done == 2 && paused {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "not two replays finished and one paused within 30 s: {done} finished, paused {paused}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    (store, replays)
}

/// The API over the fixture served over HTTP by the replica's own server: its base URL, and
/// what keeps it serving.
async fn api() -> (String, (support::Served, livescore_producer::ReplayManager)) {
    let (store, replays) = fixture().await;
    let served = support::serve_api(store, |_| {}).await;
    (served.base.clone(), (served, replays))
}

async fn get(base: &str, uri: &str) -> (StatusCode, String) {
    let response = reqwest::get(format!("{base}{uri}")).await.unwrap();
    let status = response.status();
    let body = response.text().await.unwrap();
    (status, body)
}

/// The JSON answer to a GET that must succeed.
async fn get_json(app: &str, uri: &str) -> serde_json::Value {
    let (status, body) = get(app, uri).await;
    assert_eq!(status, StatusCode::OK, "{uri}: {body}");
    serde_json::from_str(&body).unwrap_or_else(|_| panic!("{uri}: not JSON: {body}"))
}

fn ids(body: &str) -> Vec<u64> {
    let games: Vec<serde_json::Value> = serde_json::from_str(body).unwrap();
    let mut ids: Vec<u64> = games
        .iter()
        .map(|g| g["match_id"].as_u64().unwrap())
        .collect();
    ids.sort_unstable();
    ids
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn games_are_listed_and_filtered_by_status() {
    let (app, _stop) = api().await;
    let (status, body) = get(&app, "/games").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(ids(&body), vec![7457, 7471, 15986]);
    assert_eq!(
        ids(&get(&app, "/games?status=finished").await.1),
        vec![7457, 7471]
    );
    let (_, all) = get(&app, "/games").await;
    let live = get(&app, "/games?status=live").await.1;
    assert_eq!(ids(&live), vec![15986], "{all}");
    assert!(ids(&get(&app, "/games?status=half_time").await.1).is_empty());
    let (status, body) = get(&app, "/games?status=exciting").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body.contains("unknown status"), "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_match_is_not_listed_live_and_says_so() {
    let (store, _replays) = fixture().await;
    // 15986 running, but marked stalled, as the projector marks a match whose records stopped.
    let current = store.load(15986).await.unwrap().unwrap();
    let mut stalled = current.clone();
    stalled.replay.status = ReplayStatus::Running;
    stalled.replay.stalled = true;
    let write = MatchWrite {
        expected: Some(current.position()),
        summary: Some(stalled.summary(livescore_store::now_ms(), 0)),
        entries: vec![
            Entry::Replay {
                replay: stalled.replay,
            }
            .encode(),
        ],
        stored: stalled,
        mark: None,
    };
    let epoch = store.epoch().await.unwrap();
    assert!(matches!(
        store.write(&epoch, &write).await.unwrap(),
        WriteOutcome::Written { .. }
    ));
    let served = support::serve_api(store, |_| {}).await;
    let live = get(&served.base, "/games?status=live").await.1;
    assert!(ids(&live).is_empty(), "a stalled match is not live: {live}");
    let game = get_json(&served.base, "/games/15986").await;
    assert_eq!(game["replay"]["status"], "running");
    assert_eq!(game["replay"]["stalled"], true);
    let finished = get_json(&served.base, "/games/7471").await;
    assert!(
        finished["replay"].get("stalled").is_none(),
        "left out when false: {}",
        finished["replay"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_game_or_a_clear_404() {
    let (app, _stop) = api().await;
    let game = get_json(&app, "/games/7457").await;
    assert_eq!(
        game["state"]["score"],
        serde_json::json!({"home": 3, "away": 4})
    );
    assert_eq!(game["replay"]["status"], "finished");
    for uri in ["/games/1", "/games/abc", "/games/..%2F..", "/sse/games/1"] {
        let (status, body) = get(&app, uri).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{uri}");
        assert!(body.contains("\"error\""), "{uri}: {body}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_readiness_and_metrics() {
    let (app, _stop) = api().await;
    assert_eq!(get(&app, "/healthz").await, (StatusCode::OK, "ok".into()));
    assert_eq!(get(&app, "/readyz").await, (StatusCode::OK, "ready".into()));
    let (status, metrics) = get(&app, "/metrics").await;
    assert_eq!(status, StatusCode::OK);
    for name in [
        "livescore_connections{transport=\"sse\"} 0",
        "livescore_connections{transport=\"ws\"} 0",
        "livescore_messages_sent_total",
        "livescore_catch_ups_total",
        "livescore_resync_snapshots_total",
        "livescore_joins_total",
        "livescore_store_reads_total",
        "livescore_subscription_lag_seconds_count",
        "livescore_sweep_seconds_total",
    ] {
        assert!(metrics.contains(name), "{name} in:\n{metrics}");
    }
    // The Prometheus text format, by its conventions (`promtool check metrics`, which
    // scripts/test also runs): every sample has its family's help and type, in base units.
    let mut families = std::collections::HashMap::new();
    for line in metrics.lines() {
        if let Some(rest) = line
            .strip_prefix("# HELP ")
            .or(line.strip_prefix("# TYPE "))
        {
            let (name, _) = rest.split_once(' ').unwrap();
            *families.entry(name.to_owned()).or_insert(0) += 1;
        }
    }
    for sample in metrics.lines().filter(|line| !line.starts_with('#')) {
        let name = sample.split(['{', ' ']).next().unwrap();
        let family = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|suffix| {
                name.strip_suffix(suffix)
                    .filter(|f| families.contains_key(*f))
            })
            .unwrap_or(name);
        assert_eq!(
            families.get(family),
            Some(&2),
            "{sample}: help and type in\n{metrics}"
        );
        for unit in ["_ms", "_milliseconds", "_micro", "_us_"] {
            assert!(!family.contains(unit), "{family}: base units only");
        }
    }
    assert!(!metrics.contains("# EOF"), "{metrics}");
    // Resident memory, in bytes: some megabytes at least, for a running test binary.
    let resident: u64 = metrics
        .lines()
        .find_map(|line| line.strip_prefix("livescore_process_resident_memory_bytes "))
        .expect("resident memory in the metrics")
        .parse()
        .unwrap();
    assert!(resident > 1_000_000, "{resident}");
}

/// Every `"$ref"` in a JSON document.
fn refs(value: &serde_json::Value, found: &mut Vec<String>) {
    match value {
        serde_json::Value::Object(map) => {
            for (key, inner) in map {
                match (key.as_str(), inner) {
                    ("$ref", serde_json::Value::String(target)) => found.push(target.clone()),
                    _ => refs(inner, found),
                }
            }
        }
        serde_json::Value::Array(items) => items.iter().for_each(|item| refs(item, found)),
        _ => {}
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_openapi_document_is_complete_and_its_page_needs_no_network() {
    let (app, _stop) = api().await;
    let doc = get_json(&app, "/openapi.json").await;
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    for path in [
        "/games",
        "/games/{game_id}",
        "/sse/games",
        "/sse/games/{game_id}",
        "/ws",
        "/readyz",
        "/metrics",
    ] {
        assert!(doc["paths"].get(path).is_some(), "{path} is documented");
    }
    let schemas = &doc["components"]["schemas"];
    for schema in [
        "MatchState",
        "Update",
        "Entry",
        "MatchSummary",
        "ClientRequest",
        "ServerFrame",
        "Kind",
        "Topic",
        "Cursor",
        "ErrorBody",
        "Speed",
    ] {
        assert!(schemas.get(schema).is_some(), "{schema} is documented");
    }
    // Every reference resolves.
    let mut found = Vec::new();
    refs(&doc, &mut found);
    assert!(found.len() > 20);
    for target in found {
        let name = target.strip_prefix("#/components/schemas/").unwrap();
        assert!(schemas.get(name).is_some(), "{target} resolves");
    }

    // The docs page and everything it loads come from this server: nothing from the network.
    let (status, page) = get(&app, "/docs/").await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        !page.contains("http://") && !page.contains("https://"),
        "{page}"
    );
    let assets: Vec<&str> = page
        .split(['"', '\''])
        .filter(|part| part.ends_with(".js") || part.ends_with(".css"))
        .collect();
    assert!(assets.len() >= 4, "{assets:?}");
    for asset in assets {
        let (status, body) = get(&app, &format!("/docs/{}", asset.trim_start_matches("./"))).await;
        assert_eq!(status, StatusCode::OK, "{asset}");
        assert!(!body.is_empty(), "{asset}");
    }
    let (_, initializer) = get(&app, "/docs/swagger-initializer.js").await;
    assert!(initializer.contains("/openapi.json"), "{initializer}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_web_ui_names_the_wire_as_the_server_does() {
    // web/wire.js is generated from the wire crate: the checked-in file is the current one.
    let checked_in =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/web/wire.js")).unwrap();
    assert_eq!(
        checked_in,
        livescore_wire::js::module(),
        "web/wire.js is stale: cargo run -p livescore-wire --example wire_js > web/wire.js"
    );
    // ... and the server serves it, with the kinds the OpenAPI document lists.
    let (app, _stop) = api().await;
    let (status, served) = get(&app, "/wire.js").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(served, checked_in);
    // The UI's modules take the names from it.
    let modules = page_modules(&app).await;
    assert!(
        modules.iter().any(|(path, _)| path == "/wire.js"),
        "the page's modules import /wire.js: {:?}",
        modules.iter().map(|(path, _)| path).collect::<Vec<_>>()
    );
    let doc = get_json(&app, "/openapi.json").await;
    let kinds = doc["components"]["schemas"]["Kind"]["enum"]
        .as_array()
        .expect("Kind is an enum");
    assert_eq!(kinds.len(), livescore_wire::Kind::ALL.len());
    for kind in kinds {
        let kind = kind.as_str().unwrap();
        assert!(served.contains(&format!("{kind}: '{kind}'")), "{kind}");
    }
    let reasons = doc["components"]["schemas"]["SnapshotReason"]["enum"]
        .as_array()
        .expect("SnapshotReason is an enum");
    assert_eq!(reasons.len(), livescore_wire::SnapshotReason::ALL.len());
    for reason in reasons {
        let reason = reason.as_str().unwrap();
        assert!(
            served.contains(&format!("{reason}: '{reason}'")),
            "{reason}"
        );
    }
    let topic = &doc["components"]["schemas"]["Topic"]["pattern"];
    assert_eq!(topic, "^(games|game:[0-9]{1,19})$");
    assert!(served.contains("feedTopic: 'games'") && served.contains("`game:${id}`"));
}

#[tokio::test]
async fn the_formation_view_places_every_position_the_shipped_matches_name() {
    let (app, _stop) = api().await;
    let (_, script) = get(&app, "/js/views/positions.js").await;
    let catalog = support::catalog();
    for game in catalog.games() {
        let loaded = catalog.load(&game.id.to_string()).unwrap();
        let lineups = loaded.events.iter().flat_map(|e| &e.tactics);
        for name in lineups
            .flat_map(|t| &t.lineup)
            .map(|entry| &entry.position.name)
        {
            // A key of the POSITIONS table, quoted when it has a space.
            let key = if name.contains(' ') {
                format!("'{name}':")
            } else {
                format!("{name}:")
            };
            assert!(
                script.contains(&key),
                "{}: {name:?} has no place on the formation's pitch (web/js/views/positions.js)",
                game.id
            );
        }
    }
}

/// The UI's ES modules, from the page's `<script type="module">` through every `import ... from`
/// (relative paths resolved), each fetched once and required to be served: (path, source).
async fn page_modules(app: &str) -> Vec<(String, String)> {
    let (_, page) = get(app, "/").await;
    let entry = page
        .split("<script type=\"module\" src=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("the page loads a module")
        .to_owned();
    let mut todo = vec![entry];
    let mut seen: Vec<(String, String)> = Vec::new();
    while let Some(path) = todo.pop() {
        if seen.iter().any(|(known, _)| *known == path) {
            continue;
        }
        let (status, source) = get(app, &path).await;
        assert_eq!(status, StatusCode::OK, "{path}");
        let dir = &path[..path.rfind('/').unwrap_or(0)];
        for import in source.split(" from '").skip(1) {
            let target = import.split('\'').next().unwrap_or_default();
            let mut parts: Vec<&str> = dir.split('/').collect();
            for part in target.split('/') {
                match part {
                    "." => {}
                    ".." => {
                        parts.pop();
                    }
                    part => parts.push(part),
                }
            }
            todo.push(parts.join("/"));
        }
        seen.push((path, source));
    }
    seen
}

/// The first `n` SSE events of `uri` (with an optional Last-Event-ID header). Checks on the
/// way that the response is an uncached event stream that opens with `retry:`.
async fn first_sse_events(
    base: &str,
    uri: &str,
    last_event_id: Option<&str>,
    n: usize,
) -> Vec<livescore_wire::sse::Event> {
    let mut request = reqwest::Client::new().get(format!("{base}{uri}"));
    if let Some(id) = last_event_id {
        request = request.header("last-event-id", id);
    }
    let response = request.send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK, "{uri}");
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    assert_eq!(response.headers()["cache-control"], "no-cache");
    let mut body = response.bytes_stream();
    let mut reader = livescore_wire::sse::Reader::default();
    let mut stream = Vec::new();
    let mut events = Vec::new();
    loop {
        let data = tokio::time::timeout(Duration::from_secs(10), body.next())
            .await
            .expect("an event in time")
            .unwrap()
            .unwrap();
        stream.extend_from_slice(&data);
        reader.push(&data);
        while let Some(event) = reader.next_event() {
            // The stream opens with how long a browser waits before reconnecting.
            assert!(stream.starts_with(b"retry: "), "{stream:?}");
            let retry = reader.retry.expect("a retry: line");
            assert!(livescore_api::fanout::RETRY_MS.contains(&retry), "{retry}");
            events.push(event);
            if events.len() == n {
                return events;
            }
        }
    }
}

/// A snapshot's `reason`.
fn reason_of(event: &livescore_wire::sse::Event) -> String {
    assert_eq!(event.event, "snapshot", "{event:?}");
    let data: serde_json::Value = serde_json::from_str(&event.data).unwrap();
    data["reason"].as_str().unwrap_or_default().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sse_resumes_after_the_cursor_from_the_header_or_the_query() {
    let (app, _stop) = api().await;
    let first = first_sse_events(&app, "/sse/games/7457", None, 1).await;
    assert_eq!(reason_of(&first[0]), "no_cursor");
    let last = first[0]
        .id
        .clone()
        .expect("the snapshot carries the cursor it reflects");
    let (n, _) = last.split_once('-').unwrap();
    // A cursor a few entries back: resuming says so, then sends what came after it.
    let earlier = format!("{}-0", n.parse::<u64>().unwrap() - 3);
    let uri = format!("/sse/games/7457?last_event_id={earlier}");
    let events = first_sse_events(&app, &uri, None, 2).await;
    assert_eq!(events[0].event, "resumed");
    assert_eq!(events[0].id, None, "resumed moves no cursor");
    let resumed: livescore_wire::join::Resumed = serde_json::from_str(&events[0].data).unwrap();
    assert_eq!(resumed.after.to_string(), earlier);
    let after = |id: &str| id.split_once('-').unwrap().0.parse::<u64>().unwrap();
    assert!(after(events[1].id.as_deref().unwrap()) > after(&earlier));
    // The header wins over the query; a garbage cursor is no cursor: a fresh snapshot.
    let garbage = first_sse_events(&app, &uri, Some("garbage"), 1).await;
    assert_eq!(reason_of(&garbage[0]), "no_cursor");
    let games = first_sse_events(&app, "/sse/games?last_event_id=nonsense", None, 1).await;
    assert_eq!(reason_of(&games[0]), "no_cursor");
    assert!(games[0].id.is_some());
    // A cursor past the log's end was never handed out.
    let unknown = first_sse_events(&app, "/sse/games/7457?last_event_id=99999999-0", None, 1).await;
    assert_eq!(reason_of(&unknown[0]), "cursor_unknown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_web_ui_is_served_with_the_statsbomb_credit() {
    let (app, _stop) = api().await;
    let (status, page) = get(&app, "/").await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        page.contains("<script type=\"module\" src=\"/js/main.js\">"),
        "{page}"
    );
    assert!(page.contains("Data: StatsBomb"));
    // Every module the page loads, and every module they import, is served.
    let modules = page_modules(&app).await;
    assert!(modules.len() >= 9, "{modules:?}");
    for asset in ["/style.css", "/statsbomb-logo.png", "/favicon.svg"] {
        let (status, body) = get(&app, asset).await;
        assert_eq!(status, StatusCode::OK, "{asset}");
        assert!(!body.is_empty(), "{asset}");
    }
    // The scoreboard's line under the score comes with each game's summary.
    let (_, games) = get(&app, "/games?status=finished").await;
    let games: Vec<serde_json::Value> = serde_json::from_str(&games).unwrap();
    assert!(
        games.iter().all(|g| g["latest"]["type"].is_string()),
        "{games:?}"
    );
}

/// The status line of a WebSocket handshake to `/ws` with `origin`.
async fn handshake_status(addr: &str, origin: Option<&str>) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let origin = origin.map_or(String::new(), |o| format!("Origin: {o}\r\n"));
    let request = format!(
        "GET /ws HTTP/1.1\r\nHost: {addr}\r\n{origin}Upgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n") {
        head.push(stream.read_u8().await.unwrap());
    }
    String::from_utf8(head).unwrap().trim().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_of_other_origins_get_403_unless_listed() {
    let (store, _replays) = fixture().await;
    let served = support::serve_api(store, |http| {
        http.allowed_origins = "https://fans.example".parse().unwrap();
    })
    .await;
    let addr = served.base.trim_start_matches("http://").to_owned();
    let own = served.base.clone();

    // WebSocket: the API's own page, a listed one and a client that is not a browser are
    // answered; any other page is refused before the upgrade.
    for origin in [None, Some(own.as_str()), Some("https://fans.example")] {
        let status = handshake_status(&addr, origin).await;
        assert!(status.starts_with("HTTP/1.1 101"), "{origin:?}: {status}");
    }
    for origin in ["https://evil.example", "null", "http://127.0.0.1:1"] {
        let status = handshake_status(&addr, Some(origin)).await;
        assert!(status.starts_with("HTTP/1.1 403"), "{origin}: {status}");
    }

    // Event streams and the REST routes: the same, and a listed origin may read the answer
    // (CORS); a refusal says why, as JSON.
    let http = reqwest::Client::new();
    let with = |uri: &str, origin: &str| {
        http.get(format!("{own}{uri}"))
            .header("origin", origin)
            .send()
    };
    let listed = with("/sse/games", "https://fans.example").await.unwrap();
    assert_eq!(listed.status(), StatusCode::OK);
    assert_eq!(
        listed.headers()["access-control-allow-origin"],
        "https://fans.example"
    );
    let same = with("/games", &own).await.unwrap();
    assert_eq!(same.status(), StatusCode::OK);
    assert!(same.headers().get("access-control-allow-origin").is_none());
    for uri in ["/sse/games", "/sse/games/7457", "/games"] {
        let refused = with(uri, "https://evil.example").await.unwrap();
        assert_eq!(refused.status(), StatusCode::FORBIDDEN, "{uri}");
        let body: serde_json::Value = serde_json::from_str(&refused.text().await.unwrap()).unwrap();
        assert!(
            body["error"].as_str().unwrap().contains("ALLOWED_ORIGINS"),
            "{body}"
        );
    }
}
