//! The settings of every role, typed: one struct per concern, shared by the roles that need it,
//! with the same variable names everywhere (see the README's configuration table). The binary
//! reads them from the command line and the environment (clap); tests and examples build them
//! from [`Default`] and change what they need. Every default is written once, in [`defaults`]
//! (or the API's own, `livescore_api::config::defaults`), and both clap and `Default` use it.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;

use std::time::Duration;

use clap::Args;
use clap::builder::NonEmptyStringValueParser;
use clap::builder::TypedValueParser;
use livescore_api::config::AllowedOrigins;
use livescore_api::config::defaults as api;

/// The default of every setting that is not the API's.
pub mod defaults {
    use super::{IpAddr, Ipv4Addr, SocketAddr};

    pub const KAFKA_TOPIC: &str = "match-events";
    pub const KAFKA_PARTITIONS: i32 = 6;
    pub const KAFKA_REPLICATION_FACTOR: i32 = 1;
    pub const REDIS_PREFIX: &str = "livescore";
    pub const REDIS_SENTINEL_MASTER: &str = "livescore";
    pub const LISTEN: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 8080);
    pub const HTTP_MAX_CONNECTIONS: u64 = 0;
    pub const HTTP_HEADER_TIMEOUT_MS: u64 = 10_000;
    pub const HTTP_SHARDS: u64 = 0;
    pub const HTTP_REUSE_PORT: bool = false;
    pub const DATA_DIR: &str = "data";
    pub const HALF_TIME_SECONDS: u64 = 900;
    pub const DELIVERY_TIMEOUT_MS: u64 = 30_000;
    pub const PROJECTOR_GROUP: &str = "livescore-projector";
    pub const STALL_GRACE_MS: u64 = 10_000;
    pub const PROJECTOR_LISTEN: SocketAddr =
        SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 9464);
}

/// The range of the timeouts in milliseconds: a tenth of a second to an hour.
fn millis() -> clap::builder::RangedU64ValueParser<u64> {
    clap::value_parser!(u64).range(100..=3_600_000)
}

/// `.env.example`'s value of `ADMIN_TOKEN`: a placeholder anyone can read, never a token.
pub const ADMIN_TOKEN_PLACEHOLDER: &str = "change-me";

/// Parses `ADMIN_TOKEN`: anything but blank or the published placeholder. (Unset, a token is
/// generated; set to one of these, the operator meant to choose one and has not.)
fn admin_token(value: &str) -> Result<String, String> {
    if value.trim().is_empty() {
        return Err(
            "the admin token is blank: choose one, or unset ADMIN_TOKEN to have one \
                    generated and printed"
                .into(),
        );
    }
    if value.trim() == ADMIN_TOKEN_PLACEHOLDER {
        return Err(format!(
            "`{ADMIN_TOKEN_PLACEHOLDER}` is .env.example's placeholder, which anyone can read: \
             set ADMIN_TOKEN in .env to a secret of your own"
        ));
    }
    Ok(value.to_owned())
}

/// The event log: Kafka when `KAFKA_BROKERS` is set, else (for `up` only) in-process.
#[derive(Args, Debug, Clone)]
pub struct LogSettings {
    /// Kafka bootstrap servers, host:port[,host:port...]. Set but empty is an error: unset it
    /// for the in-process log.
    #[arg(long, env = "KAFKA_BROKERS", value_parser = NonEmptyStringValueParser::new())]
    pub kafka_brokers: Option<String>,
    /// The topic of match records (created at start-up if missing; `<topic>-dlq` too).
    #[arg(long, env = "KAFKA_TOPIC", default_value = defaults::KAFKA_TOPIC)]
    pub kafka_topic: String,
    /// Partitions of the topic when it is created.
    #[arg(long, env = "KAFKA_PARTITIONS", default_value_t = defaults::KAFKA_PARTITIONS,
          value_parser = clap::value_parser!(i32).range(1..))]
    pub kafka_partitions: i32,
    /// Copies of each partition when the topic is created: 1 on one broker; 3 in production,
    /// where `min.insync.replicas` is then 2.
    #[arg(long, env = "KAFKA_REPLICATION_FACTOR", default_value_t = defaults::KAFKA_REPLICATION_FACTOR,
          value_parser = clap::value_parser!(i32).range(1..))]
    pub kafka_replication_factor: i32,
}

