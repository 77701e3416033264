//! Roles as an operator runs them, as processes on the shared test broker and Redis:
//! - the producer refuses its admin routes without the right token: 401, with a JSON error
//!   that says what is wrong, and nothing is started;
//! - `livescore projector --rebuild` clears the store and rebuilds it from the start of the
//!   log: a new epoch, and every match again exactly at its fold.

use crate::support;

use std::time::Duration;

use livescore_domain::{ReplayStatus, fold_match};
use support::services::{Role, free_port};

const TOKEN: &str = "processes-test-token";
const GAME: u64 = 7471;

/// The settings of a role on the test's topic, group and key prefix.
fn env(name: &str, listen: u16, projector_listen: u16) -> Vec<(&'static str, String)> {
    vec![
        ("KAFKA_BROKERS", support::kafka_brokers()),
        ("KAFKA_TOPIC", name.to_owned()),
        ("REDIS_URL", support::redis_url()),
        ("REDIS_PREFIX", name.to_owned()),
        ("PROJECTOR_GROUP", name.to_owned()),
        ("ADMIN_TOKEN", TOKEN.to_owned()),
        ("DATA_DIR", format!("{}/data", env!("CARGO_MANIFEST_DIR"))),
        ("LISTEN", format!("127.0.0.1:{listen}")),
        ("PROJECTOR_LISTEN", format!("127.0.0.1:{projector_listen}")),
    ]
}

/// Waits until `url` answers `status`.
async fn answers(http: &reqwest::Client, url: &str, status: u16) {
    support::until(
        &format!("{url} answering {status}"),
        Duration::from_secs(60),
        async || {
            http.get(url)
                .send()
                .await
                .is_ok_and(|response| response.status().as_u16() == status)
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_producer_refuses_its_admin_routes_without_the_right_token() {
    let name = support::owned("auth");
    let port = free_port();
    let _producer = Role::start("producer", &env(&name, port, 0));
    let http = support::http_client();
    let base = format!("http://127.0.0.1:{port}");
    answers(&http, &format!("{base}/catalog"), 200).await;
    for (method, path) in [
        (reqwest::Method::POST, format!("games/{GAME}?speed=max")),
        (reqwest::Method::GET, "replays".to_owned()),
        (reqwest::Method::GET, format!("replays/{GAME}")),
        (reqwest::Method::POST, format!("replays/{GAME}/pause")),
        (reqwest::Method::PUT, format!("replays/{GAME}/speed")),
    ] {
        for (token, says) in [
            (None, "needs the header Authorization: Bearer <ADMIN_TOKEN>"),
            (Some("not-the-token"), "wrong admin token"),
        ] {
            let mut request = http.request(method.clone(), format!("{base}/{path}"));
            if let Some(token) = token {
                request = request.bearer_auth(token);
            }
            let response = request.send().await.unwrap();
            assert_eq!(response.status(), 401, "{method} /{path} with {token:?}");
            let body: serde_json::Value =
                serde_json::from_str(&response.text().await.unwrap()).unwrap();
            assert!(
                body["error"]
                    .as_str()
                    .is_some_and(|error| error.contains(says)),
                "{method} /{path} with {token:?}: {body}"
            );
        }
    }
    // Nothing was started: the right token sees no replay.
    let replays = http
        .get(format!("{base}/replays"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(replays, "[]");
}

/// How many of the match's log updates, and of the feed's game lines, are marked republished.
async fn republished(store: &dyn livescore_store::MatchStore) -> (usize, usize) {
    let updates = support::clients::log_of(store, GAME)
        .await
        .into_iter()
        .filter(|(_, entry)| entry["kind"] == "update" && entry["republished"] == true)
        .count();
    let feed = match store
        .read_after(livescore_store::Topic::Feed, None, usize::MAX)
        .await
        .unwrap()
    {
        livescore_store::LogRead::After(entries) => entries,
        other => panic!("the feed: {other:?}"),
    };
    let lines = feed
        .iter()
        .filter(|entry| entry.json.contains(r#""republished":true"#))
        .count();
    (updates, lines)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_projector_started_with_rebuild_clears_the_store_and_rebuilds_it_from_the_log() {
    let name = support::owned("rebuild-role");
    let (producer_port, projector_port) = (free_port(), free_port());
    let _producer = Role::start("producer", &env(&name, producer_port, 0));
    let mut projector = Role::start("projector", &env(&name, 0, projector_port));
    let http = support::http_client();
    let producer = format!("http://127.0.0.1:{producer_port}");
    let projector_base = format!("http://127.0.0.1:{projector_port}");
    answers(&http, &format!("{producer}/catalog"), 200).await;
    answers(&http, &format!("{projector_base}/readyz"), 200).await;
    let started = http
        .post(format!("{producer}/games/{GAME}?speed=max"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(started.status(), 202);

    let store = support::redis_store(&name).await;
    let game = support::catalog().load(&GAME.to_string()).unwrap();
    let (fold, _) = fold_match(game.info, &game.events);
    let finished = async || {
        store
            .load(GAME)
            .await
            .unwrap()
            .is_some_and(|m| m.replay.status == ReplayStatus::Finished)
    };
    support::until(
        "the match finished in the store",
        Duration::from_secs(90),
        finished,
    )
    .await;
    let before = store.epoch().await.unwrap();
    let updates_before = support::clients::logged_updates(store.as_ref(), GAME).await;
    assert_eq!(
        republished(store.as_ref()).await,
        (0, 0),
        "news when first written"
    );
    projector.terminate();

    let _rebuilding =
        Role::start_with_args("projector", &["--rebuild"], &env(&name, 0, projector_port));
    support::until("a new epoch", Duration::from_secs(60), async || {
        store.epoch().await.is_ok_and(|epoch| epoch != before)
    })
    .await;
    support::until(
        "the match rebuilt to its end",
        Duration::from_secs(90),
        finished,
    )
    .await;
    let stored = store.load(GAME).await.unwrap().unwrap();
    assert_eq!(stored.fold.state, fold.state, "rebuilt exactly to the fold");
    let updates_after = support::clients::logged_updates(store.as_ref(), GAME).await;
    assert_eq!(updates_after, updates_before, "the same updates, each once");
    // Viewers saw these when they happened: every update and game line the rebuild wrote
    // again says so, and browsers do not alert for them.
    let (updates, lines) = republished(store.as_ref()).await;
    assert_eq!(
        updates,
        updates_after.len(),
        "every update marked republished"
    );
    assert!(lines > 0, "the games list's lines marked republished");
    let metrics = support::scrape(&projector_base).await;
    assert_eq!(
        support::metric(&metrics, "livescore_projector_rebuilds_total"),
        Some(1.0),
        "one rebuild, on request"
    );
    store.clear().await.unwrap();
}
