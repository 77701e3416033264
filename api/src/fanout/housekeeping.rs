//! Housekeeping, once a second: heartbeats where due (an SSE comment, a WebSocket ping), so that
//! no socket is silent longer than [`HEARTBEAT`]; WebSockets that follow no topic for the idle
//! timeout closed (1008); and at shutdown, every viewer's goodbye (the end of its SSE stream,
//! or a WebSocket close 1012), so that clients reconnect elsewhere, spread over the drain
//! window ([`Drain`]) so that they do not all arrive at the other replicas at once. Load
//! shedding tells the viewers past the replica's limit to go the same way.

use std::collections::VecDeque;
use std::time::Duration;

use axum::body::Bytes;
use livescore_wire::sse;
use tokio::time::Instant;

use super::connections::{Conn, ConnKey, Connections};
use super::engine::Engine;
use crate::framing::chunked::{self, END_OF_STREAM};
use crate::framing::websocket::{self, close_code};

/// No socket stays silent longer than this: a heartbeat goes to those nothing was written to.
pub const HEARTBEAT: Duration = Duration::from_secs(15);
/// Heartbeat rounds come this often, a third of `HEARTBEAT` (see `Quiet`).
const HEARTBEAT_ROUND: Duration = Duration::from_secs(HEARTBEAT.as_secs() / 3);

/// How long a socket has been silent, counted in heartbeat rounds (`HEARTBEAT_ROUND`, a third
/// of `HEARTBEAT`): a write sets it back to nothing. A heartbeat goes out at the third round
/// after the last write, so the socket has been silent for more than two rounds and less than
/// three, never longer than `HEARTBEAT`. (Rounds of a whole `HEARTBEAT` with a "wrote" flag
/// leave a socket written to just after a round silent for almost two: a client that allows
/// 20 s between frames gave up on a match stalled by a broker restart.)
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Quiet(u8);

impl Quiet {
    /// Something was written to the socket.
    pub fn written(&mut self) {
        self.0 = 0;
    }

    /// A heartbeat round has come: true when the socket is due a heartbeat now.
    fn round(&mut self) -> bool {
        self.0 += 1;
        if self.0 == 3 {
            self.0 = 0;
            return true;
        }
        false
    }
}

/// What housekeeping keeps between rounds.
pub(crate) struct Housekeeping {
    /// How long a WebSocket may follow no topic.
    idle_socket: Duration,
    /// WebSockets that followed no topic, oldest first (checked against their `idle_since`).
    idle: VecDeque<(Instant, ConnKey)>,
    heartbeat_at: Instant,
}

impl Housekeeping {
    pub fn new(idle_socket: Duration) -> Housekeeping {
        Housekeeping {
            idle_socket,
            idle: VecDeque::new(),
            heartbeat_at: Instant::now() + HEARTBEAT_ROUND,
        }
    }

    /// WebSocket `key` follows no topic from `now`. A socket has one entry in the queue at
    /// most, however often it comes and goes: its entry is looked at when due, and put back if
    /// the socket went idle again since.
    pub fn idle(&mut self, conn: &mut Conn, key: ConnKey, now: Instant) {
        conn.idle_since = Some(now);
        if !conn.idle_queued {
            conn.idle_queued = true;
            self.idle.push_back((now, key));
        }
    }

    /// Drops the entries of sockets that are gone, once they are most of the queue: sockets
    /// that come and go by the thousand a second (a reconnect storm, a flood) would otherwise
    /// leave an entry each for the whole idle timeout.
    fn forget_the_gone(&mut self, conns: &Connections) {
        if self.idle.len() < 1024 {
            return;
        }
        let gone = self
            .idle
            .iter()
            .filter(|(_, key)| conns.live(*key).is_none())
            .count();
        if gone * 2 > self.idle.len() {
            self.idle.retain(|(_, key)| conns.live(*key).is_some());
        }
    }
}

impl Engine {
    /// Once a second: WebSockets idle too long closed, and heartbeats when due.
    pub(super) fn housekeep(&mut self) {
        let now = Instant::now();
        self.house.forget_the_gone(&self.conns);
        let idle_socket = self.house.idle_socket;
        while let Some(&(since, key)) = self.house.idle.front() {
            if since + idle_socket > now {
                break;
            }
            self.house.idle.pop_front();
            let Some(conn) = self
                .conns
                .live(key)
                .and_then(|index| self.conns.get_mut(index))
            else {
                continue;
            };
            match conn.idle_since {
                // It follows topics now.
                None => conn.idle_queued = false,
                Some(idle) if idle + idle_socket <= now => {
                    conn.idle_queued = false;
                    let reason = format!(
                        "no subscription for {} s: subscribe when you need a topic",
                        idle_socket.as_secs()
                    );
                    self.close_after(key.index, websocket::close(close_code::POLICY, &reason));
                }
                // Idle again since: looked at again when that is due.
                Some(idle) => self.house.idle.push_back((idle, key)),
            }
        }
        if now < self.house.heartbeat_at {
            return;
        }
        self.house.heartbeat_at = now + HEARTBEAT_ROUND;
        let sse = chunked::chunk(sse::HEARTBEAT.as_bytes());
        let ping = websocket::frame(websocket::PING, b"");
        let mut due = Vec::new();
        for (index, conn) in self.conns.iter_mut() {
            if conn.quiet.round() && !conn.queue.is_blocked() && !conn.closing {
                due.push(index);
            }
        }
        for index in due {
            let Some(conn) = self.conns.get_mut(index) else {
                continue;
            };
            let beat = if conn.websocket { &ping } else { &sse };
            // An unblocked socket has room for a heartbeat: nothing is queued for it.
            let _ = self.outbox.stage(conn, index, beat.clone());
        }
    }

