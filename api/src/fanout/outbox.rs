//! The outbox: every byte the engine writes to a socket goes through here, whatever it is (a
//! live message of a sweep, a catch-up or snapshot for a joining viewer, a reply to a WebSocket
//! request, a heartbeat, a close frame).
//!
//! - **Staged, then flushed together.** Bytes are staged per socket and written by
//!   [`Outbox::flush`]: each socket's parts as one `sendmsg` (at most [`IOV_MAX`] parts; a socket
//!   with more gets the rest in the next round of the same flush), all sockets' sends submitted
//!   at once through the writer (`writer.rs`: io_uring or system calls).
//! - **A byte budget per socket.** What is queued for a socket and not yet taken by its kernel
//!   buffer (staged and kept) may not pass `budget` bytes: [`Outbox::stage`] refuses what does
//!   not fit, and the caller decides (a live topic falls behind and catches up from the store
//!   later; a reply to a client that does not read closes it). The first bytes of an empty queue
//!   always fit, so one message larger than the budget still goes out, alone.
//! - **A socket that does not keep up.** What its kernel buffer did not take is kept in order;
//!   the socket is *blocked*: its reader stops reading (a client that sends requests without
//!   reading the answers stops being read), and a task waits for it to drain, with one deadline:
//!   no progress for `patience` and it is let go. [`Outbox::drain`] writes what was kept when
//!   the socket can take more.

use std::collections::VecDeque;
use std::rc::Rc;
use std::time::Duration;

use axum::body::Bytes;
use std::os::fd::AsRawFd;
use tokio::io::Interest;
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio::task::AbortHandle;
use tokio::time::Instant;

use super::connections::{Conn, ConnKey, Connections};
use super::engine::Event;
use super::writer::{IOV_MAX, Scratch, Write, Writer, sendmsg_parts};

/// What is waiting to be written to one socket.
pub(crate) struct SocketQueue {
    /// Bytes its kernel buffer did not take, in order (empty unless `blocked`).
    kept: VecDeque<Bytes>,
    kept_bytes: usize,
    /// Bytes staged for the next flush.
    staged_bytes: usize,
    blocked: bool,
    /// When a blocked socket last took something: it is let go `patience` after that.
    progress_at: Instant,
    /// The task waiting for a blocked socket to drain.
    waiter: Option<AbortHandle>,
    /// A write failed (reset, broken pipe): the viewer is gone.
    broken: bool,
}

impl SocketQueue {
    pub fn new(now: Instant) -> SocketQueue {
        SocketQueue {
            kept: VecDeque::new(),
            kept_bytes: 0,
            staged_bytes: 0,
            blocked: false,
            progress_at: now,
            waiter: None,
            broken: false,
        }
    }

    /// Its kernel buffer is full: what it is given is kept until it drains.
    pub fn is_blocked(&self) -> bool {
        self.blocked
    }

    /// Bytes queued for it, not yet taken by its kernel buffer.
    pub fn queued_bytes(&self) -> usize {
        self.kept_bytes + self.staged_bytes
    }

    /// Stops the task waiting for the socket to drain (the socket is being closed).
    pub fn stop_waiting(&mut self) {
        if let Some(waiter) = self.waiter.take() {
            waiter.abort();
        }
    }
}

/// The bytes would take the socket's queue past its budget.
#[derive(Debug)]
pub(crate) struct OverBudget;

/// What draining a blocked socket came to.
pub(crate) enum Drained {
    /// Everything kept is written: the socket takes live messages again.
    Done,
    /// Its buffer is full again: a task waits for it.
    Blocked,
    /// A write failed: the viewer is gone.
    Gone,
    /// No progress for `patience`: let it go.
    TooSlow,
}

pub(crate) struct Outbox {
    budget: usize,
    patience: Duration,
    events: mpsc::UnboundedSender<Event>,
    writer: Writer,
    /// Bytes to write at the next flush, by socket, in the order they were staged.
    staged: Vec<(usize, Bytes)>,
    /// Sockets whose last bytes are staged: closed once those are out.
    closing: Vec<usize>,
    // A flush's buffers, kept to reuse their memory.
    later: Vec<(usize, Bytes)>,
    writes: Vec<Write>,
    owners: Vec<usize>,
    parts: Vec<Bytes>,
    results: Vec<isize>,
    scratch: Scratch,
    finished: Vec<usize>,
    blocked: Vec<usize>,
}

