//! The `livescore` binary as a user runs it: `games` and `fold`, with good and bad input.

// Test helpers may unwrap: a panic in a test is a failure with its message.
use std::path::PathBuf;
use std::process::{Command, Output};

fn livescore(args: &[&str]) -> Output {
    let data = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("data");
    Command::new(env!("CARGO_BIN_EXE_livescore"))
        .args(args)
        .env("DATA_DIR", data)
        .env("RUST_LOG", "warn")
        .output()
        .expect("livescore runs")
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn games_lists_the_catalog() {
    let output = livescore(&["games"]);
    assert!(output.status.success(), "{}", stderr(&output));
    let table = stdout(&output);
    assert_eq!(
        table.lines().count(),
        8,
        "a header and seven games:\n{table}"
    );
    assert!(table.contains("Turkey 0-3 Italy"), "{table}");

    let output = livescore(&["games", "--json"]);
    let games: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(games.as_array().unwrap().len(), 7);
    assert_eq!(games[0]["id"], 18236);
}

#[test]
fn games_lists_an_events_file_without_metadata_and_says_what_it_misses() {
    // An events file as the public dumps come: no `matches/` entry for it.
    let data = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(data.path().join("events")).unwrap();
    let shipped = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("data/events/7457.json");
    std::fs::copy(shipped, data.path().join("events/99.json")).unwrap();
    let dir = data.path().to_str().unwrap();
    let output = livescore(&["games", "--data-dir", dir]);
    assert!(output.status.success(), "{}", stderr(&output));
    let table = stdout(&output);
    let row = table.lines().find(|line| line.starts_with("99 ")).unwrap();
    assert!(row.contains("unknown"), "{table}");
    assert!(row.contains(" - "), "no official score: {table}");
    assert!(table.contains("99: no match metadata"), "{table}");
    let output = livescore(&["games", "--data-dir", dir, "--json"]);
    let games: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert!(games[0]["date"].is_null() && games[0]["competition"].is_null());
    assert!(games[0]["home"]["name"].is_string());
    assert_eq!(games[0]["missing"].as_array().unwrap().len(), 1);
}

#[test]
fn fold_prints_the_final_state() {
    let output = livescore(&["fold", "7471"]);
    assert!(output.status.success(), "{}", stderr(&output));
    let state: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(state["score"], serde_json::json!({"home": 0, "away": 3}));
    assert_eq!(state["status"], "finished");
    assert_eq!(state["info"]["away"]["name"], "North Carolina Courage");
}

#[test]
fn fold_accepts_a_path_and_prints_updates() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("data/events/3788741.json");
    let output = livescore(&["fold", path.to_str().unwrap(), "--updates"]);
    assert!(output.status.success(), "{}", stderr(&output));
    let updates: Vec<serde_json::Value> = stdout(&output)
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    let last = updates.last().unwrap();
    assert_eq!(last["type"], "stats");
    assert_eq!(last["headline"]["status"], "finished");
    assert_eq!(
        last["headline"]["score"],
        serde_json::json!({"home": 0, "away": 3})
    );
}

