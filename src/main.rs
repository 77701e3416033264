//! The `livescore` command line: one binary, one subcommand per job. This file parses arguments
//! and prints; `livescore-app` builds the roles, and the workspace's crates do the work.

use std::io::{self, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand};
use livescore_app::settings::{
    HttpSettings, LogSettings, ProducerSettings, ProjectorSettings, StoreSettings,
};
use livescore_app::{Application, CancellationToken, Role, Settings};
use livescore_catalog::{Catalog, LoadedGame};
use livescore_domain::fold_match;
use tracing::info_span;

#[derive(Parser)]
#[command(
    name = "livescore",
    version,
    about = "Live football scores from replayed StatsBomb matches"
)]
struct Cli {
    /// Log as JSON lines instead of text (logs go to stderr).
    #[arg(long, env = "LOG_JSON", global = true)]
    log_json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Every role in one process on one port: the in-process log and store unless KAFKA_BROKERS
    /// and REDIS_URL are set. Prints the admin token and how to start a replay.
    Up {
        #[command(flatten)]
        settings: Box<Settings>,
    },
    /// The producer alone: replays into Kafka, with the admin control routes.
    Producer {
        #[command(flatten)]
        log: LogSettings,
        #[command(flatten)]
        http: HttpSettings,
        #[command(flatten)]
        producer: ProducerSettings,
    },
    /// The projector alone: Kafka into Redis; serves /metrics, /healthz and /readyz on
    /// PROJECTOR_LISTEN.
    Projector {
        #[command(flatten)]
        log: LogSettings,
        #[command(flatten)]
        store: StoreSettings,
        #[command(flatten)]
        projector: ProjectorSettings,
    },
    /// One API replica: serves games from Redis.
    Api {
        #[command(flatten)]
        store: StoreSettings,
        #[command(flatten)]
        http: HttpSettings,
    },
    /// List the replayable games of the data directory.
    Games {
        /// The data directory: StatsBomb `matches/`, `events/` and `lineups/`.
        #[arg(long, env = "DATA_DIR", default_value = "data")]
        data_dir: PathBuf,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Fold a match and print its final state as JSON (or, with --updates, every update).
    Fold {
        /// A game id from `livescore games`, or the path of a StatsBomb events file
        /// (named <match_id>.json; the data directory's metadata is used if it has the match).
        game: String,
        /// The data directory: StatsBomb `matches/`, `events/` and `lineups/`.
        #[arg(long, env = "DATA_DIR", default_value = "data")]
        data_dir: PathBuf,
        /// Print the updates viewers would receive, one JSON object per line, instead.
        #[arg(long)]
        updates: bool,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.log_json);
    // Every viewer is a socket: an API replica needs far more than the usual soft limit of 1024.
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(limit) => tracing::debug!(limit, "file-descriptor limit"),
        Err(err) => tracing::warn!("cannot raise the file-descriptor limit: {err}"),
    }
    let result = match cli.command {
        Command::Games { data_dir, json } => games(&data_dir, json),
        Command::Fold {
            game,
            data_dir,
            updates,
        } => fold(&data_dir, &game, updates),
        Command::Up { settings } => run(Role::Up, *settings),
        Command::Producer {
            log,
            http,
            producer,
        } => run(
            Role::Producer,
            Settings {
                log,
                http,
                producer,
                ..Settings::default()
            },
        ),
        Command::Projector {
            log,
            store,
            projector,
        } => run(
            Role::Projector,
            Settings {
                log,
                store,
                projector,
                ..Settings::default()
            },
        ),
        Command::Api { store, http } => run(
            Role::Api,
            Settings {
                store,
                http,
                ..Settings::default()
            },
        ),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        // `livescore fold 7471 | head` is not a failure.
        Err(err) if is_broken_pipe(&err) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {}", explain(&err));
            ExitCode::FAILURE
        }
    }
}

/// The error and its causes, each said once: most of our errors already quote their source.
fn explain(err: &anyhow::Error) -> String {
    let mut text = err.to_string();
    for cause in err.chain().skip(1) {
        let cause = cause.to_string();
        if !text.contains(&cause) {
            text.push_str(": ");
            text.push_str(&cause);
        }
    }
    text
}

fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|cause| {
        cause
            .downcast_ref::<io::Error>()
            .is_some_and(|io| io.kind() == io::ErrorKind::BrokenPipe)
            || cause
                .downcast_ref::<serde_json::Error>()
                .and_then(|json| json.io_error_kind())
                == Some(io::ErrorKind::BrokenPipe)
    })
}

