//! WebSocket frames (text, JSON), both ways. See `api/src/ws.rs` for the protocol.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::{Cursor, Kind, Topic};

/// What the server sends: an entry of a subscribed topic (`topic`, `kind`, `cursor`, `data`),
/// `{"topic", "kind": "unsubscribed"}`, or `{"kind": "error", "message"}`.
///
/// `data` is the entry as the store holds it, JSON already: it is copied in, never re-encoded.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ServerFrame<'a> {
    /// The topic; absent on errors.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub topic: Option<Topic>,
    pub kind: Kind,
    /// The cursor to resume after; absent on a snapshot of a topic with no entry yet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cursor: Option<Cursor>,
    /// The entry: an `Entry` for a match, a `MatchSummary` (or the games snapshot) for `games`.
    #[serde(borrow, default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
    pub data: Option<&'a RawValue>,
    /// For errors: what was wrong with the request.
    #[serde(borrow, default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub message: Option<Cow<'a, str>>,
}

impl<'a> ServerFrame<'a> {
    /// An entry of `topic`.
    pub fn entry(topic: Topic, kind: Kind, cursor: Option<Cursor>, data: &'a RawValue) -> Self {
        ServerFrame {
            topic: Some(topic),
            kind,
            cursor,
            data: Some(data),
            message: None,
        }
    }

    /// The answer to an unsubscribe.
    pub fn unsubscribed(topic: Topic) -> Self {
        ServerFrame {
            topic: Some(topic),
            kind: Kind::Unsubscribed,
            cursor: None,
            data: None,
            message: None,
        }
    }

    /// A request that was not understood.
    pub fn error(message: impl Into<Cow<'a, str>>) -> Self {
        ServerFrame {
            topic: None,
            kind: Kind::Error,
            cursor: None,
            data: None,
            message: Some(message.into()),
        }
    }

    pub fn to_json(&self) -> String {
        // Typed fields and JSON already checked: encoding cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// What a client sends (at most 4 KiB of JSON).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case", deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum ClientRequest {
    /// Follow `topic`: a snapshot first, or with `cursor`, what came after it.
    Subscribe {
        topic: Topic,
        /// A cursor the server cannot read is treated as one it no longer holds: the client
        /// gets a fresh snapshot (as with SSE's `Last-Event-ID`).
        #[serde(
            default,
            skip_serializing_if = "Option::is_none",
            deserialize_with = "readable_cursor"
        )]
        #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
        cursor: Option<Cursor>,
    },
    /// Stop following `topic`.
    Unsubscribe { topic: Topic },
}

/// A cursor, or `None` for one that is not (or an empty string).
fn readable_cursor<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<Cursor>, D::Error> {
    let text = Option::<Cow<'de, str>>::deserialize(deserializer)?;
    Ok(text.and_then(|text| text.parse().ok()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_entry_frame_carries_the_entry_as_it_is() {
        let data = RawValue::from_string(r#"{"kind":"update","n":[1,2]}"#.into()).unwrap();
        let frame = ServerFrame::entry(
            Topic::Match(7457),
            Kind::Update,
            Some(Cursor::new(5, 0)),
            &data,
        );
        let json = frame.to_json();
        assert_eq!(
            json,
            r#"{"topic":"game:7457","kind":"update","cursor":"5-0","data":{"kind":"update","n":[1,2]}}"#
        );
        let read: ServerFrame = serde_json::from_str(&json).unwrap();
        assert_eq!(read.topic, Some(Topic::Match(7457)));
        assert_eq!(read.data.map(RawValue::get), Some(data.get()));
    }

    #[test]
    fn control_frames_leave_out_what_they_do_not_have() {
        assert_eq!(
            ServerFrame::unsubscribed(Topic::Feed).to_json(),
            r#"{"topic":"games","kind":"unsubscribed"}"#
        );
        assert_eq!(
            ServerFrame::error("say \"what\"").to_json(),
            r#"{"kind":"error","message":"say \"what\""}"#
        );
    }

    #[test]
    fn requests_name_a_topic_and_maybe_a_cursor() {
        let request: ClientRequest =
            serde_json::from_str(r#"{"op":"subscribe","topic":"game:9","cursor":"4-1"}"#).unwrap();
        assert_eq!(
            request,
            ClientRequest::Subscribe {
                topic: Topic::Match(9),
                cursor: Some(Cursor::new(4, 1))
            }
        );
        let unreadable: ClientRequest =
            serde_json::from_str(r#"{"op":"subscribe","topic":"games","cursor":"x"}"#).unwrap();
        assert_eq!(
            unreadable,
            ClientRequest::Subscribe {
                topic: Topic::Feed,
                cursor: None
            }
        );
        let bad = |json| {
            serde_json::from_str::<ClientRequest>(json)
                .unwrap_err()
                .to_string()
        };
        assert!(bad(r#"{"op":"subscribe","topic":"nope"}"#).contains("unknown topic"));
        assert!(bad(r#"{"op":"subscribe","topic":"games","extra":1}"#).contains("unknown field"));
        assert!(bad(r#"{"op":"shout"}"#).contains("unknown variant"));
    }
}
