//! WebSocket frames (RFC 6455) once the fan-out engine owns the socket: the server's frames
//! (whole, unmasked) and the client's (masked, perhaps fragmented, cut anywhere by reads), read
//! and checked as section 5 and 7.4 say. Pure: no I/O.

use axum::body::Bytes;

/// The largest frame or message a WebSocket client may send.
pub const MAX_CLIENT_MESSAGE: usize = 4 * 1024;

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

/// Close codes (RFC 6455 7.4.1, and IANA's registry for 1012 and 1013).
pub mod close_code {
    pub const NORMAL: u16 = 1000;
    pub const PROTOCOL: u16 = 1002;
    /// A text message (or a close reason) that is not UTF-8.
    pub const INVALID_DATA: u16 = 1007;
    /// The client broke a rule of this server: idle too long, too many requests, reads too
    /// little of what it asked for.
    pub const POLICY: u16 = 1008;
    pub const TOO_BIG: u16 = 1009;
    pub const RESTART: u16 = 1012;
    pub const AGAIN: u16 = 1013;

    /// Whether a peer may send `code` in a close frame: the codes RFC 6455 defines for that
    /// (not 1004, reserved, nor 1005, 1006 and 1015, which only name what a peer observed),
    /// those registered with IANA since (1012 to 1014), and the ranges left to libraries and
    /// applications (3000 to 4999).
    pub fn may_be_sent(code: u16) -> bool {
        matches!(code, 1000..=1003 | 1007..=1014 | 3000..=4999)
    }
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
            PING => ClientMessage::Ping(payload),
            PONG => ClientMessage::Pong,
            CLOSE => close_message(&payload)?,
            _ => return self.data(fin, opcode, payload, out),
        };
        out.push(control);
        Ok(())
    }

    /// A text, binary or continuation frame: a whole message, or part of one.
    fn data(
        &mut self,
        fin: bool,
        opcode: u8,
        payload: Vec<u8>,
        out: &mut Vec<ClientMessage>,
    ) -> Result<(), Violation> {
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
                Err(_) => {
                    return Err(violation(
                        close_code::INVALID_DATA,
                        "text frames must be UTF-8",
                    ));
                }
            },
            _ => ClientMessage::Binary,
        });
        Ok(())
    }
}

