//! Cursors: an entry's position in its topic's log, `<ms>-<seq>`.
//!
//! Redis gives each stream entry an id `<unix ms>-<seq>`; the in-process store counts instead
//! (`<n>-0`). Both order the same way (by `ms`, then `seq`), which is all a client relies on:
//! it resumes after the last cursor it handled and drops anything not after it.

use std::fmt;
use std::str::FromStr;

use crate::WireError;

/// A position in a topic's log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Cursor {
    pub ms: u64,
    pub seq: u64,
}

/// Cursors whose first part is at least this are Unix milliseconds (2001 onwards): Redis's.
const UNIX_MS_FROM: u64 = 1_000_000_000_000;

impl Cursor {
    pub const fn new(ms: u64, seq: u64) -> Self {
        Cursor { ms, seq }
    }

    /// When the store wrote the entry, for a Redis cursor; `None` for the in-process store's
    /// counters, which carry no time.
    pub fn written_at_ms(self) -> Option<u64> {
        (self.ms >= UNIX_MS_FROM).then_some(self.ms)
    }
}

impl fmt::Display for Cursor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.ms, self.seq)
    }
}

impl FromStr for Cursor {
    type Err = WireError;

    fn from_str(text: &str) -> Result<Self, WireError> {
        let bad = || WireError::Cursor(crate::excerpt(text));
        let (ms, seq) = text.split_once('-').ok_or_else(bad)?;
        let number = |part: &str| {
            // u64's parser takes a leading `+`: a cursor has digits only.
            if part.is_empty() || !part.bytes().all(|b| b.is_ascii_digit()) {
                return Err(bad());
            }
            part.parse::<u64>().map_err(|_| bad())
        };
        Ok(Cursor::new(number(ms)?, number(seq)?))
    }
}

string_on_the_wire!(
    Cursor,
    pattern: "^[0-9]+-[0-9]+$",
    description: "a position in a topic's log: resume after it",
    example: "1700000000000-0"
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_parse_print_and_order_like_redis_stream_ids() {
        let cursor: Cursor = "1700000000000-3".parse().unwrap();
        assert_eq!(cursor, Cursor::new(1_700_000_000_000, 3));
        assert_eq!(cursor.to_string(), "1700000000000-3");
        let [nine, ten]: [Cursor; 2] = ["9-1", "10-0"].map(|c| c.parse().unwrap());
        assert!(nine < ten, "numbers, not text");
        assert!(Cursor::new(5, 1) > Cursor::new(5, 0));
    }

    #[test]
    fn anything_else_is_not_a_cursor() {
        for bad in [
            "",
            "garbage",
            "12",
            "-1",
            "1-",
            "+1-2",
            "1-2-3",
            "1 -2",
            "99999999999999999999-0",
        ] {
            assert!(bad.parse::<Cursor>().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn only_redis_cursors_say_when_they_were_written() {
        assert_eq!(
            Cursor::new(1_700_000_000_000, 0).written_at_ms(),
            Some(1_700_000_000_000)
        );
        assert_eq!(Cursor::new(17, 0).written_at_ms(), None);
    }

    #[test]
    fn a_cursor_is_a_json_string() {
        let cursor = Cursor::new(5, 2);
        assert_eq!(serde_json::to_string(&cursor).unwrap(), "\"5-2\"");
        assert_eq!(serde_json::from_str::<Cursor>("\"5-2\"").unwrap(), cursor);
        assert!(serde_json::from_str::<Cursor>("\"x\"").is_err());
    }
}
