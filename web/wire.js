// Generated from the livescore-wire crate (wire/src/js.rs): do not edit by hand.
// The names of the live protocol, shared with the server. See docs/ARCHITECTURE.md.
'use strict';

const WIRE = Object.freeze({
  kind: Object.freeze({
    snapshot: 'snapshot',
    update: 'update',
    replay: 'replay',
    game: 'game',
    unsubscribed: 'unsubscribed',
    error: 'error',
  }),
  // The SSE event names (the WebSocket adds unsubscribed and error).
  sseKinds: Object.freeze(['snapshot', 'update', 'replay', 'game']),
  feedTopic: 'games',
  matchTopic: (id) => `game:${id}`,
  ssePath: (topic) => topic === 'games' ? '/sse/games' : `/sse/games/${topic.slice(5)}`,
});
