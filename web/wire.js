// Generated from the livescore-wire crate (wire/src/js.rs): do not edit by hand.
// The names of the live protocol, shared with the server (an ES module). See docs/ARCHITECTURE.md.

export const WIRE = Object.freeze({
  kind: Object.freeze({
    snapshot: 'snapshot',
    resumed: 'resumed',
    update: 'update',
    replay: 'replay',
    game: 'game',
    presence: 'presence',
    unsubscribed: 'unsubscribed',
    error: 'error',
  }),
  // Why a stream began with a snapshot rather than resuming (the snapshot's `reason`).
  snapshotReason: Object.freeze({
    no_cursor: 'no_cursor',
    cursor_unknown: 'cursor_unknown',
    too_far_behind: 'too_far_behind',
    store_rebuilt: 'store_rebuilt',
  }),
  // The SSE event names (the WebSocket adds unsubscribed and error).
  sseKinds: Object.freeze(['snapshot', 'resumed', 'update', 'replay', 'game', 'presence']),
  feedTopic: 'games',
  matchTopic: (id) => `game:${id}`,
  ssePath: (topic) => topic === 'games' ? '/sse/games' : `/sse/games/${topic.slice(5)}`,
});