#[test]
fn fold_fails_clearly_on_an_unknown_game_or_a_bad_file() {
    let output = livescore(&["fold", "99"]);
    assert!(!output.status.success());
    assert!(
        stderr(&output).contains("no game 99"),
        "{}",
        stderr(&output)
    );

    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("123.json");
    std::fs::write(&bad, "[{\"id\": \"x\",\n\"index\": \"one\"}]").unwrap();
    let output = livescore(&["fold", bad.to_str().unwrap()]);
    assert!(!output.status.success());
    let message = stderr(&output);
    assert!(message.contains("123.json: line 2"), "{message}");
    assert!(message.contains("invalid type"), "{message}");

    let output = livescore(&["games", "--data-dir", "/nonexistent"]);
    assert!(!output.status.success());
    assert!(
        stderr(&output).contains("/nonexistent"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn an_engine_set_but_empty_is_refused_at_once() {
    // `up` would otherwise wait for a Kafka without bootstrap servers, forever.
    for (variable, role) in [("KAFKA_BROKERS", "up"), ("REDIS_URL", "api")] {
        let output = Command::new(env!("CARGO_BIN_EXE_livescore"))
            .arg(role)
            .env(variable, "")
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(2), "{variable}");
        let message = stderr(&output);
        assert!(
            message.contains(&format!("<{variable}>")) && message.contains("none was supplied"),
            "{message}"
        );
    }
}

#[test]
fn redis_settings_that_contradict_each_other_are_refused_with_a_clear_message() {
    let cases: [(&[(&str, &str)], &str); 4] = [
        (
            &[
                ("REDIS_URL", "redis://127.0.0.1:6379"),
                ("REDIS_SENTINELS", "127.0.0.1:26379"),
            ],
            "cannot be used with",
        ),
        (&[("REDIS_SENTINELS", "127.0.0.1")], "is not host:port"),
        (&[("REDIS_SENTINELS", "127.0.0.1:0")], "is not host:port"),
        (
            &[
                ("REDIS_URL", "redis://127.0.0.1:1"),
                ("REDIS_READ_FROM", "replica"),
            ],
            "REDIS_READ_FROM=replica needs REDIS_SENTINELS",
        ),
    ];
    for (env, expected) in cases {
        let output = Command::new(env!("CARGO_BIN_EXE_livescore"))
            .arg("api")
            .env_remove("REDIS_URL")
            .envs(env.iter().copied())
            .output()
            .unwrap();
        assert!(!output.status.success(), "{env:?}");
        let message = stderr(&output);
        assert!(message.contains(expected), "{env:?}: {message}");
    }
}

#[test]
fn a_role_stuck_on_an_unreachable_broker_still_stops_after_sigterm() {
    // Nothing listens on port 1: the projector waits for Kafka at start-up, forever.
    let mut child = Command::new(env!("CARGO_BIN_EXE_livescore"))
        .arg("projector")
        .env("KAFKA_BROKERS", "127.0.0.1:1")
        .env("REDIS_URL", "redis://127.0.0.1:1")
        .env("PROJECTOR_LISTEN", "127.0.0.1:0")
        .env("RUST_LOG", "info,rdkafka=off,librdkafka=off")
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = std::io::BufReader::new(child.stderr.take().unwrap());
    // Once it says it is connecting, its signal handler is installed.
    let mut line = String::new();
    while !line.contains("event log: Kafka, connecting") {
        line.clear();
        let read = std::io::BufRead::read_line(&mut stderr, &mut line).unwrap();
        assert!(read > 0, "the projector ended before connecting");
    }
    let status = Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status()
        .unwrap();
    assert!(status.success());
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut stderr, &mut rest).unwrap();
    let exit = child.wait().unwrap();
    assert!(!exit.success(), "cut short, not a clean stop: {rest}");
    assert!(rest.contains("exiting now"), "{rest}");
}

/// The lines `livescore up` prints on stdout until it says where the games are, read on a
/// thread of their own so that a role that prints nothing fails the test after `deadline`.
fn banner_of_up(admin_token: Option<&str>) -> String {
    let mut command = Command::new(env!("CARGO_BIN_EXE_livescore"));
    command
        .arg("up")
        .env_remove("KAFKA_BROKERS")
        .env_remove("REDIS_URL")
        .env_remove("ADMIN_TOKEN")
        .env("LISTEN", "127.0.0.1:0")
        .env(
            "DATA_DIR",
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("data"),
        )
        .env("RUST_LOG", "warn")
        .stdout(std::process::Stdio::piped());
    if let Some(token) = admin_token {
        command.env("ADMIN_TOKEN", token);
    }
    let mut child = command.spawn().unwrap();
    let stdout = child.stdout.take().unwrap();
    let (lines, received) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufRead::lines(std::io::BufReader::new(stdout)) {
            let Ok(line) = line else { break };
            if lines.send(line).is_err() {
                break;
            }
        }
    });
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let mut banner = String::new();
    while !banner.contains("replayable games") {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        match received.recv_timeout(left) {
            Ok(line) => banner.push_str(&format!("{line}\n")),
            Err(error) => panic!("no banner from `livescore up` ({error}); so far: {banner}"),
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    banner
}

#[test]
fn up_prints_the_admin_token_only_when_it_generated_it() {
    let chosen = "a-token-the-operator-chose";
    let banner = banner_of_up(Some(chosen));
    assert!(!banner.contains(chosen), "{banner}");
    assert!(banner.contains("Bearer $ADMIN_TOKEN"), "{banner}");

    let banner = banner_of_up(None);
    let generated = banner
        .lines()
        .find_map(|line| line.strip_prefix("admin token: "))
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("no generated token in {banner}"));
    assert_eq!(generated.len(), 32, "{generated}");
    assert!(
        generated.chars().all(|c| c.is_ascii_hexdigit()),
        "{generated}"
    );
    assert!(banner.contains(&format!("Bearer {generated}")), "{banner}");
}

#[test]
fn the_env_example_placeholder_is_refused_as_an_admin_token() {
    let output = Command::new(env!("CARGO_BIN_EXE_livescore"))
        .arg("up")
        .env_remove("KAFKA_BROKERS")
        .env_remove("REDIS_URL")
        .env("LISTEN", "127.0.0.1:0")
        .env("ADMIN_TOKEN", "change-me")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let message = stderr(&output);
    assert!(
        message.contains(".env.example's placeholder") && message.contains("ADMIN_TOKEN"),
        "{message}"
    );
}
