//! `floor`: the machine's limit for fan-out, to say how close a server comes to it. A server that
//! does nothing but the unavoidable: it accepts N viewers (SSE or WebSocket, as `lean` opens
//! them), answers each with a response head, then on every tick writes the same message to every
//! socket, from one thread, with no framing work, no allocation and no wake-ups but the tick's.
//! Two ways to write: one `write` system call per socket, or (`--uring`) every socket's write
//! submitted to io_uring at once, one `io_uring_enter` per tick. Measure it with `lean
//! --server-pid` exactly as livescore and nchan are measured:
//!
//!   floor --listen 127.0.0.1:18095 --clients 10000 --rate 4.2 --size 582 [--ws] [--uring] &
//!   lean --url http://127.0.0.1:18095/ --clients 10000 --server-pid $!

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

#[path = "../sample.rs"]
mod sample;

use anyhow::{Context, bail};
use clap::Parser;

#[derive(Parser, Debug)]
#[command(
    name = "floor",
    about = "The fan-out floor: the same bytes to N sockets, nothing else"
)]
struct Args {
    #[arg(long, default_value = "127.0.0.1:18095")]
    listen: String,
    #[arg(long, default_value_t = 1000)]
    clients: usize,
    /// Messages per second to every viewer.
    #[arg(long, default_value_t = 4.2)]
    rate: f64,
    /// Bytes per message (the payload, padded JSON).
    #[arg(long, default_value_t = 582)]
    size: usize,
    /// Answer WebSocket upgrades and write WebSocket frames (default: SSE).
    #[arg(long)]
    ws: bool,
    /// Submit each tick's writes to io_uring in one call.
    #[arg(long)]
    uring: bool,
    /// Stop after this many seconds of writing.
    #[arg(long, default_value_t = 120)]
    seconds: u64,
}

/// One message as the wire carries it: an SSE event, or a WebSocket text frame.
fn message(ws: bool, size: usize, seq: u64) -> Vec<u8> {
    let json = sample::payload(size, seq);
    if ws {
        let mut frame = vec![0x81, 126];
        frame.extend_from_slice(&(json.len() as u16).to_be_bytes());
        frame.extend_from_slice(json.as_bytes());
        frame
    } else {
        format!(
            "id: {cursor}\nevent: game\ndata: {json}\n\n",
            cursor = cursor_of(&json)
        )
        .into_bytes()
    }
}

/// The cursor inside a sample payload, repeated in the SSE `id:` line as livescore does.
fn cursor_of(json: &str) -> &str {
    json.split("\"cursor\":\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap_or("")
}

/// Accepts a viewer and answers its request head.
fn accept(listener: &TcpListener, ws: bool) -> anyhow::Result<TcpStream> {
    let (mut socket, _) = listener.accept()?;
    socket.set_nodelay(true)?;
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = socket.read(&mut buf)?;
        if n == 0 {
            bail!("a viewer closed before its request head");
        }
        head.extend_from_slice(&buf[..n]);
    }
    let answer: &[u8] = if ws {
        // `lean` does not check the accept key.
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
          Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n"
    } else {
        b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n\r\n"
    };
    socket.write_all(answer)?;
    socket.set_nonblocking(true)?;
    Ok(socket)
}

/// Writes `bytes` to every socket, one system call each; returns the writes that did not take
/// the whole message (a full socket: the viewer falls behind, as a slow client would).
fn write_each(sockets: &[TcpStream], bytes: &[u8]) -> usize {
    let mut short = 0;
    for socket in sockets {
        // SAFETY: a valid descriptor and a buffer of `bytes.len()` bytes.
        let written =
            unsafe { libc::write(socket.as_raw_fd(), bytes.as_ptr().cast(), bytes.len()) };
        if written != bytes.len() as isize {
            short += 1;
        }
    }
    short
}

/// The same through io_uring: every write queued, then one submission for them all.
fn write_uring(
    ring: &mut io_uring::IoUring,
    sockets: &[TcpStream],
    bytes: &[u8],
) -> anyhow::Result<usize> {
    use io_uring::{opcode, types};
    let mut short = 0;
    let depth = ring.params().sq_entries() as usize;
    for chunk in sockets.chunks(depth) {
        for (i, socket) in chunk.iter().enumerate() {
            let write = opcode::Write::new(
                types::Fd(socket.as_raw_fd()),
                bytes.as_ptr(),
                bytes.len() as u32,
            )
            .build()
            .user_data(i as u64);
            // SAFETY: `bytes` outlives the submission: we wait for every completion below.
            unsafe { ring.submission().push(&write) }.context("the submission queue is full")?;
        }
        ring.submit_and_wait(chunk.len())?;
        for completion in ring.completion() {
            if completion.result() != bytes.len() as i32 {
                short += 1;
            }
        }
    }
    Ok(short)
}

/// CPU time this thread has used.
fn thread_cpu() -> Duration {
    let mut time = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: a valid clock id and pointer.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut time) };
    Duration::new(time.tv_sec as u64, time.tv_nsec as u32)
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    rlimit::increase_nofile_limit(u64::MAX).context("raising the open-file limit")?;
    let listener =
        TcpListener::bind(&args.listen).with_context(|| format!("binding {}", args.listen))?;
    let mut sockets = Vec::with_capacity(args.clients);
    while sockets.len() < args.clients {
        sockets.push(accept(&listener, args.ws)?);
    }
    eprintln!("floor: {} viewers connected", sockets.len());
    let mut ring = if args.uring {
        Some(io_uring::IoUring::new(4096).context("io_uring is not available here")?)
    } else {
        None
    };
    let tick = Duration::from_secs_f64(1.0 / args.rate);
    let stop = Instant::now() + Duration::from_secs(args.seconds);
    let (mut seq, mut busy, mut short) = (0u64, Duration::ZERO, 0usize);
    let mut next = Instant::now();
    while Instant::now() < stop {
        next += tick;
        seq += 1;
        let bytes = message(args.ws, args.size, seq);
        let before = thread_cpu();
        short += match &mut ring {
            Some(ring) => write_uring(ring, &sockets, &bytes)?,
            None => write_each(&sockets, &bytes),
        };
        busy += thread_cpu() - before;
        if seq % 20 == 0 {
            eprintln!(
                "floor: {seq} messages, {:.2} µs CPU per write, {short} short writes",
                busy.as_secs_f64() * 1e6 / (seq as f64 * sockets.len() as f64)
            );
        }
        std::thread::sleep(next.saturating_duration_since(Instant::now()));
    }
    Ok(())
}
