//! What the binary's integration tests share: the shipped catalog, and the producer and a
//! projector running in the test's own process on the in-process log, writing to a given store.

#![allow(dead_code, clippy::unwrap_used)]

use std::path::PathBuf;
use std::sync::Arc;

use livescore_catalog::Catalog;
use livescore_domain::Breaks;
use livescore_eventlog::memory::MemoryLog;
use livescore_producer::ReplayManager;
use livescore_projector::{Projector, ProjectorConfig};
use livescore_store::MatchStore;

pub fn catalog() -> Arc<Catalog> {
    Arc::new(Catalog::open(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("data")).unwrap())
}

/// A producer whose replays a projector (running until the test ends) folds into `store`.
pub fn replays_into(store: &Arc<dyn MatchStore>) -> ReplayManager {
    let log = MemoryLog::new(6);
    let projector = Projector::new(
        Arc::new(log.clone()),
        Arc::clone(store),
        ProjectorConfig::default(),
    );
    tokio::spawn(projector.run(std::future::pending()));
    ReplayManager::new(Arc::new(log), catalog(), Breaks::default())
}
