//! The local cluster (`scripts/cluster`: producer, projector, three API replicas and nginx, on
//! tansu and Redis), tested from outside, through nginx only, the way viewers and the admin panel
//! reach it:
//! - an API replica is SIGKILLed mid-match: every SSE and WebSocket viewer resumes on the others
//!   with nothing missing and nothing twice, and `GET /games` keeps answering throughout;
//! - the projector is SIGKILLed mid-match (the cluster restarts it): the match still finishes
//!   with the right state;
//! - `scripts/cluster check`: nginx -t on the rendered template, docker-compose.yaml parsed.
//!
//! Needs Redis, tansu (KAFKA_BROKERS), nginx and docker-compose, which `scripts/test` provides.
//! Each cluster runs on ports, a Redis prefix, a topic and a consumer group of its own.

use crate::support;

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use livescore_domain::fold_match;
use livescore_store::MatchStore;
use support::clients::{Followed, Transport, assert_exact, follow_to_the_end};

const GAME: u64 = 7471;
const TOKEN: &str = "cluster-test-token";

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A `scripts/cluster` process and what it runs; stopped (SIGTERM, like Ctrl-C) when dropped.
struct Cluster {
    script: Child,
    base: String,
    /// Prometheus, scraping every role.
    prometheus: String,
    run_dir: PathBuf,
    store: Arc<dyn MatchStore>,
    http: reqwest::Client,
    /// The cluster's topic and key prefix (its Redis keys deleted once the script has stopped
    /// every role).
    _name: support::Owned,
}

impl Drop for Cluster {
    fn drop(&mut self) {
        signal("TERM", self.script.id());
        let _ = self.script.wait();
    }
}

fn signal(name: &str, pid: u32) {
    let status = Command::new("kill")
        .arg(format!("-{name}"))
        .arg(pid.to_string())
        .status()
        .unwrap();
    assert!(status.success(), "kill -{name} {pid}");
}

async fn start_cluster() -> Cluster {
    // The base port, its neighbours +1..+3 for the replicas, +10 for the producer, +11 for the
    // projector, +20 for Prometheus.
    let port = support::services::free_ports(21);
    let name = support::owned("cluster");
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(&*name);
    let mut script = Command::new(repo().join("scripts/cluster"))
        .env("CLUSTER_PORT", port.to_string())
        .env("CLUSTER_DIR", &dir)
        .env("LIVESCORE_BIN", env!("CARGO_BIN_EXE_livescore"))
        // A missing tool is an error here, not an install (scripts/test installs them first).
        .env("NO_INSTALL", "1")
        .env("REDIS_URL", support::redis_url())
        .env("KAFKA_BROKERS", support::kafka_brokers())
        .env("REDIS_PREFIX", &*name)
        .env("KAFKA_TOPIC", &*name)
        .env("PROJECTOR_GROUP", &*name)
        .env("ADMIN_TOKEN", TOKEN)
        .env("RUST_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    // Wait for the script's "is up" line (it checks every part's health first); its output is
    // echoed so that a failure shows why.
    let stdout = script.stdout.take().unwrap();
    let (up_tx, up_rx) = tokio::sync::oneshot::channel();
    std::thread::spawn(move || {
        let mut up_tx = Some(up_tx);
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            eprintln!("[cluster] {line}");
            if line.contains("livescore cluster is up")
                && let Some(tx) = up_tx.take()
            {
                let _ = tx.send(());
            }
        }
    });
    let cluster = Cluster {
        script,
        base: format!("http://127.0.0.1:{port}"),
        prometheus: format!("http://127.0.0.1:{}", port + 20),
        run_dir: dir.join("run"),
        store: support::redis_store(&name).await,
        http: support::http_client(),
        _name: name,
    };
    tokio::time::timeout(Duration::from_secs(90), up_rx)
        .await
        .expect("the cluster was up within 90 s")
        .expect("scripts/cluster said it was up (see its output above)");
    cluster
}

