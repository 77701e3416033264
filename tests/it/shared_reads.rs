//! Viewers joining a topic from the same cursor share one store read: a connect or reconnect
//! storm costs the store a few reads, not one per viewer. The store here holds its reads until
//! the test opens its gate, so that every viewer has joined while the first read is in flight,
//! whatever the machine's speed; `/metrics` counts the joins and the reads.

use crate::support;

use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use livescore_store::memory::MemoryStore;
use livescore_store::{
    Cursor, Live, LogRead, MatchStore, MatchSummary, MatchWrite, Reflected, Snapshot, StoreError,
    StoredMatch, Topic, WriteOutcome,
};
use tokio::sync::{broadcast, watch};

/// The in-process store, whose reads for joining viewers wait until the gate opens.
struct Gated {
    inner: MemoryStore,
    open: watch::Receiver<bool>,
}

impl Gated {
    async fn gate(&self) {
        let mut open = self.open.clone();
        let _ = open.wait_for(|open| *open).await;
    }
}

#[async_trait::async_trait]
impl MatchStore for Gated {
    async fn epoch(&self) -> Result<String, StoreError> {
        self.inner.epoch().await
    }
    async fn load(&self, match_id: u64) -> Result<Option<StoredMatch>, StoreError> {
        self.inner.load(match_id).await
    }
    async fn write(&self, epoch: &str, write: &MatchWrite) -> Result<WriteOutcome, StoreError> {
        self.inner.write(epoch, write).await
    }
    async fn reflected(&self, partitions: &[i32]) -> Result<Vec<Reflected>, StoreError> {
        self.inner.reflected(partitions).await
    }
    async fn list(&self) -> Result<Vec<MatchSummary>, StoreError> {
        self.inner.list().await
    }
    async fn read_after(
        &self,
        topic: Topic,
        cursor: Option<Cursor>,
        limit: usize,
    ) -> Result<LogRead, StoreError> {
        self.gate().await;
        self.inner.read_after(topic, cursor, limit).await
    }
    async fn snapshot(&self, topic: Topic) -> Result<Option<Snapshot>, StoreError> {
        self.gate().await;
        self.inner.snapshot(topic).await
    }
    async fn subscribe(&self) -> Result<broadcast::Receiver<Live>, StoreError> {
        self.inner.subscribe().await
    }
    async fn add_presence(
        &self,
        window: u64,
        counts: &[(String, u64)],
        ttl: Duration,
    ) -> Result<(), StoreError> {
        self.inner.add_presence(window, counts, ttl).await
    }
    async fn presence(
        &self,
        window: u64,
    ) -> Result<std::collections::HashMap<String, u64>, StoreError> {
        self.inner.presence(window).await
    }
    async fn clear(&self) -> Result<(), StoreError> {
        self.inner.clear().await
    }
    async fn ping(&self) -> Result<(), StoreError> {
        self.inner.ping().await
    }
}

/// A counter's value in a `/metrics` text.
fn counter(metrics: &str, name: &str) -> u64 {
    metrics
        .lines()
        .find_map(|line| line.strip_prefix(&format!("{name} ")))
        .and_then(|value| value.trim().parse().ok())
        .unwrap_or_else(|| panic!("{name} in:\n{metrics}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn viewers_joining_from_the_same_cursor_share_one_store_read() {
    const VIEWERS: u64 = 50;
    let (open, gate) = watch::channel(false);
    let store = Arc::new(Gated {
        inner: MemoryStore::new(),
        open: gate,
    });
    let served = support::serve_api(store, |http| http.http_shards = 1).await;
    let base = served.base.clone();
    let http = support::http_client();
    let metrics = || async {
        let response = http.get(format!("{base}/metrics")).send().await.unwrap();
        response.text().await.unwrap()
    };

    let viewers: Vec<_> = (0..VIEWERS)
        .map(|_| {
            let url = format!("{}/sse/games", served.base);
            tokio::spawn(async move {
                let response = reqwest::Client::new().get(url).send().await.unwrap();
                let mut body = response.bytes_stream();
                // Its `retry:` first, then its first event: the snapshot, once the store answered.
                let mut seen = Vec::new();
                while !String::from_utf8_lossy(&seen).contains("snapshot") {
                    match body.next().await {
                        Some(Ok(chunk)) => seen.extend_from_slice(&chunk),
                        _ => break,
                    }
                }
                seen
            })
        })
        .collect();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while counter(&metrics().await, "livescore_joins_total") < VIEWERS {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the viewers never all joined"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    open.send(true).unwrap();
    for viewer in viewers {
        let first = viewer.await.unwrap();
        assert!(
            String::from_utf8_lossy(&first).contains("snapshot"),
            "each viewer gets the snapshot: {first:?}"
        );
    }
    let after = metrics().await;
    assert_eq!(counter(&after, "livescore_joins_total"), VIEWERS);
    assert_eq!(
        counter(&after, "livescore_store_reads_total"),
        1,
        "{VIEWERS} viewers joining the games list together share one read"
    );
}
