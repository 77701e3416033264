//! The wire's names for the browser: `web/wire.js`, generated from the types here so that the
//! web UI cannot drift from the server. A test (`tests/wire_js.rs` at the workspace root)
//! checks the checked-in file is this one and that it agrees with `/openapi.json`;
//! `cargo run -p livescore-wire --example wire_js > web/wire.js` writes it again.

use crate::{Kind, SnapshotReason, Topic, topic};

/// The text of `web/wire.js`.
pub fn module() -> String {
    let kinds: Vec<String> = Kind::ALL
        .iter()
        // Each kind's key is its name (all are one word).
        .map(|kind| format!("    {0}: '{0}',", kind.as_str()))
        .collect();
    let sse_kinds: Vec<String> = Kind::SSE
        .iter()
        .map(|kind| format!("'{}'", kind.as_str()))
        .collect();
    let reasons: Vec<String> = SnapshotReason::ALL
        .iter()
        .map(|reason| format!("    {0}: '{0}',", reason.as_str()))
        .collect();
    format!(
        "// Generated from the livescore-wire crate (wire/src/js.rs): do not edit by hand.\n\
         // The names of the live protocol, shared with the server (an ES module). See docs/ARCHITECTURE.md.\n\
         \n\
         export const WIRE = Object.freeze({{\n\
         \x20 kind: Object.freeze({{\n{kinds}\n  }}),\n\
         \x20 // Why a stream began with a snapshot rather than resuming (the snapshot's `reason`).\n\
         \x20 snapshotReason: Object.freeze({{\n{reasons}\n  }}),\n\
         \x20 // The SSE event names (the WebSocket adds unsubscribed and error).\n\
         \x20 sseKinds: Object.freeze([{sse_kinds}]),\n\
         \x20 feedTopic: '{feed}',\n\
         \x20 matchTopic: (id) => `{prefix}${{id}}`,\n\
         \x20 ssePath: (topic) => topic === '{feed}' ? '{feed_path}' : `/sse/games/${{topic.slice({len})}}`,\n\
         }});\n",
        kinds = kinds.join("\n"),
        reasons = reasons.join("\n"),
        sse_kinds = sse_kinds.join(", "),
        feed = topic::FEED,
        prefix = topic::MATCH_PREFIX,
        len = topic::MATCH_PREFIX.len(),
        feed_path = Topic::Feed.sse_path(),
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_module_names_every_kind_and_both_topics() {
        let js = super::module();
        for kind in crate::Kind::ALL {
            assert!(js.contains(&format!("'{}'", kind.as_str())), "{kind}");
        }
        for reason in crate::SnapshotReason::ALL {
            assert!(js.contains(&format!("'{}'", reason.as_str())), "{reason:?}");
        }
        assert!(js.contains("feedTopic: 'games'"));
        assert!(js.contains("`game:${id}`"));
    }
}
