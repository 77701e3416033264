//! Every role built as `main` builds it (`livescore_app::Application`) in the test's process, on
//! port 0: each one serves, exports its metrics, and stops when its token is cancelled.

use crate::support;

use std::time::Duration;

use livescore_app::{Given, Role, Settings};
use support::clients::{Transport, follow_to_the_end};
use support::settings;

const GAME: u64 = 7457;

/// Builds `role` on the engines its settings name, and runs it until its token is cancelled.
async fn start(role: Role, settings: Settings) -> support::Running {
    support::start(role, settings, Given::default()).await
}

async fn get(url: &str) -> (u16, String) {
    let response = reqwest::get(url).await.unwrap();
    (response.status().as_u16(), response.text().await.unwrap())
}

async fn start_replay(admin: &str, game: u64) {
    let response = reqwest::Client::new()
        .post(format!("{admin}/games/{game}?speed=max"))
        .bearer_auth("secret")
        .send()
        .await
        .unwrap();
    assert!(response.status().is_success(), "{}", response.status());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn up_serves_a_whole_match_and_its_metrics_show_every_role() {
    support::logs();
    let (base, stop, running) = start(Role::Up, settings()).await;
    start_replay(&base, GAME).await;
    let followed = follow_to_the_end(&base, GAME, Transport::Sse, Duration::from_secs(60)).await;
    assert!(followed.seen.len() > 100, "{} events", followed.seen.len());

    let (status, metrics) = get(&format!("{base}/metrics")).await;
    assert_eq!(status, 200);
    // The producer's, the projector's and the API's, in one exposition.
    for (name, at_least) in [
        ("livescore_producer_records_sent_total", 3000.0),
        ("livescore_producer_send_seconds_count", 3000.0),
        ("livescore_projector_records_applied_total", 3000.0),
        ("livescore_projector_store_write_seconds_count", 1.0),
        ("livescore_projector_ready", 1.0),
        ("livescore_delivery_seconds_count", 100.0),
        ("livescore_messages_sent_total", 100.0),
    ] {
        let value =
            support::metric(&metrics, name).unwrap_or_else(|| panic!("{name} missing:\n{metrics}"));
        assert!(
            value >= at_least,
            "{name} = {value}, expected at least {at_least}"
        );
    }
    assert!(
        metrics.contains("livescore_producer_replays{status=\"finished\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("livescore_projector_consumer_lag_records{partition="),
        "{metrics}"
    );
    stop.cancel();
    running.await.unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn producer_projector_and_api_each_serve_their_metrics_over_kafka_and_redis() {
    support::logs();
    let mut settings = settings();
    settings.log.kafka_brokers = Some(support::kafka_brokers());
    settings.log.kafka_topic = support::unique("roles");
    settings.log.kafka_partitions = 2;
    settings.store.redis_url = Some(support::redis_url());
    let prefix = support::owned("roles");
    settings.store.redis_prefix = prefix.to_string();
    settings.projector.projector_group = support::unique("roles");

    let (projector, stop_projector, projecting) = start(Role::Projector, settings.clone()).await;
    assert_eq!(
        get(&format!("{projector}/healthz")).await,
        (200, "ok".into())
    );
    support::until(
        "the projector is ready",
        Duration::from_secs(60),
        || async { get(&format!("{projector}/readyz")).await.0 == 200 },
    )
    .await;
    let (producer, stop_producer, producing) = start(Role::Producer, settings.clone()).await;
    let (api, stop_api, serving) = start(Role::Api, settings).await;
    assert_eq!(get(&format!("{producer}/healthz")).await.0, 200);
    assert_eq!(get(&format!("{api}/readyz")).await.0, 200);

    start_replay(&producer, GAME).await;
    let followed =
        follow_to_the_end(&api, GAME, Transport::WebSocket, Duration::from_secs(60)).await;
    assert!(followed.seen.len() > 100, "{} events", followed.seen.len());
    support::until(
        "the projector counts what it applied",
        Duration::from_secs(60),
        || async {
            let (_, metrics) = get(&format!("{projector}/metrics")).await;
            support::metric(&metrics, "livescore_projector_records_applied_total").unwrap_or(0.0)
                >= 3000.0
                && support::metric(&metrics, "livescore_projector_consumer_lag_records").is_some()
        },
    )
    .await;
    let (_, metrics) = get(&format!("{producer}/metrics")).await;
    assert!(
        support::metric(&metrics, "livescore_producer_records_sent_total").unwrap_or(0.0) >= 3000.0,
        "{metrics}"
    );
    assert!(
        support::metric(&metrics, "livescore_producer_clock_lateness_seconds_count").is_some(),
        "{metrics}"
    );
    let (_, metrics) = get(&format!("{api}/metrics")).await;
    assert!(
        support::metric(&metrics, "livescore_delivery_seconds_count").unwrap_or(0.0) >= 100.0,
        "{metrics}"
    );

    for stop in [stop_api, stop_producer, stop_projector] {
        stop.cancel();
    }
    serving.await.unwrap().unwrap();
    producing.await.unwrap().unwrap();
    projecting.await.unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn up_documents_every_route_it_serves_the_admin_routes_under_the_bearer_scheme() {
    let (base, stop, _running) = start(Role::Up, settings()).await;
    let (status, text) = get(&format!("{base}/openapi.json")).await;
    assert_eq!(status, 200);
    let doc: serde_json::Value = serde_json::from_str(&text).unwrap();
    let scheme = &doc["components"]["securitySchemes"]["admin_token"];
    assert_eq!(scheme["type"], "http", "{scheme}");
    assert_eq!(scheme["scheme"], "bearer", "{scheme}");
    let public = [
        ("get", "/games"),
        ("get", "/games/{game_id}"),
        ("get", "/sse/games"),
        ("get", "/sse/games/{game_id}"),
        ("get", "/ws"),
        ("get", "/healthz"),
        ("get", "/readyz"),
        ("get", "/metrics"),
        ("get", "/catalog"),
    ];
    let admin = [
        ("post", "/games/{game_id}"),
        ("get", "/replays"),
        ("get", "/replays/{game_id}"),
        ("post", "/replays/{game_id}/pause"),
        ("post", "/replays/{game_id}/resume"),
        ("post", "/replays/{game_id}/stop"),
        ("put", "/replays/{game_id}/speed"),
    ];
    for (method, path) in public.iter().chain(&admin) {
        let operation = &doc["paths"][path][method];
        assert!(operation.is_object(), "{method} {path} is documented");
        let secured = operation["security"]
            .as_array()
            .is_some_and(|all| all.iter().any(|s| s.get("admin_token").is_some()));
        assert_eq!(
            secured,
            admin.contains(&(method, path)),
            "{method} {path}: the bearer scheme exactly on the admin routes"
        );
        // Each documented admin operation answers as documented without the token: 401.
        if secured {
            let url = format!("{base}{}", path.replace("{game_id}", "7457"));
            let request =
                reqwest::Client::new().request(method.to_uppercase().parse().unwrap(), url);
            let response = request.send().await.unwrap();
            assert_eq!(response.status(), 401, "{method} {path}");
            assert!(
                operation["responses"].get("401").is_some(),
                "{method} {path}"
            );
        }
    }
    // The docs page reads that very document.
    let (_, initializer) = get(&format!("{base}/docs/swagger-initializer.js")).await;
    assert!(initializer.contains("/openapi.json"), "{initializer}");
    // A method no route has is 405, with the methods it has.
    let response = reqwest::Client::new()
        .delete(format!("{base}/games/0"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 405);
    stop.cancel();
}
