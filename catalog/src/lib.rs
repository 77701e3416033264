//! The data directory: which StatsBomb games can be replayed, and reading their files.
//!
//! A data directory is laid out as StatsBomb's open-data repository is:
//! `matches/<competition>/<season>.json` (match metadata), `events/<match_id>.json` (one match's
//! events) and, optionally, `lineups/<match_id>.json`. A game is replayable when it has both
//! metadata and an events file. This is the only crate that reads those files; everything after it
//! works on parsed values.
//!
//! Game ids from outside (a URL, a command line) go through [`parse_game_id`] and
//! [`Catalog::game`] before any path is built from them, so a path-like id never reaches the disk.

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use livescore_domain::state::Score;
use livescore_domain::statsbomb::{self, Event, MatchMetadata, ParseError};
use livescore_domain::{InfoError, MatchInfo, TeamRef};
use serde::Serialize;

#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    #[error("cannot read {path}: {source}")]
    Read { path: PathBuf, source: io::Error },
    #[error("{path}: {source}")]
    BadFile { path: PathBuf, source: ParseError },
    #[error("{path}: {source}")]
    BadMatch { path: PathBuf, source: InfoError },
    #[error("match {id} is listed twice: in {first} and in {second}")]
    DuplicateMatch {
        id: u64,
        first: PathBuf,
        second: PathBuf,
    },
    #[error("{0:?} is not a game id: a game id is a StatsBomb match id, digits only")]
    BadGameId(String),
    #[error("there is no game {0} in the catalog (`livescore games` lists them)")]
    UnknownGame(u64),
    #[error("cannot tell the match id of {0}: StatsBomb events files are named <match_id>.json")]
    NoMatchId(PathBuf),
}

/// A game that can be replayed, as the catalog lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Game {
    pub id: u64,
    /// `None` for an events file without match metadata (the public event dumps come so).
    pub competition: Option<String>,
    pub season: Option<String>,
    /// `YYYY-MM-DD`; `None` without match metadata.
    pub date: Option<String>,
    pub kick_off: Option<String>,
    pub home: TeamRef,
    pub away: TeamRef,
    /// The official final score from the match metadata.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<livescore_domain::state::ScoreSchema>))]
    pub official_score: Option<Score>,
    pub has_lineups: bool,
    /// What the data directory does not say about this game, for the people who list it:
    /// empty when it has everything.
    pub missing: Vec<String>,
}

/// What a game without a `matches/` entry lacks.
pub const NO_METADATA: &str =
    "match metadata (competition, season, date, kick-off; no official score to compare)";

/// A game's events in replay order, with the match info they were checked against.
#[derive(Debug, Clone)]
pub struct LoadedGame {
    pub info: MatchInfo,
    pub events: Vec<Event>,
}

/// The replayable games of one data directory.
#[derive(Debug, Clone)]
pub struct Catalog {
    dir: PathBuf,
    games: BTreeMap<u64, Game>,
    metadata: BTreeMap<u64, MatchMetadata>,
    notices: Vec<String>,
}

/// Checks a game id from outside: digits only (so never a path), and a number that fits.
pub fn parse_game_id(text: &str) -> Result<u64, CatalogError> {
    let valid = !text.is_empty() && text.len() <= 19 && text.bytes().all(|b| b.is_ascii_digit());
    valid
        .then(|| text.parse().ok())
        .flatten()
        .ok_or_else(|| CatalogError::BadGameId(livescore_domain::excerpt(text)))
}