/// How long a role may take to stop after Ctrl-C or SIGTERM before the process exits anyway.
/// (A Kafka client whose broker went away can wait far longer than that to say goodbye.)
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// Builds `role` and runs it on a multi-threaded tokio runtime until Ctrl-C or SIGTERM; a role
/// that has not stopped `SHUTDOWN_GRACE` after the signal is cut short. The producer and `up`
/// print how to start a replay once they listen.
fn run(role: Role, settings: Settings) -> anyhow::Result<()> {
    let generated_token = settings.producer.admin_token.is_none();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the tokio runtime")?;
    runtime.block_on(async {
        let shutdown = livescore_app::shutdown_on_signal();
        // The watchdog counts on a thread of its own, not on tokio: what gets stuck can be a
        // synchronous call that holds the very thread polling the role (librdkafka closing a
        // consumer whose broker went away blocks until the broker answers, forever if it is gone).
        let signalled: CancellationToken = shutdown.clone();
        tokio::spawn(async move {
            signalled.cancelled().await;
            std::thread::spawn(|| {
                std::thread::sleep(SHUTDOWN_GRACE);
                tracing::error!("still stopping {SHUTDOWN_GRACE:?} after the signal: exiting now");
                // Without running destructors: one of them may be what is stuck.
                std::process::exit(1);
            });
        });
        let app = Application::build(role, settings, shutdown).await?;
        if matches!(role, Role::Up | Role::Producer) {
            print_banner(&app, generated_token);
        }
        Ok(app.run_until_stopped().await?)
    })
}

fn print_banner(app: &Application, generated: bool) {
    let base = format!("http://localhost:{}", app.local_addr().port());
    println!("livescore is up: {base}/games");
    // A token the operator chose is a secret of theirs: it stays out of stdout (and so out of
    // container logs). Only a generated one, which nobody else knows, is printed.
    let token = if generated {
        let token = app.admin_token().unwrap_or_default();
        println!("admin token: {token}   (generated; set ADMIN_TOKEN to choose one)");
        token.to_owned()
    } else {
        "$ADMIN_TOKEN".to_owned()
    };
    println!("start a replay at 600x real time (a whole match in about 10 s):");
    println!("  curl -X POST -H \"Authorization: Bearer {token}\" '{base}/games/7471?speed=600'");
    println!("replayable games: {base}/catalog");
}

fn init_logging(json: bool) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // Colours only on a terminal: scripts/cluster and containers write logs to files.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(io::stderr().is_terminal())
        .with_writer(io::stderr);
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
}

fn games(data_dir: &Path, json: bool) -> anyhow::Result<()> {
    let catalog = livescore_app::open_catalog(data_dir)?;
    for notice in catalog.notices() {
        tracing::warn!("{notice}");
    }
    let mut out = io::stdout().lock();
    if json {
        serde_json::to_writer_pretty(&mut out, &catalog.games())?;
        writeln!(out)?;
        return Ok(());
    }
    let rows: Vec<[String; 6]> = catalog
        .games()
        .iter()
        .map(|game| {
            let score = game
                .official_score
                .map_or_else(|| "-".to_owned(), |s| format!("{}-{}", s.home, s.away));
            let unknown = || "unknown".to_owned();
            [
                game.id.to_string(),
                game.date.clone().unwrap_or_else(unknown),
                match (&game.competition, &game.season) {
                    (Some(competition), Some(season)) => format!("{competition} {season}"),
                    (competition, _) => competition.clone().unwrap_or_else(unknown),
                },
                format!("{} {score} {}", game.home.name, game.away.name),
                if game.has_lineups { "yes" } else { "no" }.to_owned(),
                // "20:45:00.000" reads better as 20:45.
                game.kick_off
                    .as_deref()
                    .unwrap_or("")
                    .chars()
                    .take(5)
                    .collect(),
            ]
        })
        .collect();
    let header = [
        "id",
        "date",
        "competition",
        "match (official score)",
        "lineups",
        "kick-off",
    ];
    let mut widths = header.map(str::len);
    for row in &rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let header = header.map(str::to_owned);
    for row in std::iter::once(&header).chain(&rows) {
        let cells: Vec<String> = row
            .iter()
            .zip(widths)
            .map(|(cell, width)| format!("{cell:<width$}"))
            .collect();
        writeln!(out, "{}", cells.join("  ").trim_end())?;
    }
    for game in catalog.games() {
        for missing in &game.missing {
            writeln!(out, "{}: no {missing}", game.id)?;
        }
    }
    Ok(())
}

fn fold(data_dir: &Path, game: &str, print_updates: bool) -> anyhow::Result<()> {
    let LoadedGame { info, events } = if game.bytes().all(|b| b.is_ascii_digit()) {
        livescore_app::open_catalog(data_dir)?.load(game)?
    } else {
        // A path: the data directory's metadata helps if there is one, but is not required.
        let catalog = Catalog::open(data_dir)
            .inspect_err(|err| tracing::warn!("folding without match metadata: {err}"))
            .ok();
        livescore_catalog::load_file(Path::new(game), catalog.as_ref())?
    };
    let _span = info_span!("fold", match_id = info.match_id).entered();
    let (fold, updates) = fold_match(info, &events);
    tracing::info!(
        events = events.len(),
        updates = updates.len(),
        "folded {} {}-{} {}",
        fold.state.info.home.name,
        fold.state.score.home,
        fold.state.score.away,
        fold.state.info.away.name
    );
    let mut out = io::BufWriter::new(io::stdout().lock());
    if print_updates {
        for update in &updates {
            serde_json::to_writer(&mut out, update)?;
            writeln!(out)?;
        }
    } else {
        serde_json::to_writer_pretty(&mut out, &fold.state)?;
        writeln!(out)?;
    }
    out.flush()?;
    Ok(())
}
