//! The API replica's settings, typed, with every default in one place: [`defaults`], which both
//! `Default` here and the binary's flags (`livescore_app::settings`) name.

use std::path::PathBuf;
use std::time::Duration;

pub use crate::origins::AllowedOrigins;

/// The default of every API setting, as the command line and `Default` give it.
pub mod defaults {
    /// The web UI's static files.
    pub const WEB_DIR: &str = "web";
    /// A WebSocket that follows no topic this long is closed (1008).
    pub const WS_IDLE_TIMEOUT_MS: u64 = 30_000;
    /// A viewer whose socket takes nothing this long while it has messages waiting is let go.
    pub const SLOW_CLIENT_MS: u64 = 30_000;
    /// What may be queued for one viewer and not yet taken by its socket, in bytes.
    pub const CLIENT_QUEUE_BYTES: u64 = 256 * 1024;
    /// Live messages go out through io_uring where the kernel allows it.
    pub const FANOUT_IO_URING: bool = true;
    /// Origins, besides the API's own, whose pages may use it: none.
    pub const ALLOWED_ORIGINS: &str = "";
    /// At shutdown, viewers are told to go (and go elsewhere) spread over this window.
    pub const SHUTDOWN_DRAIN_MS: u64 = 5_000;
    /// Viewers a replica keeps before it sheds some to the others: none (0, off).
    pub const SHED_ABOVE_CONNECTIONS: u64 = 0;
    /// Each replica adds its viewer counts to the store once per window this long.
    pub const PRESENCE_INTERVAL_MS: u64 = 2_000;
}

/// An API replica's settings.
#[derive(Debug, Clone)]
pub struct ApiConfig {
    /// The web UI's static files, served at `/`.
    pub web_dir: PathBuf,
    pub fanout: FanoutConfig,
    /// The origins, besides the API's own, whose pages may use it from a browser.
    pub origins: AllowedOrigins,
    /// The presence window: each replica adds its viewer counts to the store once per window,
    /// and a dead replica's viewers drop out within two.
    pub presence_interval: Duration,
}

/// How the fan-out engine treats its viewers.
#[derive(Debug, Clone)]
pub struct FanoutConfig {
    /// How long a viewer may leave its queue waiting without taking anything before it is let
    /// go (it resumes with its cursor when it comes back).
    pub slow_client: Duration,
    /// The most bytes that may be queued for one viewer and not yet taken by its socket, on
    /// every path (live messages, catch-ups, snapshots, answers). Past it, a live topic catches
    /// up from the store once the viewer has read; a client that lets answers pile up is closed.
    pub queue_bytes: usize,
    /// How long a WebSocket may follow no topic before it is closed.
    pub idle_socket: Duration,
    /// Write through io_uring where the kernel allows it (else one `sendmsg` a socket).
    pub io_uring: bool,
    /// The kernel's send buffer of each viewer's socket (`SO_SNDBUF`), if not its default: how
    /// much a viewer may leave unread before its messages queue in the engine.
    pub send_buffer: Option<usize>,
    /// At shutdown, the viewers are closed a few at a time over this window, so that they do
    /// not all reconnect to the other replicas at the same instant (zero: all at once).
    pub drain: Duration,
    /// Load shedding: a replica with more viewers than this tells the excess, and a tenth
    /// more, to go elsewhere, over the drain window (`None`: never). For a replica that got
    /// more than its share (a reconnect storm, replicas added by an autoscaler): its viewers
    /// reconnect through the load balancer and spread over the others.
    pub shed_above: Option<usize>,
}

impl Default for ApiConfig {
    fn default() -> Self {
        ApiConfig {
            web_dir: defaults::WEB_DIR.into(),
            fanout: FanoutConfig::default(),
            origins: AllowedOrigins::default(),
            presence_interval: Duration::from_millis(defaults::PRESENCE_INTERVAL_MS),
        }
    }
}

impl Default for FanoutConfig {
    fn default() -> Self {
        FanoutConfig {
            slow_client: Duration::from_millis(defaults::SLOW_CLIENT_MS),
            queue_bytes: defaults::CLIENT_QUEUE_BYTES as usize,
            idle_socket: Duration::from_millis(defaults::WS_IDLE_TIMEOUT_MS),
            io_uring: defaults::FANOUT_IO_URING,
            send_buffer: None,
            drain: Duration::from_millis(defaults::SHUTDOWN_DRAIN_MS),
            shed_above: None,
        }
    }
}
