//! The bytes of the live streams once the fan-out engine owns a socket, written and read
//! without hyper: SSE events as the chunks of the chunked body the response head announced
//! (`chunked.rs`), and WebSocket frames both ways, as RFC 6455 says (`websocket.rs`). Pure: no
//! I/O. Shared by the messages (`message.rs`, encoded once for every viewer) and the engine.

pub mod chunked;
pub mod websocket;
