//! Who is watching: the counts each API replica adds to the store, one window at a time.
//!
//! Time is cut into windows of a fixed length (the API's `PRESENCE_INTERVAL_MS`, 2 s by
//! default). Halfway through each window, every replica adds its own viewer counts to that
//! window's hash (`HINCRBY`, one round trip for all fields) and reads the window before, which
//! every replica has finished adding to by then (`HGETALL`). The sum is the site's count: no
//! replica reads another's keys, so the cost is one write and one read per replica per window
//! whatever the number of replicas, and a replica that dies is simply absent from the next
//! window: its viewers drop out within two windows. Windows expire on their own (`PEXPIRE`).
//! Replicas' clocks must agree to within a quarter of a window (NTP keeps them within
//! milliseconds); a replica whose add comes after the others' read is missed for that window.
//!
//! The fields: `site` (connections, whatever they follow), and one per topic followed:
//! `games` (the scoreboard) and `game:<id>` (a match).

/// The field of the site's total.
pub const SITE: &str = "site";

/// The window that `unix_ms` falls in, for windows of `interval_ms`.
pub fn window_of(unix_ms: u64, interval_ms: u64) -> u64 {
    unix_ms / interval_ms.max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_are_consecutive_slices_of_time() {
        assert_eq!(window_of(0, 2000), 0);
        assert_eq!(window_of(1999, 2000), 0);
        assert_eq!(window_of(2000, 2000), 1);
        assert_eq!(window_of(5, 0), 5, "a zero interval is read as 1 ms");
    }
}