impl Catalog {
    /// Reads the metadata files and the list of events files of `dir`. A metadata file that is not
    /// valid JSON is an error naming it. An events file without metadata is read at once: listed
    /// with its teams from its Starting XI events (and what it misses), or left out and noted
    /// when it cannot be replayed.
    pub fn open(dir: impl Into<PathBuf>) -> Result<Catalog, CatalogError> {
        let dir = dir.into();
        let mut metadata = BTreeMap::new();
        let mut found_in: BTreeMap<u64, PathBuf> = BTreeMap::new();
        if !dir.is_dir() {
            return Err(CatalogError::Read {
                path: dir,
                source: io::Error::new(io::ErrorKind::NotFound, "no such directory"),
            });
        }
        // The public event dumps come without match metadata: no `matches/` is fine.
        let matches = dir.join("matches");
        let metadata_files = if matches.exists() {
            json_files(&matches, true)?
        } else {
            Vec::new()
        };
        for path in metadata_files {
            for entry in
                statsbomb::parse_matches(&read(&path)?).map_err(|source| CatalogError::BadFile {
                    path: path.clone(),
                    source,
                })?
            {
                if let Some(first) = found_in.insert(entry.match_id, path.clone()) {
                    return Err(CatalogError::DuplicateMatch {
                        id: entry.match_id,
                        first,
                        second: path,
                    });
                }
                metadata.insert(entry.match_id, entry);
            }
        }

        let mut games = BTreeMap::new();
        let mut notices = Vec::new();
        for path in json_files(&dir.join("events"), false)? {
            let Some(id) = match_id_of(&path) else {
                notices.push(format!(
                    "{}: left out, the name is not <match_id>.json",
                    path.display()
                ));
                continue;
            };
            let has_lineups = dir.join("lineups").join(format!("{id}.json")).is_file();
            let game = match metadata.get(&id) {
                Some(meta) => Game::from_metadata(meta, has_lineups),
                // The original demo's rule: any events file in the folder is a game.
                None => match load_events(&path, id, None) {
                    Ok(loaded) => Game::from_events(&loaded.info, has_lineups),
                    Err(err) => {
                        notices.push(format!(
                            "{}: left out, no entry for match {id} in {} and {err}",
                            path.display(),
                            dir.join("matches").display()
                        ));
                        continue;
                    }
                },
            };
            games.insert(id, game);
        }
        Ok(Catalog {
            dir,
            games,
            metadata,
            notices,
        })
    }

    /// The replayable games, oldest first; those of unknown date last.
    pub fn games(&self) -> Vec<&Game> {
        let mut games: Vec<&Game> = self.games.values().collect();
        fn key(game: &Game) -> (bool, Option<&str>, u64) {
            (game.date.is_none(), game.date.as_deref(), game.id)
        }
        games.sort_by(|a, b| key(a).cmp(&key(b)));
        games
    }

    /// What the catalog left out, and why: for someone adding a data file.
    pub fn notices(&self) -> &[String] {
        &self.notices
    }

    /// The game with this id, checked as [`parse_game_id`] does.
    pub fn game(&self, id: &str) -> Result<&Game, CatalogError> {
        let id = parse_game_id(id)?;
        self.games.get(&id).ok_or(CatalogError::UnknownGame(id))
    }

    /// The metadata entry of a match, whether or not its events file is here.
    pub fn metadata(&self, id: u64) -> Option<&MatchMetadata> {
        self.metadata.get(&id)
    }

    /// Reads and checks the events of a catalogued game, with the players' nicknames from its
    /// lineups file if it has one.
    pub fn load(&self, id: &str) -> Result<LoadedGame, CatalogError> {
        let game = self.game(id)?;
        load_file(
            &self.dir.join("events").join(format!("{}.json", game.id)),
            Some(self),
        )
    }

    /// The names players are known by, from `lineups/<id>.json`; none without that file.
    fn nicknames(&self, id: u64) -> Result<BTreeMap<u64, String>, CatalogError> {
        let path = self.dir.join("lineups").join(format!("{id}.json"));
        if !path.is_file() {
            return Ok(BTreeMap::new());
        }
        let lineups =
            statsbomb::parse_lineups(&read(&path)?).map_err(|source| CatalogError::BadFile {
                path: path.clone(),
                source,
            })?;
        Ok(statsbomb::nicknames(&lineups))
    }
}