/// The match store: Redis when `REDIS_URL` or `REDIS_SENTINELS` is set, else (for `up` only)
/// in-process.
#[derive(Args, Debug, Clone)]
pub struct StoreSettings {
    /// redis://host:port[/db]. Set but empty is an error: unset it for the in-process store.
    #[arg(long, env = "REDIS_URL", value_parser = NonEmptyStringValueParser::new(),
          conflicts_with = "redis_sentinels")]
    pub redis_url: Option<String>,
    /// Redis Sentinel instead of one address: `host:port` of each sentinel, comma-separated.
    /// The roles ask them where the primary (and its replicas) are, and again after a failover.
    #[arg(long, env = "REDIS_SENTINELS", value_delimiter = ',', num_args = 1..,
          value_parser = sentinel_address())]
    pub redis_sentinels: Vec<String>,
    /// The name the sentinels monitor the primary under.
    #[arg(long, env = "REDIS_SENTINEL_MASTER", default_value = defaults::REDIS_SENTINEL_MASTER)]
    pub redis_sentinel_master: String,
    /// Where an API replica reads and subscribes: `primary`, or `replica` (a Redis replica, or
    /// the primary while none is up; needs REDIS_SENTINELS). The projector always writes, and
    /// `livescore up` reads, the primary.
    #[arg(long, env = "REDIS_READ_FROM", value_enum, default_value_t = ReadFrom::Primary)]
    pub redis_read_from: ReadFrom,
    /// Prefix of every Redis key and channel.
    #[arg(long, env = "REDIS_PREFIX", default_value = defaults::REDIS_PREFIX)]
    pub redis_prefix: String,
}

/// Where an API replica reads from (see [`StoreSettings::redis_read_from`]).
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ReadFrom {
    #[default]
    Primary,
    Replica,
}

/// A sentinel's `host:port`, checked when the settings are read rather than at the first
/// failover.
fn sentinel_address() -> impl clap::builder::TypedValueParser<Value = String> {
    NonEmptyStringValueParser::new().try_map(|address: String| match address.rsplit_once(':') {
        Some((host, port)) if !host.is_empty() && port.parse::<u16>().is_ok_and(|p| p > 0) => {
            Ok(address)
        }
        _ => Err(format!("{address:?} is not host:port")),
    })
}

