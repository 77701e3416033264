// The client's side of the fold: a match state and the updates the server sends, applied as
// MatchState::apply_update does (domain/src/update.rs). No DOM: Node's test runner checks it
// against `livescore fold` for every shipped match (e2e/reducer.test.mjs).

export function applyUpdate(state, update) {
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
  return state;
}

// A match state as it starts: nothing but the match's info.
export const initialState = (info) => ({
  info, status: 'not_started', period: 0, clock: { minute: 0, added: 0 }, score: { home: 0, away: 0 },
  shootout: null, lineups: { home: null, away: null }, incidents: [],
  stats: { home: emptyStats(), away: emptyStats() }, momentum: [], shots: [],
});

const emptyStats = () => ({
  possession: 0, shots: 0, shots_on_target: 0, xg: 0, corners: 0, fouls: 0, yellow_cards: 0, red_cards: 0, passes: 0,
});
