//! A socket's reading side: one small task per viewer, asleep until the socket is readable.
//! SSE viewers send nothing after their request, so reading only tells when they leave;
//! WebSocket clients' frames are put together here and handed to the engine as messages.
//!
//! Reading is bounded twice over: a reader hands what it read to the engine through the shard's
//! bounded queue (it waits when the queue is full, and reads nothing meanwhile), and it does not
//! read at all while its socket is blocked ([`ReadGate`]: the engine closes the gate when the
//! socket's kernel buffer is full, and opens it once drained). A client that sends requests and
//! does not read the answers is therefore not read either: its own socket fills, and TCP holds
//! it back.

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use tokio::net::TcpStream;
use tokio::sync::{Notify, mpsc};

use super::connections::ConnKey;
use super::engine::FromReader;
use crate::framing::websocket::{ClientFrames, ClientMessage, Violation};

thread_local! {
    /// One read buffer per shard, used between two awaits only: a sleeping reader holds none.
    static READ_BUFFER: RefCell<Vec<u8>> = RefCell::new(vec![0; 8 * 1024]);
}

/// Whether a socket's reader may read: closed while the socket is blocked.
pub(crate) struct ReadGate {
    open: Cell<bool>,
    opened: Notify,
}

impl ReadGate {
    pub fn new() -> Rc<ReadGate> {
        Rc::new(ReadGate {
            open: Cell::new(true),
            opened: Notify::new(),
        })
    }

    pub fn close(&self) {
        self.open.set(false);
    }

    pub fn open(&self) {
        self.open.set(true);
        self.opened.notify_one();
    }

    fn is_open(&self) -> bool {
        self.open.get()
    }

    async fn wait(&self) {
        while !self.open.get() {
            self.opened.notified().await;
        }
    }
}

enum Read {
    Nothing,
    Messages(Vec<ClientMessage>),
    Violation(Violation),
    Gone,
}

pub(crate) async fn read(
    stream: Rc<TcpStream>,
    gate: Rc<ReadGate>,
    conn: ConnKey,
    websocket: bool,
    engine: mpsc::Sender<FromReader>,
) {
    // What a sleeping reader holds is paid once per viewer: the rare waits (a closed gate, a
    // full queue) are boxed when they happen instead of sizing every reader for them, and an
    // SSE viewer has no frames to put together.
    let mut frames = websocket.then(Box::<ClientFrames>::default);
    loop {
        if !gate.is_open() {
            Box::pin(gate.wait()).await;
        }
        if stream.readable().await.is_err() {
            break;
        }
        let read = READ_BUFFER.with_borrow_mut(|buffer| match stream.try_read(buffer) {
            Ok(0) => Read::Gone,
            Ok(n) if let Some(frames) = frames.as_mut() => {
                let mut messages = Vec::new();
                match frames.feed(&buffer[..n], &mut messages) {
                    Ok(()) if messages.is_empty() => Read::Nothing,
                    Ok(()) => Read::Messages(messages),
                    Err(violation) => Read::Violation(violation),
                }
            }
            // An SSE viewer has nothing to say: whatever it sends is dropped.
            Ok(_) => Read::Nothing,
            Err(err) if err.kind() == std::io::ErrorKind::WouldBlock => Read::Nothing,
            Err(_) => Read::Gone,
        });
        let said = match read {
            Read::Nothing => continue,
            Read::Messages(messages) => FromReader::Client { conn, messages },
            Read::Violation(violation) => {
                let _ = hand_over(&engine, FromReader::Violation { conn, violation }).await;
                return;
            }
            Read::Gone => break,
        };
        if hand_over(&engine, said).await.is_err() {
            return;
        }
    }
    let _ = hand_over(&engine, FromReader::Gone { conn }).await;
}

/// Gives the engine what a reader read, waiting while the shard's queue is full (the wait,
/// rare, is boxed: see [`read`]). An error: the engine is gone.
async fn hand_over(engine: &mpsc::Sender<FromReader>, said: FromReader) -> Result<(), ()> {
    match engine.try_send(said) {
        Ok(()) => Ok(()),
        Err(mpsc::error::TrySendError::Full(said)) => {
            Box::pin(engine.send(said)).await.map_err(|_| ())
        }
        Err(mpsc::error::TrySendError::Closed(_)) => Err(()),
    }
}
