// The admin panel: the admin token (kept for this tab only), the replays with their controls,
// and the replayable games. It refreshes every second while open.

import { html, render as show } from '../html.js';
import { setBadge } from '../live.js';
import { clockText } from '../wording.js';

export function adminPanel(view) {
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

  const speedChoice = (label) => html`<select name="speed" aria-label="${label}">
      ${[['1', '1× (real time)'], ['60', '60×'], ['600', '600×'], ['3000', '3000×'], ['max', 'max']]
        .map(([v, text]) => html`<option value="${v}" ${v === '600' ? 'selected' : ''}>${text}</option>`)}</select>`;

  async function render() {
    if (!token()) {
      show(view, html`<div class="toolbar"><h1>Admin</h1></div>
        <form class="panel" id="login"><label>Admin token (printed at start-up by <code>livescore up</code> or <code>scripts/cluster</code>)
          <input type="password" name="token" required autocomplete="current-password"></label>
          <button class="primary">Continue</button>
          ${error ? html`<p class="error" role="alert">${error}</p>` : ''}</form>`);
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
    const game = (r) => `${r.home} – ${r.away}`;
    show(view, html`
      <div class="toolbar"><h1>Admin</h1><button id="logout">Forget token</button></div>
      ${error ? html`<p class="error" role="alert">${error}</p>` : ''}
      <section class="panel"><h2>Replays</h2>${replays.length ? html`<table><thead><tr><th>Game</th><th>Status</th>
        <th class="hide-narrow">Progress</th><th>Clock</th><th>Speed</th><th><span class="visually-hidden">Actions</span></th></tr></thead><tbody>${replays.map((r) => html`
        <tr data-replay="${r.match_id}"><td>${game(r)}</td><td class="replay-status">${r.status}${r.error ? html`<div class="error">${r.error}</div>` : ''}</td>
          <td class="hide-narrow"><progress class="progress" max="${r.events_total}" value="${r.events_sent}" aria-label="Events sent of ${game(r)}"></progress></td>
          <td>${clockText(r.clock)}</td><td>${r.speed}</td>
          <td class="actions">${['running', 'paused'].includes(r.status) ? html`
            ${r.status === 'running' ? html`<button data-act="pause">Pause</button>` : html`<button data-act="resume">Resume</button>`}
            ${speedChoice(`New speed of ${game(r)}`)}<button data-act="speed">Set speed</button><button data-act="stop">Stop</button>` : ''}</td></tr>`)}
        </tbody></table>` : html`<p class="sub">No replay yet: start one below.</p>`}</section>
      <section class="panel spaced"><h2>Replayable games</h2><table><thead><tr><th class="hide-narrow">Competition</th><th class="hide-narrow">Date</th>
        <th>Game</th><th><span class="visually-hidden">Start</span></th></tr></thead><tbody>${catalog.map((g) => html`
        <tr data-catalog="${g.id}"><td class="hide-narrow">${g.competition ?? 'unknown'} ${g.season}</td><td class="hide-narrow">${g.date ?? 'unknown'}</td>
          <td>${g.home.name} – ${g.away.name}</td>
          <td class="actions">${speedChoice(`Speed of ${g.home.name} – ${g.away.name}`)}<button class="primary" data-start="${g.id}">${byGame.get(g.id)?.status === 'running' ? 'Restart' : 'Start'}</button></td></tr>`)}
      </tbody></table></section>`);
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
