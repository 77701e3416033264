//! The `livescore` command line: one binary, one subcommand per job. This file only parses
//! arguments and prints; the work is done by the workspace's crates.

use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
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
    /// The data directory: StatsBomb `matches/`, `events/` and `lineups/`.
    #[arg(long, env = "DATA_DIR", default_value = "data", global = true)]
    data_dir: PathBuf,
    /// Log as JSON lines instead of text (logs go to stderr).
    #[arg(long, env = "LOG_JSON", global = true)]
    log_json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// List the replayable games of the data directory.
    Games {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Fold a match and print its final state as JSON (or, with --updates, every update).
    Fold {
        /// A game id from `livescore games`, or the path of a StatsBomb events file
        /// (named <match_id>.json; the data directory's metadata is used if it has the match).
        game: String,
        /// Print the updates viewers would receive, one JSON object per line, instead.
        #[arg(long)]
        updates: bool,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.log_json);
    let result = match cli.command {
        Command::Games { json } => games(&cli.data_dir, json),
        Command::Fold { game, updates } => fold(&cli.data_dir, &game, updates),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        // `livescore fold 7471 | head` is not a failure.
        Err(err) if is_broken_pipe(&err) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
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

fn init_logging(json: bool) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(io::stderr);
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
}

fn open_catalog(data_dir: &Path) -> anyhow::Result<Catalog> {
    Catalog::open(data_dir).with_context(|| {
        format!(
            "cannot open the data directory {} (set --data-dir or DATA_DIR)",
            data_dir.display()
        )
    })
}

fn games(data_dir: &Path, json: bool) -> anyhow::Result<()> {
    let catalog = open_catalog(data_dir)?;
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
            [
                game.id.to_string(),
                game.date.clone(),
                format!("{} {}", game.competition, game.season),
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
    Ok(())
}

fn fold(data_dir: &Path, game: &str, print_updates: bool) -> anyhow::Result<()> {
    let LoadedGame { info, events } = if game.bytes().all(|b| b.is_ascii_digit()) {
        open_catalog(data_dir)?.load(game)?
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
