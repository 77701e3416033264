//! A socket's reading side: one small task per viewer, asleep until the socket is readable.
//! SSE viewers send nothing after their request, so reading only tells when they leave;
//! WebSocket clients' frames are put together here and handed to the engine as messages.

use std::cell::RefCell;
use std::rc::Rc;

use tokio::net::TcpStream;
use tokio::sync::mpsc;

use super::wire::ClientFrames;
use super::{Command, ConnKey};

thread_local! {
    /// One read buffer per shard, used between two awaits only: a sleeping reader holds none.
    static READ_BUFFER: RefCell<Vec<u8>> = RefCell::new(vec![0; 8 * 1024]);
}

enum Read {
    Nothing,
    Messages(Vec<super::wire::ClientMessage>),
    Violation(super::wire::Violation),
    Gone,
}

pub(crate) async fn read(
    stream: Rc<TcpStream>,
    conn: ConnKey,
    websocket: bool,
    commands: mpsc::UnboundedSender<Command>,
) {
    let mut frames = ClientFrames::default();
    loop {
        if stream.readable().await.is_err() {
            break;
        }
        let read = READ_BUFFER.with_borrow_mut(|buffer| match stream.try_read(buffer) {
            Ok(0) => Read::Gone,
            Ok(n) if websocket => {
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
        let command = match read {
            Read::Nothing => continue,
            Read::Messages(messages) => Command::Client { conn, messages },
            Read::Violation(violation) => {
                let _ = commands.send(Command::Violation { conn, violation });
                return;
            }
            Read::Gone => break,
        };
        if commands.send(command).is_err() {
            return;
        }
    }
    let _ = commands.send(Command::Gone { conn });
}