#[derive(Args, Debug, Clone)]
pub struct HttpSettings {
    /// Address to serve HTTP on.
    #[arg(long, env = "LISTEN", default_value_t = defaults::LISTEN)]
    pub listen: SocketAddr,
    /// The web UI's static files (API and `up` only).
    #[arg(long, env = "WEB_DIR", default_value = api::WEB_DIR)]
    pub web_dir: PathBuf,
    /// Open connections at most; past it a connection gets a 503 and is closed. 0: as many as
    /// the process's file-descriptor limit leaves room for (never more than that).
    #[arg(long, env = "HTTP_MAX_CONNECTIONS", default_value_t = defaults::HTTP_MAX_CONNECTIONS)]
    pub http_max_connections: u64,
    /// A client must send a whole request head within this many milliseconds (also the most a
    /// keep-alive connection may stay idle between requests).
    #[arg(long, env = "HTTP_HEADER_TIMEOUT_MS", default_value_t = defaults::HTTP_HEADER_TIMEOUT_MS,
          value_parser = millis())]
    pub http_header_timeout_ms: u64,
    /// A WebSocket that follows no topic for this many milliseconds is closed (API and `up`).
    #[arg(long, env = "WS_IDLE_TIMEOUT_MS", default_value_t = api::WS_IDLE_TIMEOUT_MS,
          value_parser = millis())]
    pub ws_idle_timeout_ms: u64,
    /// Server threads, each with its own listener, runtime and fan-out engine. 0: one per core.
    #[arg(long, env = "HTTP_SHARDS", default_value_t = defaults::HTTP_SHARDS,
          value_parser = clap::value_parser!(u64).range(0..=256))]
    pub http_shards: u64,
    /// Let other processes serve the same port (SO_REUSEPORT): several replicas on one host,
    /// the kernel spreading connections over them. Off: a port in use is an error.
    #[arg(long, env = "HTTP_REUSE_PORT", default_value_t = defaults::HTTP_REUSE_PORT,
          action = clap::ArgAction::Set)]
    pub http_reuse_port: bool,
    /// Write live messages through io_uring where the kernel allows it (false: one sendmsg
    /// system call per viewer and message batch).
    #[arg(long, env = "FANOUT_IO_URING", default_value_t = api::FANOUT_IO_URING,
          action = clap::ArgAction::Set)]
    pub fanout_io_uring: bool,
    /// A viewer that leaves its queue waiting, taking nothing, for this many milliseconds is
    /// let go (API and `up`).
    #[arg(long, env = "SLOW_CLIENT_MS", default_value_t = api::SLOW_CLIENT_MS,
          value_parser = millis())]
    pub slow_client_ms: u64,
    /// Bytes that may be queued for one viewer, on every path: live messages, catch-ups,
    /// snapshots, answers. Past it, its topics catch up from the store once it has read; a
    /// WebSocket client that lets answers pile up is closed (API and `up`).
    #[arg(long, env = "CLIENT_QUEUE_BYTES", default_value_t = api::CLIENT_QUEUE_BYTES,
          value_parser = clap::value_parser!(u64).range(1024..=64 << 20))]
    pub client_queue_bytes: u64,
    /// The kernel's send buffer of each viewer's socket (SO_SNDBUF), in bytes: how much a viewer
    /// may leave unread before its messages queue in the replica. Unset: the kernel's default.
    #[arg(long, env = "SEND_BUFFER_BYTES",
          value_parser = clap::value_parser!(u64).range(1024..=64 << 20))]
    pub send_buffer_bytes: Option<u64>,
    /// Origins whose web pages may use the API besides its own (scheme://host[:port], comma
    /// separated; * for any). A browser request from any other origin gets 403 (API and `up`).
    #[arg(long, env = "ALLOWED_ORIGINS", default_value = api::ALLOWED_ORIGINS)]
    pub allowed_origins: AllowedOrigins,
    /// At shutdown (SIGTERM), the API closes its viewers a few at a time over this many
    /// milliseconds, so that they come back to the other replicas spread out, not all at once
    /// (0: all at once). The process exits up to this plus 5 s after the signal.
    #[arg(long, env = "SHUTDOWN_DRAIN_MS", default_value_t = api::SHUTDOWN_DRAIN_MS,
          value_parser = clap::value_parser!(u64).range(0..=600_000))]
    pub shutdown_drain_ms: u64,
    /// Load shedding: an API replica with more viewers than this tells the excess (and a tenth
    /// more) to reconnect elsewhere, over SHUTDOWN_DRAIN_MS. 0: never. Set it above a
    /// replica's fair share (viewers / replicas), below what one replica can hold.
    #[arg(long, env = "SHED_ABOVE_CONNECTIONS", default_value_t = api::SHED_ABOVE_CONNECTIONS)]
    pub shed_above_connections: u64,
    /// Who is watching: each replica adds its viewer counts to the store once per window this
    /// long (milliseconds); a dead replica's viewers drop out within two windows.
    #[arg(long, env = "PRESENCE_INTERVAL_MS", default_value_t = api::PRESENCE_INTERVAL_MS,
          value_parser = millis())]
    pub presence_interval_ms: u64,
}

impl HttpSettings {
    /// The server's configuration.
    pub fn server(&self) -> livescore_server::ServerConfig {
        livescore_server::ServerConfig {
            listen: self.listen,
            max_connections: self.http_max_connections,
            header_timeout: Duration::from_millis(self.http_header_timeout_ms),
            shards: usize::try_from(self.http_shards).unwrap_or(1),
            reuse_port: self.http_reuse_port,
            // The engines' drain window, and the server's own wait for requests after it.
            drain: Duration::from_millis(self.shutdown_drain_ms) + livescore_server::DRAIN,
        }
    }

