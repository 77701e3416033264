//! The catalog over the shipped data directory, and over broken ones: every bad input gets an
//! error that names the file and, for bad JSON, the position.

// Test helpers may unwrap: a panic in a test is a failure with its message.
#![allow(clippy::unwrap_used)]

use std::fs;
use std::path::{Path, PathBuf};

use livescore_catalog::{Catalog, CatalogError, load_file};

fn shipped() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../data")
}

/// A data directory in a temporary folder holding a copy of one shipped match (7471).
fn scratch() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for sub in ["matches/49", "events", "lineups"] {
        fs::create_dir_all(dir.path().join(sub)).unwrap();
    }
    for file in ["matches/49/3.json", "events/7471.json", "lineups/7471.json"] {
        fs::copy(shipped().join(file), dir.path().join(file)).unwrap();
    }
    dir
}

fn write(dir: &Path, file: &str, contents: &str) {
    fs::write(dir.join(file), contents).unwrap();
}

#[test]
fn the_shipped_data_holds_seven_replayable_games() {
    let catalog = Catalog::open(shipped()).unwrap();
    let ids: Vec<u64> = catalog.games().iter().map(|g| g.id).collect();
    assert_eq!(ids, vec![18236, 7298, 7457, 7471, 15986, 3773387, 3788741]);
    assert!(catalog.notices().is_empty(), "{:?}", catalog.notices());
    let game = catalog.game("3788741").unwrap();
    assert_eq!(
        (game.home.name.as_str(), game.away.name.as_str()),
        ("Turkey", "Italy")
    );
    assert_eq!(game.official_score.map(|s| (s.home, s.away)), Some((0, 3)));
    assert!(game.has_lineups);
    assert!(!catalog.game("7298").unwrap().has_lineups);
}

#[test]
fn game_ids_that_are_unknown_or_not_ids_are_rejected_before_any_file_is_read() {
    let catalog = Catalog::open(shipped()).unwrap();
    assert!(matches!(
        catalog.game("1"),
        Err(CatalogError::UnknownGame(1))
    ));
    for bad in ["../../etc/passwd", "7471/../7471", "7471.json", ""] {
        let err = catalog.load(bad).unwrap_err();
        assert!(matches!(err, CatalogError::BadGameId(_)), "{bad:?}: {err}");
    }
}

#[test]
fn an_events_file_without_metadata_is_listed_with_its_teams_and_what_it_misses() {
    let dir = scratch();
    // A public event dump: the events of 7457 under another id, with no `matches/` entry.
    fs::copy(
        shipped().join("events/7457.json"),
        dir.path().join("events/123.json"),
    )
    .unwrap();
    write(dir.path(), "events/notes.json", "[]");
    write(dir.path(), "events/456.json", "[]");
    let catalog = Catalog::open(dir.path()).unwrap();
    assert_eq!(catalog.games().len(), 2);
    let game = catalog.game("123").unwrap();
    // The first Starting XI is the home team's.
    let shipped_game = Catalog::open(shipped())
        .unwrap()
        .game("7457")
        .unwrap()
        .clone();
    assert_eq!(game.home, shipped_game.home);
    assert_eq!(game.away, shipped_game.away);
    assert_eq!((&game.competition, &game.date), (&None, &None));
    assert_eq!(game.official_score, None);
    assert_eq!(game.missing, [livescore_catalog::NO_METADATA]);
    // Unknown dates list last; a game with metadata misses nothing.
    assert_eq!(catalog.games().last().unwrap().id, 123);
    assert!(catalog.games()[0].missing.is_empty());
    // It replays: the events load, with the teams from the events.
    let loaded = catalog.load("123").unwrap();
    assert_eq!(loaded.info.match_id, 123);
    assert_eq!(loaded.info.home, game.home);
    // What cannot be replayed is left out, and said why.
    let notices = catalog.notices().join("\n");
    assert!(
        notices.contains("456.json: left out, no entry for match 456"),
        "{notices}"
    );
    assert!(notices.contains("no events"), "{notices}");
    assert!(notices.contains("notes.json: left out"), "{notices}");
}

