//! SSE events as the chunks of the `transfer-encoding: chunked` body that hyper announced in the
//! stream's response head: once the engine owns the socket, it writes the chunks itself. Pure.

use axum::body::Bytes;

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_chunk_is_its_length_in_hex_then_the_payload() {
        assert_eq!(&chunk(b"data: 1\n\n")[..], b"9\r\ndata: 1\n\n\r\n");
        assert_eq!(&chunk(&[b'x'; 300])[..5], b"12c\r\n");
    }
}