    /// The API's configuration.
    pub fn api(&self) -> livescore_api::ApiConfig {
        livescore_api::ApiConfig {
            web_dir: self.web_dir.clone(),
            fanout: livescore_api::FanoutConfig {
                slow_client: Duration::from_millis(self.slow_client_ms),
                queue_bytes: usize::try_from(self.client_queue_bytes).unwrap_or(usize::MAX),
                idle_socket: Duration::from_millis(self.ws_idle_timeout_ms),
                io_uring: self.fanout_io_uring,
                send_buffer: self
                    .send_buffer_bytes
                    .map(|bytes| usize::try_from(bytes).unwrap_or(usize::MAX)),
                drain: Duration::from_millis(self.shutdown_drain_ms),
                shed_above: (self.shed_above_connections > 0)
                    .then(|| usize::try_from(self.shed_above_connections).unwrap_or(usize::MAX)),
            },
            origins: self.allowed_origins.clone(),
            presence_interval: Duration::from_millis(self.presence_interval_ms),
        }
    }
}

/// What the producer needs besides the log.
#[derive(Args, Debug, Clone)]
pub struct ProducerSettings {
    /// The data directory: StatsBomb `matches/`, `events/` and `lineups/`.
    #[arg(long, env = "DATA_DIR", default_value = defaults::DATA_DIR)]
    pub data_dir: PathBuf,
    /// The bearer token of the control routes; generated and printed when not set. Refused
    /// when blank or `.env.example`'s placeholder.
    #[arg(long, env = "ADMIN_TOKEN", hide_env_values = true, value_parser = admin_token)]
    pub admin_token: Option<String>,
    /// Half-time on the replay's virtual clock, in match seconds.
    #[arg(long, env = "HALF_TIME_SECONDS", default_value_t = defaults::HALF_TIME_SECONDS)]
    pub half_time_seconds: u64,
    /// How long a replay waits for the log to acknowledge a record (a broker restarting is
    /// ridden out) before the replay fails, in milliseconds.
    #[arg(long, env = "DELIVERY_TIMEOUT_MS", default_value_t = defaults::DELIVERY_TIMEOUT_MS,
          value_parser = clap::value_parser!(u64).range(1..=3_600_000))]
    pub delivery_timeout_ms: u64,
}

#[derive(Args, Debug, Clone)]
pub struct ProjectorSettings {
    /// The consumer group of the projectors.
    #[arg(long, env = "PROJECTOR_GROUP", default_value = defaults::PROJECTOR_GROUP)]
    pub projector_group: String,
    /// Clear the store and rebuild it from the start of the log first (projector role only).
    #[arg(long)]
    pub rebuild: bool,
    /// Where the projector serves `/metrics`, `/healthz` and `/readyz` (projector role only;
    /// `up` serves everything on `LISTEN`).
    #[arg(long, env = "PROJECTOR_LISTEN", default_value_t = defaults::PROJECTOR_LISTEN)]
    pub projector_listen: SocketAddr,
    /// A running replay with no record for this many milliseconds longer than its speed allows
    /// (two minutes of football in play, twenty in a break) is marked stalled: shown as
    /// delayed, not live, until records come again.
    #[arg(long, env = "STALL_GRACE_MS", default_value_t = defaults::STALL_GRACE_MS,
          value_parser = millis())]
    pub stall_grace_ms: u64,
}

/// Everything a role may need; each role reads its parts.
#[derive(Args, Debug, Clone, Default)]
pub struct Settings {
    #[command(flatten)]
    pub log: LogSettings,
    #[command(flatten)]
    pub store: StoreSettings,
    #[command(flatten)]
    pub http: HttpSettings,
    #[command(flatten)]
    pub producer: ProducerSettings,
    #[command(flatten)]
    pub projector: ProjectorSettings,
}

// The defaults are the command line's: `livescore up` with nothing set.

