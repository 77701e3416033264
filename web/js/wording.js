// How the UI words a match: statuses, clocks, incidents, and the names players are known by.

export const STATUS = {
  not_started: 'Not started', first_half: '1st half', half_time: 'HT', second_half: '2nd half',
  before_extra_time: 'End of 90', extra_time_first_half: 'ET 1st half', extra_time_half_time: 'ET HT',
  extra_time_second_half: 'ET 2nd half', before_shootout: 'End of ET', shootout: 'Pens', finished: 'FT',
};
export const PLAYING = new Set(['first_half', 'second_half', 'extra_time_first_half', 'extra_time_second_half', 'shootout']);
export const isLive = (status) => status !== 'not_started' && status !== 'finished';

// A replay that failed or was stopped before the end will not go on: never shown as live. One
// whose updates stopped coming (the projector marks it `stalled`) is not shown as live either,
// until they come again.
const INTERRUPTED = { failed: 'Replay failed', stopped: 'Replay stopped' };
const STALLED = 'Updates delayed';
export const interrupted = (replay, status) => status !== 'finished' &&
  (INTERRUPTED[replay?.status] ?? (replay?.status === 'running' && replay.stalled ? STALLED : undefined));
export const lostText = (replay) => replay?.lost_records ? `${replay.lost_records} event${replay.lost_records === 1 ? '' : 's'} missing from the log` : '';
export const clockText = (clock) => clock && clock.minute ? `${clock.minute}${clock.added ? '+' + clock.added : ''}'` : '';
export const statusText = (h) => PLAYING.has(h.status) && h.status !== 'shootout' ? clockText(h.clock) : STATUS[h.status] ?? h.status;

// A count to two significant figures (87, 1,200, 35,000): the server sends a new one only when
// this changes (`presence::as_shown` in api/src/presence.rs), so more digits would be stale.
export const asShown = (count) => {
  let scale = 1;
  while (Math.floor(count / scale) >= 100) scale *= 10;
  return Math.floor(count / scale) * scale;
};

// How many are watching: "12 watching", "1,200 watching".
export const watchingText = (count) => `${asShown(Number(count)).toLocaleString('en')} watching`;

// The name a player is known by: the lineups' nickname ("Lionel Messi") where the match info
// has one, else the events' full name ("Lionel Andrés Messi Cuccittini"); `missing` when the
// player is not known yet (an own goal's scorer, before its "Against" half arrives).
export const known = (info, player, missing = '') => player ? info.nicknames?.[player.id] ?? player.name : missing;
// On the formation's pitch: the last word of that ("Messi").
export const shortName = (info, player) => known(info, player).split(' ').slice(-1)[0];

export function incidentText(incident, info) {
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
