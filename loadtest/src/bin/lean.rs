//! `lean`: the fan-out side-by-side client. N viewers on one thread, each a raw TCP connection
//! (an SSE GET, or a WebSocket upgrade), that parse nothing: they scan the bytes for
//! `emitted_at_ms":<digits>` (the latency sample) and for the stream's cursor (an SSE `id:` line,
//! or a WebSocket frame's `"cursor":"`), and check that cursors only go up. So the client costs
//! the same whichever server it reads, livescore or nchan, and leaves the cores to the server.
//!
//! With `--publish`, it also publishes to an nchan channel at livescore's own rate and size
//! (each message carries its `emitted_at_ms` and a cursor). With `--server-pid`, it reports what
//! the server spent over the measured window: CPU per delivered message, context switches, and
//! memory per connection (busy, and idle before the first message).
//!
//!   lean --url http://127.0.0.1:18080/sse/games --clients 10000 --seconds 30 --server-pid $PID
//!   lean --url ws://127.0.0.1:18090/ws --clients 10000 --publish http://127.0.0.1:18090/pub \
//!       --rate 4.2 --size 582 --server-pid $(pgrep -f 'nginx: worker')

use std::cell::RefCell;
use std::rc::Rc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

#[path = "../sample.rs"]
mod sample;

use anyhow::{Context, bail};
use clap::Parser;
use hdrhistogram::Histogram;
use serde::Serialize;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

#[derive(Parser, Debug)]
#[command(
    name = "lean",
    about = "Lean fan-out client: livescore or nchan, side by side"
)]
struct Args {
    /// The stream: `http://host:port/path` (SSE) or `ws://host:port/path` (WebSocket).
    #[arg(long)]
    url: String,
    /// The WebSocket text frame sent after the upgrade (livescore's subscribe request); none
    /// for nchan, whose URL is the channel.
    #[arg(long)]
    subscribe: Option<String>,
    #[arg(long, default_value_t = 1000)]
    clients: usize,
    /// New connections per second.
    #[arg(long, default_value_t = 2000)]
    connect_rate: u32,
    /// Seconds to hold the idle connections before the first publication (memory when idle).
    #[arg(long, default_value_t = 3)]
    settle: u64,
    /// Length of the measured window, in seconds.
    #[arg(long, default_value_t = 30)]
    seconds: u64,
    /// Publish to this nchan publisher location while measuring.
    #[arg(long)]
    publish: Option<String>,
    /// Publish to a livescore replica's Redis instead, as its projector would (the entry
    /// appended to the feed's stream and published on the live channel in one script): the
    /// replica's fan-out fed exactly as nchan is. `host:port` of Redis.
    #[arg(long)]
    publish_redis: Option<String>,
    /// The replica's `REDIS_PREFIX`, with `--publish-redis`.
    #[arg(long, default_value = "livescore")]
    redis_prefix: String,
    /// Publications per second.
    #[arg(long, default_value_t = 4.2)]
    rate: f64,
    /// Bytes per publication (padded JSON).
    #[arg(long, default_value_t = 582)]
    size: usize,
    /// Publish this many messages at once on each tick (a goal: one burst to everyone).
    #[arg(long, default_value_t = 1)]
    burst: usize,
    /// The server's processes, whose CPU, context switches and memory are reported.
    #[arg(long = "server-pid")]
    server_pids: Vec<u32>,
    /// A name for the report.
    #[arg(long, default_value = "run")]
    name: String,
    /// Connect from this local address (a loopback address of its own per process lets a
    /// machine open more than the ~28,000 connections one source address has ports for).
    #[arg(long)]
    source: Option<std::net::IpAddr>,
    /// Create this file once every viewer is connected (for scripts that start a burst then).
    #[arg(long)]
    ready_file: Option<std::path::PathBuf>,
}