impl Outbox {
    pub fn new(
        budget: usize,
        patience: Duration,
        io_uring: bool,
        events: mpsc::UnboundedSender<Event>,
    ) -> Outbox {
        Outbox {
            budget: budget.max(1),
            patience,
            events,
            writer: Writer::new(io_uring),
            staged: Vec::new(),
            closing: Vec::new(),
            later: Vec::new(),
            writes: Vec::new(),
            owners: Vec::new(),
            parts: Vec::new(),
            results: Vec::new(),
            scratch: Scratch::default(),
            finished: Vec::new(),
            blocked: Vec::new(),
        }
    }

    pub fn writer_name(&self) -> &'static str {
        self.writer.name()
    }

    /// The most bytes that may be queued for one socket.
    pub fn budget(&self) -> usize {
        self.budget
    }

    /// Queues `bytes` for socket `index` (behind what it already has) if they fit its budget.
    /// Nothing more is queued for a socket that is closing.
    pub fn stage(&mut self, conn: &mut Conn, index: usize, bytes: Bytes) -> Result<(), OverBudget> {
        if conn.closing || conn.doomed {
            return Ok(());
        }
        let queued = conn.queue.queued_bytes();
        if queued > 0 && queued + bytes.len() > self.budget {
            return Err(OverBudget);
        }
        self.put(&mut conn.queue, index, bytes);
        Ok(())
    }

    /// Queues the last bytes socket `index` gets (a close frame, the end of its stream), past
    /// its budget if need be: they are small, and what lets the viewer go. It is closed once
    /// they are written.
    pub fn stage_last(&mut self, conn: &mut Conn, index: usize, bytes: Bytes) {
        if conn.closing || conn.doomed {
            return;
        }
        conn.closing = true;
        self.put(&mut conn.queue, index, bytes);
        self.closing.push(index);
    }

    fn put(&mut self, queue: &mut SocketQueue, index: usize, bytes: Bytes) {
        if queue.blocked {
            queue.kept_bytes += bytes.len();
            queue.kept.push_back(bytes);
        } else {
            queue.staged_bytes += bytes.len();
            self.staged.push((index, bytes));
        }
    }

    /// Writes what is staged: each socket's parts in one `sendmsg` (in rounds of [`IOV_MAX`]
    /// parts), every socket's at once. Returns the sockets to close: gone (a write failed), or
    /// closing with everything written.
    pub fn flush(&mut self, conns: &mut Connections) -> Vec<usize> {
        let mut finished = std::mem::take(&mut self.finished);
        while !self.staged.is_empty() {
            self.round(conns, &mut finished);
        }
        self.closing.retain(|&index| match conns.get(index) {
            Some(conn) if conn.closing && !conn.queue.broken => {
                if conn.queue.blocked {
                    // Closed once drained (see `drain`).
                    return false;
                }
                finished.push(index);
                false
            }
            _ => false,
        });
        finished
    }

    /// Gives back the list [`Outbox::flush`] returned, to reuse its memory.
    pub fn recycle(&mut self, mut finished: Vec<usize>) {
        finished.clear();
        self.finished = finished;
    }

    /// One `sendmsg` per socket with staged bytes: the first [`IOV_MAX`] parts of each; the
    /// rest stays staged (or is kept, if the socket could not take this round's).
    fn round(&mut self, conns: &mut Connections, finished: &mut Vec<usize>) {
        // Stable: each socket's parts stay in order.
        self.staged.sort_by_key(|(index, _)| *index);
        let mut staged = std::mem::take(&mut self.staged);
        let mut queue = staged.drain(..).peekable();
        while let Some((index, bytes)) = queue.next() {
            let Some(conn) = conns
                .get(index)
                .filter(|conn| !conn.doomed && !conn.queue.broken)
            else {
                while queue.next_if(|(next, _)| *next == index).is_some() {}
                continue;
            };
            let start = self.parts.len();
            self.parts.push(bytes);
            while let Some((_, bytes)) = queue.next_if(|(next, _)| *next == index) {
                if self.parts.len() - start < IOV_MAX {
                    self.parts.push(bytes);
                } else {
                    self.later.push((index, bytes));
                }
            }
            self.writes.push(Write {
                fd: conn.stream.as_raw_fd(),
                parts: start..self.parts.len(),
            });
            self.owners.push(index);
        }
        drop(queue);
        self.staged = staged;
        self.writer.send(
            &self.writes,
            &self.parts,
            &mut self.scratch,
            &mut self.results,
        );
        for ((write, &index), &result) in self.writes.iter().zip(&self.owners).zip(&self.results) {
            let Some(conn) = conns.get_mut(index) else {
                continue;
            };
            let parts = &self.parts[write.parts.clone()];
            let written: usize = parts.iter().map(Bytes::len).sum();
            conn.queue.staged_bytes -= written;
            if result < 0 && result != -(libc::EAGAIN as isize) {
                // Reset, broken pipe: the viewer is gone.
                conn.queue.broken = true;
                finished.push(index);
                continue;
            }
            let mut taken = result.max(0) as usize;
            if taken > 0 {
                conn.quiet.written();
            }
            for part in parts {
                if taken >= part.len() {
                    taken -= part.len();
                } else {
                    conn.queue.kept_bytes += part.len() - taken;
                    conn.queue.kept.push_back(part.slice(taken..));
                    taken = 0;
                }
            }
            if !conn.queue.kept.is_empty() && !conn.queue.blocked {
                conn.queue.blocked = true;
                self.blocked.push(index);
            }
        }
        for index in std::mem::take(&mut self.blocked) {
            if let Some(conn) = conns.get_mut(index) {
                self.block(conn, index);
            }
        }
        self.parts.clear();
        self.writes.clear();
        self.owners.clear();
        // The parts past IOV_MAX: staged again, or kept behind what a blocked socket kept.
        for (index, bytes) in self.later.drain(..) {
            let Some(conn) = conns.get_mut(index) else {
                continue;
            };
            if conn.queue.blocked {
                conn.queue.staged_bytes -= bytes.len();
                conn.queue.kept_bytes += bytes.len();
                conn.queue.kept.push_back(bytes);
            } else if !conn.queue.broken {
                self.staged.push((index, bytes));
            }
        }
    }

    /// The socket's buffer is full: its reader stops, and a task waits for it to drain.
    fn block(&mut self, conn: &mut Conn, index: usize) {
        let key = conn.key(index);
        conn.queue.progress_at = Instant::now();
        conn.gate.close();
        self.wait(conn, key);
    }

    /// A task that says when the socket can take more, or that its deadline passed.
    fn wait(&mut self, conn: &mut Conn, key: ConnKey) {
        let stream: Rc<TcpStream> = Rc::clone(&conn.stream);
        let events = self.events.clone();
        let deadline = conn.queue.progress_at + self.patience;
        let waiter = tokio::task::spawn_local(async move {
            let timed_out = tokio::time::timeout_at(deadline, stream.writable())
                .await
                .is_err();
            let _ = events.send(Event::Writable {
                conn: key,
                timed_out,
            });
        });
        conn.queue.waiter = Some(waiter.abort_handle());
    }

    /// Socket `key` can take more, or its deadline passed: writes what it kept.
    pub fn drain(&mut self, conn: &mut Conn, key: ConnKey, timed_out: bool) -> Drained {
        conn.queue.waiter = None;
        if !conn.queue.blocked {
            return Drained::Done;
        }
        let mut progress = false;
        while !conn.queue.kept.is_empty() {
            let count = conn.queue.kept.len().min(IOV_MAX);
            let batch: Vec<Bytes> = conn.queue.kept.iter().take(count).cloned().collect();
            let fd = conn.stream.as_raw_fd();
            // Through tokio, so that a full socket clears its readiness and the next wait
            // really waits.
            let sent = conn
                .stream
                .try_io(Interest::WRITABLE, || match sendmsg_parts(fd, &batch) {
                    n if n == -(libc::EAGAIN as isize) => {
                        Err(std::io::ErrorKind::WouldBlock.into())
                    }
                    n if n < 0 => Err(std::io::Error::from_raw_os_error(-n as i32)),
                    n => Ok(n as usize),
                });
            match sent {
                Ok(mut taken) => {
                    progress |= taken > 0;
                    conn.queue.kept_bytes -= taken;
                    while taken > 0 {
                        let Some(front) = conn.queue.kept.front_mut() else {
                            break;
                        };
                        if taken >= front.len() {
                            taken -= front.len();
                            conn.queue.kept.pop_front();
                        } else {
                            *front = front.slice(taken..);
                            taken = 0;
                        }
                    }
                }
                Err(err) if err.kind() == std::io::ErrorKind::WouldBlock => break,
                Err(_) => {
                    conn.queue.broken = true;
                    return Drained::Gone;
                }
            }
        }
        let now = Instant::now();
        if progress {
            conn.queue.progress_at = now;
            conn.quiet.written();
        }
        if !conn.queue.kept.is_empty() {
            if timed_out && !progress || conn.queue.progress_at + self.patience <= now {
                return Drained::TooSlow;
            }
            self.wait(conn, key);
            return Drained::Blocked;
        }
        conn.queue.blocked = false;
        conn.gate.open();
        Drained::Done
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::fanout::reader::ReadGate;
    use livescore_server::Permit;
    use tokio::io::AsyncReadExt;

    /// A socket of the engine's on loopback, and its other end.
    async fn socket(conns: &mut Connections) -> (usize, TcpStream) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let theirs = TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        let (ours, _) = listener.accept().await.unwrap();
        let reader = tokio::task::spawn_local(std::future::pending::<()>()).abort_handle();
        let conn = Conn::new(
            Rc::new(ours),
            true,
            Permit::unlimited(),
            reader,
            ReadGate::new(),
            Instant::now(),
        );
        (conns.insert(conn).index, theirs)
    }

    /// `count` parts of `size` bytes each, numbered, so that order shows.
    fn parts(count: usize, size: usize) -> Vec<Bytes> {
        (0..count)
            .map(|n| {
                let mut part = format!("{n:08}").into_bytes();
                part.resize(size, b'.');
                Bytes::from(part)
            })
            .collect()
    }

    /// Stages `parts` for one socket, flushes, and drains it whenever it is writable again,
    /// while the other end reads: what arrives is every part, in order.
    async fn staged_parts_arrive_in_order(io_uring: bool, parts: Vec<Bytes>) {
        let (events, mut told) = mpsc::unbounded_channel();
        let total: usize = parts.iter().map(Bytes::len).sum();
        let mut outbox = Outbox::new(total, Duration::from_secs(10), io_uring, events);
        let mut conns = Connections::default();
        let (index, mut theirs) = socket(&mut conns).await;
        let reading = tokio::task::spawn_local(async move {
            let mut got = vec![0u8; total];
            theirs.read_exact(&mut got).await.unwrap();
            got
        });
        for part in &parts {
            let conn = conns.get_mut(index).unwrap();
            outbox.stage(conn, index, part.clone()).unwrap();
        }
        assert!(outbox.flush(&mut conns).is_empty(), "nothing failed");
        while conns.get(index).unwrap().queue.is_blocked() {
            let Some(Event::Writable { conn, timed_out }) = told.recv().await else {
                panic!("a blocked socket gets a task that says when it drains");
            };
            let drained = outbox.drain(conns.get_mut(index).unwrap(), conn, timed_out);
            assert!(matches!(drained, Drained::Done | Drained::Blocked));
        }
        assert_eq!(conns.get(index).unwrap().queue.queued_bytes(), 0);
        let got = reading.await.unwrap();
        assert!(got == parts.concat(), "{} bytes, not in order", got.len());
    }

    #[tokio::test]
    async fn more_than_iov_max_parts_for_one_socket_go_out_whole_and_in_order() {
        tokio::task::LocalSet::new()
            .run_until(async {
                for io_uring in [false, true] {
                    // Small: the socket takes them all, in rounds of IOV_MAX parts.
                    staged_parts_arrive_in_order(io_uring, parts(3 * IOV_MAX + 5, 16)).await;
                    // Large: its buffer fills, the rest is kept, then drained.
                    staged_parts_arrive_in_order(io_uring, parts(3 * IOV_MAX + 5, 2000)).await;
                }
            })
            .await;
    }

    #[tokio::test]
    async fn a_socket_takes_its_budget_and_no_more_but_one_large_message_goes_alone() {
        tokio::task::LocalSet::new()
            .run_until(async {
                let (events, _told) = mpsc::unbounded_channel();
                let mut outbox = Outbox::new(1000, Duration::from_secs(10), false, events);
                let mut conns = Connections::default();
                let (index, _theirs) = socket(&mut conns).await;
                let conn = conns.get_mut(index).unwrap();
                let big = Bytes::from(vec![b'x'; 5000]);
                outbox.stage(conn, index, big.clone()).unwrap();
                assert!(outbox.stage(conn, index, Bytes::from_static(b"y")).is_err());
                outbox.flush(&mut conns);
                let conn = conns.get_mut(index).unwrap();
                for _ in 0..10 {
                    outbox
                        .stage(conn, index, Bytes::from(vec![b'z'; 100]))
                        .unwrap();
                }
                assert!(outbox.stage(conn, index, Bytes::from_static(b"!")).is_err());
                // The last bytes (a close frame) go past the budget.
                outbox.stage_last(conn, index, Bytes::from_static(b"close"));
                assert_eq!(conn.queue.queued_bytes(), 1005);
                assert_eq!(outbox.flush(&mut conns), vec![index], "closed once written");
            })
            .await;
    }
}
