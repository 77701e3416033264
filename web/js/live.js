// The live connection: follows one topic ("games" or "game:<id>") over SSE or WebSocket,
// resuming after the last cursor it handled on every reconnect, never handing the same entry
// over twice, and backing off (with jitter) while the server is away. It also says how each
// connection joined: resumed after its cursor (nothing missed) or a fresh snapshot, and why.

import { WIRE } from '../wire.js';

const badge = () => document.getElementById('badge');
const joinedNote = () => document.getElementById('joined');
const transportSelect = () => document.getElementById('transport');

// Cursors are Redis stream ids "<ms>-<seq>": compared as pairs of numbers.
export function cursorAfter(a, b) {
  if (!b) return true;
  const [am, as] = a.split('-').map(Number);
  const [bm, bs] = b.split('-').map(Number);
  return am > bm || (am === bm && as > bs);
}

export function setBadge(state) {
  const element = badge();
  element.className = `badge ${state}`;
  element.textContent = { live: 'Live', reconnecting: 'Reconnecting', offline: 'Offline' }[state];
}

// How the last connection joined, in a few words beside the badge (only when it says
// something: a first visit's snapshot says nothing).
const JOINED = {
  [WIRE.snapshotReason.no_cursor]: '',
  [WIRE.snapshotReason.cursor_unknown]: 'Refreshed: the updates you missed are no longer kept',
  [WIRE.snapshotReason.too_far_behind]: 'Refreshed: you were away a while',
  [WIRE.snapshotReason.store_rebuilt]: 'Refreshed: the server rebuilt its data',
};
function showJoined(outcome) {
  const element = joinedNote();
  if (!element) return;
  const text = outcome.resumed ? 'Resumed: nothing missed' : JOINED[outcome.reason] ?? '';
  element.textContent = text;
  element.dataset.joined = outcome.resumed ? 'resumed' : outcome.reason ?? '';
  element.hidden = !text;
}

export class Live {
  // `onMessage(kind, data)` gets each entry once, in order, and each presence count.
  constructor(topic, onMessage) {
    this.topic = topic;
    this.onMessage = onMessage;
    this.cursor = null;
    this.closed = false;
    this.backoff = 500;
  }

  start() {
    this.transport = transportSelect().value;
    this.transport === 'ws' ? this.openWebSocket() : this.openEventSource();
  }

  stop() {
    this.closed = true;
    clearTimeout(this.retry);
    this.source?.close();
    this.socket?.close(1000, 'leaving');
  }

  handle(kind, cursor, data) {
    if (kind === WIRE.kind.resumed) {
      showJoined({ resumed: true });
      return;
    }
    if (kind === WIRE.kind.presence) {
      // Not in the log: no cursor to move.
      this.onMessage(kind, data);
      return;
    }
    if (kind === WIRE.kind.snapshot) {
      this.cursor = cursor || null;
      // A stream's opening snapshot says why it is one; a run's first entry does not.
      if (data.reason) showJoined({ reason: data.reason });
    } else if (cursor) {
      if (!cursorAfter(cursor, this.cursor)) return; // seen already
      this.cursor = cursor;
    }
    this.onMessage(kind, data);
  }

  url() {
    const path = WIRE.ssePath(this.topic);
    return this.cursor ? `${path}?last_event_id=${encodeURIComponent(this.cursor)}` : path;
  }

  openEventSource() {
    const source = new EventSource(this.url());
    this.source = source;
    source.onopen = () => { setBadge('live'); this.backoff = 500; };
    for (const kind of WIRE.sseKinds) {
      source.addEventListener(kind, (event) => this.handle(kind, event.lastEventId, JSON.parse(event.data)));
    }
    source.onerror = () => {
      if (this.closed) return;
      // The browser retries by itself (with Last-Event-ID) while CONNECTING; once CLOSED (the
      // server answered with an error), we retry, resuming after our cursor.
      setBadge(source.readyState === EventSource.CLOSED ? 'offline' : 'reconnecting');
      if (source.readyState === EventSource.CLOSED) this.later(() => this.openEventSource());
    };
  }

  openWebSocket() {
    const socket = new WebSocket(`${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/ws`);
    this.socket = socket;
    socket.onopen = () => {
      const request = { op: 'subscribe', topic: this.topic };
      if (this.cursor) request.cursor = this.cursor;
      socket.send(JSON.stringify(request));
      setBadge('live');
      this.backoff = 500;
    };
    socket.onmessage = (event) => {
      const frame = JSON.parse(event.data);
      if (frame.kind === WIRE.kind.error) {
        // The one request on this socket was refused (a game that does not exist yet, say):
        // close, and onclose tries again later, as EventSource does after a 404.
        console.warn('livescore:', frame.message);
        socket.close(1000, 'retrying');
        return;
      }
      if (frame.topic === this.topic && frame.data !== undefined) this.handle(frame.kind, frame.cursor, frame.data);
    };
    socket.onclose = () => {
      if (this.closed) return;
      setBadge('reconnecting');
      this.later(() => this.openWebSocket());
    };
  }

  // Full jitter: a delay drawn anywhere below a ceiling that doubles up to a cap. Without the
  // random part, every viewer of a replica that died comes back at the same instants, and the
  // replicas left take them all at once (a reconnect storm).
  later(reopen) {
    clearTimeout(this.retry);
    this.retry = setTimeout(() => { if (!this.closed) reopen(); }, Math.random() * this.backoff);
    this.backoff = Math.min(this.backoff * 2, 10000);
  }
}