/// A close frame's body: nothing, or a status code a peer may send and a UTF-8 reason (RFC 6455
/// 5.5.1 and 7.4). Anything else is answered with 1002 (or 1007 for the reason), not 1000.
fn close_message(payload: &[u8]) -> Result<ClientMessage, Violation> {
    match payload {
        [] => Ok(ClientMessage::Close(None)),
        [_] => Err(violation(
            close_code::PROTOCOL,
            "a close frame carries a 2-byte status code or nothing",
        )),
        [high, low, reason @ ..] => {
            let code = u16::from_be_bytes([*high, *low]);
            if !close_code::may_be_sent(code) {
                return Err(violation(
                    close_code::PROTOCOL,
                    "not a status code a close frame may carry",
                ));
            }
            if std::str::from_utf8(reason).is_err() {
                return Err(violation(
                    close_code::INVALID_DATA,
                    "a close reason must be UTF-8",
                ));
            }
            Ok(ClientMessage::Close(Some(code)))
        }
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
    if len >> 63 != 0 {
        return Err(violation(
            close_code::PROTOCOL,
            "a 64-bit length must have its top bit clear",
        ));
    }
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
        assert_eq!(
            read(&[&not_utf8]).unwrap_err().code,
            close_code::INVALID_DATA
        );
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
    fn server_frames_are_well_formed() {
        assert_eq!(&frame(TEXT, b"hey")[..], b"\x81\x03hey");
        let long = frame(TEXT, &[b'z'; 300]);
        assert_eq!(&long[..4], &[0x81, 126, 1, 44]);
        assert_eq!(long.len(), 304);
        let closing = close(close_code::RESTART, &"é".repeat(100));
        assert!(closing.len() <= 127 && closing[1] as usize == closing.len() - 2);
        assert!(std::str::from_utf8(&closing[4..]).is_ok());
    }

    #[test]
    fn close_frames_are_checked_as_rfc_6455_says() {
        let closing = |payload: &[u8]| read(&[&client(true, CLOSE, payload)]);
        assert_eq!(closing(b"").unwrap(), vec![ClientMessage::Close(None)]);
        let mut with_reason = 4000u16.to_be_bytes().to_vec();
        with_reason.extend_from_slice("bye é".as_bytes());
        assert_eq!(
            closing(&with_reason).unwrap(),
            vec![ClientMessage::Close(Some(4000))]
        );
        assert_eq!(closing(b"\x03").unwrap_err().code, close_code::PROTOCOL);
        for code in [0, 999, 1004, 1005, 1006, 1015, 1016, 2999, 5000, u16::MAX] {
            assert_eq!(
                closing(&code.to_be_bytes()).unwrap_err().code,
                close_code::PROTOCOL,
                "{code}"
            );
        }
        let mut bad_reason = 1000u16.to_be_bytes().to_vec();
        bad_reason.extend_from_slice(&[0xc3, 0x28]);
        assert_eq!(
            closing(&bad_reason).unwrap_err().code,
            close_code::INVALID_DATA
        );
    }

    #[test]
    fn a_64_bit_length_with_its_top_bit_set_is_refused() {
        let mut frame = vec![0x82, 0x80 | 127];
        frame.extend_from_slice(&(1u64 << 63).to_be_bytes());
        frame.extend_from_slice(&[1, 2, 3, 4]);
        assert_eq!(read(&[&frame]).unwrap_err().code, close_code::PROTOCOL);
    }
}

/// Properties of the client frame reader over generated input: every well-formed sequence of
/// messages, whatever its masks, fragments, length encodings and read boundaries, reads back
/// as what was sent; every broken one is refused with the code RFC 6455 gives; no input panics.
#[cfg(test)]
mod properties {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use proptest::prelude::*;

    /// How a frame's payload length is written: the shortest form, or a longer one (RFC 6455
    /// asks for the shortest; a reader may take the others, and this one does).
    #[derive(Debug, Clone, Copy)]
    enum Length {
        Shortest,
        Bits16,
        Bits64,
    }

    fn encode(fin: bool, opcode: u8, payload: &[u8], mask: [u8; 4], length: Length) -> Vec<u8> {
        let mut out = vec![if fin { 0x80 } else { 0 } | opcode];
        let n = payload.len();
        match length {
            Length::Shortest if n < 126 => out.push(0x80 | n as u8),
            Length::Shortest | Length::Bits16 if n <= usize::from(u16::MAX) => {
                out.push(0x80 | 126);
                out.extend_from_slice(&(n as u16).to_be_bytes());
            }
            _ => {
                out.push(0x80 | 127);
                out.extend_from_slice(&(n as u64).to_be_bytes());
            }
        }
        out.extend_from_slice(&mask);
        out.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
        out
    }

    /// One message a client sends, and how.
    #[derive(Debug, Clone)]
    enum Sent {
        /// A text message in fragments cut at these byte offsets (perhaps inside a character),
        /// with a ping between each two.
        Text(String, Vec<usize>),
        Binary(Vec<u8>),
        Ping(Vec<u8>),
        Pong(Vec<u8>),
        Close(Option<(u16, String)>),
    }

    fn valid_close_code() -> impl Strategy<Value = u16> {
        prop_oneof![1000u16..=1003, 1007u16..=1014, 3000u16..=4999]
    }

    fn sent() -> impl Strategy<Value = Sent> {
        prop_oneof![
            (".{0,200}", prop::collection::vec(0usize..1000, 0..4))
                .prop_map(|(text, cuts)| Sent::Text(text, cuts)),
            prop::collection::vec(any::<u8>(), 0..300).prop_map(Sent::Binary),
            prop::collection::vec(any::<u8>(), 0..=125).prop_map(Sent::Ping),
            prop::collection::vec(any::<u8>(), 0..=125).prop_map(Sent::Pong),
            prop::option::of((valid_close_code(), "[a-z é]{0,40}")).prop_map(Sent::Close),
        ]
    }

    fn length() -> impl Strategy<Value = Length> {
        prop_oneof![
            Just(Length::Shortest),
            Just(Length::Bits16),
            Just(Length::Bits64)
        ]
    }

    /// The frames of `sent` (masked with `mask`) and the messages the reader must give back.
    fn frames_of(sent: &Sent, mask: [u8; 4], length: Length) -> (Vec<u8>, Vec<ClientMessage>) {
        let control =
            |opcode, payload: &[u8]| encode(true, opcode, payload, mask, Length::Shortest);
        match sent {
            Sent::Text(text, cuts) => {
                let bytes = text.as_bytes();
                let mut cuts: Vec<usize> = cuts.iter().map(|cut| cut % (bytes.len() + 1)).collect();
                cuts.sort_unstable();
                cuts.dedup();
                let mut bounds = vec![0];
                bounds.extend(
                    cuts.into_iter()
                        .filter(|cut| *cut > 0 && *cut < bytes.len()),
                );
                bounds.push(bytes.len());
                let pieces = bounds.len() - 1;
                let mut frames = Vec::new();
                let mut expected = Vec::new();
                for (i, piece) in bounds.windows(2).enumerate() {
                    let opcode = if i == 0 { TEXT } else { CONTINUATION };
                    let last = i + 1 == pieces;
                    frames.extend(encode(
                        last,
                        opcode,
                        &bytes[piece[0]..piece[1]],
                        mask,
                        length,
                    ));
                    if !last {
                        frames.extend(control(PING, b"between"));
                        expected.push(ClientMessage::Ping(b"between".to_vec()));
                    }
                }
                expected.push(ClientMessage::Text(text.clone()));
                (frames, expected)
            }
            Sent::Binary(bytes) => (
                encode(true, BINARY, bytes, mask, length),
                vec![ClientMessage::Binary],
            ),
            Sent::Ping(payload) => (
                control(PING, payload),
                vec![ClientMessage::Ping(payload.clone())],
            ),
            Sent::Pong(payload) => (control(PONG, payload), vec![ClientMessage::Pong]),
            Sent::Close(None) => (control(CLOSE, b""), vec![ClientMessage::Close(None)]),
            Sent::Close(Some((code, reason))) => {
                let mut payload = code.to_be_bytes().to_vec();
                payload.extend_from_slice(reason.as_bytes());
                (
                    control(CLOSE, &payload),
                    vec![ClientMessage::Close(Some(*code))],
                )
            }
        }
    }

    /// Feeds `bytes` to a reader in reads cut at `cuts` (offsets, taken modulo the length).
    fn read_in_pieces(bytes: &[u8], cuts: &[usize]) -> Result<Vec<ClientMessage>, Violation> {
        let mut cuts: Vec<usize> = cuts.iter().map(|cut| cut % (bytes.len() + 1)).collect();
        cuts.push(0);
        cuts.push(bytes.len());
        cuts.sort_unstable();
        let mut frames = ClientFrames::default();
        let mut out = Vec::new();
        for piece in cuts.windows(2) {
            frames.feed(&bytes[piece[0]..piece[1]], &mut out)?;
        }
        Ok(out)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn well_formed_messages_read_back_whatever_the_reads(
            messages in prop::collection::vec((sent(), any::<[u8; 4]>(), length()), 1..8),
            cuts in prop::collection::vec(any::<usize>(), 0..12),
        ) {
            let mut bytes = Vec::new();
            let mut expected = Vec::new();
            for (sent, mask, length) in &messages {
                let (frames, messages) = frames_of(sent, *mask, *length);
                bytes.extend(frames);
                expected.extend(messages);
            }
            prop_assert_eq!(read_in_pieces(&bytes, &cuts).unwrap(), expected);
        }

        #[test]
        fn no_input_panics_and_every_refusal_has_a_protocol_code(
            bytes in prop::collection::vec(any::<u8>(), 0..600),
            cuts in prop::collection::vec(any::<usize>(), 0..6),
        ) {
            if let Err(violation) = read_in_pieces(&bytes, &cuts) {
                prop_assert!(
                    [close_code::PROTOCOL, close_code::INVALID_DATA, close_code::TOO_BIG]
                        .contains(&violation.code),
                    "{violation:?}"
                );
            }
        }

        #[test]
        fn text_that_is_not_utf8_is_refused_with_1007(
            text in ".{0,100}",
            at in any::<usize>(),
            cut in any::<usize>(),
            mask in any::<[u8; 4]>(),
        ) {
            // 0xFF is never part of UTF-8.
            let mut bytes = text.into_bytes();
            let at = at % (bytes.len() + 1);
            bytes.insert(at, 0xff);
            let cut = cut % (bytes.len() + 1);
            let mut frames = encode(cut == bytes.len(), TEXT, &bytes[..cut], mask, Length::Shortest);
            if cut < bytes.len() {
                frames.extend(encode(true, CONTINUATION, &bytes[cut..], mask, Length::Shortest));
            }
            prop_assert_eq!(read_in_pieces(&frames, &[]).unwrap_err().code, close_code::INVALID_DATA);
        }

        #[test]
        fn close_codes_no_peer_may_send_are_refused_with_1002(code in any::<u16>(), mask in any::<[u8; 4]>()) {
            let read = read_in_pieces(&encode(true, CLOSE, &code.to_be_bytes(), mask, Length::Shortest), &[]);
            if close_code::may_be_sent(code) {
                prop_assert_eq!(read.unwrap(), vec![ClientMessage::Close(Some(code))]);
            } else {
                prop_assert_eq!(read.unwrap_err().code, close_code::PROTOCOL);
            }
        }

        #[test]
        fn control_frames_long_or_fragmented_are_refused_with_1002(
            opcode in prop_oneof![Just(PING), Just(PONG), Just(CLOSE)],
            size in 126usize..200,
            mask in any::<[u8; 4]>(),
        ) {
            let long = encode(true, opcode, &vec![0; size], mask, Length::Shortest);
            prop_assert_eq!(read_in_pieces(&long, &[]).unwrap_err().code, close_code::PROTOCOL);
            let fragmented = encode(false, opcode, b"", mask, Length::Shortest);
            prop_assert_eq!(read_in_pieces(&fragmented, &[]).unwrap_err().code, close_code::PROTOCOL);
        }

        #[test]
        fn frames_over_the_limit_are_refused_with_1009_whatever_their_length_form(
            extra in 1usize..100,
            length in length(),
            mask in any::<[u8; 4]>(),
        ) {
            let big = encode(true, BINARY, &vec![7; MAX_CLIENT_MESSAGE + extra], mask, length);
            prop_assert_eq!(read_in_pieces(&big, &[]).unwrap_err().code, close_code::TOO_BIG);
        }

        #[test]
        fn unmasked_or_reserved_frames_are_refused_with_1002(payload in prop::collection::vec(any::<u8>(), 0..50), rsv in 1u8..8) {
            let mut unmasked = vec![0x82, payload.len() as u8];
            unmasked.extend_from_slice(&payload);
            prop_assert_eq!(read_in_pieces(&unmasked, &[]).unwrap_err().code, close_code::PROTOCOL);
            let mut reserved = encode(true, BINARY, &payload, [1, 2, 3, 4], Length::Shortest);
            reserved[0] |= rsv << 4;
            prop_assert_eq!(read_in_pieces(&reserved, &[]).unwrap_err().code, close_code::PROTOCOL);
        }
    }
}
