//! The appliance's periodic jobs, by stable name: log retention, consumer-state expiry,
//! notification retention and the opt-in daily digest.

use std::sync::Arc;

use taskstream_engine::EngineError;
use taskstream_engine::jobs::{self, PeriodicJob};
use taskstream_engine::log::EventLog;
use taskstream_engine::ports::{SettingsStore, TaskStore};
use taskstream_engine::state::StateStore;

/// Read notifications go this long after they were read.
const READ_NOTIFICATION_RETENTION: chrono::Duration = chrono::Duration::days(30);

/// Every periodic job of the embedded shape. Schedules are six-field cron in UTC.
pub fn periodic_jobs(
    log: EventLog,
    state: Arc<dyn StateStore>,
    tasks: Arc<dyn TaskStore>,
    settings: Arc<dyn SettingsStore>,
    notification_retention: chrono::Duration,
) -> Vec<PeriodicJob> {
    let digest_settings = Arc::clone(&settings);
    vec![
        PeriodicJob::new("log-retention", "0 5 * * * *", move || {
            let log = log.clone();
            Box::pin(async move {
                log.enforce_retention(chrono::Utc::now().timestamp_millis())
                    .await
                    .map_err(|error| EngineError::Store(error.to_string()))
            })
        }),
        PeriodicJob::new("state-expiry", "0 10 * * * *", move || {
            let state = Arc::clone(&state);
            Box::pin(async move { state.purge_expired().await })
        }),
        PeriodicJob::new("notification-retention", "0 30 3 * * *", move || {
            let settings = Arc::clone(&settings);
            Box::pin(async move {
                let now = chrono::Utc::now();
                settings
                    .purge_notifications(
                        now - READ_NOTIFICATION_RETENTION,
                        now - notification_retention,
                    )
                    .await
            })
        }),
        PeriodicJob::new("daily-digest", "0 0 * * * *", move || {
            let (tasks, settings) = (Arc::clone(&tasks), Arc::clone(&digest_settings));
            Box::pin(async move {
                jobs::daily_digest(tasks.as_ref(), settings.as_ref(), chrono::Utc::now()).await
            })
        }),
    ]
}
