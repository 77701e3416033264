// livescore web UI: a scoreboard, a match centre and an admin panel over the livescore API.
// No build step: plain modern JavaScript, served as it is by the API from web/.
'use strict';

const view = document.getElementById('view');
const badge = document.getElementById('badge');
const announcer = document.getElementById('announcer');
const transportSelect = document.getElementById('transport');

const esc = (text) => String(text ?? '').replace(/[&<>"']/g,
  (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' }[c]));

// ---------------------------------------------------------------- wording

const STATUS = {
  not_started: 'Not started', first_half: '1st half', half_time: 'HT', second_half: '2nd half',
  before_extra_time: 'End of 90', extra_time_first_half: 'ET 1st half', extra_time_half_time: 'ET HT',
  extra_time_second_half: 'ET 2nd half', before_shootout: 'End of ET', shootout: 'Pens', finished: 'FT',
};
const PLAYING = new Set(['first_half', 'second_half', 'extra_time_first_half', 'extra_time_second_half', 'shootout']);
const isLive = (status) => status !== 'not_started' && status !== 'finished';
// A replay that failed or was stopped before the end will not go on: never shown as live. One
// whose updates stopped coming (the projector marks it `stalled`) is not shown as live either,
// until they come again.
const INTERRUPTED = { failed: 'Replay failed', stopped: 'Replay stopped' };
const STALLED = 'Updates delayed';
const interrupted = (replay, status) => status !== 'finished' &&
  (INTERRUPTED[replay?.status] ?? (replay?.status === 'running' && replay.stalled ? STALLED : undefined));
const lostText = (replay) => replay?.lost_records ? `${replay.lost_records} event${replay.lost_records === 1 ? '' : 's'} missing from the log` : '';
const clockText = (clock) => clock && clock.minute ? `${clock.minute}${clock.added ? '+' + clock.added : ''}'` : '';
const statusText = (h) => PLAYING.has(h.status) && h.status !== 'shootout' ? clockText(h.clock) : STATUS[h.status] ?? h.status;

// The name a player is known by: the lineups' nickname ("Lionel Messi") where the match info
// has one, else the events' full name ("Lionel Andrés Messi Cuccittini"); `missing` when the
// player is not known yet (an own goal's scorer, before its "Against" half arrives).
const known = (info, player, missing = '') => player ? info.nicknames?.[player.id] ?? player.name : missing;
// On the formation's pitch: the last word of that ("Messi").
const shortName = (info, player) => known(info, player).split(' ').slice(-1)[0];

function incidentText(incident, info) {
  const team = incident.side === 'home' ? info.home.name : info.away.name;
  switch (incident.type) {
    case 'goal': {
      const kind = { penalty: ' (pen)', own_goal: ' (OG)', free_kick: ' (FK)' }[incident.kind] ?? '';
      return `Goal ${team}: ${known(info, incident.scorer, 'unknown scorer')}${kind}`;
    }
    case 'card':
      return `${{ yellow: 'Yellow card', second_yellow: 'Second yellow', red: 'Red card' }[incident.card]}: ${known(info, incident.player)}`;
    case 'substitution':
      return `Substitution ${team}: ${known(info, incident.on)} on, ${known(info, incident.off)} off`;
    default:
      return '';
  }
}

// Favourite games, pinned first on the scoreboard: kept in this browser (localStorage).
function favouriteGames() {
  try {
    const ids = JSON.parse(localStorage.getItem('favourites') ?? '[]');
    return Array.isArray(ids) ? ids.filter(Number.isInteger) : [];
  } catch {
    return [];
  }
}

function toggleFavourite(id) {
  const ids = new Set(favouriteGames());
  if (!ids.delete(id)) ids.add(id);
  localStorage.setItem('favourites', JSON.stringify([...ids]));
}

// Goal alerts through the Notifications API, once the user allowed them.
const goalAlertsOn = () => localStorage.getItem('goalAlerts') === 'on' && Notification.permission === 'granted';

async function toggleGoalAlerts() {
  if (goalAlertsOn()) {
    localStorage.setItem('goalAlerts', 'off');
    return;
  }
  const permission = await Notification.requestPermission();
  localStorage.setItem('goalAlerts', permission === 'granted' ? 'on' : 'off');
}

function notifyGoal(text, id) {
  if (!('Notification' in window) || !goalAlertsOn()) return;
  const notification = new Notification('livescore', { body: text, tag: `goal-${id}` });
  notification.onclick = () => { window.focus(); location.hash = `#/game/${id}`; };
}

function announce(text) {
  announcer.textContent = '';
  setTimeout(() => { announcer.textContent = text; }, 50);
}

// ---------------------------------------------------------------- the live connection

// Cursors are Redis stream ids "<ms>-<seq>": compared as pairs of numbers.
function cursorAfter(a, b) {
  if (!b) return true;
  const [am, as] = a.split('-').map(Number);
  const [bm, bs] = b.split('-').map(Number);
  return am > bm || (am === bm && as > bs);
}

function setBadge(state) {
  badge.className = `badge ${state}`;
  badge.textContent = { live: 'Live', reconnecting: 'Reconnecting', offline: 'Offline' }[state];
}

// Follows one topic ("games" or "game:<id>") over SSE or WebSocket, resuming after the last
// cursor it handled on every reconnect, and never handing the same entry over twice.
class Live {
  constructor(topic, onMessage) {
    this.topic = topic;
    this.onMessage = onMessage;
    this.cursor = null;
    this.closed = false;
    this.backoff = 500;
  }

  start() {
    this.transport = transportSelect.value;
    this.transport === 'ws' ? this.openWebSocket() : this.openEventSource();
  }

  stop() {
    this.closed = true;
    clearTimeout(this.retry);
    this.source?.close();
    this.socket?.close(1000, 'leaving');
  }

  handle(kind, cursor, data) {
    if (kind === WIRE.kind.snapshot) {
      this.cursor = cursor || null;
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

// ---------------------------------------------------------------- applying updates

// The client's side of the fold: the same as MatchState::apply_update in domain/src/update.rs.
function applyUpdate(state, update) {
  const h = update.headline;
  Object.assign(state, { status: h.status, period: h.period, clock: h.clock, score: h.score });
  if (h.shootout) state.shootout = { ...(state.shootout ?? { kicks: [] }), score: h.shootout };
  switch (update.type) {
    case 'lineup': state.lineups[update.side] = update.lineup; break;
    case 'formation': if (state.lineups[update.side]) state.lineups[update.side].formation = update.formation; break;
    case 'incident': state.incidents.push(update.incident); break;
    case 'incident_amended': {
      const at = state.incidents.findIndex((i) => i.id === update.incident.id);
      if (at >= 0) state.incidents[at] = update.incident;
      break;
    }
    case 'stats': {
      state.stats = update.stats;
      const point = update.momentum;
      if (point) {
        const last = state.momentum[state.momentum.length - 1];
        if (last && last.period === point.period && last.clock.minute === point.clock.minute && last.clock.added === point.clock.added) {
          state.momentum[state.momentum.length - 1] = point;
        } else {
          state.momentum.push(point);
        }
      }
      break;
    }
    case 'shootout_kick': (state.shootout ??= { score: { home: 0, away: 0 }, kicks: [] }).kicks.push(update.kick); break;
    case 'shot': (state.shots ??= []).push(update.shot); break;
    default: break;
  }
}

// ---------------------------------------------------------------- the scoreboard

function scoreboard() {
  const games = new Map();
  let filter = sessionStorage.getItem('filter') || 'all';
  let competition = sessionStorage.getItem('competition') || '';
  let flash = new Set();
  const competitionOf = (g) => g.info.competition ?? 'Competition unknown';

  const render = () => {
    const favourites = new Set(favouriteGames());
    const shown = [...games.values()]
      .filter((g) => filter === 'all' || (filter === 'live'
        ? isLive(g.headline.status) && !interrupted(g.replay, g.headline.status)
        : g.headline.status === 'finished'))
      .filter((g) => !competition || competitionOf(g) === competition)
      // Favourites first, then the most recently changed.
      .sort((a, b) => (favourites.has(b.match_id) - favourites.has(a.match_id)) || b.updated_at_ms - a.updated_at_ms);
    const button = (name, label) => `<button data-filter="${name}" aria-pressed="${filter === name}">${label}</button>`;
    const competitions = [...new Set([...games.values()].map(competitionOf))].sort();
    const alerts = 'Notification' in window
      ? `<button data-alerts aria-pressed="${goalAlertsOn()}">${goalAlertsOn() ? 'Goal alerts on' : 'Goal alerts'}</button>` : '';
    view.innerHTML = `
      <div class="toolbar"><h1>Scores</h1>
        <select data-competition aria-label="Competition"><option value="">All competitions</option>${competitions
          .map((c) => `<option${c === competition ? ' selected' : ''}>${esc(c)}</option>`).join('')}</select>
        <div class="filters" role="group" aria-label="Show">${button('live', 'Live')}${button('finished', 'Finished')}${button('all', 'All')}</div>
        ${alerts}
      </div>
      ${shown.length ? `<div class="cards">${shown.map((g) => card(g, favourites.has(g.match_id))).join('')}</div>`
        : `<p class="empty">No ${filter === 'all' ? '' : filter + ' '}games yet. Start a replay in the <a href="#/admin">admin panel</a>.</p>`}`;
    view.querySelectorAll('[data-filter]').forEach((b) => b.addEventListener('click', () => {
      filter = b.dataset.filter;
      sessionStorage.setItem('filter', filter);
      render();
    }));
    view.querySelector('[data-competition]').addEventListener('change', (event) => {
      competition = event.target.value;
      sessionStorage.setItem('competition', competition);
      render();
    });
    view.querySelectorAll('[data-fav]').forEach((b) => b.addEventListener('click', () => {
      toggleFavourite(Number(b.dataset.fav));
      render();
    }));
    view.querySelector('[data-alerts]')?.addEventListener('click', async () => {
      await toggleGoalAlerts();
      render();
    });
    flash = new Set();
  };

  const card = (g, favourite) => {
    const h = g.headline;
    const pens = h.shootout ? ` <span class="tag">pens ${h.shootout.home}-${h.shootout.away}</span>` : '';
    const stopped = interrupted(g.replay, h.status);
    const reds = (side) => '<span class="red-card" role="img" aria-label="red card"></span>'.repeat(h.red_cards?.[side] ?? 0);
    return `<div class="card-wrap"><a class="card${flash.has(g.match_id) ? ' flash' : ''}" href="#/game/${g.match_id}" data-game="${g.match_id}"
        aria-label="${esc(g.info.home.name)} ${h.score.home}, ${esc(g.info.away.name)} ${h.score.away}, ${esc(stopped || STATUS[h.status])}">
      <div class="meta"><span>${esc(g.info.competition ?? 'Competition unknown')}</span>
        <span class="status${isLive(h.status) && !stopped ? ' is-live' : ''}">${esc(stopped ? `${stopped} · ${statusText(h)}` : statusText(h))}</span></div>
      <div class="row"><span>${esc(g.info.home.name)}${reds('home')}</span><span class="score">${h.score.home}</span></div>
      <div class="row"><span>${esc(g.info.away.name)}${reds('away')}</span><span class="score">${h.score.away}${pens}</span></div>
      <div class="latest">${g.latest ? esc(`${clockText(g.latest.clock)} ${incidentText(g.latest, g.info)}`) : ''}</div>
    </a><button class="fav" data-fav="${g.match_id}" aria-pressed="${favourite}"
      aria-label="${favourite ? 'Unpin' : 'Pin'} ${esc(g.info.home.name)} v ${esc(g.info.away.name)}">${favourite ? '★' : '☆'}</button></div>`;
  };

  const live = new Live(WIRE.feedTopic, (kind, data) => {
    if (kind === WIRE.kind.snapshot) {
      games.clear();
      for (const g of data.games) games.set(g.match_id, g);
    } else if (kind === WIRE.kind.game) {
      const before = games.get(data.match_id);
      if (before && (before.headline.score.home !== data.headline.score.home || before.headline.score.away !== data.headline.score.away)) {
        flash.add(data.match_id);
        const text = `Goal! ${data.info.home.name} ${data.headline.score.home}, ${data.info.away.name} ${data.headline.score.away}`;
        announce(text);
        notifyGoal(text, data.match_id);
      }
      games.set(data.match_id, data);
    }
    render();
  });
  render();
  live.start();
  return () => live.stop();
}

// ---------------------------------------------------------------- the match centre

function matchCentre(id) {
  let state = null;
  let replay = null;
  let pending = false;

  const render = () => {
    pending = false;
    if (!state) { view.innerHTML = '<p class="empty">Loading…</p>'; return; }
    const { info, score } = state;
    const pens = state.shootout ? `<div class="sub">Penalties ${state.shootout.score.home}-${state.shootout.score.away}</div>` : '';
    view.innerHTML = `
      <section class="match-head" aria-label="Scoreboard">
        <div class="team">${esc(info.home.name)}${scorers('home')}</div>
        <div><div class="big" id="score">${score.home} - ${score.away}</div>
          <div class="sub status${isLive(state.status) && !interrupted(replay, state.status) ? ' is-live' : ''}">${esc(STATUS[state.status])} <span id="clock">${PLAYING.has(state.status) ? esc(clockText(state.clock)) : ''}</span></div>${pens}
          <div class="sub">${esc([info.competition ?? 'Competition unknown', info.season, info.date ?? 'date unknown'].filter(Boolean).join(' · '))}</div>
          ${replay && (replay.status !== 'running' || replay.stalled) ? `<div class="sub replay-status">${esc(interrupted(replay, state.status) || `Replay ${replay.status}`)}</div>` : ''}
          ${lostText(replay) ? `<div class="sub">${esc(lostText(replay))}</div>` : ''}</div>
        <div class="team">${esc(info.away.name)}${scorers('away')}</div>
      </section>
      <div class="grid2">
        <section class="panel"><h2>Timeline</h2>${timeline()}</section>
        <section class="panel"><h2>Statistics</h2>${stats()}</section>
      </div>
      <div class="grid2">
        <section class="panel shotmap"><h2>Shot map</h2>${shotMap()}</section>
        <section class="panel xg"><h2>Expected goals</h2>${xgTimeline()}</section>
      </div>
      <section class="panel momentum" style="margin-top:1rem"><h2>Momentum</h2>${momentum()}</section>
      <section class="panel formation" style="margin-top:1rem"><h2>Formations</h2>${formations()}</section>
      <section class="panel" style="margin-top:1rem"><h2>Starting line-ups</h2>${lineups()}</section>`;
    tick();
  };

  // The scorers under each team's name: minute, and (pen) or (OG).
  const scorers = (side) => {
    const goals = state.incidents.filter((i) => i.type === 'goal' && i.side === side);
    if (!goals.length) return '';
    return `<ul class="scorers" aria-label="${esc(state.info[side].name)} scorers">${goals.map((g) => {
      const mark = { penalty: ' (pen)', own_goal: ' (OG)' }[g.kind] ?? '';
      return `<li>${esc(known(state.info, g.scorer, 'unknown scorer'))} ${esc(clockText(g.clock))}${mark}</li>`;
    }).join('')}</ul>`;
  };

  // StatsBomb's pitch is 120 x 80 with every team attacking towards x = 120: the home team's
  // shots are drawn attacking right, the away team's turned round to attack left.
  const shotMap = () => {
    const shots = state.shots ?? [];
    const at = (shot, [x, y]) => shot.side === 'home' ? [x, y] : [120 - x, 80 - y];
    const dots = shots.filter((s) => s.location).map((s) => {
      const [x, y] = at(s, s.location);
      const r = 0.8 + Math.sqrt(s.xg) * 3.2;
      const goal = s.outcome === 'Goal';
      const label = `${known(state.info, s.player, 'unknown')} ${clockText(s.clock)}: ${s.outcome}, xG ${s.xg.toFixed(2)}${s.body_part ? `, ${s.body_part}` : ''}`;
      return `<circle class="shot ${s.side}${goal ? ' goal' : ''}" cx="${x.toFixed(1)}" cy="${y.toFixed(1)}" r="${r.toFixed(2)}"><title>${esc(label)}</title></circle>`;
    }).join('');
    const line = 'fill="none" stroke="var(--line)" stroke-width="0.5"';
    const pitch = `<rect x="0" y="0" width="120" height="80" ${line}/><line x1="60" y1="0" x2="60" y2="80" ${line}/>
      <circle cx="60" cy="40" r="10" ${line}/><rect x="0" y="18" width="18" height="44" ${line}/><rect x="102" y="18" width="18" height="44" ${line}/>
      <rect x="0" y="30" width="6" height="20" ${line}/><rect x="114" y="30" width="6" height="20" ${line}/>`;
    const tally = (side) => {
      const mine = shots.filter((s) => s.side === side);
      const xg = mine.reduce((sum, s) => sum + s.xg, 0);
      return `${esc(state.info[side].name)}: ${mine.length} shots, ${mine.filter((s) => s.outcome === 'Goal').length} goals, xG ${xg.toFixed(2)}`;
    };
    return `<svg viewBox="-1 -1 122 82" role="img" aria-label="Shot map: ${esc(tally('home'))}; ${esc(tally('away'))}">${pitch}${dots}</svg>
      <div class="sub">${esc(state.info.home.name)} attack → · ← ${esc(state.info.away.name)} attack · size: xG · filled: goal</div>`;
  };

  // Cumulative xG per team over the match minutes, goals marked.
  const xgTimeline = () => {
    const shots = state.shots ?? [];
    if (!shots.length) return '<p class="sub">No shots yet.</p>';
    const width = 600, height = 160;
    let t = 0;
    const points = shots.map((s) => { t = Math.max(t, s.clock.minute + s.clock.added); return { s, t }; });
    const end = Math.max(90, t, state.clock.minute + state.clock.added);
    const total = { home: 0, away: 0 };
    const max = Math.max(1, ...['home', 'away'].map((side) => shots.filter((s) => s.side === side).reduce((a, s) => a + s.xg, 0)));
    const x = (minute) => (minute / end) * width;
    const y = (xg) => height - (xg / max) * (height - 10);
    const paths = { home: [`M0 ${height}`], away: [`M0 ${height}`] };
    const goals = [];
    for (const { s, t: at } of points) {
      paths[s.side].push(`H${x(at).toFixed(1)}`);
      total[s.side] += s.xg;
      paths[s.side].push(`V${y(total[s.side]).toFixed(1)}`);
      if (s.outcome === 'Goal') goals.push(`<circle class="xg-goal ${s.side}" cx="${x(at).toFixed(1)}" cy="${y(total[s.side]).toFixed(1)}" r="4"><title>${esc(`${known(state.info, s.player)} ${clockText(s.clock)}`)}</title></circle>`);
    }
    const now = x(end).toFixed(1);
    return `<svg viewBox="0 0 ${width} ${height}" preserveAspectRatio="none" role="img"
      aria-label="Expected goals over time: ${esc(state.info.home.name)} ${total.home.toFixed(2)}, ${esc(state.info.away.name)} ${total.away.toFixed(2)}">
      <path d="${paths.home.join(' ')} H${now}" fill="none" stroke="var(--home)" stroke-width="2"/>
      <path d="${paths.away.join(' ')} H${now}" fill="none" stroke="var(--away)" stroke-width="2"/>${goals.join('')}</svg>
      <div class="sub">${esc(state.info.home.name)} ${total.home.toFixed(2)} · ${esc(state.info.away.name)} ${total.away.toFixed(2)} · dots: goals</div>`;
  };

  // The starting XIs on a pitch, from each Starting XI's positions; substitutions and cards
  // marked as they happen.
  const formations = () => {
    const marks = new Map();
    const mark = (id, text) => marks.set(id, (marks.get(id) ?? '') + text);
    for (const i of state.incidents) {
      if (i.type === 'substitution') mark(i.off.id, '↓');
      if (i.type === 'card') mark(i.player.id, { yellow: '▮', second_yellow: '▮▮', red: '■' }[i.card]);
    }
    const players = (lineup, home) => (lineup?.players ?? []).map((p) => {
      const [across, depth] = POSITIONS[p.position] ?? [50, 25];
      // Each team in its own half, a little short of halfway so the forwards do not meet.
      const x = home ? depth * 0.9 : 100 - depth * 0.9;
      const y = (home ? across : 100 - across) * 0.64;
      const badge = marks.get(p.id) ?? '';
      const classes = `player${/■|▮▮/.test(badge) ? ' sent-off' : ''}${badge.includes('↓') ? ' off' : ''}`;
      return `<g class="${classes}" data-player="${p.id}" transform="translate(${x} ${y.toFixed(1)})">
        <circle r="3" class="${home ? 'home' : 'away'}"/><text y="1" class="num">${p.jersey_number}</text>
        <text y="6" class="name">${esc(shortName(state.info, p))}${badge ? ` ${badge}` : ''}</text><title>${esc(`${known(state.info, p)}, ${p.position}`)}</title></g>`;
    }).join('');
    const { home, away } = state.lineups;
    if (!home && !away) return '<p class="sub">Not announced yet.</p>';
    const label = (side) => `${state.info[side].name}${state.lineups[side] ? ` ${state.lineups[side].formation}` : ''}`;
    return `<svg viewBox="0 0 100 64" role="img" aria-label="Formations: ${esc(label('home'))} (left), ${esc(label('away'))} (right)">
        <rect width="100" height="64" class="grass"/><line x1="50" y1="0" x2="50" y2="64" class="mark"/>
        <circle cx="50" cy="32" r="8" class="mark"/>${players(home, true)}${players(away, false)}</svg>
      <div class="sub">${esc(label('home'))} ← · → ${esc(label('away'))} · ↓ substituted · ▮ yellow · ■ sent off</div>`;
  };

  // Between two clock updates the clock ticks on its own, at the replay's speed: a clock update
  // comes with the first event of each match minute, so it shows that minute's first second.
  let clockFrom = null;
  const tick = () => {
    const element = document.getElementById('clock');
    if (!element || !state) return;
    const speed = typeof replay?.speed === 'number' ? replay.speed : null;
    if (!PLAYING.has(state.status) || state.status === 'shootout' || replay?.status !== 'running' || !speed || !clockFrom) {
      element.textContent = PLAYING.has(state.status) ? clockText(state.clock) : '';
      return;
    }
    const seconds = Math.min(59, Math.floor(((Date.now() - clockFrom.at) / 1000) * speed));
    const { minute, added } = state.clock;
    const shown = added ? `${minute}+${added - 1}` : `${minute - 1}`;
    element.textContent = `${shown}:${String(seconds).padStart(2, '0')}`;
  };
  const ticking = setInterval(tick, 250);

  const timeline = () => {
    if (!state.incidents.length) return '<p class="sub">Nothing yet.</p>';
    const icon = (i) => i.type === 'goal' ? ['goal', 'G']
      : i.type === 'card' ? [i.card, { yellow: 'Y', second_yellow: '2Y', red: 'R' }[i.card]] : ['sub', '⇅'];
    return `<ol class="timeline" aria-label="Goals, cards and substitutions">${state.incidents.map((i) => {
      const [cls, letter] = icon(i);
      let what;
      if (i.type === 'goal') {
        const tag = { penalty: 'penalty', own_goal: 'own goal', free_kick: 'free kick' }[i.kind];
        what = `${esc(known(state.info, i.scorer, 'unknown scorer'))}${tag ? `<span class="tag">${tag}</span>` : ''}`;
      } else if (i.type === 'card') {
        what = `${esc(known(state.info, i.player))}<span class="tag">${{ yellow: 'yellow', second_yellow: 'second yellow', red: 'red' }[i.card]}</span>`;
      } else {
        what = `↑ ${esc(known(state.info, i.on))} <span class="sub">↓ ${esc(known(state.info, i.off))}</span>`;
      }
      return `<li class="${i.side} is-${i.type}" data-incident="${esc(i.id)}"><span class="minute">${clockText(i.clock)}</span>
        <span class="icon ${cls}" aria-label="${esc(i.type === 'card' ? i.card.replace('_', ' ') + ' card' : i.type)}">${letter}</span><span class="what">${what}</span></li>`;
    }).join('')}</ol>`;
  };

  const stats = () => {
    const { home, away } = state.stats;
    const rows = [['Possession %', 'possession'], ['Shots', 'shots'], ['On target', 'shots_on_target'], ['xG', 'xg'],
      ['Corners', 'corners'], ['Fouls', 'fouls'], ['Yellow cards', 'yellow_cards'], ['Red cards', 'red_cards'], ['Passes', 'passes']];
    return rows.map(([label, key]) => {
      const h = home[key], a = away[key];
      const show = (v) => key === 'xg' ? v.toFixed(2) : v;
      const total = h + a || 1;
      return `<div class="stat"><div class="labels"><b>${show(h)}</b><span>${label}</span><b>${show(a)}</b></div>
        <div class="bars" role="img" aria-label="${label}: ${show(h)} to ${show(a)}"><span class="h" style="width:${(h / total) * 100}%"></span><span class="a" style="width:${(a / total) * 100}%"></span></div></div>`;
    }).join('');
  };

  const momentum = () => {
    const points = state.momentum;
    if (!points.length) return '<p class="sub">No play yet.</p>';
    const width = 600, height = 140, mid = height / 2;
    const max = Math.max(0.5, ...points.map((p) => Math.abs(p.value)));
    const step = width / Math.max(points.length, 1);
    const bars = points.map((p, i) => {
      const h = (Math.abs(p.value) / max) * (mid - 4);
      const y = p.value >= 0 ? mid - h : mid;
      return `<rect x="${(i * step).toFixed(1)}" y="${y.toFixed(1)}" width="${Math.max(step - 1, 1).toFixed(1)}" height="${h.toFixed(1)}" fill="var(--${p.value >= 0 ? 'home' : 'away'})"><title>${clockText(p.clock)} ${p.value}</title></rect>`;
    }).join('');
    return `<svg viewBox="0 0 ${width} ${height}" preserveAspectRatio="none" role="img"
      aria-label="Momentum by minute: ${esc(state.info.home.name)} above the line, ${esc(state.info.away.name)} below">
      <line x1="0" y1="${mid}" x2="${width}" y2="${mid}" stroke="var(--line)"/>${bars}</svg>
      <div class="sub">Above: ${esc(state.info.home.name)} · below: ${esc(state.info.away.name)}</div>`;
  };

  const lineups = () => {
    const side = (name, lineup) => lineup ? `<div><h3>${esc(name)} <span class="tag">${esc(lineup.formation)}</span></h3><ol>${
      lineup.players.map((p) => `<li><span class="num">${p.jersey_number}</span>${esc(known(state.info, p))} <span class="sub hide-narrow">${esc(p.position)}</span></li>`).join('')}</ol></div>`
      : `<div><h3>${esc(name)}</h3><p class="sub">Not announced yet.</p></div>`;
    return `<div class="lineups">${side(state.info.home.name, state.lineups.home)}${side(state.info.away.name, state.lineups.away)}</div>`;
  };

  const schedule = () => { if (!pending) { pending = true; requestAnimationFrame(render); } };

  const live = new Live(WIRE.matchTopic(id), (kind, data) => {
    if (kind === WIRE.kind.snapshot) {
      state = data.state;
      replay = data.replay;
    } else if (kind === WIRE.kind.update && state) {
      const before = `${state.score.home}-${state.score.away}`;
      const clockBefore = `${state.clock.minute}+${state.clock.added}`;
      applyUpdate(state, data.update);
      if (`${state.clock.minute}+${state.clock.added}` !== clockBefore) clockFrom = { at: Date.now() };
      if (`${state.score.home}-${state.score.away}` !== before) {
        const text = `Goal! ${state.info.home.name} ${state.score.home}, ${state.info.away.name} ${state.score.away}`;
        announce(text);
        notifyGoal(text, id);
      }
    } else if (kind === WIRE.kind.replay) {
      replay = data.replay;
    }
    schedule();
  });
  render();
  live.start();
  return () => { clearInterval(ticking); live.stop(); };
}

// Where each StatsBomb position stands on a team's half of the pitch: [across, depth], both in
// percent (across from the team's left touchline; depth from its own goal line to halfway x 2).
const POSITIONS = {
  Goalkeeper: [50, 5],
  'Right Back': [85, 22], 'Right Center Back': [65, 18], 'Center Back': [50, 18], 'Left Center Back': [35, 18], 'Left Back': [15, 22],
  'Right Wing Back': [88, 32], 'Left Wing Back': [12, 32],
  'Right Defensive Midfield': [65, 30], 'Center Defensive Midfield': [50, 30], 'Left Defensive Midfield': [35, 30],
  'Right Midfield': [85, 38], 'Right Center Midfield': [65, 36], 'Center Midfield': [50, 36], 'Left Center Midfield': [35, 36], 'Left Midfield': [15, 38],
  'Right Wing': [85, 44], 'Right Attacking Midfield': [65, 42], 'Center Attacking Midfield': [50, 42], 'Left Attacking Midfield': [35, 42], 'Left Wing': [15, 44],
  // StatsBomb's docs call position 23 "Striker"; its event files say "Center Forward".
  'Right Center Forward': [62, 47], 'Center Forward': [50, 47], Striker: [50, 47], 'Left Center Forward': [38, 47],
  'Secondary Striker': [50, 44],
};

// ---------------------------------------------------------------- the admin panel

function adminPanel() {
  let error = '';
  let timer = null;
  const token = () => sessionStorage.getItem('adminToken');

  async function call(method, path, body) {
    const response = await fetch(path, {
      method,
      headers: { Authorization: `Bearer ${token()}`, ...(body ? { 'Content-Type': 'application/json' } : {}) },
      body: body ? JSON.stringify(body) : undefined,
    });
    const answer = await response.json().catch(() => ({}));
    if (response.status === 401) sessionStorage.removeItem('adminToken');
    if (!response.ok) throw new Error(answer.error || `${response.status} ${response.statusText}`);
    return answer;
  }

  const speedChoice = (name) => `<select name="${name}" aria-label="Speed">
      ${[['1', '1× (real time)'], ['60', '60×'], ['600', '600×'], ['3000', '3000×'], ['max', 'max']]
        .map(([v, label]) => `<option value="${v}"${v === '600' ? ' selected' : ''}>${label}</option>`).join('')}</select>`;

  async function render() {
    if (!token()) {
      view.innerHTML = `<div class="toolbar"><h1>Admin</h1></div>
        <form class="panel" id="login"><label>Admin token (printed at start-up by <code>livescore up</code> or <code>scripts/cluster</code>)
          <input type="password" name="token" required autocomplete="current-password"></label>
          <button class="primary">Continue</button>
          ${error ? `<p class="error" role="alert">${esc(error)}</p>` : ''}</form>`;
      view.querySelector('#login').addEventListener('submit', (event) => {
        event.preventDefault();
        sessionStorage.setItem('adminToken', new FormData(event.target).get('token').trim());
        error = '';
        render();
      });
      return;
    }
    let catalog = [], replays = [];
    try {
      [catalog, replays] = await Promise.all([fetch('/catalog').then((r) => r.json()), call('GET', '/replays')]);
    } catch (e) {
      error = e.message;
      if (!token()) return render();
    }
    const byGame = new Map(replays.map((r) => [r.match_id, r]));
    view.innerHTML = `
      <div class="toolbar"><h1>Admin</h1><button id="logout">Forget token</button></div>
      ${error ? `<p class="error" role="alert">${esc(error)}</p>` : ''}
      <section class="panel"><h2>Replays</h2>${replays.length ? `<table><thead><tr><th>Game</th><th>Status</th>
        <th class="hide-narrow">Progress</th><th>Clock</th><th>Speed</th><th></th></tr></thead><tbody>${replays.map((r) => `
        <tr data-replay="${r.match_id}"><td>${esc(r.home)} – ${esc(r.away)}</td><td class="replay-status">${esc(r.status)}${r.error ? `<div class="error">${esc(r.error)}</div>` : ''}</td>
          <td class="hide-narrow"><progress class="progress" max="${r.events_total}" value="${r.events_sent}"></progress></td>
          <td>${esc(clockText(r.clock))}</td><td>${esc(r.speed)}</td>
          <td class="actions">${['running', 'paused'].includes(r.status) ? `
            ${r.status === 'running' ? `<button data-act="pause">Pause</button>` : `<button data-act="resume">Resume</button>`}
            ${speedChoice('speed')}<button data-act="speed">Set speed</button><button data-act="stop">Stop</button>` : ''}</td></tr>`).join('')}
        </tbody></table>` : '<p class="sub">No replay yet: start one below.</p>'}</section>
      <section class="panel" style="margin-top:1rem"><h2>Replayable games</h2><table><thead><tr><th class="hide-narrow">Competition</th><th class="hide-narrow">Date</th>
        <th>Game</th><th></th></tr></thead><tbody>${catalog.map((g) => `
        <tr data-catalog="${g.id}"><td class="hide-narrow">${esc(g.competition ?? 'unknown')} ${esc(g.season)}</td><td class="hide-narrow">${esc(g.date ?? 'unknown')}</td>
          <td>${esc(g.home.name)} – ${esc(g.away.name)}</td>
          <td class="actions">${speedChoice('speed')}<button class="primary" data-start="${g.id}">${byGame.get(g.id)?.status === 'running' ? 'Restart' : 'Start'}</button></td></tr>`).join('')}
      </tbody></table></section>`;
    view.querySelector('#logout').addEventListener('click', () => { sessionStorage.removeItem('adminToken'); render(); });
    view.querySelectorAll('[data-start]').forEach((button) => button.addEventListener('click', () => act(async () => {
      const speed = button.closest('tr').querySelector('select').value;
      await call('POST', `/games/${button.dataset.start}`, { speed: speed === 'max' ? 'max' : Number(speed) });
    })));
    view.querySelectorAll('[data-act]').forEach((button) => button.addEventListener('click', () => act(async () => {
      const id = button.closest('tr').dataset.replay;
      const what = button.dataset.act;
      if (what === 'speed') {
        const speed = button.closest('tr').querySelector('select').value;
        await call('PUT', `/replays/${id}/speed`, { speed: speed === 'max' ? 'max' : Number(speed) });
      } else {
        await call('POST', `/replays/${id}/${what}`);
      }
    })));
  }

  async function act(action) {
    try { await action(); error = ''; } catch (e) { error = e.message; }
    render();
  }

  render();
  // Replays move on their own: refresh while the panel is open (not while a select is open).
  timer = setInterval(() => {
    const focused = document.activeElement;
    const choosing = view.contains(focused) && ['SELECT', 'INPUT'].includes(focused.tagName);
    if (token() && !choosing) render();
  }, 1000);
  setBadge('live');
  return () => clearInterval(timer);
}

// ---------------------------------------------------------------- routing

let leave = null;
function route() {
  leave?.();
  const hash = location.hash || '#/';
  const game = hash.match(/^#\/game\/(\d+)$/);
  document.querySelectorAll('[data-nav]').forEach((a) => a.classList.toggle('active',
    (a.dataset.nav === 'admin') === hash.startsWith('#/admin')));
  leave = game ? matchCentre(game[1]) : hash.startsWith('#/admin') ? adminPanel() : scoreboard();
}

transportSelect.value = localStorage.getItem('transport') || 'sse';
transportSelect.addEventListener('change', () => {
  localStorage.setItem('transport', transportSelect.value);
  route();
});
window.addEventListener('hashchange', route);
route();
