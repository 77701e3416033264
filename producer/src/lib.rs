//! The producer: replays StatsBomb matches into the event log, each on its own virtual clock.
//!
//! - [`clock`]: the virtual clock (speed, pause, resume).
//! - [`replays`]: the replay manager and each replay's task.
//! - [`metrics`]: what it exports to Prometheus.
//! - [`routes`]: the HTTP control routes of the admin panel.

pub mod clock;
pub mod metrics;
pub mod replays;
pub mod routes;

pub use metrics::ProducerMetrics;
pub use replays::{ReplayError, ReplayManager, ReplayState};
pub use routes::{ControlState, router};
