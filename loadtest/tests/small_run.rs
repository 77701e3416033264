//! The load test in CI: `livescore up` on the test's Kafka and Redis, 300 viewers (SSE and
//! WebSocket, the games list and match streams) through two maximum-speed replays. The run must
//! end with every viewer complete and nothing missing, duplicated or out of order; the load
//! test's own exit status says so, and so does its JSON report.
//!
//! Needs REDIS_URL and KAFKA_BROKERS (scripts/test starts them); runs on the in-process engines
//! without them.

#![allow(clippy::unwrap_used)]

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The base URL `livescore up` prints once it listens ("livescore is up: <base>/games"), within
/// 30 s; the rest of its output is read and dropped, so that it never blocks on a full pipe.
fn base_url(up: &mut Child) -> String {
    let stdout = up.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(games) = line.strip_prefix("livescore is up: ") {
                let _ = tx.send(games.trim_end_matches("/games").to_owned());
            }
        }
    });
    rx.recv_timeout(Duration::from_secs(30))
        .expect("livescore up never said it was up")
}

fn livescore_bin() -> PathBuf {
    // `cargo test --workspace` builds the workspace's binaries into the same directory.
    let bin = PathBuf::from(env!("CARGO_BIN_EXE_loadtest")).with_file_name("livescore");
    assert!(
        bin.exists(),
        "{} is missing: run `cargo build --bin livescore` (cargo test --workspace builds it)",
        bin.display()
    );
    bin
}

#[test]
fn three_hundred_viewers_get_every_update_once_and_in_order() {
    let unique = format!(
        "loadtest-{}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    );
    let mut up = Command::new(livescore_bin());
    up.arg("up")
        // Port 0, and the address read from what it prints: a port chosen here and freed for
        // it to bind could go to another test's process first.
        .env("LISTEN", "127.0.0.1:0")
        .env("ADMIN_TOKEN", "loadtest")
        .env("REDIS_PREFIX", &unique)
        .env("KAFKA_TOPIC", &unique)
        .env("PROJECTOR_GROUP", &unique)
        .env(
            "DATA_DIR",
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../data"),
        )
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped());
    for name in ["REDIS_URL", "KAFKA_BROKERS"] {
        if let Ok(value) = std::env::var(name) {
            up.env(name, value);
        }
    }
    let mut server = Server(up.spawn().unwrap());
    let base = base_url(&mut server.0);

    let output = Command::new(env!("CARGO_BIN_EXE_loadtest"))
        .args(["--url", &base, "--token", "loadtest", "--clients", "300"])
        .args(["--transport", "mixed", "--stream", "both", "--games", "2"])
        .args([
            "--speed",
            "max",
            "--max-seconds",
            "120",
            "--json",
            "--quiet",
        ])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    let report: serde_json::Value = serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|err| panic!("no JSON report ({err}): {stderr}"));
    assert!(output.status.success(), "{report:#}\n{stderr}");
    let integrity = &report["integrity"];
    for field in [
        "missing",
        "duplicated",
        "out_of_order",
        "mismatched",
        "resyncs",
    ] {
        assert_eq!(integrity[field], 0, "{field}: {report:#}");
    }
    assert_eq!(integrity["completed"], 300, "{report:#}");
    assert_eq!(integrity["checked"], 300, "{report:#}");
    assert_eq!(report["failed_connects"], 0, "{report:#}");
    // Two whole matches reached every viewer (about 200 updates a match for each of the 150
    // match viewers, and every games-list change for the 150 others), goals among them.
    assert!(report["updates"].as_u64().unwrap() > 20_000, "{report:#}");
    assert!(
        report["goal_latency"]["samples"].as_u64().unwrap() > 0,
        "{report:#}"
    );
}
