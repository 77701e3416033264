//! The state check (`--fold-data DIR`): after the run, each watched game's state as the server
//! serves it (`GET /games/{id}`) must equal the fold of its data file, as `livescore fold`
//! computes it, for every replay that finished. Replays that did not finish (failed, stopped,
//! still running when the run was cut short) are counted apart.

use std::path::Path;

use livescore_catalog::Catalog;
use livescore_domain::{MatchState, fold_match};
use serde::{Deserialize, Serialize};

/// What the state check found.
#[derive(Debug, Default, Clone, Serialize)]
pub struct Folds {
    /// Finished replays whose state was compared with the fold.
    pub checked: u64,
    pub equal: u64,
    /// Replays that did not finish (their run's status is not `finished`).
    pub unfinished: u64,
    pub problems: Vec<String>,
}

impl Folds {
    pub fn clean(&self) -> bool {
        self.equal == self.checked && self.problems.is_empty()
    }
}

#[derive(Deserialize)]
struct GameView {
    state: MatchState,
    replay: ReplayView,
}

#[derive(Deserialize)]
struct ReplayView {
    run: u64,
    status: String,
}

/// Compares each of `watched` (game, run) on `base` with the fold of `data_dir`'s file.
pub async fn check(
    http: &reqwest::Client,
    base: &str,
    data_dir: &Path,
    watched: &[(u64, u64)],
) -> Folds {
    let mut folds = Folds::default();
    let catalog = match Catalog::open(data_dir) {
        Ok(catalog) => catalog,
        Err(err) => {
            folds
                .problems
                .push(format!("{}: {err}", data_dir.display()));
            return folds;
        }
    };
    for &(game, run) in watched {
        let served = match served(http, base, game).await {
            Ok(served) => served,
            Err(problem) => {
                folds.problems.push(problem);
                continue;
            }
        };
        if served.replay.run != run || served.replay.status != "finished" {
            folds.unfinished += 1;
            continue;
        }
        let folded = match catalog.load(&game.to_string()) {
            Ok(loaded) => fold_match(loaded.info, &loaded.events).0.state,
            Err(err) => {
                folds.problems.push(format!("game {game}: {err}"));
                continue;
            }
        };
        folds.checked += 1;
        if served.state == folded {
            folds.equal += 1;
        } else {
            folds.problems.push(format!(
                "game {game}: the served state is not the fold of its file (served {}-{}, folded {}-{})",
                served.state.score.home,
                served.state.score.away,
                folded.score.home,
                folded.score.away
            ));
        }
    }
    folds
}

async fn served(http: &reqwest::Client, base: &str, game: u64) -> Result<GameView, String> {
    let url = format!("{base}/games/{game}");
    let body = http
        .get(&url)
        .send()
        .await
        .and_then(reqwest::Response::error_for_status)
        .map_err(|err| format!("GET {url}: {err}"))?
        .text()
        .await
        .map_err(|err| format!("GET {url}: {err}"))?;
    serde_json::from_str(&body).map_err(|err| format!("GET {url}: not a game: {err}"))
}
