//! Parsing and folding a whole match: the cost of `livescore fold`, of a projector rebuilding a
//! match from its log, and of the fold's share of a live replay.
//!
//! Run: `cargo bench -p livescore-domain --bench fold`. Results are in BENCHMARKS.md.

use std::hint::black_box;
use std::path::PathBuf;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use livescore_domain::{
    MatchFold, MatchInfo, MatchMetadata, fold_match, parse_events, parse_matches,
};

/// Barcelona 3-1 Manchester United: the largest shipped match (4,326 events, 3.7 MB).
const MATCH: u64 = 18236;

fn data(path: &str) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../data")
        .join(path);
    std::fs::read(&path).unwrap_or_else(|err| panic!("{}: {err}", path.display()))
}

fn metadata() -> MatchMetadata {
    parse_matches(&data("matches/16/22.json"))
        .expect("metadata parses")
        .into_iter()
        .find(|m| m.match_id == MATCH)
        .expect("the match is in its season file")
}

fn bench(c: &mut Criterion) {
    let bytes = data(&format!("events/{MATCH}.json"));
    let metadata = metadata();
    let events = parse_events(&bytes).expect("events parse");
    let info = MatchInfo::new(MATCH, Some(&metadata), &events).expect("a match");

    let mut group = c.benchmark_group("match 18236");
    group.throughput(Throughput::Elements(events.len() as u64));
    group.bench_function("parse + fold", |b| {
        b.iter(|| {
            let events = parse_events(black_box(&bytes)).expect("events parse");
            let info = MatchInfo::new(MATCH, Some(&metadata), &events).expect("a match");
            fold_match(info, &events)
        })
    });
    group.bench_function("parse", |b| b.iter(|| parse_events(black_box(&bytes))));
    group.bench_function("fold", |b| {
        b.iter(|| fold_match(info.clone(), black_box(&events)))
    });
    group.bench_function("fold, stored and resumed as JSON every event", |b| {
        // The worst case for a projector that reads and writes the whole fold per event.
        b.iter(|| {
            let mut stored = serde_json::to_vec(&MatchFold::new(info.clone())).expect("json");
            for event in &events {
                let mut fold: MatchFold = serde_json::from_slice(&stored).expect("json");
                black_box(fold.apply(event));
                stored = serde_json::to_vec(&fold).expect("json");
            }
        })
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20);
    targets = bench
}
criterion_main!(benches);
