//! The livescore match engine: pure, synchronous, no I/O and no clock.
//!
//! - [`statsbomb`]: the StatsBomb event and metadata formats, parsed with serde.
//! - [`info`]: what is known of a match before its first event, and the checks a file must pass.
//! - [`state`]: [`MatchState`], everything a viewer sees of one match.
//! - [`fold`]: events into state, with an [`Update`] per visible change.
//! - [`update`]: the updates viewers receive, and how a client applies them.
//! - [`history`]: the match as it stood at the end of any minute, from those updates.
//! - [`schedule`]: when each event happens on the replay's virtual clock.
//! - [`replay`]: a replay's speed and status, shared by the producer, the log and the store.
//! - [`excerpt`](mod@excerpt): how outside input is quoted back in errors.

pub mod excerpt;
pub mod fold;
pub mod history;
pub mod info;
pub mod replay;
pub mod schedule;
pub mod state;
pub mod statsbomb;
pub mod update;

pub use excerpt::excerpt;
pub use fold::{FoldProgress, MatchFold, fold_match};
pub use info::{InfoError, MatchInfo, TeamRef};
pub use replay::{ReplayStatus, Speed, SpeedError, quiet_allowed};
pub use schedule::{Breaks, schedule};
pub use state::{MatchState, Side, Status};
pub use statsbomb::{Event, MatchMetadata, ParseError, parse_events, parse_matches};
pub use update::{Change, Headline, Update};
