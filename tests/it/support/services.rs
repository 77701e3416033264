//! Servers and roles that a test owns, so that it can kill them and start them again: a tansu
//! broker that keeps its data on disk (SQLite), a Redis that keeps its data on disk (an
//! append-only file written on every command), and `livescore` role processes. Each listens on
//! a free port of its own and is killed when dropped.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A port for a process the test starts: one nothing listens on now and that no other test of
/// the run gets.
pub fn free_port() -> u16 {
    free_ports(1)
}

/// The first of `count` consecutive ports, as [`free_port`]: for a script that puts its
/// processes on a base port and the ones after it.
///
/// They are taken below the kernel's ephemeral range (32768-60999 by default): a port from
/// `bind(0)`, freed for the process to bind, could meanwhile go to another test's server or to
/// any outgoing connection (seen: a producer failing with "address already in use", and the
/// test's requests answered by another test's server). nextest runs each test in a process of
/// its own, so the next port is kept in a file under the target directory, under a lock.
pub fn free_ports(count: u16) -> u16 {
    use std::io::{Read, Seek, Write};
    use std::os::fd::AsRawFd;
    const FIRST: u16 = 20_000;
    const END: u16 = 32_000;
    let path = Path::new(env!("CARGO_TARGET_TMPDIR")).join("next-test-port");
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .unwrap();
    // Held until `file` is closed, at the end of this function.
    // SAFETY: flock on a descriptor this function owns; it only takes an advisory lock.
    assert_eq!(unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) }, 0);
    let mut text = String::new();
    file.read_to_string(&mut text).unwrap();
    let mut next: u16 = text.trim().parse().unwrap_or(FIRST);
    for _ in FIRST..END {
        if !(FIRST..END - count).contains(&next) {
            next = FIRST;
        }
        let base = next;
        next += count;
        let free = (base..base + count)
            .all(|port| std::net::TcpListener::bind(("127.0.0.1", port)).is_ok());
        if free {
            file.rewind().unwrap();
            file.set_len(0).unwrap();
            write!(file, "{next}").unwrap();
            return base;
        }
    }
    panic!("no {count} free ports from {FIRST} to {END}");
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

/// `redis-server` on `port`, its data in `dir`, appending every command to its file before
/// answering.
fn redis_server(port: u16, dir: &Path) -> Command {
    let mut command = program("redis-server");
    command
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
        .args(["--dir", dir.to_str().unwrap()])
        .args([
            "--appendonly",
            "yes",
            "--appendfsync",
            "always",
            "--save",
            "",
        ]);
    command
}

/// A program from PATH, or a clear failure saying what installs it.
fn program(name: &str) -> Command {
    let found = std::env::var_os("PATH")
        .map(|paths| std::env::split_paths(&paths).any(|dir| dir.join(name).is_file()))
        .unwrap_or(false);
    assert!(found, "{name} is not on PATH: scripts/test installs it");
    Command::new(name)
}

/// A server on a port of its own, with a directory of its own for its data, that a test can
/// kill (SIGKILL) and start again on the same port and data.
pub struct Server {
    pub port: u16,
    dir: PathBuf,
    child: Option<Child>,
    what: &'static str,
    command: Box<CommandFor>,
}

/// How a server's command line is made from its port and data directory.
type CommandFor = dyn Fn(u16, &Path) -> Command + Send + Sync;

impl Server {
    /// tansu, storing in SQLite: killed and started again, it has every record it acknowledged.
    pub async fn tansu() -> Server {
        Server::start("tansu", |port, dir| {
            let url = format!("tcp://127.0.0.1:{port}");
            let log = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(dir.join("tansu.log"))
                .unwrap();
            let mut command = program("tansu");
            command
                .arg("broker")
                .args(["--listener-url", &url, "--advertised-listener-url", &url])
                // sqlite://<host>/<path> is relative to the working directory.
                .args(["--storage-engine", "sqlite://tansu.db"])
                .arg("--silent")
                .current_dir(dir)
                .env("RUST_LOG", "warn")
                .stderr(log);
            command
        })
        .await
    }

    /// Redis, writing every command to its append-only file before answering: killed and
    /// started again, it has everything it acknowledged.
    pub async fn redis() -> Server {
        Server::start("redis-server", redis_server).await
    }

    /// A Redis replica of `primary` (on this host), kept on disk like [`Server::redis`].
    pub async fn redis_replica_of(primary: u16) -> Server {
        Server::start("redis-replica", move |port, dir| {
            let mut command = redis_server(port, dir);
            command.args(["--replicaof", "127.0.0.1", &primary.to_string()]);
            command
        })
        .await
    }

