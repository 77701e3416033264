//! The wire: every name and position that crosses a process boundary, typed once.
//!
//! - [`Cursor`]: where an entry stands in its topic's log (a Redis stream id, or the in-process
//!   store's counter); clients resume after one.
//! - [`Topic`]: what a viewer follows, `games` (the feed of every game's summary) or
//!   `game:<id>` (one match's log).
//! - [`Kind`]: what a message is (`snapshot`, `update`, `replay`, `game`, and on a WebSocket
//!   `unsubscribed` and `error`).
//! - [`join`]: what a stream's first message says: it resumed after the client's cursor, or
//!   why it starts with a snapshot; and the marks of the messages that are not log entries.
//! - [`sse`]: the Server-Sent Events a stream carries, written and read.
//! - [`frame`]: the WebSocket frames, both ways.
//! - [`js`]: the same names for the browser (`web/wire.js` is generated from them).
//!
//! The store, the API, the load test and the tests all use these types, and the API's OpenAPI
//! document describes them (feature `openapi`): a name changed here changes everywhere.

/// Serde (and, with `openapi`, the schema) for a type whose wire form is the string its
/// `Display` writes and its `FromStr` reads.
macro_rules! string_on_the_wire {
    ($type:ty, pattern: $pattern:literal, description: $description:literal, example: $example:literal) => {
        impl serde::Serialize for $type {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.collect_str(self)
            }
        }

        impl<'de> serde::Deserialize<'de> for $type {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
                text.parse().map_err(serde::de::Error::custom)
            }
        }

        #[cfg(feature = "openapi")]
        impl utoipa::PartialSchema for $type {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                utoipa::openapi::ObjectBuilder::new()
                    .schema_type(utoipa::openapi::schema::Type::String)
                    .pattern(Some($pattern))
                    .description(Some($description))
                    .examples([serde_json::json!($example)])
                    .into()
            }
        }

        #[cfg(feature = "openapi")]
        impl utoipa::ToSchema for $type {}
    };
}

pub mod cursor;
pub mod frame;
pub mod join;
pub mod js;
pub mod kind;
pub mod sse;
pub mod topic;

pub use cursor::Cursor;
pub use frame::{ClientRequest, ServerFrame};
pub use join::SnapshotReason;
pub use kind::Kind;
pub use topic::Topic;

/// What is wrong with a wire value from outside.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    #[error("not a cursor: {0:?} (cursors look like 1700000000000-0)")]
    Cursor(String),
    #[error("unknown topic {0:?}: topics are \"games\" and \"game:<id>\"")]
    Topic(String),
    #[error("a match log entry without a known kind: {0}")]
    EntryKind(String),
}

/// At most this much of a bad value goes into an error message.
pub(crate) fn excerpt(text: &str) -> String {
    const MAX: usize = 64;
    match text.char_indices().nth(MAX) {
        Some((end, _)) => format!("{}...", &text[..end]),
        None => text.to_owned(),
    }
}
