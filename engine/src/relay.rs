//! The outbox relay: moves committed events, in order, from the store's outbox to the event bus,
//! then deletes them. A crash between publish and delete repeats events; none is ever lost.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use crate::error::EngineError;
use crate::ports::{EventBus, Outbox};

/// Events moved per round trip.
const BATCH: usize = 512;
const BACKOFF_FIRST: Duration = Duration::from_millis(50);
const BACKOFF_MAX: Duration = Duration::from_secs(5);

pub struct OutboxRelay {
    store: Arc<dyn Outbox>,
    bus: Arc<dyn EventBus>,
}

impl OutboxRelay {
    pub fn new(store: Arc<dyn Outbox>, bus: Arc<dyn EventBus>) -> Self {
        Self { store, bus }
    }

    /// Moves one batch; returns how many events went.
    pub async fn relay_once(&self) -> Result<usize, EngineError> {
        let batch = self.store.pending_events(BATCH).await?;
        if batch.is_empty() {
            return Ok(0);
        }
        self.bus.publish(&batch).await?;
        self.store
            .delete_events(batch.iter().map(|record| record.seq).collect())
            .await?;
        metrics::counter!("outbox_relayed_events_total").increment(batch.len() as u64);
        Ok(batch.len())
    }

    /// Relays until `shutdown` turns true: woken by each store commit, retrying with exponential
    /// backoff while the bus fails.
    pub async fn run(self, mut shutdown: watch::Receiver<bool>) {
        let committed = self.store.commit_signal();
        let mut backoff = BACKOFF_FIRST;
        loop {
            if *shutdown.borrow() {
                break;
            }
            // Registered before looking at the outbox, so a commit in between is not missed.
            let woken = committed.notified();
            match self.relay_once().await {
                Ok(0) => {
                    backoff = BACKOFF_FIRST;
                    tokio::select! {
                        () = woken => {}
                        _ = shutdown.changed() => {}
                    }
                }
                Ok(_) => backoff = BACKOFF_FIRST,
                Err(error) => {
                    metrics::counter!("outbox_relay_failures_total").increment(1);
                    tracing::warn!(%error, retry_in_ms = backoff.as_millis() as u64, "outbox relay failed; retrying");
                    tokio::select! {
                        () = tokio::time::sleep(backoff) => {}
                        _ = shutdown.changed() => {}
                    }
                    backoff = (backoff * 2).min(BACKOFF_MAX);
                }
            }
        }
        tracing::debug!("outbox relay stopped");
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use async_trait::async_trait;

    use super::*;
    use crate::embedded::SqliteTaskStore;
    use crate::ports::{OutboxRecord, TaskStore};
    use crate::task::{NewTask, ops};

    /// A bus that records what it got and fails the first `failures` publishes.
    #[derive(Default)]
    struct RecordingBus {
        failures: AtomicUsize,
        seen: Mutex<Vec<String>>,
    }

    #[async_trait]
    impl EventBus for RecordingBus {
        async fn publish(&self, events: &[OutboxRecord]) -> Result<(), EngineError> {
            if self.failures.load(Ordering::SeqCst) > 0 {
                self.failures.fetch_sub(1, Ordering::SeqCst);
                return Err(EngineError::Unavailable("bus down".to_owned()));
            }
            let mut seen = self
                .seen
                .lock()
                .map_err(|_| EngineError::Store("poisoned".into()))?;
            seen.extend(events.iter().map(|e| e.envelope.event_type.clone()));
            Ok(())
        }
    }

    async fn create(store: &SqliteTaskStore, title: &str) {
        let (task, events) =
            ops::create("alice", NewTask::titled(title), crate::time::now()).expect("valid");
        store.insert(task, events).await.expect("insert");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn relays_in_order_retries_and_empties_the_outbox() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Arc::new(SqliteTaskStore::open(&dir.path().join("t.db")).expect("open"));
        let bus = Arc::new(RecordingBus {
            failures: AtomicUsize::new(2),
            ..RecordingBus::default()
        });
        let (stop, stopped) = watch::channel(false);
        let relay = OutboxRelay::new(store.clone(), bus.clone());
        let running = tokio::spawn(relay.run(stopped));

        create(&store, "one").await;
        create(&store, "two").await;
        // Wait (bounded) for the relay to get past its two failures and drain the outbox.
        for _ in 0..200 {
            if store.pending_events(10).await.expect("outbox").is_empty() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(
            store.pending_events(10).await.expect("outbox").is_empty(),
            "outbox drained"
        );
        let seen = bus.seen.lock().expect("lock").clone();
        assert_eq!(
            seen,
            ["task.created", "task.sync", "task.created", "task.sync"]
        );

        stop.send(true).expect("stop");
        running.await.expect("relay stops");
    }

    /// `taskstream mcp` over stdio writes to the database file of a running `serve`: the
    /// server's relay must take those outbox rows up although its own store never committed.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn relays_events_another_process_committed() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("t.db");
        let server = Arc::new(SqliteTaskStore::open(&path).expect("open"));
        let other = SqliteTaskStore::open(&path).expect("second opener");
        let bus = Arc::new(RecordingBus::default());
        let mut foreign = server.foreign_commits();
        let (stop, stopped) = watch::channel(false);
        let running = tokio::spawn(OutboxRelay::new(server.clone(), bus.clone()).run(stopped));

        create(&other, "from elsewhere").await;
        tokio::time::timeout(Duration::from_secs(10), foreign.changed())
            .await
            .expect("the foreign commit is noticed")
            .expect("writer alive");
        for _ in 0..250 {
            let published = bus.seen.lock().expect("lock").len() == 2;
            if published && server.pending_events(10).await.expect("outbox").is_empty() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(
            bus.seen.lock().expect("lock").clone(),
            ["task.created", "task.sync"]
        );
        assert!(server.pending_events(10).await.expect("outbox").is_empty());

        stop.send(true).expect("stop");
        running.await.expect("relay stops");
    }
}
