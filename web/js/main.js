// livescore web UI: a scoreboard, a match centre and an admin panel over the livescore API.
// No build step: ES modules, served as they are by the API from web/. What is where:
//
//   main.js               routing between the views (#/, #/game/<id>, #/admin)
//   views/scoreboard.js   every game as a card, live
//   views/match-centre.js one match, live, and at any minute
//   views/admin.js        starting and steering replays
//   live.js               the live connection: SSE or WebSocket, resume, back-off
//   reducer.js            updates applied to a match state (the server's fold, client side)
//   html.js               the `html` template that escapes what it interpolates
//   wording.js, prefs.js  how things are said; what the browser remembers
//   ../wire.js            the protocol's names, generated from the server's

import { adminPanel } from './views/admin.js';
import { matchCentre } from './views/match-centre.js';
import { scoreboard } from './views/scoreboard.js';

const view = document.getElementById('view');
const transportSelect = document.getElementById('transport');

let leave = null;
function route() {
  leave?.();
  view.classList.remove('in-the-past');
  const hash = location.hash || '#/';
  const game = hash.match(/^#\/game\/(\d+)$/);
  document.querySelectorAll('[data-nav]').forEach((a) => a.classList.toggle('active',
    (a.dataset.nav === 'admin') === hash.startsWith('#/admin')));
  leave = game ? matchCentre(view, game[1]) : hash.startsWith('#/admin') ? adminPanel(view) : scoreboard(view);
}

transportSelect.value = localStorage.getItem('transport') || 'sse';
transportSelect.addEventListener('change', () => {
  localStorage.setItem('transport', transportSelect.value);
  route();
});
window.addEventListener('hashchange', route);
route();
