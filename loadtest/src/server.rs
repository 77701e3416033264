//! What the load test asks the server, outside the viewers: start replays through the admin
//! routes, wait for the API to serve them, and read memory and connections from `/metrics`.

use std::time::Duration;

use anyhow::{Context, bail};
use serde::Deserialize;

/// The body of a successful GET, or an error naming the URL.
async fn get(http: &reqwest::Client, url: &str) -> anyhow::Result<String> {
    http.get(url)
        .send()
        .await
        .and_then(reqwest::Response::error_for_status)
        .with_context(|| format!("GET {url}"))?
        .text()
        .await
        .with_context(|| format!("GET {url}: reading the body"))
}

#[derive(Deserialize)]
struct CatalogGame {
    id: u64,
}

#[derive(Deserialize)]
struct Started {
    match_id: u64,
    run: u64,
}

/// The first `count` games of the catalog.
pub async fn catalog(
    http: &reqwest::Client,
    admin: &str,
    count: usize,
) -> anyhow::Result<Vec<u64>> {
    let games: Vec<CatalogGame> =
        serde_json::from_str(&get(http, &format!("{admin}/catalog")).await?)
            .context("the catalog is not a list of games")?;
    if games.len() < count {
        bail!("the catalog has {} games, fewer than {count}", games.len());
    }
    Ok(games.into_iter().take(count).map(|g| g.id).collect())
}

/// Starts a replay of `game` at `speed`; returns its run.
pub async fn start(
    http: &reqwest::Client,
    admin: &str,
    token: &str,
    game: u64,
    speed: &str,
) -> anyhow::Result<(u64, u64)> {
    let response = http
        .post(format!("{admin}/games/{game}?speed={speed}"))
        .bearer_auth(token)
        .send()
        .await
        .with_context(|| format!("POST {admin}/games/{game}"))?;
    let status = response.status();
    if !status.is_success() {
        let body = response.text().await.unwrap_or_default();
        bail!("starting game {game}: {status}: {body}");
    }
    let started: Started = response.json().await.context("the replay's status")?;
    Ok((started.match_id, started.run))
}

/// Sets the speed of `game`'s replay.
pub async fn set_speed(
    http: &reqwest::Client,
    admin: &str,
    token: &str,
    game: u64,
    speed: &str,
) -> anyhow::Result<()> {
    let speed = match speed.parse::<f64>() {
        Ok(factor) => serde_json::json!({ "speed": factor }),
        Err(_) => serde_json::json!({ "speed": speed }),
    };
    let response = http
        .put(format!("{admin}/replays/{game}/speed"))
        .bearer_auth(token)
        .json(&speed)
        .send()
        .await
        .with_context(|| format!("PUT {admin}/replays/{game}/speed"))?;
    if !response.status().is_success() {
        let status = response.status();
        bail!(
            "setting the speed of game {game}: {status}: {}",
            response.text().await.unwrap_or_default()
        );
    }
    Ok(())
}

#[derive(Deserialize)]
struct GameView {
    replay: RunView,
}

#[derive(Deserialize)]
struct RunView {
    run: u64,
}

/// Waits until `base` serves `game` at `run`.
pub async fn wait_served(
    http: &reqwest::Client,
    base: &str,
    game: u64,
    run: u64,
) -> anyhow::Result<()> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(response) = http.get(format!("{base}/games/{game}")).send().await
            && let Ok(view) = response.json::<GameView>().await
            && view.replay.run == run
        {
            return Ok(());
        }
        if tokio::time::Instant::now() > deadline {
            bail!("{base} did not serve game {game} run {run} within 30 s");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Games the API shows as live: (game, run), to follow replays started elsewhere.
pub async fn live_games(http: &reqwest::Client, base: &str) -> anyhow::Result<Vec<(u64, u64)>> {
    #[derive(Deserialize)]
    struct Line {
        match_id: u64,
        replay: RunView,
    }
    let lines: Vec<Line> =
        serde_json::from_str(&get(http, &format!("{base}/games?status=live")).await?)
            .context("the games list is not what the API serves")?;
    Ok(lines
        .into_iter()
        .map(|l| (l.match_id, l.replay.run))
        .collect())
}

/// A replica's resident memory and open client connections, from its `/metrics`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Usage {
    pub resident_bytes: u64,
    pub connections: u64,
}

pub async fn usage(http: &reqwest::Client, base: &str) -> anyhow::Result<Usage> {
    let text = get(http, &format!("{base}/metrics")).await?;
    let mut usage = Usage::default();
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let Some((name, value)) = line.rsplit_once(' ') else {
            continue;
        };
        let value = value.parse::<f64>().unwrap_or(0.0) as u64;
        if name == "livescore_process_resident_memory_bytes" {
            usage.resident_bytes = value;
        } else if name.starts_with("livescore_connections{") {
            usage.connections += value;
        }
    }
    Ok(usage)
}