impl Cluster {
    /// Waits until Prometheus scrapes every role (producer, projector, three replicas)
    /// successfully; returns the jobs of the targets.
    async fn every_target_up(&self) -> Vec<String> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            let targets = self
                .http
                .get(format!("{}/api/v1/targets", self.prometheus))
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap();
            let targets: serde_json::Value = serde_json::from_str(&targets).unwrap();
            let active = targets["data"]["activeTargets"].as_array().unwrap().clone();
            let up = |t: &serde_json::Value| t["health"] == "up";
            if active.len() == 5 && active.iter().all(up) {
                return active
                    .iter()
                    .map(|t| t["labels"]["job"].as_str().unwrap().to_owned())
                    .collect();
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "Prometheus: not every target up within 30 s: {active:#?}"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// The pid of a role's current process (`api-1`, `projector`, ...).
    fn pid(&self, role: &str) -> u32 {
        std::fs::read_to_string(self.run_dir.join(format!("{role}.pid")))
            .unwrap()
            .trim()
            .parse()
            .unwrap()
    }

    /// Starts a replay of `game` through nginx (the producer's admin route), held at the end of
    /// minute 10, and waits until the API serves it held there.
    async fn start_replay(&self, game: u64, speed: u32) {
        self.admin(&format!("games/{game}?speed={speed}&pause_at=10"))
            .await;
        self.wait_until_held(game, 10).await;
    }

    /// Lets the held replay of `game` run to the end of `minute`, and waits until it holds
    /// there: what the test does next happens at that minute, whatever the machine's load.
    async fn run_to(&self, game: u64, minute: u64) {
        self.admin(&format!("replays/{game}/pause?at={minute}"))
            .await;
        self.resume(game).await;
        self.wait_until_held(game, minute).await;
    }

    async fn resume(&self, game: u64) {
        self.admin(&format!("replays/{game}/resume")).await;
    }

    /// POSTs to an admin route through nginx.
    async fn admin(&self, path: &str) {
        let response = self
            .http
            .post(format!("{}/{path}", self.base))
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap();
        assert!(
            response.status().is_success(),
            "{path}: {}",
            response.text().await.unwrap()
        );
    }

    /// The match as the API serves it through nginx.
    async fn game(&self, game: u64) -> Option<serde_json::Value> {
        let response = self
            .http
            .get(format!("{}/games/{game}", self.base))
            .send()
            .await
            .ok()?;
        if response.status() != 200 {
            return None;
        }
        serde_json::from_slice(&response.bytes().await.ok()?).ok()
    }

    /// Waits until the API serves the match paused with its clock at `minute` (a deadline, not
    /// a sleep).
    async fn wait_until_held(&self, game: u64, minute: u64) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(view) = self.game(game).await
                && view["state"]["clock"]["minute"].as_u64() == Some(minute)
                && view["replay"]["status"] == "paused"
            {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "game {game} never held at minute {minute}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Viewers of `game` through nginx: `n` over SSE and `n` over WebSocket.
    fn viewers(&self, game: u64, n: usize) -> Vec<tokio::task::JoinHandle<Followed>> {
        [Transport::Sse, Transport::WebSocket]
            .into_iter()
            .flat_map(|transport| std::iter::repeat_n(transport, n))
            .map(|transport| {
                let base = self.base.clone();
                tokio::spawn(async move {
                    follow_to_the_end(&base, game, transport, Duration::from_secs(60)).await
                })
            })
            .collect()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_api_replica_killed_mid_match_loses_no_viewer_and_no_update() {
    let cluster = start_cluster().await;
    cluster.start_replay(GAME, 1000).await;
    let viewers = cluster.viewers(GAME, 8);

    // GET /games through nginx, every 20 ms until the end: every answer must be a 200.
    let done = Arc::new(AtomicBool::new(false));
    let (answered, failed) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let poller = {
        let (url, http) = (format!("{}/games", cluster.base), cluster.http.clone());
        let (done, answered, failed) = (done.clone(), answered.clone(), failed.clone());
        tokio::spawn(async move {
            while !done.load(Ordering::Relaxed) {
                match http.get(&url).send().await {
                    Ok(response) if response.status() == 200 => {
                        answered.fetch_add(1, Ordering::Relaxed)
                    }
                    _ => failed.fetch_add(1, Ordering::Relaxed),
                };
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
    };

    // Mid-match, one replica dies without a goodbye; nginx spreads viewers over all three, so
    // some of them were on it. The match goes on at once.
    cluster.run_to(GAME, 30).await;
    let killed = cluster.pid("api-2");
    signal("KILL", killed);
    cluster.resume(GAME).await;

    let mut reconnects = 0;
    for viewer in viewers {
        let followed = support::within("a viewer's end", Duration::from_secs(90), viewer)
            .await
            .unwrap();
        reconnects += followed.reconnects;
        assert_exact(cluster.store.as_ref(), GAME, &followed.seen).await;
    }
    done.store(true, Ordering::Relaxed);
    support::within("the poller's end", Duration::from_secs(10), poller)
        .await
        .unwrap();
    assert!(reconnects > 0, "some viewers were on the killed replica");
    assert_eq!(
        failed.load(Ordering::Relaxed),
        0,
        "GET /games failed during the failover ({} answered)",
        answered.load(Ordering::Relaxed)
    );
    assert!(answered.load(Ordering::Relaxed) > 10);
    cluster.store.clear().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_projector_killed_mid_match_comes_back_and_the_match_ends_right() {
    let cluster = start_cluster().await;
    // Prometheus scrapes every role: the metrics an operator watches are there to watch.
    let mut jobs = cluster.every_target_up().await;
    jobs.sort();
    assert_eq!(jobs, ["api", "api", "api", "producer", "projector"]);
    cluster.start_replay(GAME, 1000).await;
    let viewers = cluster.viewers(GAME, 4);

    // Held at minute 30, the projector dies; the match goes on while it is away.
    cluster.run_to(GAME, 30).await;
    let killed = cluster.pid("projector");
    signal("KILL", killed);
    cluster.resume(GAME).await;

    for viewer in viewers {
        let followed = support::within("a viewer's end", Duration::from_secs(90), viewer)
            .await
            .unwrap();
        assert_exact(cluster.store.as_ref(), GAME, &followed.seen).await;
    }
    assert_ne!(
        cluster.pid("projector"),
        killed,
        "the cluster started the projector again"
    );
    // The final state is exactly what folding the whole match computes.
    let game = support::catalog().load(&GAME.to_string()).unwrap();
    let (fold, _) = fold_match(game.info, &game.events);
    let view = cluster.game(GAME).await.unwrap();
    assert_eq!(view["replay"]["status"], "finished");
    assert_eq!(view["state"], serde_json::to_value(&fold.state).unwrap());
    cluster.store.clear().await.unwrap();
}

#[test]
fn the_nginx_template_and_the_compose_file_are_valid() {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(support::unique("cluster-check"));
    let output = Command::new(repo().join("scripts/cluster"))
        .arg("check")
        .env("NO_INSTALL", "1")
        .env("CLUSTER_DIR", &dir)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(output.status.success(), "{text}");
    assert!(text.contains("test is successful"), "{text}");
    for service in [
        "kafka",
        "kafka-init",
        "redis",
        "producer",
        "projector",
        "api-1",
        "api-2",
        "api-3",
        "nginx",
    ] {
        assert!(text.contains(&format!(" {service} ")), "{service}: {text}");
    }
}
