//! The control routes: authentication, game ids checked against the catalog, speeds checked,
//! and clear JSON errors.

#![allow(clippy::unwrap_used)]

use std::path::PathBuf;
use std::sync::Arc;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use http_body_util::BodyExt;
use livescore_catalog::Catalog;
use livescore_domain::Breaks;
use livescore_eventlog::memory::MemoryLog;
use livescore_producer::{ControlState, ReplayManager, router};
use tower::ServiceExt;

const TOKEN: &str = "s3cret";

fn app(log: &MemoryLog) -> axum::Router {
    let catalog =
        Arc::new(Catalog::open(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../data")).unwrap());
    router(ControlState {
        replays: Arc::new(ReplayManager::new(
            Arc::new(log.clone()),
            catalog,
            Breaks::default(),
        )),
        admin_token: Arc::from(TOKEN),
    })
}

async fn call(
    app: &axum::Router,
    method: Method,
    uri: &str,
    token: Option<&str>,
    body: &str,
) -> (StatusCode, serde_json::Value) {
    let mut request = Request::builder().method(method).uri(uri);
    if let Some(token) = token {
        request = request.header("authorization", format!("Bearer {token}"));
    }
    let response = app
        .clone()
        .oneshot(request.body(Body::from(body.to_owned())).unwrap())
        .await
        .unwrap();
    let status = response.status();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null),
    )
}

#[tokio::test]
async fn starting_a_replay_needs_the_token() {
    let log = MemoryLog::new(2);
    let app = app(&log);
    let (status, body) = call(&app, Method::POST, "/games/7471", None, "").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("Authorization: Bearer")
    );
    let (status, _) = call(&app, Method::POST, "/games/7471", Some("wrong"), "").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = call(&app, Method::GET, "/replays", None, "").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(log.records().is_empty(), "nothing was sent");

    let (status, body) = call(&app, Method::POST, "/games/7471?speed=600", Some(TOKEN), "").await;
    assert_eq!(status, StatusCode::ACCEPTED);
    assert_eq!(body["match_id"], 7471);
    assert_eq!(body["speed"], 600.0);
    let (status, body) = call(&app, Method::GET, "/replays/7471", Some(TOKEN), "").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["home"], "Orlando Pride");
}

#[tokio::test]
async fn unknown_and_path_like_game_ids_get_404_and_touch_nothing() {
    let log = MemoryLog::new(2);
    let app = app(&log);
    for uri in [
        "/games/1",
        "/games/..%2F..%2Fetc%2Fpasswd",
        "/games/7471.json",
        "/games/%2e%2e",
        "/replays/7471abc/pause",
    ] {
        let (status, body) = call(&app, Method::POST, uri, Some(TOKEN), "").await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{uri}");
        assert!(body["error"].is_string(), "{uri}");
    }
    // A known game with no replay yet.
    let (status, body) = call(&app, Method::POST, "/replays/7471/pause", Some(TOKEN), "").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["error"], "game 7471 has no replay");
    assert!(log.records().is_empty());
}

#[tokio::test]
async fn speeds_out_of_range_get_400() {
    let log = MemoryLog::new(2);
    let app = app(&log);
    for (uri, body) in [
        ("/games/7471?speed=0", ""),
        ("/games/7471?speed=-5", ""),
        ("/games/7471?speed=fast", ""),
        ("/games/7471?speed=1e12", ""),
        ("/games/7471", r#"{"speed": 0}"#),
        ("/games/7471", r#"{"speed": "warp"}"#),
        ("/games/7471", "not json"),
    ] {
        let (status, answer) = call(&app, Method::POST, uri, Some(TOKEN), body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{uri} {body}: {answer}");
        assert!(answer["error"].is_string());
    }
    assert!(log.records().is_empty());
    let (status, _) = call(
        &app,
        Method::POST,
        "/games/7471",
        Some(TOKEN),
        r#"{"speed": "max"}"#,
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let (status, _) = call(
        &app,
        Method::PUT,
        "/replays/7471/speed",
        Some(TOKEN),
        r#"{"speed": -1}"#,
    )
    .await;
    assert!(status == StatusCode::BAD_REQUEST, "{status}");
}

#[tokio::test]
async fn the_catalog_is_public() {
    let log = MemoryLog::new(2);
    let (status, body) = call(&app(&log), Method::GET, "/catalog", None, "").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body.as_array().unwrap().len(), 7);
}

#[tokio::test]
async fn replay_actions_are_pause_resume_stop_and_speed() {
    let log = MemoryLog::new(2);
    let app = app(&log);
    let uri = "/games/7471?speed=1&pause_at=30";
    let (status, _) = call(&app, Method::POST, uri, Some(TOKEN), "").await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let (status, _) = call(
        &app,
        Method::POST,
        "/replays/7471/pause?at=60",
        Some(TOKEN),
        "",
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    for bad in ["/replays/7471/pause?at=soon", "/games/7471?pause_at=-1"] {
        let (status, _) = call(&app, Method::POST, bad, Some(TOKEN), "").await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}");
    }
    for action in ["pause", "resume", "stop"] {
        let uri = format!("/replays/7471/{action}");
        let (status, body) = call(&app, Method::POST, &uri, Some(TOKEN), "").await;
        assert_eq!(status, StatusCode::OK, "{action}: {body}");
        assert_eq!(body["match_id"], 7471);
    }
    let (status, body) = call(&app, Method::POST, "/replays/7471/rewind", Some(TOKEN), "").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("pause, resume or stop")
    );
    let (status, _) = call(&app, Method::POST, "/replays/7471/pause", None, "").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}
