//! Carries out consumer effects against the store, through the same service as REST.

use std::sync::Arc;
use std::time::Duration;

use crate::activity::{Delivery, Notification};
use crate::error::EngineError;
use crate::ports::NotificationChannel;
use crate::service::TaskService;

use super::Effect;

/// Applies effects; every effect is idempotent on its own (unique constraints), so applying one
/// twice after a crash changes nothing.
#[derive(Clone)]
pub struct EffectApplier {
    tasks: TaskService,
    channels: Vec<Arc<dyn NotificationChannel>>,
    retry: RetryPolicy,
}

/// How often and how patiently a notification is pushed to an outside channel.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    pub attempts: u32,
    pub first_backoff: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            attempts: 5,
            first_backoff: Duration::from_millis(500),
        }
    }
}

impl EffectApplier {
    pub fn new(tasks: TaskService) -> Self {
        Self {
            tasks,
            channels: Vec::new(),
            retry: RetryPolicy::default(),
        }
    }

    /// Adds outside channels (besides the in-app list) that notifications are pushed to.
    pub fn with_channels(
        mut self,
        channels: Vec<Arc<dyn NotificationChannel>>,
        retry: RetryPolicy,
    ) -> Self {
        self.channels = channels;
        self.retry = retry;
        self
    }

    pub async fn apply(&self, effect: Effect) -> Result<(), EngineError> {
        match effect {
            Effect::Audit(entry) => {
                self.tasks.store().record_audit(entry).await?;
            }
            Effect::EnsureNextOccurrence { task_id, user_id } => {
                match self.tasks.ensure_next_occurrence(&user_id, task_id).await {
                    // A task deleted (or never this user's) since the event: nothing to repair.
                    Ok(_) | Err(EngineError::NotFound | EngineError::Forbidden) => {}
                    Err(error) => return Err(error),
                }
            }
            Effect::Notify(notification) => {
                self.tasks
                    .store()
                    .record_notification(notification.clone())
                    .await?;
                for channel in &self.channels {
                    self.push(channel.as_ref(), &notification).await?;
                }
            }
        }
        Ok(())
    }

    /// Pushes to one channel unless an earlier delivery (before a crash) already succeeded,
    /// retrying with exponential backoff and logging every attempt. A channel that stays down
    /// does not block the consumer: the notification is in the app regardless.
    async fn push(
        &self,
        channel: &dyn NotificationChannel,
        notification: &Notification,
    ) -> Result<(), EngineError> {
        let store = self.tasks.store();
        if store
            .delivered(notification.event_id, channel.name())
            .await?
        {
            return Ok(());
        }
        let mut backoff = self.retry.first_backoff;
        for attempt in 1..=self.retry.attempts {
            let outcome = channel.deliver(notification).await;
            let succeeded = outcome.is_ok();
            let detail = outcome.unwrap_or_else(|reason| reason);
            store
                .record_delivery(Delivery {
                    event_id: notification.event_id,
                    notification_id: notification.id,
                    channel: channel.name().to_owned(),
                    attempt,
                    succeeded,
                    detail: detail.clone(),
                    at: crate::time::now(),
                })
                .await?;
            if succeeded {
                metrics::counter!("notification_deliveries_total", "channel" => channel.name(), "outcome" => "delivered").increment(1);
                return Ok(());
            }
            metrics::counter!("notification_deliveries_total", "channel" => channel.name(), "outcome" => "failed").increment(1);
            tracing::warn!(channel = channel.name(), attempt, %detail, "notification delivery failed");
            if attempt < self.retry.attempts {
                tokio::time::sleep(backoff).await;
                backoff *= 2;
            }
        }
        tracing::error!(channel = channel.name(), notification = %notification.id, "giving up on a notification delivery");
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use async_trait::async_trait;
    use serde_json::json;

    use super::*;
    use crate::consumers::Effect;
    use crate::embedded::SqliteTaskStore;

    /// A channel that fails its first `failures` attempts and counts calls.
    struct FlakyChannel {
        failures: Mutex<u32>,
        calls: Mutex<u32>,
    }

    #[async_trait]
    impl NotificationChannel for FlakyChannel {
        fn name(&self) -> &'static str {
            "flaky"
        }

        async fn deliver(&self, _notification: &Notification) -> Result<String, String> {
            *self.calls.lock().map_err(|_| "poisoned")? += 1;
            let mut failures = self.failures.lock().map_err(|_| "poisoned")?;
            if *failures > 0 {
                *failures -= 1;
                return Err("HTTP 503".to_owned());
            }
            Ok("HTTP 200".to_owned())
        }
    }

    fn notification() -> Notification {
        Notification {
            id: uuid::Uuid::new_v4(),
            user_id: "alice".to_owned(),
            event_id: uuid::Uuid::new_v4(),
            kind: "reminder".to_owned(),
            task_id: None,
            title: "t".to_owned(),
            message: "m".to_owned(),
            created_at: crate::time::now(),
            read_at: None,
            payload: json!({}),
        }
    }

    fn applier(dir: &std::path::Path, channel: Arc<FlakyChannel>, attempts: u32) -> EffectApplier {
        let store = SqliteTaskStore::open(&dir.join("t.db")).expect("open");
        let retry = RetryPolicy {
            attempts,
            first_backoff: Duration::from_millis(1),
        };
        EffectApplier::new(TaskService::new(Arc::new(store))).with_channels(vec![channel], retry)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn retries_until_delivered_and_never_delivers_twice() {
        let dir = tempfile::tempdir().expect("tempdir");
        let channel = Arc::new(FlakyChannel {
            failures: Mutex::new(2),
            calls: Mutex::new(0),
        });
        let applier = applier(dir.path(), channel.clone(), 5);
        let n = notification();
        applier
            .apply(Effect::Notify(n.clone()))
            .await
            .expect("apply");
        assert_eq!(
            *channel.calls.lock().expect("lock"),
            3,
            "two failures, then delivered"
        );
        // The same event again (a redelivery): already delivered, so no new call.
        applier.apply(Effect::Notify(n)).await.expect("apply again");
        assert_eq!(*channel.calls.lock().expect("lock"), 3);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn gives_up_after_the_last_attempt_without_failing_the_event() {
        let dir = tempfile::tempdir().expect("tempdir");
        let channel = Arc::new(FlakyChannel {
            failures: Mutex::new(100),
            calls: Mutex::new(0),
        });
        let applier = applier(dir.path(), channel.clone(), 3);
        let n = notification();
        applier
            .apply(Effect::Notify(n.clone()))
            .await
            .expect("the in-app notification stands");
        assert_eq!(*channel.calls.lock().expect("lock"), 3);
        assert!(
            !applier
                .tasks
                .store()
                .delivered(n.event_id, "flaky")
                .await
                .expect("log")
        );
        assert_eq!(
            applier
                .tasks
                .store()
                .list_notifications("alice", 10)
                .await
                .expect("list")
                .len(),
            1
        );
    }
}
