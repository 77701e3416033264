//! Failover without loss: two `livescore api` processes on one Redis; Server-Sent Events clients
//! follow a replay on replica A; A is killed (SIGKILL); the clients reconnect to B with their
//! Last-Event-ID; each client's sequence equals the match's log exactly, with no gap and no
//! duplicate. Needs Redis (REDIS_URL, which `scripts/test` provides).

#![allow(clippy::unwrap_used)]

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use livescore_catalog::Catalog;
use livescore_domain::{Breaks, Speed};
use livescore_eventlog::memory::MemoryLog;
use livescore_producer::ReplayManager;
use livescore_projector::{Projector, ProjectorConfig};
use livescore_store::redis::{RedisConfig, RedisStore};
use livescore_store::{LogRead, MatchStore, Topic, parse_cursor};

const GAME: u64 = 7471;

fn redis_url() -> String {
    std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

/// A `livescore api` process; killed when dropped.
struct Replica {
    child: Child,
    base: String,
}

impl Drop for Replica {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn replica(prefix: &str) -> Replica {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = Command::new(env!("CARGO_BIN_EXE_livescore"))
        .arg("api")
        .env("REDIS_URL", redis_url())
        .env("REDIS_PREFIX", prefix)
        .env("LISTEN", format!("127.0.0.1:{port}"))
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let base = format!("http://127.0.0.1:{port}");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while reqwest::get(format!("{base}/healthz")).await.is_err() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "replica never answered"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Replica { child, base }
}

/// One SSE event as a client saw it.
#[derive(Debug, Clone, PartialEq)]
struct Seen {
    id: Option<String>,
    event: String,
    data: String,
}

/// Reads SSE events from `base` into `seen`, resuming after `last_id`, until the replay's
/// `finished` arrives (true) or the connection breaks (false).
async fn listen(base: &str, last_id: Option<&str>, seen: &mut Vec<Seen>) -> bool {
    let client = reqwest::Client::new();
    let mut request = client.get(format!("{base}/sse/games/{GAME}"));
    if let Some(id) = last_id {
        request = request.header("Last-Event-ID", id);
    }
    let Ok(response) = request.send().await else {
        return false;
    };
    assert_eq!(response.status(), 200);
    let mut body = response.bytes_stream();
    let mut buffer = String::new();
    while let Some(chunk) = body.next().await {
        let Ok(chunk) = chunk else { return false };
        buffer.push_str(&String::from_utf8_lossy(&chunk));
        while let Some(end) = buffer.find("\n\n") {
            let block: String = buffer.drain(..end + 2).collect();
            let mut event = Seen {
                id: None,
                event: String::new(),
                data: String::new(),
            };
            for line in block.lines() {
                if let Some(id) = line.strip_prefix("id: ") {
                    event.id = Some(id.to_owned());
                } else if let Some(name) = line.strip_prefix("event: ") {
                    event.event = name.to_owned();
                } else if let Some(data) = line.strip_prefix("data: ") {
                    event.data.push_str(data);
                }
            }
            if event.event.is_empty() {
                continue; // a heartbeat comment
            }
            let finished =
                event.event == "replay" && event.data.contains("\"status\":\"finished\"");
            seen.push(event);
            if finished {
                return true;
            }
        }
    }
    false
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sse_clients_fail_over_to_another_replica_without_gap_or_duplicate() {
    let prefix = format!(
        "failover-{}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    );
    let store: Arc<dyn MatchStore> = Arc::new(
        RedisStore::connect(RedisConfig {
            url: redis_url(),
            prefix: prefix.clone(),
        })
        .await
        .expect("Redis must be running: scripts/test starts it"),
    );
    let a = replica(&prefix).await;
    let b = replica(&prefix).await;

    // The pipeline, in this process, writing to the replicas' Redis.
    let log = MemoryLog::new(6);
    let projector = Projector::new(
        Arc::new(log.clone()),
        Arc::clone(&store),
        ProjectorConfig::default(),
    );
    tokio::spawn(projector.run(std::future::pending()));
    let catalog =
        Arc::new(Catalog::open(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("data")).unwrap());
    let replays = ReplayManager::new(Arc::new(log), catalog, Breaks::default());
    replays
        .start(&GAME.to_string(), Speed::Factor(1500.0))
        .await
        .unwrap();
    while store.load(GAME).await.unwrap().is_none() {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }

    let (a_base, b_base) = (a.base.clone(), b.base.clone());
    let clients: Vec<_> = (0..8)
        .map(|_| {
            let (a_base, b_base) = (a_base.clone(), b_base.clone());
            tokio::spawn(async move {
                let mut seen = Vec::new();
                let finished_on_a = listen(&a_base, None, &mut seen).await;
                assert!(!finished_on_a, "replica A was killed before the end");
                let switched_at = seen.len();
                let last = seen.iter().rev().find_map(|e| e.id.clone());
                assert!(
                    listen(&b_base, last.as_deref(), &mut seen).await,
                    "finished on B"
                );
                (seen, switched_at)
            })
        })
        .collect();

    // Kill A in the middle of the match.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    drop(a);

    let mut results = Vec::new();
    for client in clients {
        results.push(client.await.unwrap());
    }
    // The whole log, once the replay is over.
    let log = match store.read_after(Topic::Match(GAME), None).await.unwrap() {
        LogRead::After(entries) => entries,
        LogRead::Unknown => unreachable!(),
    };
    for (seen, switched_at) in results {
        assert!(switched_at > 1, "the client saw some of the match on A");
        assert_eq!(seen[0].event, "snapshot");
        // After the snapshot: exactly the log's entries after the snapshot's cursor.
        let from = parse_cursor(seen[0].id.as_deref().unwrap()).unwrap();
        let expected: Vec<(String, String)> = log
            .iter()
            .filter(|e| parse_cursor(&e.cursor).unwrap() > from)
            .map(|e| (e.cursor.clone(), e.json.to_string()))
            .collect();
        let got: Vec<(String, String)> = seen[1..]
            .iter()
            .map(|e| (e.id.clone().unwrap(), e.data.clone()))
            .collect();
        assert_eq!(got.len(), expected.len(), "no gap, no duplicate");
        assert_eq!(got, expected);
    }
    store.clear().await.unwrap();
}
