//! The bytes of live streams once the fan-out engine owns the socket: SSE events as chunks of
//! the chunked body hyper announced, WebSocket frames (RFC 6455) both ways. Pure: no I/O.

use axum::body::Bytes;

/// The largest frame or message a WebSocket client may send.
pub const MAX_CLIENT_MESSAGE: usize = 4 * 1024;

/// The last chunk of a chunked body: the SSE stream ends cleanly.
pub const END_OF_STREAM: &[u8] = b"0\r\n\r\n";

/// `payload` as one chunk of a `transfer-encoding: chunked` body.
pub fn chunk(payload: &[u8]) -> Bytes {
    let mut out = Vec::with_capacity(payload.len() + 12);
    out.extend_from_slice(format!("{:x}\r\n", payload.len()).as_bytes());
    out.extend_from_slice(payload);
    out.extend_from_slice(b"\r\n");
    Bytes::from(out)
}

pub const TEXT: u8 = 0x1;
pub const BINARY: u8 = 0x2;
pub const CLOSE: u8 = 0x8;
pub const PING: u8 = 0x9;
pub const PONG: u8 = 0xA;
const CONTINUATION: u8 = 0x0;

/// A whole server frame (unmasked, final) with `payload`.
pub fn frame(opcode: u8, payload: &[u8]) -> Bytes {
    let mut out = Vec::with_capacity(payload.len() + 10);
    out.push(0x80 | opcode);
    match payload.len() {
        n if n < 126 => out.push(n as u8),
        n if n <= usize::from(u16::MAX) => {
            out.push(126);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            out.push(127);
            out.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    out.extend_from_slice(payload);
    Bytes::from(out)
}

/// A close frame with its status code and reason (cut to fit a control frame's 125 bytes).
pub fn close(code: u16, reason: &str) -> Bytes {
    let mut payload = code.to_be_bytes().to_vec();
    let mut end = reason.len().min(123);
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    payload.extend_from_slice(&reason.as_bytes()[..end]);
    frame(CLOSE, &payload)
}

/// Close codes the server uses.
pub mod close_code {
    pub const NORMAL: u16 = 1000;
    pub const PROTOCOL: u16 = 1002;
    pub const POLICY: u16 = 1008;
    pub const TOO_BIG: u16 = 1009;
    pub const RESTART: u16 = 1012;
    pub const AGAIN: u16 = 1013;
}

/// What a WebSocket client said, once its frames are put together.
#[derive(Debug, PartialEq, Eq)]
pub enum ClientMessage {
    Text(String),
    Binary,
    Ping(Vec<u8>),
    Pong,
    /// The client closes, with its status code if it gave one.
    Close(Option<u16>),
}

/// Why a client's bytes cannot be read further: the connection is closed with `code`.
#[derive(Debug, PartialEq, Eq)]
pub struct Violation {
    pub code: u16,
    pub reason: &'static str,
}

fn violation(code: u16, reason: &'static str) -> Violation {
    Violation { code, reason }
}

/// Puts a client's frames together across reads. Holds nothing between reads in the usual
/// case, where a read carries whole frames.
#[derive(Default)]
pub struct ClientFrames {
    /// A frame cut by the end of a read.
    partial: Vec<u8>,
    /// A fragmented text or binary message so far, and its opcode.
    message: Vec<u8>,
    fragmented: Option<u8>,
}

impl ClientFrames {
    /// Reads `bytes`, pushing every message they complete into `out`.
    pub fn feed(&mut self, bytes: &[u8], out: &mut Vec<ClientMessage>) -> Result<(), Violation> {
        if self.partial.is_empty() {
            let used = self.frames(bytes, out)?;
            self.partial.extend_from_slice(&bytes[used..]);
        } else {
            let mut buffered = std::mem::take(&mut self.partial);
            buffered.extend_from_slice(bytes);
            let used = self.frames(&buffered, out)?;
            buffered.drain(..used);
            self.partial = buffered;
        }
        if self.partial.len() > MAX_CLIENT_MESSAGE + 14 {
            return Err(violation(close_code::TOO_BIG, "frame too big"));
        }
        Ok(())
    }

    /// Decodes the whole frames at the start of `bytes`; returns how many bytes they took.
    fn frames(&mut self, bytes: &[u8], out: &mut Vec<ClientMessage>) -> Result<usize, Violation> {
        let mut at = 0;
        while let Some((header, len)) = header(&bytes[at..])? {
            let start = at + header.len;
            let Some(end) = start.checked_add(len).filter(|end| *end <= bytes.len()) else {
                break;
            };
            let mut payload = bytes[start..end].to_vec();
            for (i, byte) in payload.iter_mut().enumerate() {
                *byte ^= header.mask[i % 4];
            }
            at = end;
            self.message(header.fin, header.opcode, payload, out)?;
        }
        Ok(at)
    }

    fn message(
        &mut self,
        fin: bool,
        opcode: u8,
        payload: Vec<u8>,
        out: &mut Vec<ClientMessage>,
    ) -> Result<(), Violation> {
        let control = match opcode {
            PING => Some(ClientMessage::Ping(payload.clone())),
            PONG => Some(ClientMessage::Pong),
            CLOSE => Some(ClientMessage::Close(
                (payload.len() >= 2).then(|| u16::from_be_bytes([payload[0], payload[1]])),
            )),
            _ => None,
        };
        if let Some(control) = control {
            out.push(control);
            return Ok(());
        }
        let whole = match (opcode, self.fragmented) {
            (TEXT | BINARY, None) if fin => (opcode, payload),
            (TEXT | BINARY, None) => {
                self.fragmented = Some(opcode);
                self.message = payload;
                return Ok(());
            }
            (CONTINUATION, Some(first)) => {
                if self.message.len() + payload.len() > MAX_CLIENT_MESSAGE {
                    return Err(violation(close_code::TOO_BIG, "message too big"));
                }
                self.message.extend_from_slice(&payload);
                if !fin {
                    return Ok(());
                }
                self.fragmented = None;
                (first, std::mem::take(&mut self.message))
            }
            (CONTINUATION, None) => {
                return Err(violation(close_code::PROTOCOL, "continuation of nothing"));
            }
            (TEXT | BINARY, Some(_)) => {
                return Err(violation(
                    close_code::PROTOCOL,
                    "a new message inside a fragmented one",
                ));
            }
            _ => return Err(violation(close_code::PROTOCOL, "unknown opcode")),
        };
        out.push(match whole {
            (TEXT, payload) => match String::from_utf8(payload) {
                Ok(text) => ClientMessage::Text(text),
                Err(_) => return Err(violation(1007, "text frames must be UTF-8")),
            },
            _ => ClientMessage::Binary,
        });
        Ok(())
    }
}

struct Header {
    fin: bool,
    opcode: u8,
    mask: [u8; 4],
    /// Bytes of the header itself.
    len: usize,
}

/// A frame's header and payload length, if `bytes` holds the whole header.
fn header(bytes: &[u8]) -> Result<Option<(Header, usize)>, Violation> {
    let [first, second, ..] = *bytes else {
        return Ok(None);
    };
    if first & 0x70 != 0 {
        return Err(violation(close_code::PROTOCOL, "reserved bits set"));
    }
    if second & 0x80 == 0 {
        return Err(violation(
            close_code::PROTOCOL,
            "client frames must be masked",
        ));
    }
    let fin = first & 0x80 != 0;
    let opcode = first & 0x0F;
    let (len, mut at) = match second & 0x7F {
        126 => match bytes.get(2..4) {
            Some(b) => (u64::from(u16::from_be_bytes([b[0], b[1]])), 4),
            None => return Ok(None),
        },
        127 => match bytes.get(2..10) {
            Some(b) => {
                let mut n = [0; 8];
                n.copy_from_slice(b);
                (u64::from_be_bytes(n), 10)
            }
            None => return Ok(None),
        },
        n => (u64::from(n), 2),
    };
    if opcode >= 0x8 && (len > 125 || !fin) {
        return Err(violation(close_code::PROTOCOL, "bad control frame"));
    }
    if len > MAX_CLIENT_MESSAGE as u64 {
        return Err(violation(close_code::TOO_BIG, "frame too big"));
    }
    let Some(mask) = bytes.get(at..at + 4) else {
        return Ok(None);
    };
    let mask = [mask[0], mask[1], mask[2], mask[3]];
    at += 4;
    Ok(Some((
        Header {
            fin,
            opcode,
            mask,
            len: at,
        },
        len as usize,
    )))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// A masked client frame.
    fn client(fin: bool, opcode: u8, payload: &[u8]) -> Vec<u8> {
        let mut out = vec![if fin { 0x80 } else { 0 } | opcode];
        match payload.len() {
            n if n < 126 => out.push(0x80 | n as u8),
            n => {
                out.push(0x80 | 126);
                out.extend_from_slice(&(n as u16).to_be_bytes());
            }
        }
        let mask = [7, 1, 200, 33];
        out.extend_from_slice(&mask);
        out.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
        out
    }

    fn read(chunks: &[&[u8]]) -> Result<Vec<ClientMessage>, Violation> {
        let mut frames = ClientFrames::default();
        let mut out = Vec::new();
        for chunk in chunks {
            frames.feed(chunk, &mut out)?;
        }
        Ok(out)
    }

    #[test]
    fn frames_cut_anywhere_are_read_whole() {
        let mut bytes = client(true, TEXT, br#"{"op":"subscribe","topic":"games"}"#);
        bytes.extend(client(true, PING, b"hi"));
        bytes.extend(client(true, TEXT, &[b'x'; 300]));
        for cut in 0..bytes.len() {
            let (a, b) = bytes.split_at(cut);
            let messages = read(&[a, b]).unwrap();
            assert_eq!(messages.len(), 3, "cut at {cut}");
            assert_eq!(
                messages[0],
                ClientMessage::Text(r#"{"op":"subscribe","topic":"games"}"#.into())
            );
            assert_eq!(messages[1], ClientMessage::Ping(b"hi".to_vec()));
            assert_eq!(messages[2], ClientMessage::Text("x".repeat(300)));
        }
    }

    #[test]
    fn fragments_are_joined_and_control_frames_pass_between_them() {
        let mut bytes = client(false, TEXT, b"{\"op\":");
        bytes.extend(client(true, PONG, b""));
        bytes.extend(client(true, CONTINUATION, b"1}"));
        assert_eq!(
            read(&[&bytes]).unwrap(),
            vec![
                ClientMessage::Pong,
                ClientMessage::Text("{\"op\":1}".into())
            ]
        );
    }

    #[test]
    fn bad_frames_are_violations() {
        let unmasked = [0x81, 0x01, b'x'];
        assert_eq!(read(&[&unmasked]).unwrap_err().code, close_code::PROTOCOL);
        let big = client(true, TEXT, &[b'a'; MAX_CLIENT_MESSAGE + 1]);
        assert_eq!(read(&[&big]).unwrap_err().code, close_code::TOO_BIG);
        let mut fragments = client(false, TEXT, &[b'a'; MAX_CLIENT_MESSAGE]);
        fragments.extend(client(true, CONTINUATION, b"b"));
        assert_eq!(read(&[&fragments]).unwrap_err().code, close_code::TOO_BIG);
        let stray = client(true, CONTINUATION, b"b");
        assert_eq!(read(&[&stray]).unwrap_err().code, close_code::PROTOCOL);
        let not_utf8 = client(true, TEXT, &[0xff, 0xfe]);
        assert_eq!(read(&[&not_utf8]).unwrap_err().code, 1007);
        assert_eq!(
            read(&[&client(true, CLOSE, &1001u16.to_be_bytes())]).unwrap(),
            vec![ClientMessage::Close(Some(1001))]
        );
        assert_eq!(
            read(&[&client(true, BINARY, b"\x00")]).unwrap(),
            vec![ClientMessage::Binary]
        );
    }

    #[test]
    fn server_frames_and_chunks_are_well_formed() {
        assert_eq!(&frame(TEXT, b"hey")[..], b"\x81\x03hey");
        let long = frame(TEXT, &[b'z'; 300]);
        assert_eq!(&long[..4], &[0x81, 126, 1, 44]);
        assert_eq!(long.len(), 304);
        let closing = close(close_code::RESTART, &"é".repeat(100));
        assert!(closing.len() <= 127 && closing[1] as usize == closing.len() - 2);
        assert!(std::str::from_utf8(&closing[4..]).is_ok());
        assert_eq!(&chunk(b"data: 1\n\n")[..], b"9\r\ndata: 1\n\n\r\n");
    }
}
