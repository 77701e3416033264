// What this browser remembers and tells the user: pinned games, goal alerts, and the
// announcements screen readers read out.

export function favouriteGames() {
  try {
    const ids = JSON.parse(localStorage.getItem('favourites') ?? '[]');
    return Array.isArray(ids) ? ids.filter(Number.isInteger) : [];
  } catch {
    return [];
  }
}

export function toggleFavourite(id) {
  const ids = new Set(favouriteGames());
  if (!ids.delete(id)) ids.add(id);
  localStorage.setItem('favourites', JSON.stringify([...ids]));
}

// Goal alerts through the Notifications API, once the user allowed them.
export const goalAlertsOn = () => localStorage.getItem('goalAlerts') === 'on' && Notification.permission === 'granted';

export async function toggleGoalAlerts() {
  if (goalAlertsOn()) {
    localStorage.setItem('goalAlerts', 'off');
    return;
  }
  const permission = await Notification.requestPermission();
  localStorage.setItem('goalAlerts', permission === 'granted' ? 'on' : 'off');
}

// A goal: read out, and an alert if the user asked for them. A goal a rebuild of the server's
// data sent again (`republished`) is old news: shown, never alerted.
export function goal(text, id, republished) {
  if (republished) return;
  announce(text);
  if (!('Notification' in window) || !goalAlertsOn()) return;
  const notification = new Notification('livescore', { body: text, tag: `goal-${id}` });
  notification.onclick = () => { window.focus(); location.hash = `#/game/${id}`; };
}

export function announce(text) {
  const announcer = document.getElementById('announcer');
  announcer.textContent = '';
  setTimeout(() => { announcer.textContent = text; }, 50);
}