#[test]
fn a_metadata_file_that_is_not_json_names_the_file_and_position() {
    let dir = scratch();
    write(
        dir.path(),
        "matches/49/3.json",
        "[\n  {\"match_id\": 7471,\n  oops\n]",
    );
    let err = Catalog::open(dir.path()).unwrap_err().to_string();
    assert!(err.contains("matches/49/3.json: line 3, column 3"), "{err}");
}

#[test]
fn a_match_listed_twice_is_an_error() {
    let dir = scratch();
    fs::create_dir_all(dir.path().join("matches/50")).unwrap();
    fs::copy(
        shipped().join("matches/49/3.json"),
        dir.path().join("matches/50/1.json"),
    )
    .unwrap();
    let err = Catalog::open(dir.path()).unwrap_err();
    assert!(
        matches!(err, CatalogError::DuplicateMatch { id: 7457, .. }),
        "{err}"
    );
}

#[test]
fn a_broken_events_file_names_the_file_and_position() {
    let dir = scratch();
    let path = dir.path().join("events/7471.json");
    let text = fs::read_to_string(&path).unwrap();
    // Cut the file short in its third line.
    let cut: String = text.lines().take(3).collect::<Vec<_>>().join("\n");
    fs::write(&path, cut).unwrap();
    let catalog = Catalog::open(dir.path()).unwrap();
    let err = catalog.load("7471").unwrap_err().to_string();
    assert!(err.contains("events/7471.json: line 3"), "{err}");
    assert!(err.contains("EOF"), "{err}");
}

#[test]
fn a_loaded_game_names_its_players_as_its_lineups_file_does() {
    let catalog = Catalog::open(shipped()).unwrap();
    let barcelona = catalog.load("15986").unwrap();
    // The events call him "Lionel Andrés Messi Cuccittini".
    assert_eq!(barcelona.info.nicknames[&5503], "Lionel Messi");
    // 29 of the 36 players have a nickname; one of those is the player's full name.
    assert_eq!(barcelona.info.nicknames.len(), 28);
    // 7298 has no lineups file: the events' names stand.
    assert!(catalog.load("7298").unwrap().info.nicknames.is_empty());
}

#[test]
fn a_broken_lineups_file_names_the_file_and_position() {
    let dir = scratch();
    write(
        dir.path(),
        "lineups/7471.json",
        "[{\"team_id\": 1,\n \"lineup\": 7}]",
    );
    let err = Catalog::open(dir.path())
        .unwrap()
        .load("7471")
        .unwrap_err()
        .to_string();
    assert!(err.contains("lineups/7471.json: line 2"), "{err}");
}

#[test]
fn an_events_file_of_other_teams_is_rejected_by_name() {
    let dir = scratch();
    // 15986's events (Barcelona v Girona) under 7471's name (Orlando Pride v NC Courage).
    fs::copy(
        shipped().join("events/15986.json"),
        dir.path().join("events/7471.json"),
    )
    .unwrap();
    let err = Catalog::open(dir.path())
        .unwrap()
        .load("7471")
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("team 217 (Barcelona) is neither the home team (Orlando Pride)"),
        "{err}"
    );
}

#[test]
fn a_file_outside_the_catalog_folds_with_teams_from_its_starting_elevens() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("7298.json");
    fs::copy(shipped().join("events/7298.json"), &path).unwrap();
    let loaded = load_file(&path, None).unwrap();
    // Without metadata the names are the events' own ("Chelsea LFC", where the metadata says FCW).
    assert_eq!(loaded.info.home.name, "Manchester City WFC");
    assert_eq!(loaded.info.away.name, "Chelsea LFC");
    assert_eq!(loaded.info.competition, None);
    let with_catalog = load_file(&path, Some(&Catalog::open(shipped()).unwrap())).unwrap();
    assert_eq!(with_catalog.info.away.name, "Chelsea FCW");

    let unnamed = dir.path().join("match.json");
    fs::copy(&path, &unnamed).unwrap();
    assert!(matches!(
        load_file(&unnamed, None),
        Err(CatalogError::NoMatchId(_))
    ));
    assert!(matches!(
        load_file(&dir.path().join("404.json"), None),
        Err(CatalogError::Read { .. })
    ));
}

#[test]
fn a_missing_data_directory_says_which() {
    let err = Catalog::open("/nonexistent/livescore-data")
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("cannot read /nonexistent/livescore-data: no such directory"),
        "{err}"
    );
}
