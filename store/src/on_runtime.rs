//! A store whose every call runs on a runtime of one's choosing.
//!
//! Why: the HTTP server's shard threads each have a descriptor table of their own (see the
//! `livescore-server` crate). A Redis client opens connections lazily, and again after an
//! outage, from whichever task polls it first: polled from a shard, the new socket would be
//! opened in that shard's table, registered with that shard's runtime, and then read, written
//! and closed *by number* from the other threads that share the client, in another table. So
//! code on a shard reaches the store through this wrapper, which runs each call as a task on
//! the process's main runtime, where every connection of the store lives.

use std::sync::Arc;

use tokio::runtime::Handle;
use tokio::sync::broadcast;

use crate::{
    Cursor, Live, LogRead, MatchStore, MatchSummary, MatchWrite, Snapshot, StoreError, StoredMatch,
    Topic, WriteOutcome,
};

/// Runs every call of `inner` on `runtime`.
pub struct OnRuntime {
    inner: Arc<dyn MatchStore>,
    runtime: Handle,
}

impl OnRuntime {
    pub fn new(inner: Arc<dyn MatchStore>, runtime: Handle) -> OnRuntime {
        OnRuntime { inner, runtime }
    }

    async fn run<T, F>(&self, call: impl FnOnce(Arc<dyn MatchStore>) -> F) -> Result<T, StoreError>
    where
        F: Future<Output = Result<T, StoreError>> + Send + 'static,
        T: Send + 'static,
    {
        let call = call(Arc::clone(&self.inner));
        self.runtime
            .spawn(call)
            .await
            .map_err(|err| StoreError::Runtime(err.to_string()))?
    }
}

#[async_trait::async_trait]
impl MatchStore for OnRuntime {
    async fn epoch(&self) -> Result<String, StoreError> {
        self.run(|store| async move { store.epoch().await }).await
    }

    async fn load(&self, match_id: u64) -> Result<Option<StoredMatch>, StoreError> {
        self.run(|store| async move { store.load(match_id).await })
            .await
    }

    async fn write(&self, epoch: &str, write: &MatchWrite) -> Result<WriteOutcome, StoreError> {
        let (epoch, write) = (epoch.to_owned(), write.clone());
        self.run(|store| async move { store.write(&epoch, &write).await })
            .await
    }

    async fn list(&self) -> Result<Vec<MatchSummary>, StoreError> {
        self.run(|store| async move { store.list().await }).await
    }

    async fn read_after(
        &self,
        topic: Topic,
        cursor: Option<Cursor>,
        limit: usize,
    ) -> Result<LogRead, StoreError> {
        self.run(|store| async move { store.read_after(topic, cursor, limit).await })
            .await
    }

    async fn snapshot(&self, topic: Topic) -> Result<Option<Snapshot>, StoreError> {
        self.run(|store| async move { store.snapshot(topic).await })
            .await
    }

    async fn subscribe(&self) -> Result<broadcast::Receiver<Live>, StoreError> {
        self.run(|store| async move { store.subscribe().await })
            .await
    }

    async fn clear(&self) -> Result<(), StoreError> {
        self.run(|store| async move { store.clear().await }).await
    }

    async fn ping(&self) -> Result<(), StoreError> {
        self.run(|store| async move { store.ping().await }).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::memory::MemoryStore;

    #[test]
    fn calls_run_on_the_chosen_runtime_and_fail_clearly_once_it_is_gone() {
        let home = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("home")
            .enable_all()
            .build()
            .expect("home runtime");
        let caller = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("caller runtime");
        let store = OnRuntime::new(Arc::new(MemoryStore::new()), home.handle().clone());

        let ran_on = caller.block_on(async {
            store.ping().await.expect("ping through the home runtime");
            store
                .run(|_| async { Ok(std::thread::current().name().map(str::to_owned)) })
                .await
                .expect("a call")
        });
        assert_eq!(ran_on.as_deref(), Some("home"));

        home.shutdown_background();
        let after = caller.block_on(store.ping());
        assert!(matches!(after, Err(StoreError::Runtime(_))), "{after:?}");
    }
}
