//! The replay schedule: when each event happens on the match's virtual clock.
//!
//! StatsBomb timestamps restart at zero each period. The schedule lays the periods end to end with
//! a break between them (half-time and the rest, configurable) and never lets time go backwards,
//! although a few StatsBomb timestamps do. The producer divides these times by the replay speed.

use std::time::Duration;

use crate::statsbomb::Event;

/// How long the breaks between periods last on the virtual clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Breaks {
    /// Between the first and the second half.
    pub half_time: Duration,
    /// Between the second half and extra time.
    pub before_extra_time: Duration,
    /// Between the two halves of extra time.
    pub extra_time_half_time: Duration,
    /// Between extra time (or the second half) and the penalty shoot-out.
    pub before_shootout: Duration,
}

impl Default for Breaks {
    /// The breaks of a real match: 15 minutes at half-time, 5 before extra time and before
    /// penalties, 1 between the halves of extra time.
    fn default() -> Self {
        Breaks {
            half_time: Duration::from_secs(15 * 60),
            before_extra_time: Duration::from_secs(5 * 60),
            extra_time_half_time: Duration::from_secs(60),
            before_shootout: Duration::from_secs(5 * 60),
        }
    }
}

impl Breaks {
    /// The break that follows `period` when another period comes after it.
    pub fn after(&self, period: u8) -> Duration {
        match period {
            1 => self.half_time,
            2 => self.before_extra_time,
            3 => self.extra_time_half_time,
            _ => self.before_shootout,
        }
    }
}

/// The virtual time of every event (same order as `events`, which must be in index order), from
/// the first event at zero. Non-decreasing: an event whose timestamp jumps back happens at the
/// same moment as the one before it.
pub fn schedule(events: &[Event], breaks: &Breaks) -> Vec<Duration> {
    let mut times = Vec::with_capacity(events.len());
    let Some(first) = events.first() else {
        return times;
    };
    let mut period = first.period;
    let mut period_start = Duration::ZERO;
    let mut latest = Duration::ZERO;
    for event in events {
        if event.period > period {
            // A period whose events are missing from the file gets no break of its own.
            period_start = latest + breaks.after(period);
            period = event.period;
        }
        let at = period_start + Duration::from_millis(u64::from(event.timestamp));
        latest = latest.max(at);
        times.push(latest);
    }
    times
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::statsbomb::Named;

    fn event(index: u32, period: u8, timestamp: u32) -> Event {
        let json = serde_json::json!({
            "id": index.to_string(), "index": index, "period": period,
            "timestamp": "00:00:00.000", "minute": 0, "second": 0,
            "type": {"id": 30, "name": "Pass"},
        });
        let mut event: Event = serde_json::from_value(json).unwrap();
        event.timestamp = timestamp;
        event.event_type = Named {
            id: 30,
            name: "Pass".into(),
        };
        event
    }

    #[test]
    fn periods_are_laid_end_to_end_with_breaks() {
        let events = [
            event(1, 1, 0),
            event(2, 1, 1_000),
            event(3, 1, 2_700_000),
            event(4, 2, 0),
            event(5, 2, 500),
            event(6, 3, 0),
        ];
        let breaks = Breaks {
            half_time: Duration::from_secs(900),
            before_extra_time: Duration::from_secs(300),
            ..Breaks::default()
        };
        let ms: Vec<u128> = schedule(&events, &breaks)
            .iter()
            .map(Duration::as_millis)
            .collect();
        assert_eq!(
            ms,
            vec![
                0,
                1_000,
                2_700_000,
                3_600_000,
                3_600_500,
                3_600_500 + 300_000
            ]
        );
    }

    #[test]
    fn time_never_goes_backwards() {
        let events = [event(1, 1, 5_000), event(2, 1, 4_000), event(3, 1, 6_000)];
        let ms: Vec<u128> = schedule(&events, &Breaks::default())
            .iter()
            .map(Duration::as_millis)
            .collect();
        assert_eq!(ms, vec![5_000, 5_000, 6_000]);
    }

    #[test]
    fn no_events_no_schedule() {
        assert!(schedule(&[], &Breaks::default()).is_empty());
    }
}
