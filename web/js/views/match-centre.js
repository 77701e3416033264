// The match centre: one match, live: the scoreboard, timeline, statistics, shot map, xG,
// momentum, formations and line-ups; how many are watching; and a slider that shows the match
// as it stood at the end of any minute it has reached (`GET /games/{id}?at=<minute>`, from the
// server's fold), with a way back to live.

import { WIRE } from '../../wire.js';
import { html, render as show, trusted } from '../html.js';
import { Live } from '../live.js';
import { goal } from '../prefs.js';
import { applyUpdate } from '../reducer.js';
import { PLAYING, STATUS, clockText, interrupted, isLive, known, lostText, shortName, watchingText } from '../wording.js';
import { POSITIONS } from './positions.js';

export function matchCentre(view, id) {
  let state = null;
  let replay = null;
  let watching = null;
  // While scrubbing: the minute shown and the match as it stood then (null: live).
  let past = null;
  let pending = false;

  show(view, html`
    <section class="panel history" aria-label="The match at any minute" hidden>
      <label for="minute">Match at <output id="minute-shown" for="minute">live</output></label>
      <input type="range" id="minute" min="0" max="0" value="0" step="1">
      <button type="button" data-live hidden>Back to live</button>
    </section>
    <div data-body><p class="empty">Loading…</p></div>`);
  const body = view.querySelector('[data-body]');
  const history = view.querySelector('.history');
  const slider = view.querySelector('#minute');
  const shownMinute = view.querySelector('#minute-shown');
  const backToLive = view.querySelector('[data-live]');

  const render = () => {
    pending = false;
    if (!state) return;
    const shown = past?.state ?? state;
    show(body, page(shown, past ? null : replay));
    updateHistory();
    tick();
  };

  // The slider runs from kick-off to the minute the match has reached.
  const updateHistory = () => {
    const reached = Math.max(state.clock.minute, 0);
    history.hidden = reached === 0;
    if (document.activeElement !== slider) {
      slider.max = String(reached);
      if (!past) slider.value = String(reached);
    }
    shownMinute.textContent = past ? `${past.minute}'` : 'live';
    slider.setAttribute('aria-valuetext', past ? `minute ${past.minute}` : 'live');
    backToLive.hidden = !past;
    view.classList.toggle('in-the-past', !!past);
  };

  let asked = 0;
  const scrubTo = async (minute) => {
    if (minute >= state.clock.minute) return goLive();
    const ask = ++asked;
    const response = await fetch(`/games/${id}?at=${minute}`);
    if (!response.ok || ask !== asked) return;
    const answer = await response.json();
    past = { minute, state: answer.state };
    render();
  };
  const goLive = () => { asked++; past = null; render(); };
  let scrubbing = null;
  slider.addEventListener('input', () => {
    shownMinute.textContent = `${slider.value}'`;
    clearTimeout(scrubbing);
    scrubbing = setTimeout(() => scrubTo(Number(slider.value)), 120);
  });
  backToLive.addEventListener('click', goLive);

  const page = (s, replay) => {
    const { info, score } = s;
    const pens = s.shootout ? html`<div class="sub">Penalties ${s.shootout.score.home}-${s.shootout.score.away}</div>` : '';
    return html`
      <section class="match-head" aria-label="Scoreboard">
        <div class="team">${info.home.name}${scorers(s, 'home')}</div>
        <div><div class="big" id="score">${score.home} - ${score.away}</div>
          <div class="sub status${isLive(s.status) && !interrupted(replay, s.status) ? ' is-live' : ''}">${STATUS[s.status]} <span id="clock">${PLAYING.has(s.status) ? clockText(s.clock) : ''}</span></div>${pens}
          <div class="sub">${[info.competition ?? 'Competition unknown', info.season, info.date ?? 'date unknown'].filter(Boolean).join(' · ')}</div>
          ${replay && (replay.status !== 'running' || replay.stalled) ? html`<div class="sub replay-status">${interrupted(replay, s.status) || `Replay ${replay.status}`}</div>` : ''}
          ${lostText(replay) ? html`<div class="sub">${lostText(replay)}</div>` : ''}
          ${watching === null ? '' : html`<div class="sub watching" data-watching="${watching}">${watchingText(watching)}</div>`}</div>
        <div class="team">${info.away.name}${scorers(s, 'away')}</div>
      </section>
      <div class="grid2">
        <section class="panel"><h2>Timeline</h2>${timeline(s)}</section>
        <section class="panel"><h2>Statistics</h2>${stats(s)}</section>
      </div>
      <div class="grid2">
        <section class="panel shotmap"><h2>Shot map</h2>${shotMap(s)}</section>
        <section class="panel xg"><h2>Expected goals</h2>${xgTimeline(s)}</section>
      </div>
      <section class="panel momentum spaced"><h2>Momentum</h2>${momentum(s)}</section>
      <section class="panel formation spaced"><h2>Formations</h2>${formations(s)}</section>
      <section class="panel spaced"><h2>Starting line-ups</h2>${lineups(s)}</section>`;
  };

  // The scorers under each team's name: minute, and (pen) or (OG).
  const scorers = (s, side) => {
    const goals = s.incidents.filter((i) => i.type === 'goal' && i.side === side);
    if (!goals.length) return '';
    return html`<ul class="scorers" aria-label="${s.info[side].name} scorers">${goals.map((g) => {
      const mark = { penalty: ' (pen)', own_goal: ' (OG)' }[g.kind] ?? '';
      return html`<li>${known(s.info, g.scorer, 'unknown scorer')} ${clockText(g.clock)}${mark}</li>`;
    })}</ul>`;
  };

  // StatsBomb's pitch is 120 x 80 with every team attacking towards x = 120: the home team's
  // shots are drawn attacking right, the away team's turned round to attack left.
  const shotMap = (s) => {
    const shots = s.shots ?? [];
    const at = (shot, [x, y]) => shot.side === 'home' ? [x, y] : [120 - x, 80 - y];
    const dots = shots.filter((shot) => shot.location).map((shot) => {
      const [x, y] = at(shot, shot.location);
      const r = 0.8 + Math.sqrt(shot.xg) * 3.2;
      const scored = shot.outcome === 'Goal';
      const label = `${known(s.info, shot.player, 'unknown')} ${clockText(shot.clock)}: ${shot.outcome}, xG ${shot.xg.toFixed(2)}${shot.body_part ? `, ${shot.body_part}` : ''}`;
      return html`<circle class="shot ${shot.side}${scored ? ' goal' : ''}" cx="${x.toFixed(1)}" cy="${y.toFixed(1)}" r="${r.toFixed(2)}"><title>${label}</title></circle>`;
    });
    const line = trusted('fill="none" stroke="var(--line)" stroke-width="0.5"');
    const pitch = html`<rect x="0" y="0" width="120" height="80" ${line}/><line x1="60" y1="0" x2="60" y2="80" ${line}/>
      <circle cx="60" cy="40" r="10" ${line}/><rect x="0" y="18" width="18" height="44" ${line}/><rect x="102" y="18" width="18" height="44" ${line}/>
      <rect x="0" y="30" width="6" height="20" ${line}/><rect x="114" y="30" width="6" height="20" ${line}/>`;
    const tally = (side) => {
      const mine = shots.filter((shot) => shot.side === side);
      const xg = mine.reduce((sum, shot) => sum + shot.xg, 0);
      return `${s.info[side].name}: ${mine.length} shots, ${mine.filter((shot) => shot.outcome === 'Goal').length} goals, xG ${xg.toFixed(2)}`;
    };
    return html`<svg viewBox="-1 -1 122 82" role="img" aria-label="Shot map: ${tally('home')}; ${tally('away')}">${pitch}${dots}</svg>
      <div class="sub">${s.info.home.name} attack → · ← ${s.info.away.name} attack · size: xG · filled: goal</div>`;
  };

  // Cumulative xG per team over the match minutes, goals marked.
  const xgTimeline = (s) => {
    const shots = s.shots ?? [];
    if (!shots.length) return html`<p class="sub">No shots yet.</p>`;
    const width = 600, height = 160;
    let t = 0;
    const points = shots.map((shot) => { t = Math.max(t, shot.clock.minute + shot.clock.added); return { shot, t }; });
    const end = Math.max(90, t, s.clock.minute + s.clock.added);
    const total = { home: 0, away: 0 };
    const max = Math.max(1, ...['home', 'away'].map((side) => shots.filter((shot) => shot.side === side).reduce((a, shot) => a + shot.xg, 0)));
    const x = (minute) => (minute / end) * width;
    const y = (xg) => height - (xg / max) * (height - 10);
    const paths = { home: [`M0 ${height}`], away: [`M0 ${height}`] };
    const goals = [];
    for (const { shot, t: at } of points) {
      paths[shot.side].push(`H${x(at).toFixed(1)}`);
      total[shot.side] += shot.xg;
      paths[shot.side].push(`V${y(total[shot.side]).toFixed(1)}`);
      if (shot.outcome === 'Goal') goals.push(html`<circle class="xg-goal ${shot.side}" cx="${x(at).toFixed(1)}" cy="${y(total[shot.side]).toFixed(1)}" r="4"><title>${`${known(s.info, shot.player)} ${clockText(shot.clock)}`}</title></circle>`);
    }
    const now = x(end).toFixed(1);
    return html`<svg viewBox="0 0 ${width} ${height}" preserveAspectRatio="none" role="img"
      aria-label="Expected goals over time: ${s.info.home.name} ${total.home.toFixed(2)}, ${s.info.away.name} ${total.away.toFixed(2)}">
      <path d="${paths.home.join(' ')} H${now}" fill="none" stroke="var(--home)" stroke-width="2"/>
      <path d="${paths.away.join(' ')} H${now}" fill="none" stroke="var(--away)" stroke-width="2"/>${goals}</svg>
      <div class="sub">${s.info.home.name} ${total.home.toFixed(2)} · ${s.info.away.name} ${total.away.toFixed(2)} · dots: goals</div>`;
  };

  // The starting XIs on a pitch, from each Starting XI's positions; substitutions and cards
  // marked as they happen.
  const formations = (s) => {
    const marks = new Map();
    const mark = (player, text) => marks.set(player, (marks.get(player) ?? '') + text);
    for (const i of s.incidents) {
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
      return html`<g class="${classes}" data-player="${p.id}" transform="translate(${x} ${y.toFixed(1)})">
        <circle r="3" class="${home ? 'home' : 'away'}"/><text y="1" class="num">${p.jersey_number}</text>
        <text y="6" class="name">${shortName(s.info, p)}${badge ? ` ${badge}` : ''}</text><title>${`${known(s.info, p)}, ${p.position}`}</title></g>`;
    });
    const { home, away } = s.lineups;
    if (!home && !away) return html`<p class="sub">Not announced yet.</p>`;
    const label = (side) => `${s.info[side].name}${s.lineups[side] ? ` ${s.lineups[side].formation}` : ''}`;
    return html`<svg viewBox="0 0 100 64" role="img" aria-label="Formations: ${label('home')} (left), ${label('away')} (right)">
        <rect width="100" height="64" class="grass"/><line x1="50" y1="0" x2="50" y2="64" class="mark"/>
        <circle cx="50" cy="32" r="8" class="mark"/>${players(home, true)}${players(away, false)}</svg>
      <div class="sub">${label('home')} ← · → ${label('away')} · ↓ substituted · ▮ yellow · ■ sent off</div>`;
  };

  // Between two clock updates the clock ticks on its own, at the replay's speed: a clock update
  // comes with the first event of each match minute, so it shows that minute's first second.
  let clockFrom = null;
  const tick = () => {
    const element = document.getElementById('clock');
    if (!element || !state || past) return;
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

  const timeline = (s) => {
    if (!s.incidents.length) return html`<p class="sub">Nothing yet.</p>`;
    const icon = (i) => i.type === 'goal' ? ['goal', 'G']
      : i.type === 'card' ? [i.card, { yellow: 'Y', second_yellow: '2Y', red: 'R' }[i.card]] : ['sub', '⇅'];
    return html`<ol class="timeline" aria-label="Goals, cards and substitutions">${s.incidents.map((i) => {
      const [cls, letter] = icon(i);
      let what;
      if (i.type === 'goal') {
        const tag = { penalty: 'penalty', own_goal: 'own goal', free_kick: 'free kick' }[i.kind];
        what = html`${known(s.info, i.scorer, 'unknown scorer')}${tag ? html`<span class="tag">${tag}</span>` : ''}`;
      } else if (i.type === 'card') {
        what = html`${known(s.info, i.player)}<span class="tag">${{ yellow: 'yellow', second_yellow: 'second yellow', red: 'red' }[i.card]}</span>`;
      } else {
        what = html`↑ ${known(s.info, i.on)} <span class="sub">↓ ${known(s.info, i.off)}</span>`;
      }
      return html`<li class="${i.side} is-${i.type}" data-incident="${i.id}"><span class="minute">${clockText(i.clock)}</span>
        <span class="icon ${cls}" role="img" aria-label="${i.type === 'card' ? i.card.replace('_', ' ') + ' card' : i.type}">${letter}</span><span class="what">${what}</span></li>`;
    })}</ol>`;
  };

  const stats = (s) => {
    const { home, away } = s.stats;
    const rows = [['Possession %', 'possession'], ['Shots', 'shots'], ['On target', 'shots_on_target'], ['xG', 'xg'],
      ['Corners', 'corners'], ['Fouls', 'fouls'], ['Yellow cards', 'yellow_cards'], ['Red cards', 'red_cards'], ['Passes', 'passes']];
    return rows.map(([label, key]) => {
      const h = home[key], a = away[key];
      const value = (v) => key === 'xg' ? v.toFixed(2) : v;
      const total = h + a || 1;
      return html`<div class="stat"><div class="labels"><b>${value(h)}</b><span>${label}</span><b>${value(a)}</b></div>
        <div class="bars" role="img" aria-label="${label}: ${value(h)} to ${value(a)}"><span class="h" style="width:${(h / total) * 100}%"></span><span class="a" style="width:${(a / total) * 100}%"></span></div></div>`;
    });
  };

  const momentum = (s) => {
    const points = s.momentum;
    if (!points.length) return html`<p class="sub">No play yet.</p>`;
    const width = 600, height = 140, mid = height / 2;
    const max = Math.max(0.5, ...points.map((p) => Math.abs(p.value)));
    const step = width / Math.max(points.length, 1);
    const bars = points.map((p, i) => {
      const h = (Math.abs(p.value) / max) * (mid - 4);
      const y = p.value >= 0 ? mid - h : mid;
      return html`<rect x="${(i * step).toFixed(1)}" y="${y.toFixed(1)}" width="${Math.max(step - 1, 1).toFixed(1)}" height="${h.toFixed(1)}" fill="var(--${p.value >= 0 ? 'home' : 'away'})"><title>${clockText(p.clock)} ${p.value}</title></rect>`;
    });
    return html`<svg viewBox="0 0 ${width} ${height}" preserveAspectRatio="none" role="img"
      aria-label="Momentum by minute: ${s.info.home.name} above the line, ${s.info.away.name} below">
      <line x1="0" y1="${mid}" x2="${width}" y2="${mid}" stroke="var(--line)"/>${bars}</svg>
      <div class="sub">Above: ${s.info.home.name} · below: ${s.info.away.name}</div>`;
  };

  const lineups = (s) => {
    const side = (name, lineup) => lineup ? html`<div><h3>${name} <span class="tag">${lineup.formation}</span></h3><ol>${
      lineup.players.map((p) => html`<li><span class="num">${p.jersey_number}</span>${known(s.info, p)} <span class="sub hide-narrow">${p.position}</span></li>`)}</ol></div>`
      : html`<div><h3>${name}</h3><p class="sub">Not announced yet.</p></div>`;
    return html`<div class="lineups">${side(s.info.home.name, s.lineups.home)}${side(s.info.away.name, s.lineups.away)}</div>`;
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
        goal(`Goal! ${state.info.home.name} ${state.score.home}, ${state.info.away.name} ${state.score.away}`, id, data.republished);
      }
    } else if (kind === WIRE.kind.replay) {
      replay = data.replay;
    } else if (kind === WIRE.kind.presence) {
      watching = data.watching;
    }
    schedule();
  });
  live.start();
  return () => { clearInterval(ticking); clearTimeout(scrubbing); live.stop(); };
}