/// Reads and checks an events file named `<match_id>.json`, with metadata (and nicknames from the
/// lineups) from `catalog` if given.
pub fn load_file(path: &Path, catalog: Option<&Catalog>) -> Result<LoadedGame, CatalogError> {
    let id = match_id_of(path).ok_or_else(|| CatalogError::NoMatchId(path.to_owned()))?;
    let mut loaded = load_events(path, id, catalog.and_then(|catalog| catalog.metadata(id)))?;
    if let Some(catalog) = catalog {
        loaded.info.nicknames = catalog.nicknames(id)?;
    }
    Ok(loaded)
}

fn load_events(
    path: &Path,
    id: u64,
    metadata: Option<&MatchMetadata>,
) -> Result<LoadedGame, CatalogError> {
    let events = statsbomb::parse_events(&read(path)?).map_err(|source| CatalogError::BadFile {
        path: path.to_owned(),
        source,
    })?;
    let info = MatchInfo::new(id, metadata, &events).map_err(|source| CatalogError::BadMatch {
        path: path.to_owned(),
        source,
    })?;
    Ok(LoadedGame { info, events })
}

impl Game {
    fn from_metadata(meta: &MatchMetadata, has_lineups: bool) -> Game {
        Game {
            id: meta.match_id,
            competition: Some(meta.competition.competition_name.clone()),
            season: Some(meta.season.season_name.clone()),
            date: Some(meta.match_date.clone()),
            kick_off: meta.kick_off.clone(),
            home: TeamRef {
                id: meta.home_team.id,
                name: meta.home_team.name.clone(),
            },
            away: TeamRef {
                id: meta.away_team.id,
                name: meta.away_team.name.clone(),
            },
            official_score: meta
                .home_score
                .zip(meta.away_score)
                .map(|(home, away)| Score { home, away }),
            has_lineups,
            missing: Vec::new(),
        }
    }

    /// A game known from its events alone (teams from the Starting XI events).
    fn from_events(info: &MatchInfo, has_lineups: bool) -> Game {
        Game {
            id: info.match_id,
            competition: None,
            season: None,
            date: None,
            kick_off: None,
            home: info.home.clone(),
            away: info.away.clone(),
            official_score: None,
            has_lineups,
            missing: vec![NO_METADATA.to_owned()],
        }
    }
}

fn match_id_of(path: &Path) -> Option<u64> {
    let stem = path.file_stem()?.to_str()?;
    parse_game_id(stem).ok()
}

fn read(path: &Path) -> Result<Vec<u8>, CatalogError> {
    fs::read(path).map_err(|source| CatalogError::Read {
        path: path.to_owned(),
        source,
    })
}

/// The `.json` files of `dir` (and of its subdirectories, one level down, if `nested`), sorted so
/// that every run sees them in the same order.
fn json_files(dir: &Path, nested: bool) -> Result<Vec<PathBuf>, CatalogError> {
    let entries = |dir: &Path| -> Result<Vec<PathBuf>, CatalogError> {
        let listing = fs::read_dir(dir).map_err(|source| CatalogError::Read {
            path: dir.to_owned(),
            source,
        })?;
        let mut paths = Vec::new();
        for entry in listing {
            let entry = entry.map_err(|source| CatalogError::Read {
                path: dir.to_owned(),
                source,
            })?;
            paths.push(entry.path());
        }
        paths.sort();
        Ok(paths)
    };
    let mut files = Vec::new();
    for path in entries(dir)? {
        if nested && path.is_dir() {
            files.extend(entries(&path)?.into_iter().filter(|p| is_json(p)));
        } else if is_json(&path) {
            files.push(path);
        }
    }
    Ok(files)
}

fn is_json(path: &Path) -> bool {
    path.is_file() && path.extension().is_some_and(|ext| ext == "json")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn game_ids_are_digits_only() {
        assert_eq!(parse_game_id("7471").unwrap(), 7471);
        for bad in [
            "",
            "../etc/passwd",
            "7471.json",
            "-1",
            "12a",
            "99999999999999999999",
            " 1",
        ] {
            assert!(
                matches!(parse_game_id(bad), Err(CatalogError::BadGameId(_))),
                "{bad:?}"
            );
        }
    }
}
