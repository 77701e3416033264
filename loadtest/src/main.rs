//! `loadtest`: N viewers of livescore, over SSE and/or WebSocket, on the games list and/or match
//! streams, against one or more URLs (a replica, or nginx). It starts K replays at speed S through
//! the admin routes (or follows live ones), and measures connections, delivered updates,
//! end-to-end latency (from the producer's emission time, carried in every update, to receipt;
//! goals apart), missing/duplicated/reordered updates per viewer, and the server's memory per
//! connection. A progress line while it runs, a table (or `--json`) at the end, SVG plots with
//! `--plot`. Exits non-zero when any viewer lost, repeated or reordered an update.
//!
//!   cargo run --release -p livescore-loadtest -- --url http://127.0.0.1:8080 \
//!       --clients 10000 --transport sse --stream list --games 4 --speed 60 --token $ADMIN_TOKEN

mod check;
mod client;
mod fold_check;
mod plot;
mod server;
mod stats;

use std::net::ToSocketAddrs;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::{Parser, ValueEnum};
use hdrhistogram::Histogram;
use serde::Serialize;
use tokio::sync::watch;

use crate::client::{Topic, Transport, Viewer};
use crate::stats::Stats;

#[derive(Parser, Debug)]
#[command(
    name = "loadtest",
    about = "Load test livescore: viewers, latency, loss, memory"
)]
struct Args {
    /// Where viewers connect (repeat for several replicas; viewers are spread round-robin).
    #[arg(long = "url", default_value = "http://127.0.0.1:8080")]
    urls: Vec<String>,
    /// Where replays are started (the producer, or nginx, or `up`); default: the first --url.
    #[arg(long)]
    admin_url: Option<String>,
    /// The admin token.
    #[arg(long, env = "ADMIN_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// How many viewers.
    #[arg(long, default_value_t = 1000)]
    clients: usize,
    /// SSE, WebSocket, or half of each.
    #[arg(long, value_enum, default_value = "sse")]
    transport: TransportChoice,
    /// The games list, the match streams (viewers spread over the games), or half of each.
    #[arg(long, value_enum, default_value = "list")]
    stream: StreamChoice,
    /// How many replays to start (the first games of the catalog).
    #[arg(long, default_value_t = 4)]
    games: usize,
    /// Replay speed: a factor of real time, or `max`.
    #[arg(long, default_value = "60")]
    speed: String,
    /// Follow the replays that are live now instead of starting new ones.
    #[arg(long)]
    attach: bool,
    /// No replays: open the viewers, hold them `--hold` seconds, measure memory, stop.
    #[arg(long)]
    idle: bool,
    /// Seconds to hold idle viewers before measuring.
    #[arg(long, default_value_t = 10)]
    hold: u64,
    /// A viewer whose connection broke reconnects 200 ms plus up to this many ms later, spread
    /// over the viewers; 0: all of them exactly 200 ms later (no jitter).
    #[arg(long, default_value_t = 800)]
    reconnect_jitter_ms: u64,
    /// Where viewers reconnect when their connection breaks, in turn (default: where they were):
    /// the other replicas of a reconnect storm (loadtest/storm.sh).
    #[arg(long = "failover-url")]
    failover_urls: Vec<String>,
    /// New connections per second while ramping up.
    #[arg(long, default_value_t = 2000)]
    connect_rate: u32,
    /// Stop after this many seconds, finished or not.
    #[arg(long, default_value_t = 600)]
    max_seconds: u64,
    /// Replicas whose /metrics give memory and connections (default: every --url).
    #[arg(long = "metrics-url")]
    metrics_urls: Vec<String>,
    /// Print the results as JSON instead of a table.
    #[arg(long)]
    json: bool,
    /// Write latency.svg and timeline.svg into this directory.
    #[arg(long)]
    plot: Option<PathBuf>,
    /// Allow URLs that are not on this machine (the default refuses them).
    #[arg(long)]
    allow_remote: bool,
    /// No progress bar (for CI logs).
    #[arg(long)]
    quiet: bool,
    /// After the run, check that each finished replay's state, as served, equals the fold of
    /// its file in this data directory (what `livescore fold` prints).
    #[arg(long)]
    fold_data: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum TransportChoice {
    Sse,
    Ws,
    Mixed,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum StreamChoice {
    List,
    Match,
    Both,
}

#[derive(Serialize)]
struct Latency {
    samples: u64,
    p50_ms: f64,
    p90_ms: f64,
    p99_ms: f64,
    p999_ms: f64,
    max_ms: f64,
}

impl Latency {
    fn of(h: &Histogram<u64>) -> Self {
        let ms = |q: f64| h.value_at_quantile(q) as f64 / 1000.0;
        Latency {
            samples: h.len(),
            p50_ms: ms(0.5),
            p90_ms: ms(0.9),
            p99_ms: ms(0.99),
            p999_ms: ms(0.999),
            max_ms: h.max() as f64 / 1000.0,
        }
    }
}

#[derive(Serialize)]
struct Report {
    clients: usize,
    urls: Vec<String>,
    transport: String,
    stream: String,
    games: Vec<(u64, u64)>,
    speed: String,
    seconds: f64,
    peak_connected: u64,
    connects: u64,
    failed_connects: u64,
    reconnects: u64,
    ramp_seconds: f64,
    connect_rate_per_s: f64,
    connect_time: Latency,
    messages: u64,
    presence: u64,
    updates: u64,
    updates_per_s: f64,
    goals: u64,
    latency: Latency,
    goal_latency: Latency,
    integrity: check::Integrity,
    /// With `--fold-data`: the served states compared with the folds.
    folds: Option<fold_check::Folds>,
    /// Server memory per connection, in bytes, summed over the metrics URLs.
    bytes_per_connection: Option<f64>,
    server_connections: u64,
    server_resident_bytes_before: u64,
    server_resident_bytes_after: u64,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("error: cannot start the runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(args)) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(2),
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

/// Refuses URLs that do not resolve to this machine, unless allowed.
fn check_loopback(urls: &[String], allow_remote: bool) -> anyhow::Result<()> {
    for raw in urls {
        let parsed = url::Url::parse(raw).with_context(|| format!("not a URL: {raw}"))?;
        if !matches!(parsed.scheme(), "http") {
            bail!("{raw}: only http:// URLs (WebSocket URLs are derived from them)");
        }
        if allow_remote {
            continue;
        }
        let host = parsed.host_str().unwrap_or_default();
        let port = parsed.port_or_known_default().unwrap_or(80);
        let addrs: Vec<_> = (host, port)
            .to_socket_addrs()
            .with_context(|| format!("cannot resolve {host}"))?
            .collect();
        if addrs.is_empty() || !addrs.iter().all(|a| a.ip().is_loopback()) {
            bail!("{raw} is not a loopback address: pass --allow-remote to load another machine");
        }
    }
    Ok(())
}

async fn run(args: Args) -> anyhow::Result<bool> {
    let urls: Vec<String> = args
        .urls
        .iter()
        .map(|u| u.trim_end_matches('/').to_owned())
        .collect();
    let admin = args
        .admin_url
        .clone()
        .unwrap_or_else(|| urls[0].clone())
        .trim_end_matches('/')
        .to_owned();
    let metrics_urls = if args.metrics_urls.is_empty() {
        urls.clone()
    } else {
        args.metrics_urls.clone()
    };
    let mut all = urls.clone();
    all.push(admin.clone());
    all.extend(metrics_urls.iter().cloned());
    check_loopback(&all, args.allow_remote)?;
    if args.clients == 0 {
        bail!("--clients must be at least 1");
    }
    // Each viewer is a socket: raise the soft limit to the hard one.
    let limit = rlimit::increase_nofile_limit(u64::MAX).context("cannot raise the fd limit")?;
    if limit < args.clients as u64 + 64 {
        eprintln!(
            "warning: the file-descriptor limit is {limit}, fewer than {} viewers need",
            args.clients
        );
    }

    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .context("cannot build the HTTP client")?;

    // The replays to watch.
    let watched: Vec<(u64, u64)> = if args.idle {
        Vec::new()
    } else if args.attach {
        let live = server::live_games(&http, &urls[0]).await?;
        if live.is_empty() {
            bail!("--attach: no live game on {}", urls[0]);
        }
        live
    } else {
        let token = args
            .token
            .clone()
            .context("starting replays needs the admin token: --token or ADMIN_TOKEN")?;
        let ids = server::catalog(&http, &admin, args.games).await?;
        // At real-time speed while the viewers connect; at the chosen speed once they are all
        // there, so that every viewer sees the whole match.
        let mut started = Vec::new();
        for id in ids {
            started.push(server::start(&http, &admin, &token, id, "1").await?);
        }
        for (game, run) in &started {
            for url in &urls {
                server::wait_served(&http, url, *game, *run).await?;
            }
        }
        started
    };

    let before = usage(&http, &metrics_urls).await;
    let stats = Arc::new(Stats::new());
    let (stop_tx, stop_rx) = watch::channel(false);
    let watched = Arc::new(watched);
    let ramp_began = Instant::now();
    let progress = (!args.quiet).then(|| {
        let bar = indicatif::ProgressBar::new(args.clients as u64);
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "{elapsed:>4} [{bar:30}] {pos}/{len} connected · {msg}",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
            .progress_chars("=> "),
        );
        bar
    });

    // Ramp up at the connect rate.
    let mut viewers = Vec::with_capacity(args.clients);
    let per_tick = (args.connect_rate / 100).max(1) as usize;
    let mut tick = tokio::time::interval(Duration::from_millis(10));
    let mut index = 0;
    let failover = Arc::new(args.failover_urls.clone());
    while index < args.clients {
        tick.tick().await;
        for _ in 0..per_tick.min(args.clients - index) {
            let viewer = Viewer {
                index,
                base: urls[index % urls.len()].clone(),
                transport: match args.transport {
                    TransportChoice::Sse => Transport::Sse,
                    TransportChoice::Ws => Transport::WebSocket,
                    TransportChoice::Mixed if index.is_multiple_of(2) => Transport::Sse,
                    TransportChoice::Mixed => Transport::WebSocket,
                },
                topic: topic_for(args.stream, index, &watched),
                watched: Arc::clone(&watched),
                stats: Arc::clone(&stats),
                stop: stop_rx.clone(),
                http: http.clone(),
                reconnect_jitter_ms: args.reconnect_jitter_ms,
                failover: Arc::clone(&failover),
            };
            viewers.push(tokio::spawn(viewer.run()));
            index += 1;
        }
        if let Some(bar) = &progress {
            bar.set_position(Stats::get(&stats.connected));
        }
    }

    // Wait for everyone to connect, then (idle) hold or (replays) wait for the end.
    let deadline = Instant::now() + Duration::from_secs(args.max_seconds);
    let mut ramp_seconds = None;
    let mut peak = 0;
    let mut after = None;
    let mut last_updates = 0;
    let mut last_sample = Instant::now();
    loop {
        tokio::time::sleep(Duration::from_millis(250)).await;
        let connected = Stats::get(&stats.connected);
        peak = peak.max(connected);
        if ramp_seconds.is_none() && connected >= args.clients as u64 {
            ramp_seconds = Some(ramp_began.elapsed().as_secs_f64());
            if !args.idle {
                after = Some(usage(&http, &metrics_urls).await);
            }
            if !args.idle && !args.attach {
                let token = args.token.as_deref().unwrap_or_default();
                for (game, _) in watched.iter() {
                    server::set_speed(&http, &admin, token, *game, &args.speed).await?;
                }
            }
        }
        let updates = Stats::get(&stats.updates);
        let rate = (updates - last_updates) as f64 / last_sample.elapsed().as_secs_f64();
        last_updates = updates;
        last_sample = Instant::now();
        if let Some(bar) = &progress {
            bar.set_position(connected);
            let p99 = stats.latency.merged().value_at_quantile(0.99) as f64 / 1000.0;
            bar.set_message(format!(
                "{updates} updates ({rate:.0}/s) · p99 {p99:.1} ms · finished {} · failed connects {}",
                Stats::get(&stats.finished_clients),
                Stats::get(&stats.failed_connects)
            ));
        }
        if args.idle {
            if let Some(ramp) = ramp_seconds
                && ramp_began.elapsed().as_secs_f64() >= ramp + args.hold as f64
            {
                after = Some(usage(&http, &metrics_urls).await);
                break;
            }
        } else if Stats::get(&stats.finished_clients) >= args.clients as u64 {
            break;
        }
        if Instant::now() >= deadline {
            eprintln!("stopping: --max-seconds {} reached", args.max_seconds);
            break;
        }
    }
    let _ = stop_tx.send(true);
    let mut seen = Vec::with_capacity(viewers.len());
    for viewer in viewers {
        if let Ok(viewer_seen) = viewer.await {
            seen.push(viewer_seen);
        }
    }
    if let Some(bar) = &progress {
        bar.finish_and_clear();
    }
    let seconds = stats.started.elapsed().as_secs_f64();
    let integrity = if args.idle {
        check::Integrity::default()
    } else {
        check::check(&http, &urls[0], &seen).await
    };

    let folds = match &args.fold_data {
        Some(dir) => Some(fold_check::check(&http, &urls[0], dir, &watched).await),
        None => None,
    };

    let after = after.unwrap_or_default();
    let connections_added = after.connections.saturating_sub(before.connections);
    let latency = stats.latency.merged();
    let goal_latency = stats.goal_latency.merged();
    let report = Report {
        clients: args.clients,
        urls: urls.clone(),
        transport: format!("{:?}", args.transport).to_lowercase(),
        stream: format!("{:?}", args.stream).to_lowercase(),
        games: watched.to_vec(),
        // Attached replays run at whatever speed they were started with.
        speed: if args.attach {
            "as started".to_owned()
        } else {
            args.speed.clone()
        },
        seconds,
        peak_connected: peak,
        connects: Stats::get(&stats.connects),
        failed_connects: Stats::get(&stats.failed_connects),
        reconnects: Stats::get(&stats.reconnects),
        ramp_seconds: ramp_seconds.unwrap_or(f64::NAN),
        connect_rate_per_s: ramp_seconds.map_or(f64::NAN, |s| args.clients as f64 / s),
        connect_time: Latency::of(&stats.connect_time.merged()),
        messages: Stats::get(&stats.messages),
        presence: Stats::get(&stats.presence),
        updates: Stats::get(&stats.updates),
        updates_per_s: Stats::get(&stats.updates) as f64 / seconds,
        goals: Stats::get(&stats.goals),
        latency: Latency::of(&latency),
        goal_latency: Latency::of(&goal_latency),
        integrity,
        folds,
        bytes_per_connection: (connections_added > 0 && after.resident_bytes > 0).then(|| {
            after.resident_bytes.saturating_sub(before.resident_bytes) as f64
                / connections_added as f64
        }),
        server_connections: after.connections,
        server_resident_bytes_before: before.resident_bytes,
        server_resident_bytes_after: after.resident_bytes,
    };
    if let Some(dir) = &args.plot {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        let svg = plot::latency(&[
            ("every update", "#3b7dd8", &latency),
            ("goals", "#d83b3b", &goal_latency),
        ]);
        std::fs::write(dir.join("latency.svg"), svg)?;
        let timeline = stats.timeline(seconds.ceil() as usize);
        std::fs::write(dir.join("timeline.svg"), plot::timeline(&timeline))?;
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print_table(&report);
    }
    let complete = args.idle || report.integrity.completed == args.clients as u64;
    let folds_clean = report.folds.as_ref().is_none_or(fold_check::Folds::clean);
    Ok(report.integrity.clean() && complete && folds_clean)
}

/// The topic of viewer `index`: the list, or one of the watched games in turn.
fn topic_for(stream: StreamChoice, index: usize, watched: &[(u64, u64)]) -> Topic {
    let game = |i: usize| {
        watched
            .get(i % watched.len().max(1))
            .map_or(Topic::Feed, |(id, _)| Topic::Match(*id))
    };
    match stream {
        StreamChoice::List => Topic::Feed,
        StreamChoice::Match => game(index),
        StreamChoice::Both if index.is_multiple_of(2) => Topic::Feed,
        StreamChoice::Both => game(index / 2),
    }
}

/// Sums the usage of every metrics URL (a replica that does not answer counts as zero).
async fn usage(http: &reqwest::Client, urls: &[String]) -> server::Usage {
    let mut total = server::Usage::default();
    for url in urls {
        match server::usage(http, url).await {
            Ok(usage) => {
                total.resident_bytes += usage.resident_bytes;
                total.connections += usage.connections;
            }
            Err(err) => eprintln!("warning: {err:#}"),
        }
    }
    total
}

fn print_table(r: &Report) {
    let row = |name: &str, value: String| println!("  {name:<34} {value}");
    let lat = |l: &Latency| {
        format!(
            "p50 {:.1} · p90 {:.1} · p99 {:.1} · p99.9 {:.1} · max {:.1} ms ({} samples)",
            l.p50_ms, l.p90_ms, l.p99_ms, l.p999_ms, l.max_ms, l.samples
        )
    };
    println!(
        "\nloadtest: {} viewers ({}, {} stream) on {}",
        r.clients,
        r.transport,
        r.stream,
        r.urls.join(", ")
    );
    row("replays", format!("{} at speed {}", r.games.len(), r.speed));
    row("duration", format!("{:.1} s", r.seconds));
    row(
        "connections held (peak)",
        format!("{} of {}", r.peak_connected, r.clients),
    );
    row(
        "ramp-up",
        format!(
            "{:.1} s ({:.0} connects/s)",
            r.ramp_seconds, r.connect_rate_per_s
        ),
    );
    row("connect time", lat(&r.connect_time));
    row(
        "failed connects / reconnects",
        format!("{} / {}", r.failed_connects, r.reconnects),
    );
    row(
        "updates delivered",
        format!("{} ({:.0}/s)", r.updates, r.updates_per_s),
    );
    row("presence messages", r.presence.to_string());
    row("latency, every update", lat(&r.latency));
    row(
        &format!("latency, goals ({})", r.goals),
        lat(&r.goal_latency),
    );
    let i = &r.integrity;
    row(
        "viewers checked / completed",
        format!("{} / {} of {}", i.checked, i.completed, i.viewers),
    );
    row(
        "missing / duplicated / out of order",
        format!("{} / {} / {}", i.missing, i.duplicated, i.out_of_order),
    );
    row(
        "mismatched / resyncs",
        format!("{} / {}", i.mismatched, i.resyncs),
    );
    for problem in &i.problems {
        row("problem", problem.clone());
    }
    if let Some(folds) = &r.folds {
        row(
            "finished states equal to the fold",
            format!(
                "{} of {} ({} replays unfinished)",
                folds.equal, folds.checked, folds.unfinished
            ),
        );
        for problem in &folds.problems {
            row("problem", problem.clone());
        }
    }
    row(
        "server memory per connection",
        r.bytes_per_connection.map_or_else(
            || "unknown (no /metrics)".to_owned(),
            |b| {
                format!(
                    "{:.1} KB ({} connections, RSS {:.1} -> {:.1} MB)",
                    b / 1000.0,
                    r.server_connections,
                    r.server_resident_bytes_before as f64 / 1e6,
                    r.server_resident_bytes_after as f64 / 1e6
                )
            },
        ),
    );
}
