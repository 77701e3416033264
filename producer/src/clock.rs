//! The virtual clock of one replay: match time running at `speed` times wall-clock time, which
//! can be paused, resumed and sped up without the schedule jumping.

use std::time::Duration;

use livescore_domain::Speed;
use tokio::time::Instant;

/// Match time as a function of wall-clock time: `anchor_match + (now - anchor_wall) * speed`.
/// Every change (pause, resume, new speed) re-anchors at the current match time, so what has been
/// played stays played and what is left keeps its spacing at the new pace.
#[derive(Debug, Clone, Copy)]
pub struct VirtualClock {
    anchor_wall: Instant,
    anchor_match: Duration,
    speed: Speed,
    paused: bool,
}

impl VirtualClock {
    pub fn start(now: Instant, speed: Speed) -> VirtualClock {
        VirtualClock::start_at(now, speed, Duration::ZERO)
    }

    /// A clock whose match time is `at` now: a replay resumed from where the log ends.
    pub fn start_at(now: Instant, speed: Speed, at: Duration) -> VirtualClock {
        VirtualClock {
            anchor_wall: now,
            anchor_match: at,
            speed,
            paused: false,
        }
    }

    pub fn speed(&self) -> Speed {
        self.speed
    }

    pub fn is_paused(&self) -> bool {
        self.paused
    }

    /// The match time at wall-clock `now`. At maximum speed the clock does not run on its own:
    /// it stands at `played`, the time of the last event sent.
    pub fn match_time(&self, now: Instant, played: Duration) -> Duration {
        match (self.paused, self.speed) {
            (true, _) | (_, Speed::Max) => self.anchor_match.max(played),
            (false, Speed::Factor(factor)) => {
                self.anchor_match
                    + now
                        .saturating_duration_since(self.anchor_wall)
                        .mul_f64(factor)
            }
        }
    }

    /// When, on the wall clock, match time `at` comes: `None` while paused; at once at maximum
    /// speed or if it has passed.
    pub fn wall_time_of(&self, at: Duration) -> Option<Instant> {
        if self.paused {
            return None;
        }
        match self.speed {
            Speed::Max => Some(self.anchor_wall),
            Speed::Factor(factor) => {
                let ahead = at.saturating_sub(self.anchor_match);
                Some(self.anchor_wall + ahead.div_f64(factor))
            }
        }
    }

    pub fn pause(&mut self, now: Instant, played: Duration) {
        self.reanchor(now, played);
        self.paused = true;
    }

    pub fn resume(&mut self, now: Instant, played: Duration) {
        self.reanchor(now, played);
        self.paused = false;
    }

    pub fn set_speed(&mut self, now: Instant, played: Duration, speed: Speed) {
        self.reanchor(now, played);
        self.speed = speed;
    }

    fn reanchor(&mut self, now: Instant, played: Duration) {
        self.anchor_match = self.match_time(now, played);
        self.anchor_wall = now;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECOND: Duration = Duration::from_secs(1);

    #[test]
    fn match_time_runs_at_the_speed_and_pauses_keep_it() {
        let t0 = Instant::now();
        let mut clock = VirtualClock::start(t0, Speed::Factor(60.0));
        assert_eq!(clock.match_time(t0 + SECOND, Duration::ZERO), 60 * SECOND);
        assert_eq!(clock.wall_time_of(120 * SECOND), Some(t0 + 2 * SECOND));

        clock.pause(t0 + SECOND, Duration::ZERO);
        assert_eq!(clock.wall_time_of(120 * SECOND), None);
        assert_eq!(
            clock.match_time(t0 + 10 * SECOND, Duration::ZERO),
            60 * SECOND
        );

        // Resumed 9 s later: the minute left until 120 s takes one more second.
        clock.resume(t0 + 10 * SECOND, Duration::ZERO);
        assert_eq!(clock.wall_time_of(120 * SECOND), Some(t0 + 11 * SECOND));

        // Twice as fast from there: match time 60 s -> 120 s in half a second.
        clock.set_speed(t0 + 10 * SECOND, Duration::ZERO, Speed::Factor(120.0));
        assert_eq!(
            clock.wall_time_of(120 * SECOND),
            Some(t0 + 10 * SECOND + SECOND / 2)
        );
    }

    #[test]
    fn at_maximum_speed_everything_is_due_and_the_clock_follows_what_was_played() {
        let t0 = Instant::now();
        let mut clock = VirtualClock::start(t0, Speed::Max);
        assert_eq!(clock.wall_time_of(3600 * SECOND), Some(t0));
        assert_eq!(clock.match_time(t0 + SECOND, 30 * SECOND), 30 * SECOND);
        // Slowing down from maximum speed carries on from what was played.
        clock.set_speed(t0 + SECOND, 30 * SECOND, Speed::Factor(1.0));
        assert_eq!(clock.wall_time_of(31 * SECOND), Some(t0 + 2 * SECOND));
    }
}
