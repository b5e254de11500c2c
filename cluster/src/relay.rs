//! The cluster's outbox relay: committed events move from PostgreSQL's outbox to Dapr
//! pub/sub. The embedded shape's relay is `taskstream_engine::relay::OutboxRelay`; this one
//! differs because rows are claimed with `SKIP LOCKED` by every `api` replica and an older
//! event of the same key held by another replica defers the row.

use std::sync::Arc;
use std::time::Duration;

use taskstream_engine::ports::{EventBus, Outbox};
use tokio::sync::watch;

use crate::dapr::DaprPublisher;
use crate::postgres::PostgresStore;

/// Outbox rows one relay round claims.
const RELAY_BATCH: usize = 256;
const RELAY_BACKOFF_FIRST: Duration = Duration::from_millis(100);
const RELAY_BACKOFF_MAX: Duration = Duration::from_secs(10);
/// A relay round also runs this often without a wake-up, in case a `NOTIFY` was lost with the
/// listening connection.
const RELAY_SAFETY_POLL: Duration = Duration::from_secs(5);
/// Pause when every claimed row waits on another replica's older event of the same key.
const RELAY_DEFERRED_PAUSE: Duration = Duration::from_millis(50);
/// Moves outbox rows to Dapr pub/sub. Rows are claimed with `SKIP LOCKED`, so every `api`
/// replica may run this; a failed publish leaves the rows in the outbox and is retried with
/// backoff, so a sidecar that is down loses nothing.
pub async fn relay_to_dapr(
    store: Arc<PostgresStore>,
    publisher: DaprPublisher,
    mut shutdown: watch::Receiver<bool>,
) {
    // Fires on this process's commits and, through LISTEN/NOTIFY, on other replicas'.
    let committed = Outbox::commit_signal(store.as_ref());
    let mut backoff = RELAY_BACKOFF_FIRST;
    loop {
        if *shutdown.borrow() {
            break;
        }
        let woken = committed.notified();
        let publisher = &publisher;
        let round = store
            .relay_batch(RELAY_BATCH, |batch| async move {
                publisher.publish(&batch).await
            })
            .await;
        let pause = match round {
            Ok(round) => {
                backoff = RELAY_BACKOFF_FIRST;
                if round.published > 0 {
                    metrics::counter!("outbox_relayed_events_total")
                        .increment(round.published as u64);
                    continue;
                }
                if round.deferred > 0 {
                    RELAY_DEFERRED_PAUSE
                } else {
                    RELAY_SAFETY_POLL
                }
            }
            Err(error) => {
                metrics::counter!("outbox_relay_failures_total").increment(1);
                tracing::warn!(%error, retry_in_ms = backoff.as_millis() as u64, "outbox relay to Dapr failed; retrying");
                let pause = backoff;
                backoff = (backoff * 2).min(RELAY_BACKOFF_MAX);
                pause
            }
        };
        // After a failure only the backoff wakes the relay: a commit must not hammer a sidecar
        // that is down.
        let failing = backoff > RELAY_BACKOFF_FIRST;
        tokio::select! {
            () = woken, if !failing => {}
            () = tokio::time::sleep(pause) => {}
            _ = shutdown.changed() => {}
        }
    }
    tracing::debug!("outbox relay stopped");
}