impl Default for LogSettings {
    fn default() -> Self {
        LogSettings {
            kafka_brokers: None,
            kafka_topic: defaults::KAFKA_TOPIC.into(),
            kafka_partitions: defaults::KAFKA_PARTITIONS,
            kafka_replication_factor: defaults::KAFKA_REPLICATION_FACTOR,
        }
    }
}

impl Default for StoreSettings {
    fn default() -> Self {
        StoreSettings {
            redis_url: None,
            redis_sentinels: Vec::new(),
            redis_sentinel_master: defaults::REDIS_SENTINEL_MASTER.into(),
            redis_read_from: ReadFrom::Primary,
            redis_prefix: defaults::REDIS_PREFIX.into(),
        }
    }
}

impl Default for HttpSettings {
    fn default() -> Self {
        HttpSettings {
            listen: defaults::LISTEN,
            web_dir: api::WEB_DIR.into(),
            http_max_connections: defaults::HTTP_MAX_CONNECTIONS,
            http_header_timeout_ms: defaults::HTTP_HEADER_TIMEOUT_MS,
            ws_idle_timeout_ms: api::WS_IDLE_TIMEOUT_MS,
            http_shards: defaults::HTTP_SHARDS,
            http_reuse_port: defaults::HTTP_REUSE_PORT,
            fanout_io_uring: api::FANOUT_IO_URING,
            slow_client_ms: api::SLOW_CLIENT_MS,
            client_queue_bytes: api::CLIENT_QUEUE_BYTES,
            send_buffer_bytes: None,
            allowed_origins: AllowedOrigins::default(),
            shutdown_drain_ms: api::SHUTDOWN_DRAIN_MS,
            shed_above_connections: api::SHED_ABOVE_CONNECTIONS,
            presence_interval_ms: api::PRESENCE_INTERVAL_MS,
        }
    }
}

impl Default for ProducerSettings {
    fn default() -> Self {
        ProducerSettings {
            data_dir: defaults::DATA_DIR.into(),
            admin_token: None,
            half_time_seconds: defaults::HALF_TIME_SECONDS,
            delivery_timeout_ms: defaults::DELIVERY_TIMEOUT_MS,
        }
    }
}

impl Default for ProjectorSettings {
    fn default() -> Self {
        ProjectorSettings {
            projector_group: defaults::PROJECTOR_GROUP.into(),
            rebuild: false,
            projector_listen: defaults::PROJECTOR_LISTEN,
            stall_grace_ms: defaults::STALL_GRACE_MS,
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Parser)]
    struct Everything {
        #[command(flatten)]
        settings: Settings,
    }

    #[test]
    fn the_admin_token_placeholder_and_a_blank_token_are_refused() {
        for bad in ["change-me", " change-me ", "", "   "] {
            let parsed = Everything::try_parse_from(["livescore", "--admin-token", bad]);
            let error = parsed.err().map(|e| e.to_string()).unwrap_or_default();
            assert!(
                error.contains("admin token") || error.contains("placeholder"),
                "{bad:?}: {error}"
            );
        }
        let parsed = Everything::try_parse_from(["livescore", "--admin-token", "s3cret"])
            .map(|e| e.settings.producer.admin_token);
        assert_eq!(parsed.ok().flatten().as_deref(), Some("s3cret"));
    }

    #[test]
    fn the_defaults_are_the_command_lines() {
        // Only what has no environment variable set here is compared.
        let parsed = Everything::parse_from(["livescore"]).settings;
        let defaults = Settings::default();
        assert_eq!(parsed.log.kafka_topic, defaults.log.kafka_topic);
        assert_eq!(parsed.log.kafka_partitions, defaults.log.kafka_partitions);
        assert_eq!(parsed.store.redis_prefix, defaults.store.redis_prefix);
        assert_eq!(format!("{:?}", parsed.http), format!("{:?}", defaults.http));
        assert_eq!(
            format!("{:?}", parsed.producer),
            format!("{:?}", defaults.producer)
        );
        assert_eq!(
            format!("{:?}", parsed.projector),
            format!("{:?}", defaults.projector)
        );
    }
}
