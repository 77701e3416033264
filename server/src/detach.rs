//! Handing a connection over once its response head is written.
//!
//! hyper owns a connection while it serves requests on it. A live stream wants the socket
//! itself: to write each message with one system call shared by many sockets (or one io_uring
//! submission for thousands), and without the two 8 KiB buffers hyper keeps per connection. So
//! a handler may ask for the socket with [`Detach::after_head`] and answer with a response whose
//! body never ends ([`Detach::endless_body`]). hyper writes the response head, and the
//! connection's I/O, which passes every byte through to the socket, notices that hyper has
//! flushed a write ending in the blank line that closes a head: from then on the socket is the
//! handler's. The server drops hyper's side of the connection and calls the handler's function
//! with the socket, on the same shard.
//!
//! The bytes on the wire are exactly what hyper wrote: for a `200` with a body of unknown length
//! that is `transfer-encoding: chunked`, so whoever takes an SSE stream over writes chunks; for
//! a `101` the raw upgraded protocol follows. A client sends nothing after an SSE request or a
//! WebSocket handshake before the server's answer (RFC 6455 4.1), so nothing read by hyper is
//! lost.

use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};

use axum::body::{Body, Bytes};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::{Notify, OwnedSemaphorePermit};

/// What a handler does with its socket once it has it.
type Then = Box<dyn FnOnce(Detached) + Send>;

/// Given to every request (as a request extension) by the server: lets the handler take its
/// connection over after the response head.
#[derive(Clone)]
pub struct Detach {
    slot: Arc<Slot>,
}

/// A connection handed over: the socket, and its place under the server's connection limit,
/// which it keeps as long as `permit` lives.
pub struct Detached {
    pub stream: TcpStream,
    pub permit: Permit,
}

/// A connection's place under the server's limit of open connections, given back when dropped.
pub struct Permit(#[allow(dead_code)] Option<OwnedSemaphorePermit>);

impl Permit {
    pub(crate) fn new(permit: OwnedSemaphorePermit) -> Permit {
        Permit(Some(permit))
    }

    /// A permit that counts toward no limit (for tests that build a [`Detached`] themselves).
    pub fn unlimited() -> Permit {
        Permit(None)
    }
}

#[derive(Default)]
pub(crate) struct Slot {
    armed: AtomicBool,
    then: Mutex<Option<Then>>,
    stream: Mutex<Option<TcpStream>>,
    detached: Notify,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Detach {
    pub(crate) fn new(slot: Arc<Slot>) -> Detach {
        Detach { slot }
    }

    /// Once the response head is written, `then` gets the socket (on this shard's thread). The
    /// response must be the last on the connection and its body must not end: use
    /// [`Detach::endless_body`].
    pub fn after_head(&self, then: impl FnOnce(Detached) + Send + 'static) {
        *lock(&self.slot.then) = Some(Box::new(then));
        self.slot.armed.store(true, Ordering::Release);
    }

    /// A body of unknown length that never yields: hyper writes the head and waits on it, and
    /// the connection is handed over meanwhile.
    pub fn endless_body() -> Body {
        Body::from_stream(futures_util::stream::pending::<Result<Bytes, io::Error>>())
    }
}

impl Slot {
    /// Resolves once the socket has left hyper.
    pub(crate) async fn detached(&self) {
        self.detached.notified().await;
    }

    /// The socket and what to do with it, if the connection was handed over.
    pub(crate) fn take(&self) -> Option<(TcpStream, Then)> {
        let stream = lock(&self.stream).take()?;
        let then = lock(&self.then).take()?;
        Some((stream, then))
    }
}

/// A connection's I/O as hyper sees it: the socket, until a handed-over response head has been
/// flushed.
pub(crate) struct DetachableIo {
    stream: Option<TcpStream>,
    slot: Arc<Slot>,
    /// The last four bytes written since the hand-over was asked for.
    tail: [u8; 4],
    wrote: bool,
}

impl DetachableIo {
    pub(crate) fn new(stream: TcpStream, slot: Arc<Slot>) -> DetachableIo {
        DetachableIo {
            stream: Some(stream),
            slot,
            tail: [0; 4],
            wrote: false,
        }
    }

    fn armed(&self) -> bool {
        self.slot.armed.load(Ordering::Acquire)
    }

    /// Remembers the end of what was just written, once a hand-over is asked for.
    fn note(&mut self, written: &[u8]) {
        if written.is_empty() || !self.armed() {
            return;
        }
        self.wrote = true;
        push_tail(&mut self.tail, written);
    }
}

/// `tail` becomes the last four bytes of `tail` followed by `bytes`.
fn push_tail(tail: &mut [u8; 4], bytes: &[u8]) {
    for &byte in bytes.iter().skip(bytes.len().saturating_sub(4)) {
        tail.copy_within(1.., 0);
        tail[3] = byte;
    }
}

impl AsyncRead for DetachableIo {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match &mut self.get_mut().stream {
            Some(stream) => Pin::new(stream).poll_read(cx, buf),
            None => Poll::Pending,
        }
    }
}

impl AsyncWrite for DetachableIo {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let Some(stream) = &mut this.stream else {
            return Poll::Pending;
        };
        let written = std::task::ready!(Pin::new(stream).poll_write(cx, buf))?;
        this.note(&buf[..written]);
        Poll::Ready(Ok(written))
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let Some(stream) = &mut this.stream else {
            return Poll::Pending;
        };
        let written = std::task::ready!(Pin::new(stream).poll_write_vectored(cx, bufs))?;
        let mut left = written;
        for buf in bufs {
            let taken = left.min(buf.len());
            this.note(&buf[..taken]);
            left -= taken;
            if left == 0 {
                break;
            }
        }
        Poll::Ready(Ok(written))
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.as_ref().is_some_and(|s| s.is_write_vectored())
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let Some(stream) = &mut this.stream else {
            return Poll::Pending;
        };
        std::task::ready!(Pin::new(stream).poll_flush(cx))?;
        if this.wrote && this.tail == *b"\r\n\r\n" && this.armed() {
            // Everything hyper wrote is on the socket, ending with the head it was asked to
            // write: the socket leaves hyper, which is dropped without touching it again.
            *lock(&this.slot.stream) = this.stream.take();
            this.slot.detached.notify_one();
            return Poll::Pending;
        }
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match &mut self.get_mut().stream {
            Some(stream) => Pin::new(stream).poll_shutdown(cx),
            None => Poll::Ready(Ok(())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tail_is_the_last_four_bytes_across_writes() {
        let mut tail = [0; 4];
        push_tail(&mut tail, b"HTTP/1.1 200 OK\r\n");
        push_tail(&mut tail, b"\r");
        assert_ne!(tail, *b"\r\n\r\n");
        push_tail(&mut tail, b"\n");
        assert_eq!(tail, *b"\r\n\r\n");
        push_tail(&mut tail, b"x");
        assert_eq!(tail, *b"\n\r\nx");
    }
}