#[derive(Default)]
struct Tally {
    connected: usize,
    failed: usize,
    closed: usize,
    /// Messages seen (one per `emitted_at_ms`), over the whole run.
    messages: u64,
    /// Messages seen inside the measured window.
    window_messages: u64,
    duplicates: u64,
    out_of_order: u64,
    /// Each viewer's cursors seen and last cursor: after a burst that every viewer followed
    /// from the same snapshot, all must agree (nothing lost).
    viewers: Vec<(u64, Option<(u64, u64)>)>,
    latency_us: Option<Histogram<u64>>,
    /// Latency from the time in the cursor (livescore's cursors are Redis stream ids, which
    /// start with the Unix milliseconds of the write to the store; the nchan sample's start
    /// with its publication time): the fan-out's own share of the latency.
    cursor_latency_us: Option<Histogram<u64>>,
    measuring: bool,
}

type Shared = Rc<RefCell<Tally>>;

fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}

/// `http://host:port/path` or `ws://...`: (is WebSocket, host:port, path).
fn split_url(url: &str) -> anyhow::Result<(bool, String, String)> {
    let (ws, rest) = if let Some(rest) = url.strip_prefix("ws://") {
        (true, rest)
    } else if let Some(rest) = url.strip_prefix("http://") {
        (false, rest)
    } else {
        bail!("{url}: use http:// (SSE) or ws:// (WebSocket)");
    };
    let (addr, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let path = if path.is_empty() { "/" } else { path };
    Ok((ws, addr.to_owned(), path.to_owned()))
}

/// A cursor as `a-b` (livescore) or `a:b` (nchan), ordered as numbers.
fn parse_cursor(text: &[u8]) -> Option<(u64, u64)> {
    let mut parts = text.split(|&b| b == b'-' || b == b':');
    let number = |part: &[u8]| -> Option<u64> {
        if part.is_empty() || !part.iter().all(u8::is_ascii_digit) {
            return None;
        }
        std::str::from_utf8(part).ok()?.parse().ok()
    };
    let a = number(parts.next()?)?;
    let b = parts.next().map_or(Some(0), number)?;
    Some((a, b))
}

/// Scans a viewer's byte stream for messages; keeps the unfinished tail between reads.
struct Scanner {
    /// Which viewer this is (its slot in `Tally::viewers`).
    viewer: usize,
    pending: Vec<u8>,
    last: Option<(u64, u64)>,
    cursor_key: &'static [u8],
}

const EMITTED: &[u8] = b"emitted_at_ms\":";

impl Scanner {
    fn new(websocket: bool, viewer: usize) -> Scanner {
        Scanner {
            viewer,
            pending: Vec::with_capacity(256),
            last: None,
            cursor_key: if websocket {
                b"\"cursor\":\""
            } else {
                b"\nid: "
            },
        }
    }

    /// Feeds one read: counts the messages it completes, checks their cursors, and records
    /// their latency while measuring.
    fn feed(&mut self, bytes: &[u8], tally: &mut Tally) {
        self.pending.extend_from_slice(bytes);
        let buf = &self.pending;
        let mut at = 0;
        let keep_from = loop {
            let rest = &buf[at..];
            let cursor_at = find(rest, self.cursor_key);
            let emitted_at = find(rest, EMITTED);
            let next = match (cursor_at, emitted_at) {
                (Some(c), Some(e)) => c.min(e),
                (Some(c), None) => c,
                (None, Some(e)) => e,
                // Nothing more: keep what could be the start of a key cut by this read.
                (None, None) => break at.max(buf.len().saturating_sub(EMITTED.len())),
            };
            let is_cursor = Some(next) == cursor_at;
            let key = if is_cursor { self.cursor_key } else { EMITTED };
            let value_start = at + next + key.len();
            let value_len = buf[value_start..]
                .iter()
                .position(|b| !(b.is_ascii_digit() || *b == b'-' || *b == b':'));
            let Some(value_len) = value_len else {
                // The value runs past this read: keep its key for the next one.
                break at + next;
            };
            let value = &buf[value_start..value_start + value_len];
            if is_cursor {
                if let Some(cursor) = parse_cursor(value) {
                    if tally.measuring && cursor.0 > 1_000_000_000_000 {
                        let latency = now_us().saturating_sub(cursor.0 * 1000);
                        if let Some(histogram) = &mut tally.cursor_latency_us {
                            let _ = histogram.record(latency.max(1));
                        }
                    }
                    match self.last {
                        Some(last) if cursor == last => tally.duplicates += 1,
                        Some(last) if cursor < last => tally.out_of_order += 1,
                        _ => {}
                    }
                    self.last = Some(cursor);
                    if let Some(seen) = tally.viewers.get_mut(self.viewer) {
                        *seen = (seen.0 + 1, Some(cursor));
                    }
                }
            } else {
                tally.messages += 1;
                if tally.measuring {
                    tally.window_messages += 1;
                    let emitted = parse_cursor(value).map_or(0, |(ms, _)| ms);
                    let latency = now_us().saturating_sub(emitted * 1000);
                    if let Some(histogram) = &mut tally.latency_us {
                        let _ = histogram.record(latency.max(1));
                    }
                }
            }
            at = value_start + value_len;
        };
        self.pending.drain(..keep_from);
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// A masked WebSocket text frame (clients must mask).
fn client_text_frame(text: &str) -> Vec<u8> {
    let payload = text.as_bytes();
    let mut frame = vec![0x81];
    match payload.len() {
        n if n < 126 => frame.push(0x80 | n as u8),
        n => {
            frame.push(0x80 | 126);
            frame.extend_from_slice(&(n as u16).to_be_bytes());
        }
    }
    let mask = [0x12, 0x34, 0x56, 0x78];
    frame.extend_from_slice(&mask);
    frame.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    frame
}

/// Connects to `addr` (an IP address and port) from the local address `source`.
async fn connect_from(source: std::net::IpAddr, addr: &str) -> anyhow::Result<TcpStream> {
    let target: std::net::SocketAddr = addr
        .parse()
        .context("--source needs an IP address in --url")?;
    let socket = if target.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    // The port is chosen at connect, unique per destination: a bind to port 0 alone searches
    // the whole range for a port free for every destination, which takes milliseconds with tens
    // of thousands bound (and stalls this thread meanwhile).
    let on: libc::c_int = 1;
    // SAFETY: an int option on this socket's descriptor, `on` being that int.
    let set = unsafe {
        libc::setsockopt(
            std::os::fd::AsRawFd::as_raw_fd(&socket),
            libc::IPPROTO_IP,
            libc::IP_BIND_ADDRESS_NO_PORT,
            (&on as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if set != 0 {
        return Err(std::io::Error::last_os_error()).context("IP_BIND_ADDRESS_NO_PORT");
    }
    socket.bind(std::net::SocketAddr::new(source, 0))?;
    Ok(socket.connect(target).await?)
}

async fn viewer(
    id: usize,
    source: Option<std::net::IpAddr>,
    addr: String,
    path: String,
    websocket: bool,
    subscribe: Option<String>,
    tally: Shared,
) -> anyhow::Result<()> {
    let mut stream = match source {
        Some(source) => connect_from(source, &addr).await?,
        None => TcpStream::connect(&addr).await?,
    };
    let request = if websocket {
        format!(
            "GET {path} HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        )
    } else {
        format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nAccept: text/event-stream\r\n\r\n")
    };
    stream.write_all(request.as_bytes()).await?;
    let mut buf = vec![0u8; 4096];
    // The response head.
    let mut head = Vec::new();
    let body_start = loop {
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            bail!("closed before the response head");
        }
        head.extend_from_slice(&buf[..n]);
        if let Some(end) = find(&head, b"\r\n\r\n") {
            break end + 4;
        }
    };
    let status_ok = head.starts_with(b"HTTP/1.1 200") || head.starts_with(b"HTTP/1.1 101");
    if !status_ok {
        bail!(
            "{}",
            String::from_utf8_lossy(&head[..head.len().min(80)]).trim()
        );
    }
    if let Some(subscribe) = subscribe {
        stream
            .write_all(&client_text_frame(&subscribe))
            .await
            .context("subscribing")?;
    }
    tally.borrow_mut().connected += 1;
    let mut scanner = Scanner::new(websocket, id);
    scanner.feed(&head[body_start..], &mut tally.borrow_mut());
    loop {
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            tally.borrow_mut().closed += 1;
            return Ok(());
        }
        scanner.feed(&buf[..n], &mut tally.borrow_mut());
    }
}

/// Publishes to nchan over one keep-alive connection: `burst` messages per tick.
async fn publisher(url: String, rate: f64, size: usize, burst: usize) -> anyhow::Result<()> {
    let (_, addr, path) = split_url(&url)?;
    let mut stream = TcpStream::connect(&addr).await?;
    let mut ticks = tokio::time::interval(Duration::from_secs_f64(1.0 / rate));
    let mut seq = 0u64;
    let mut response = vec![0u8; 4096];
    loop {
        ticks.tick().await;
        for _ in 0..burst {
            seq += 1;
            let body = sample::payload(size, seq);
            let request = format!(
                "POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\n\
                 Content-Length: {}\r\n\r\n{body}",
                body.len()
            );
            stream.write_all(request.as_bytes()).await?;
            // nchan answers each publication with a short status body.
            let n = stream.read(&mut response).await?;
            if n == 0 {
                bail!("the publisher connection closed");
            }
        }
    }
}

/// What a livescore projector does for one feed entry: XADD to the feed, PUBLISH with the new
/// id as cursor (`store/src/redis.rs`), in one script.
const PUBLISH_SCRIPT: &str = "local id = redis.call('XADD', KEYS[1], 'MAXLEN', '~', 10000, '*', 'e', ARGV[1]) \
    redis.call('PUBLISH', KEYS[2], '{\"topic\":\"feed\",\"match_id\":0,\"cursor\":\"' .. id .. '\",\"data\":' .. ARGV[1] .. '}') \
    return id";

/// A RESP command.
fn resp(args: &[&str]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for arg in args {
        out.extend_from_slice(format!("${}\r\n", arg.len()).as_bytes());
        out.extend_from_slice(arg.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// Feeds a livescore replica through its Redis, `burst` entries per tick. The entries carry
/// `emitted_at_ms` and no cursor of their own (the stream id is theirs).
async fn redis_publisher(
    addr: String,
    prefix: String,
    rate: f64,
    size: usize,
    burst: usize,
) -> anyhow::Result<()> {
    let mut stream = TcpStream::connect(&addr).await?;
    let mut ticks = tokio::time::interval(Duration::from_secs_f64(1.0 / rate));
    let (feed, channel) = (format!("{prefix}:feed"), format!("{prefix}:live"));
    let mut response = vec![0u8; 4096];
    loop {
        ticks.tick().await;
        for _ in 0..burst {
            let body = sample::uncursored_payload(size);
            let command = resp(&["EVAL", PUBLISH_SCRIPT, "2", &feed, &channel, &body]);
            stream.write_all(&command).await?;
            let n = stream.read(&mut response).await?;
            if n == 0 || response[0] == b'-' {
                bail!("redis: {}", String::from_utf8_lossy(&response[..n]).trim());
            }
        }
    }
}

/// What /proc says about a process now.
#[derive(Clone, Copy, Default)]
struct Usage {
    cpu_ticks: u64,
    rss_kb: u64,
    switches: u64,
}

fn usage(pid: u32) -> Usage {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which is in parentheses and may hold spaces).
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map_or("", |(_, rest)| rest)
        .split_whitespace()
        .collect();
    let field = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let kb = |key: &str| {
        status
            .lines()
            .find(|line| line.starts_with(key))
            .and_then(|line| line.split_whitespace().nth(1))
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    // Threads' switches are in /proc/pid/task/*/status.
    let mut switches = 0;
    if let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) {
        for task in tasks.flatten() {
            let status = std::fs::read_to_string(task.path().join("status")).unwrap_or_default();
            for line in status.lines() {
                if line.starts_with("voluntary_ctxt_switches")
                    || line.starts_with("nonvoluntary_ctxt_switches")
                {
                    switches += line
                        .split_whitespace()
                        .nth(1)
                        .and_then(|v| v.parse::<u64>().ok())
                        .unwrap_or(0);
                }
            }
        }
    }
    // utime + stime are fields 14 and 15 of the whole line: 11 and 12 after the name.
    Usage {
        cpu_ticks: field(11) + field(12),
        rss_kb: kb("VmRSS:"),
        switches,
    }
}

fn usages(pids: &[u32]) -> Usage {
    pids.iter()
        .map(|&pid| usage(pid))
        .fold(Usage::default(), |a, b| Usage {
            cpu_ticks: a.cpu_ticks + b.cpu_ticks,
            rss_kb: a.rss_kb + b.rss_kb,
            switches: a.switches + b.switches,
        })
}

#[derive(Serialize)]
struct Report {
    name: String,
    url: String,
    clients: usize,
    connected: usize,
    failed: usize,
    closed: usize,
    window_s: f64,
    delivered: u64,
    delivered_per_s: f64,
    duplicates: u64,
    out_of_order: u64,
    latency_p50_ms: f64,
    latency_p99_ms: f64,
    latency_max_ms: f64,
    from_cursor_p50_ms: f64,
    from_cursor_p99_ms: f64,
    server_cpu_us_per_message: Option<f64>,
    server_switches_per_message: Option<f64>,
    server_idle_kb_per_connection: Option<f64>,
    server_busy_kb_per_connection: Option<f64>,
    /// The fewest and most cursors a viewer saw, the last cursor any saw, and how many viewers
    /// ended on it.
    viewer_cursors_min: u64,
    viewer_cursors_max: u64,
    last_cursor: Option<String>,
    viewers_at_last_cursor: usize,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let (websocket, addr, path) = split_url(&args.url)?;
    rlimit::increase_nofile_limit(u64::MAX).context("raising the open-file limit")?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let local = tokio::task::LocalSet::new();
    local.block_on(&runtime, run(args, websocket, addr, path))
}

async fn run(args: Args, websocket: bool, addr: String, path: String) -> anyhow::Result<()> {
    let tally: Shared = Rc::new(RefCell::new(Tally {
        latency_us: Some(Histogram::new_with_bounds(1, 600_000_000, 3)?),
        cursor_latency_us: Some(Histogram::new_with_bounds(1, 600_000_000, 3)?),
        ..Tally::default()
    }));
    let before = usages(&args.server_pids);
    let mut pace = tokio::time::interval(Duration::from_secs_f64(
        1.0 / f64::from(args.connect_rate.max(1)),
    ));
    tally.borrow_mut().viewers = vec![(0, None); args.clients];
    for id in 0..args.clients {
        pace.tick().await;
        let tally = Rc::clone(&tally);
        let (addr, path, subscribe) = (addr.clone(), path.clone(), args.subscribe.clone());
        let source = args.source;
        tokio::task::spawn_local(async move {
            if let Err(err) = viewer(
                id,
                source,
                addr,
                path,
                websocket,
                subscribe,
                Rc::clone(&tally),
            )
            .await
            {
                let mut tally = tally.borrow_mut();
                if tally.failed < 3 {
                    eprintln!("a viewer failed: {err}");
                }
                tally.failed += 1;
            }
        });
    }
    // Every connection open (or failed), then settled: the idle memory.
    let deadline = Instant::now() + Duration::from_secs(60);
    while {
        let tally = tally.borrow();
        tally.connected + tally.failed < args.clients
    } {
        if Instant::now() > deadline {
            bail!("viewers still connecting after 60 s");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    if let Some(ready) = &args.ready_file {
        std::fs::write(ready, b"connected\n").context("writing the ready file")?;
    }
    tokio::time::sleep(Duration::from_secs(args.settle)).await;
    let idle = usages(&args.server_pids);
    if let Some(addr) = args.publish_redis.clone() {
        let (rate, size, burst, prefix) =
            (args.rate, args.size, args.burst, args.redis_prefix.clone());
        tokio::task::spawn_local(async move {
            if let Err(err) = redis_publisher(addr, prefix, rate, size, burst).await {
                eprintln!("publisher: {err}");
            }
        });
    }
    if let Some(url) = args.publish.clone() {
        let (rate, size, burst) = (args.rate, args.size, args.burst);
        tokio::task::spawn_local(async move {
            if let Err(err) = publisher(url, rate, size, burst).await {
                eprintln!("publisher: {err}");
            }
        });
    }
    // Let the first messages through before measuring, so the window is steady state.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let start_usage = usages(&args.server_pids);
    let started = Instant::now();
    tally.borrow_mut().measuring = true;
    tokio::time::sleep(Duration::from_secs(args.seconds)).await;
    tally.borrow_mut().measuring = false;
    let window = started.elapsed().as_secs_f64();
    let end_usage = usages(&args.server_pids);

    let tally = tally.borrow();
    let histogram = tally.latency_us.as_ref().context("no histogram")?;
    let from_cursor = tally.cursor_latency_us.as_ref().context("no histogram")?;
    let ms = |us: u64| us as f64 / 1000.0;
    let delivered = tally.window_messages;
    let has_pids = !args.server_pids.is_empty() && delivered > 0;
    let ticks_per_s = 100.0; // USER_HZ on Linux
    let per_connection = |after: Usage| {
        (after.rss_kb.saturating_sub(before.rss_kb)) as f64 / tally.connected.max(1) as f64
    };
    let last = tally.viewers.iter().filter_map(|v| v.1).max();
    let report = Report {
        name: args.name,
        url: args.url,
        clients: args.clients,
        connected: tally.connected,
        failed: tally.failed,
        closed: tally.closed,
        window_s: window,
        delivered,
        delivered_per_s: delivered as f64 / window,
        duplicates: tally.duplicates,
        out_of_order: tally.out_of_order,
        latency_p50_ms: ms(histogram.value_at_quantile(0.5)),
        latency_p99_ms: ms(histogram.value_at_quantile(0.99)),
        latency_max_ms: ms(histogram.max()),
        from_cursor_p50_ms: ms(from_cursor.value_at_quantile(0.5)),
        from_cursor_p99_ms: ms(from_cursor.value_at_quantile(0.99)),
        server_cpu_us_per_message: has_pids.then(|| {
            (end_usage.cpu_ticks - start_usage.cpu_ticks) as f64 / ticks_per_s * 1e6
                / delivered as f64
        }),
        server_switches_per_message: has_pids
            .then(|| (end_usage.switches - start_usage.switches) as f64 / delivered as f64),
        server_idle_kb_per_connection: (!args.server_pids.is_empty()).then(|| per_connection(idle)),
        server_busy_kb_per_connection: (!args.server_pids.is_empty())
            .then(|| per_connection(end_usage)),
        viewer_cursors_min: tally.viewers.iter().map(|v| v.0).min().unwrap_or(0),
        viewer_cursors_max: tally.viewers.iter().map(|v| v.0).max().unwrap_or(0),
        last_cursor: last.map(|(a, b)| format!("{a}-{b}")),
        viewers_at_last_cursor: tally.viewers.iter().filter(|v| v.1 == last).count(),
    };
    println!("{}", serde_json::to_string(&report)?);
    if tally.duplicates > 0 || tally.out_of_order > 0 {
        bail!(
            "{} duplicated and {} reordered messages",
            tally.duplicates,
            tally.out_of_order
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scan(chunks: &[&[u8]], websocket: bool) -> Tally {
        let mut tally = Tally::default();
        let mut scanner = Scanner::new(websocket, 0);
        for chunk in chunks {
            scanner.feed(chunk, &mut tally);
        }
        tally
    }

    #[test]
    fn messages_split_anywhere_are_counted_once() {
        let stream: &[u8] =
            b"retry: 2000\n\nid: 5-1\nevent: game\ndata: {\"emitted_at_ms\":123,\"x\":1}\n\n\
              id: 5-2\nevent: game\ndata: {\"emitted_at_ms\":124}\n\n";
        for split in 1..stream.len() {
            let (a, b) = stream.split_at(split);
            let tally = scan(&[a, b], false);
            assert_eq!(tally.messages, 2, "split at {split}");
            assert_eq!(tally.duplicates + tally.out_of_order, 0, "split at {split}");
        }
    }

    #[test]
    fn a_repeated_or_older_cursor_is_reported() {
        let tally = scan(
            &[
                b"{\"cursor\":\"7-2\",\"emitted_at_ms\":1}{\"cursor\":\"7-2\",\"emitted_at_ms\":1}\
                {\"cursor\":\"7-1\",\"emitted_at_ms\":1}",
            ],
            true,
        );
        assert_eq!(
            (tally.messages, tally.duplicates, tally.out_of_order),
            (3, 1, 1)
        );
    }

    #[test]
    fn nchan_ids_are_ordered_as_numbers() {
        assert!(parse_cursor(b"1700000000:10") > parse_cursor(b"1700000000:9"));
        assert_eq!(parse_cursor(b"12-3"), Some((12, 3)));
        assert_eq!(parse_cursor(b"x"), None);
    }
}