    /// Shutdown: `count` viewers (at most) get the end of their stream or a close 1012, then
    /// their sockets close.
    pub(super) fn goodbye(&mut self, count: usize, why: Goodbye) {
        if count == 0 {
            return;
        }
        let going = self.conns.first(count);
        let sse = Bytes::from_static(END_OF_STREAM);
        let ws = websocket::close(
            close_code::RESTART,
            match why {
                Goodbye::Restart => {
                    "server restarting: reconnect and resubscribe with your cursors"
                }
                Goodbye::Shed => "server full: reconnect and resubscribe with your cursors",
            },
        );
        for &index in &going {
            let Some(conn) = self.conns.get_mut(index) else {
                continue;
            };
            if !conn.queue.is_blocked() {
                let last = if conn.websocket { &ws } else { &sse };
                self.outbox.stage_last(conn, index, last.clone());
            }
        }
        let finished = self.outbox.flush(&mut self.conns);
        self.outbox.recycle(finished);
        for index in going {
            self.remove(index);
        }
    }
}

/// Why viewers are told to go; either way they reconnect with their cursors (an SSE stream
/// that ends, a WebSocket close 1012) and land on another replica or this one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Goodbye {
    /// The replica is stopping.
    Restart,
    /// The replica has more viewers than its load-shedding limit.
    Shed,
}

/// Shutdown spread over a window: closing every viewer at once sends them all to the other
/// replicas at the same instant (a reconnect storm), so they are told to go in steps, the
/// share that is due growing with the time since the signal.
pub(super) struct Drain {
    began: Instant,
    window: Duration,
    /// Viewers when the drain began.
    total: usize,
    /// Viewers told to go so far.
    told: usize,
}

impl Drain {
    /// How often a step closes the viewers now due.
    pub const STEP: Duration = Duration::from_millis(50);

    pub fn new(now: Instant, window: Duration, total: usize) -> Drain {
        Drain {
            began: now,
            window,
            total,
            told: 0,
        }
    }

    /// How many more viewers to tell to go at `now`: the window's elapsed share of them all,
    /// less those told already.
    pub fn due(&mut self, now: Instant) -> usize {
        let share = if self.window.is_zero() {
            1.0
        } else {
            (now.saturating_duration_since(self.began).as_secs_f64() / self.window.as_secs_f64())
                .min(1.0)
        };
        let target = (self.total as f64 * share).ceil() as usize;
        let more = target.saturating_sub(self.told);
        self.told += more;
        more
    }

    /// Whether the window is over (whoever is left goes now).
    pub fn over(&self, now: Instant) -> bool {
        now.saturating_duration_since(self.began) >= self.window
    }
}

#[cfg(test)]
mod tests {
    use super::{Drain, Quiet};
    use std::time::Duration;
    use tokio::time::Instant;

    #[test]
    fn a_drain_tells_viewers_to_go_in_proportion_to_the_time_elapsed() {
        let began = Instant::now();
        let mut drain = Drain::new(began, Duration::from_secs(10), 1000);
        let at = |ms| began + Duration::from_millis(ms);
        assert_eq!(drain.due(at(0)), 0, "nobody at the signal itself");
        assert_eq!(
            drain.due(at(1000)),
            100,
            "a tenth after a tenth of the window"
        );
        assert_eq!(drain.due(at(1000)), 0, "those told are not told again");
        // A late step (a busy engine) catches up with the schedule, and no further.
        assert_eq!(drain.due(at(5000)), 400);
        assert!(!drain.over(at(9999)));
        assert_eq!(
            drain.due(at(12_000)),
            500,
            "the rest once the window is over"
        );
        assert!(drain.over(at(10_000)));
        assert_eq!(drain.due(at(13_000)), 0);
    }

    #[test]
    fn a_drain_with_no_window_tells_everyone_at_once() {
        let began = Instant::now();
        let mut drain = Drain::new(began, Duration::ZERO, 7);
        assert_eq!(drain.due(began), 7);
        assert!(drain.over(began));
    }

    /// The longest silence, in rounds, that `Quiet` allows when the socket is written to in
    /// the rounds marked true: counted from just after the round before a write.
    fn longest_silence(writes: &[bool]) -> usize {
        let mut quiet = Quiet::default();
        let mut silent = 0;
        let mut longest = 0;
        for &wrote in writes {
            // A write just after the previous round: silent for this whole round at least.
            silent = if wrote { 1 } else { silent + 1 };
            if wrote {
                quiet.written();
            }
            if quiet.round() {
                longest = longest.max(silent);
                silent = 0;
            }
            longest = longest.max(silent);
        }
        longest
    }

    #[test]
    fn a_silent_socket_gets_a_heartbeat_every_third_round() {
        // The heartbeat starts the count again, as any write does.
        let mut quiet = Quiet::default();
        let beats: Vec<bool> = (0..6).map(|_| quiet.round()).collect();
        assert_eq!(beats, [false, false, true, false, false, true]);
    }

    #[test]
    fn a_write_puts_the_next_heartbeat_off() {
        let mut quiet = Quiet::default();
        assert!(!quiet.round());
        quiet.written();
        assert!(!quiet.round(), "written to: no heartbeat");
        assert!(!quiet.round());
        assert!(quiet.round());
    }

    #[test]
    fn no_pattern_of_writes_leaves_a_socket_silent_for_three_rounds() {
        // Every pattern of writes over 12 rounds.
        for pattern in 0u32..1 << 12 {
            let writes: Vec<bool> = (0..12).map(|bit| pattern & 1 << bit != 0).collect();
            assert!(longest_silence(&writes) <= 3, "{writes:?}");
        }
    }
}