    /// A Redis Sentinel watching the primary on `primary` under `master`, quick to act: the
    /// primary is down after 1 s without an answer, and 2 sentinels must agree.
    pub async fn redis_sentinel(master: &'static str, primary: u16) -> Server {
        Server::start("redis-sentinel", move |port, dir| {
            // A sentinel rewrites its configuration file as it learns: one of its own.
            let config = dir.join("sentinel.conf");
            std::fs::write(
                &config,
                format!(
                    "port {port}\nbind 127.0.0.1\ndir {dir}\n\
                     sentinel monitor {master} 127.0.0.1 {primary} 2\n\
                     sentinel down-after-milliseconds {master} 1000\n\
                     sentinel failover-timeout {master} 10000\n\
                     sentinel parallel-syncs {master} 1\n",
                    dir = dir.display()
                ),
            )
            .unwrap();
            let mut command = program("redis-server");
            command.arg(&config).arg("--sentinel");
            command
        })
        .await
    }

    async fn start(
        what: &'static str,
        command: impl Fn(u16, &Path) -> Command + Send + Sync + 'static,
    ) -> Server {
        let mut server = Server {
            port: free_port(),
            dir: scratch_dir(what),
            child: None,
            what,
            command: Box::new(command),
        };
        server.restart().await;
        server
    }

    /// `host:port`, as KAFKA_BROKERS wants it.
    pub fn brokers(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// `redis://host:port`, as REDIS_URL wants it.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// SIGKILL.
    pub fn kill(&mut self) {
        kill(&mut self.child);
    }

    /// A copy of its data as it is now, taken while it is stopped (SIGSTOP, then SIGCONT), so
    /// that the copy is whole: a backup.
    pub fn backup(&self) -> PathBuf {
        let pid = self
            .child
            .as_ref()
            .expect("the server runs")
            .id()
            .to_string();
        let signal = |name: &str| {
            let status = Command::new("kill").args([name, &pid]).status().unwrap();
            assert!(status.success(), "kill {name} {pid}");
        };
        let backup = scratch_dir(&format!("{}-backup", self.what));
        signal("-STOP");
        let copied = Command::new("cp")
            .arg("-a")
            .arg(self.dir.join("."))
            .arg(&backup)
            .status();
        signal("-CONT");
        assert!(copied.unwrap().success(), "cp -a {}", self.dir.display());
        backup
    }

    /// SIGKILL, its data replaced by `backup`, and started again: a server restored from an
    /// older backup, which lost everything written since.
    pub async fn restore(&mut self, backup: &Path) {
        self.kill();
        std::fs::remove_dir_all(&self.dir).unwrap();
        std::fs::create_dir_all(&self.dir).unwrap();
        let copied = Command::new("cp")
            .arg("-a")
            .arg(backup.join("."))
            .arg(&self.dir)
            .status()
            .unwrap();
        assert!(copied.success(), "cp -a {}", backup.display());
        self.restart().await;
    }

    /// Starts it (again) on the same port and data; returns once it listens.
    pub async fn restart(&mut self) {
        let child = (self.command)(self.port, &self.dir)
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        self.child = Some(child);
        wait_listening(self.port, self.what).await;
    }
}

impl Drop for Server {
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
    /// Starts `livescore <role>` with `env` and nothing else of the test's environment but
    /// `PATH`, `HOME` and `RUST_BACKTRACE`: `scripts/test`'s `KAFKA_BROKERS` and `REDIS_URL`
    /// would otherwise put a role the test meant on the in-process engines on the shared
    /// servers, under the default topic, group and prefix. An empty value is left unset.
    pub fn start(role: &str, env: &[(&str, String)]) -> Role {
        Role::start_with_args(role, &[], env)
    }

    /// As [`Role::start`], with command-line arguments after the role (`--rebuild`, say).
    pub fn start_with_args(role: &str, args: &[&str], env: &[(&str, String)]) -> Role {
        let mut command = Command::new(env!("CARGO_BIN_EXE_livescore"));
        command.env_clear();
        for kept in ["PATH", "HOME", "RUST_BACKTRACE"] {
            if let Some(value) = std::env::var_os(kept) {
                command.env(kept, value);
            }
        }
        command
            .arg(role)
            .args(args)
            // ROLE_RUST_LOG=info (or librdkafka=debug with KAFKA_DEBUG=cgrp) to see the roles.
            .env(
                "RUST_LOG",
                std::env::var("ROLE_RUST_LOG").unwrap_or_else(|_| "warn".to_owned()),
            )
            .stdout(Stdio::null());
        for (name, value) in env.iter().filter(|(_, value)| !value.is_empty()) {
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

    /// SIGTERM, and waits until it has exited: a graceful stop.
    pub fn terminate(&mut self) {
        if let Some(mut child) = self.child.take() {
            let status = Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status()
                .unwrap();
            assert!(status.success(), "kill -TERM {}", child.id());
            let _ = child.wait();
        }
    }

    /// Its process id (0 once killed).
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }
}

impl Drop for Role {
    fn drop(&mut self) {
        self.kill();
    }
}
