//! Servers and roles that a test owns, so that it can kill them and start them again: a tansu
//! broker that keeps its data on disk (SQLite), a Redis that keeps its data on disk (an
//! append-only file written on every command), and `livescore` role processes. Each listens on
//! a free port of its own and is killed when dropped.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A port nothing listens on now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A directory of the test's own under the target directory, empty.
pub fn scratch_dir(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(super::unique(name));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Waits (with a deadline) until something accepts connections on `port`.
async fn wait_listening(port: u16, what: &str) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .is_err()
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{what} never listened on port {port}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// SIGKILL: a crash, not a shutdown.
fn kill(child: &mut Option<Child>) {
    if let Some(mut child) = child.take() {
        let _ = child.kill();
        let _ = child.wait();
    }
}

/// A program from PATH, or a clear failure saying what installs it.
fn program(name: &str) -> Command {
    let found = std::env::var_os("PATH")
        .map(|paths| std::env::split_paths(&paths).any(|dir| dir.join(name).is_file()))
        .unwrap_or(false);
    assert!(found, "{name} is not on PATH: scripts/test installs it");
    Command::new(name)
}

/// A tansu broker on a port of its own, storing in SQLite under a directory of its own: killed
/// and started again, it has every record it acknowledged.
pub struct Tansu {
    pub port: u16,
    dir: PathBuf,
    child: Option<Child>,
}

impl Tansu {
    pub async fn start() -> Tansu {
        let mut tansu = Tansu {
            port: free_port(),
            dir: scratch_dir("tansu"),
            child: None,
        };
        tansu.restart().await;
        tansu
    }

    pub fn brokers(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// SIGKILL.
    pub fn kill(&mut self) {
        kill(&mut self.child);
    }

    /// Starts it (again) on the same port and storage; returns once it listens.
    pub async fn restart(&mut self) {
        let url = format!("tcp://127.0.0.1:{}", self.port);
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("tansu.log"))
            .unwrap();
        let child = program("tansu")
            .arg("broker")
            .args(["--listener-url", &url, "--advertised-listener-url", &url])
            // sqlite://<host>/<path> is relative to the working directory.
            .args(["--storage-engine", "sqlite://tansu.db"])
            .arg("--silent")
            .current_dir(&self.dir)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        self.child = Some(child);
        wait_listening(self.port, "tansu").await;
    }
}

impl Drop for Tansu {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A Redis server on a port of its own that writes every command to its append-only file before
/// answering: killed and started again, it has everything it acknowledged.
pub struct RedisServer {
    pub port: u16,
    dir: PathBuf,
    child: Option<Child>,
}

impl RedisServer {
    pub async fn start() -> RedisServer {
        let mut redis = RedisServer {
            port: free_port(),
            dir: scratch_dir("redis"),
            child: None,
        };
        redis.restart().await;
        redis
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// SIGKILL.
    pub fn kill(&mut self) {
        kill(&mut self.child);
    }

    /// Starts it (again) on the same port and files; returns once it listens.
    pub async fn restart(&mut self) {
        let dir: &Path = &self.dir;
        let child = program("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--dir", dir.to_str().unwrap()])
            .args([
                "--appendonly",
                "yes",
                "--appendfsync",
                "always",
                "--save",
                "",
            ])
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        self.child = Some(child);
        wait_listening(self.port, "redis-server").await;
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A `livescore <role>` process; killed (SIGKILL) when dropped. Its output goes to the test's.
pub struct Role {
    child: Option<Child>,
    pub name: String,
}

impl Role {
    /// Starts `livescore <role>` with `env` on top of the test's environment.
    pub fn start(role: &str, env: &[(&str, String)]) -> Role {
        let mut command = Command::new(env!("CARGO_BIN_EXE_livescore"));
        command
            .arg(role)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null());
        for (name, value) in env {
            command.env(name, value);
        }
        Role {
            child: Some(command.spawn().unwrap()),
            name: role.to_owned(),
        }
    }

    /// SIGKILL.
    pub fn kill(&mut self) {
        kill(&mut self.child);
    }
}

impl Drop for Role {
    fn drop(&mut self) {
        self.kill();
    }
}
