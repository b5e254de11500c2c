//! The appliance's periodic jobs, by stable name: log retention, consumer-state expiry,
//! notification retention and the opt-in daily digest; in cluster mode, notification and
//! live-event retention and the digest, once per period across replicas.

use std::collections::BTreeMap;
use std::sync::Arc;

use taskstream_cluster::postgres::{JobPeriod, PostgresStore};
use taskstream_engine::EngineError;
use taskstream_engine::embedded::log::EventLog;
use taskstream_engine::jobs::{self, PeriodicJob};
use taskstream_engine::ports::StateStore;
use taskstream_engine::ports::{SettingsStore, TaskStore};

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
        notification_retention_job(Arc::clone(&settings), notification_retention),
        daily_digest_job(tasks, settings),
    ]
}

/// Deletes read notifications after [`READ_NOTIFICATION_RETENTION`] and every notification
/// after `retention`; daily at 03:30.
fn notification_retention_job(
    settings: Arc<dyn SettingsStore>,
    retention: chrono::Duration,
) -> PeriodicJob {
    PeriodicJob::new("notification-retention", "0 30 3 * * *", move || {
        let settings = Arc::clone(&settings);
        Box::pin(async move {
            let now = chrono::Utc::now();
            settings
                .purge_notifications(now - READ_NOTIFICATION_RETENTION, now - retention)
                .await
        })
    })
}

/// The opt-in digest of overdue tasks; hourly, each user's at their own local hour.
fn daily_digest_job(tasks: Arc<dyn TaskStore>, settings: Arc<dyn SettingsStore>) -> PeriodicJob {
    PeriodicJob::new("daily-digest", "0 0 * * * *", move || {
        let (tasks, settings) = (Arc::clone(&tasks), Arc::clone(&settings));
        Box::pin(async move {
            jobs::daily_digest(tasks.as_ref(), settings.as_ref(), chrono::Utc::now()).await
        })
    })
}

/// `jobs` with the schedules in `overrides` (by job name) in place of their defaults; a name
/// that is not one of `jobs` is refused, naming the ones there are.
pub fn with_schedules(
    mut jobs: Vec<PeriodicJob>,
    overrides: &BTreeMap<String, String>,
) -> anyhow::Result<Vec<PeriodicJob>> {
    for (name, schedule) in overrides {
        let Some(job) = jobs.iter_mut().find(|job| job.name == name) else {
            let known: Vec<&str> = jobs.iter().map(|job| job.name).collect();
            anyhow::bail!(
                "no periodic job named {name:?} here (--job-schedule); the jobs are: {}",
                known.join(", ")
            );
        };
        tracing::info!(job = job.name, %schedule, "periodic job schedule set by configuration");
        job.schedule.clone_from(schedule);
    }
    Ok(jobs)
}

/// Live events are kept this long for reconnecting streams (cluster mode).
const LIVE_EVENT_RETENTION: chrono::Duration = chrono::Duration::hours(1);

/// The cluster shape's periodic jobs, run by the `api` (and `all`) role of every replica.
///
/// Exactly once per period across replicas: each run goes through
/// [`PostgresStore::run_once`], a PostgreSQL advisory lock per job plus a `job_runs` row per
/// period, so the replica whose tick comes first does the period and the others skip it (a
/// failed run leaves no row, so another replica's tick retries it). Chosen over the Dapr Jobs
/// API because every job here only touches PostgreSQL, so the database alone can decide, and a
/// sidecar outage cannot stop the digest. State expiry is Redis's TTL and there is no embedded
/// log to trim.
pub fn cluster_periodic_jobs(
    store: Arc<PostgresStore>,
    notification_retention: chrono::Duration,
) -> Vec<PeriodicJob> {
    let (tasks, settings): (Arc<dyn TaskStore>, Arc<dyn SettingsStore>) =
        (store.clone(), store.clone());
    let live = Arc::clone(&store);
    vec![
        once(
            &store,
            JobPeriod::Day,
            notification_retention_job(Arc::clone(&settings), notification_retention),
        ),
        once(&store, JobPeriod::Hour, daily_digest_job(tasks, settings)),
        once(
            &store,
            JobPeriod::Hour,
            PeriodicJob::new("live-events-retention", "0 15 * * * *", move || {
                let live = Arc::clone(&live);
                Box::pin(async move {
                    live.purge_live_events(chrono::Utc::now() - LIVE_EVENT_RETENTION)
                        .await
                })
            }),
        ),
    ]
}

/// `job` run at most once per `period` across replicas.
fn once(store: &Arc<PostgresStore>, period: JobPeriod, job: PeriodicJob) -> PeriodicJob {
    let (name, inner, store) = (job.name, job.run, Arc::clone(store));
    PeriodicJob::new(name, &job.schedule, move || {
        let (store, inner) = (Arc::clone(&store), Arc::clone(&inner));
        Box::pin(async move {
            let key = period.key(chrono::Utc::now());
            match store.run_once(name, &key, || inner()).await? {
                Some(handled) => Ok(handled),
                None => {
                    tracing::debug!(job = name, period = %key, "another replica ran this period");
                    Ok(0)
                }
            }
        })
    })
}
