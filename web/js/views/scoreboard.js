// The scoreboard: every game as a card, live, with filters, pinned favourites, goal alerts and
// how many are watching each game and the site.

import { WIRE } from '../../wire.js';
import { html, render as show, trusted } from '../html.js';
import { Live } from '../live.js';
import { favouriteGames, goal, goalAlertsOn, toggleFavourite, toggleGoalAlerts } from '../prefs.js';
import { clockText, incidentText, interrupted, isLive, statusText, watchingText } from '../wording.js';

export function scoreboard(view) {
  const games = new Map();
  // Who is watching: the site, and each game (from `presence` messages).
  let presence = { site: null, games: {} };
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
    const button = (name, label) => html`<button data-filter="${name}" aria-pressed="${filter === name}">${label}</button>`;
    const competitions = [...new Set([...games.values()].map(competitionOf))].sort();
    const alerts = 'Notification' in window
      ? html`<button data-alerts aria-pressed="${goalAlertsOn()}">${goalAlertsOn() ? 'Goal alerts on' : 'Goal alerts'}</button>` : '';
    show(view, html`
      <div class="toolbar"><h1>Scores</h1>
        ${presence.site === null ? '' : html`<span class="watching site" data-site-watching="${presence.site}">${watchingText(presence.site)}</span>`}
        <select data-competition aria-label="Competition"><option value="">All competitions</option>${competitions
          .map((c) => html`<option${trusted(c === competition ? ' selected' : '')}>${c}</option>`)}</select>
        <div class="filters" role="group" aria-label="Show">${button('live', 'Live')}${button('finished', 'Finished')}${button('all', 'All')}</div>
        ${alerts}
      </div>
      ${shown.length ? html`<div class="cards">${shown.map((g) => card(g, favourites.has(g.match_id)))}</div>`
        : html`<p class="empty">No ${filter === 'all' ? '' : filter + ' '}games yet. Start a replay in the <a href="#/admin">admin panel</a>.</p>`}`);
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
    const pens = h.shootout ? html` <span class="tag">pens ${h.shootout.home}-${h.shootout.away}</span>` : '';
    const stopped = interrupted(g.replay, h.status);
    const reds = (side) => Array.from({ length: h.red_cards?.[side] ?? 0 },
      () => html`<span class="red-card" role="img" aria-label="red card"></span>`);
    const watching = presence.games[g.match_id];
    return html`<div class="card-wrap"><a class="card${flash.has(g.match_id) ? ' flash' : ''}" href="#/game/${g.match_id}" data-game="${g.match_id}">
      <div class="meta"><span>${competitionOf(g)}</span>
        <span class="status${isLive(h.status) && !stopped ? ' is-live' : ''}">${stopped ? `${stopped} · ${statusText(h)}` : statusText(h)}</span></div>
      <div class="row"><span>${g.info.home.name}${reds('home')}</span><span class="score">${h.score.home}</span></div>
      <div class="row"><span>${g.info.away.name}${reds('away')}</span><span class="score">${h.score.away}${pens}</span></div>
      <div class="latest">${g.latest ? `${clockText(g.latest.clock)} ${incidentText(g.latest, g.info)}` : ''}</div>
      ${watching ? html`<div class="watching" data-watching="${watching}">${watchingText(watching)}</div>` : ''}
    </a><button class="fav" data-fav="${g.match_id}" aria-pressed="${favourite}"
      aria-label="${favourite ? 'Unpin' : 'Pin'} ${g.info.home.name} v ${g.info.away.name}">${favourite ? '★' : '☆'}</button></div>`;
  };

  const live = new Live(WIRE.feedTopic, (kind, data) => {
    if (kind === WIRE.kind.snapshot) {
      games.clear();
      for (const g of data.games) games.set(g.match_id, g);
    } else if (kind === WIRE.kind.game) {
      const before = games.get(data.match_id);
      if (before && (before.headline.score.home !== data.headline.score.home || before.headline.score.away !== data.headline.score.away)) {
        if (!data.republished) flash.add(data.match_id);
        goal(`Goal! ${data.info.home.name} ${data.headline.score.home}, ${data.info.away.name} ${data.headline.score.away}`,
          data.match_id, data.republished);
      }
      games.set(data.match_id, data);
    } else if (kind === WIRE.kind.presence) {
      // The first names every watched game; later ones only the games whose count changed.
      presence = { site: data.site, games: { ...presence.games, ...data.games } };
    }
    render();
  });
  render();
  live.start();
  return () => live.stop();
}
