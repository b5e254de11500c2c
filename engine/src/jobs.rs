//! Periodic jobs on cron schedules (tokio-cron-scheduler): each has a stable name, logs every
//! run with what it did and how long it took, and counts runs and failures in `/metrics`.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Instant;

use chrono::{DateTime, Timelike, Utc};
use serde_json::json;
use tokio_cron_scheduler::{Job, JobScheduler, JobSchedulerError};
use uuid::Uuid;

use crate::activity::Notification;
use crate::error::EngineError;
use crate::ports::{SettingsStore, TaskStore};
use crate::task::{SortField, SortOrder, StatusFilter, TaskQuery};
use crate::time::format_utc;

/// What one run of a job returns: how many things it handled, or why it failed.
pub type JobFuture = Pin<Box<dyn Future<Output = Result<u64, EngineError>> + Send>>;

/// A job and its schedule (six-field cron, seconds first, UTC).
#[derive(Clone)]
pub struct PeriodicJob {
    pub name: &'static str,
    pub schedule: String,
    pub run: Arc<dyn Fn() -> JobFuture + Send + Sync>,
}

impl PeriodicJob {
    pub fn new(
        name: &'static str,
        schedule: &str,
        run: impl Fn() -> JobFuture + Send + Sync + 'static,
    ) -> Self {
        Self {
            name,
            schedule: schedule.to_owned(),
            run: Arc::new(run),
        }
    }
}

/// Why the jobs could not start.
#[derive(Debug, thiserror::Error)]
pub enum JobsError {
    #[error("job {name}: bad schedule {schedule:?}")]
    Schedule {
        name: &'static str,
        schedule: String,
    },
    #[error("job scheduler: {0}")]
    Scheduler(String),
}

impl From<JobSchedulerError> for JobsError {
    fn from(error: JobSchedulerError) -> Self {
        JobsError::Scheduler(error.to_string())
    }
}

/// The running jobs; [`Jobs::stop`] ends them.
pub struct Jobs {
    scheduler: JobScheduler,
}

impl Jobs {
    pub async fn start(jobs: Vec<PeriodicJob>) -> Result<Self, JobsError> {
        let scheduler = JobScheduler::new().await?;
        for job in jobs {
            let (name, schedule) = (job.name, job.schedule.clone());
            let run = Arc::clone(&job.run);
            let cron = Job::new_async(schedule.as_str(), move |_, _| {
                let run = Arc::clone(&run);
                Box::pin(async move { run_logged(name, run()).await })
            })
            .map_err(|_| JobsError::Schedule {
                name,
                schedule: schedule.clone(),
            })?;
            scheduler.add(cron).await?;
            tracing::info!(job = name, %schedule, "periodic job scheduled");
        }
        scheduler.start().await?;
        Ok(Self { scheduler })
    }

    pub async fn stop(mut self) {
        if let Err(error) = self.scheduler.shutdown().await {
            tracing::warn!(%error, "stopping the periodic jobs failed");
        }
    }
}

/// Runs one job, logging and counting the outcome.
pub async fn run_logged(name: &'static str, run: JobFuture) {
    let started = Instant::now();
    let outcome = run.await;
    let seconds = started.elapsed().as_secs_f64();
    metrics::histogram!("taskstream_job_duration_seconds", "job" => name).record(seconds);
    match outcome {
        Ok(handled) => {
            metrics::counter!("taskstream_job_runs_total", "job" => name, "outcome" => "success")
                .increment(1);
            metrics::gauge!("taskstream_job_last_success_timestamp_seconds", "job" => name)
                .set(Utc::now().timestamp() as f64);
            tracing::info!(
                job = name,
                handled,
                took_ms = (seconds * 1e3) as u64,
                "periodic job ran"
            );
        }
        Err(error) => {
            metrics::counter!("taskstream_job_runs_total", "job" => name, "outcome" => "error")
                .increment(1);
            tracing::warn!(job = name, %error, "periodic job failed");
        }
    }
}

/// How many overdue tasks a digest names before "and N more".
const DIGEST_NAMED: usize = 5;

/// The daily digest: for every subscriber whose local hour is their digest hour, one
/// notification listing their overdue tasks (none when nothing is overdue). Its id derives
/// from the user and the local date, so a second run the same day adds nothing.
pub async fn daily_digest(
    tasks: &dyn TaskStore,
    settings: &dyn SettingsStore,
    now: DateTime<Utc>,
) -> Result<u64, EngineError> {
    let mut sent = 0;
    for (user_id, prefs) in settings.digest_subscribers().await? {
        let local = now.with_timezone(&prefs.time_zone);
        if local.hour() != u32::from(prefs.digest_hour) {
            continue;
        }
        let query = TaskQuery {
            status: StatusFilter::Active,
            sort: SortField::DueDate,
            order: SortOrder::Asc,
            ..TaskQuery::default()
        };
        let overdue: Vec<_> = tasks
            .list(&user_id, &query)
            .await?
            .into_iter()
            .filter(|task| task.due_date.is_some_and(|due| due < now))
            .collect();
        if overdue.is_empty() {
            continue;
        }
        let date = local.date_naive().to_string();
        let event_id = Uuid::new_v5(
            &Uuid::NAMESPACE_OID,
            format!("daily-digest/{user_id}/{date}").as_bytes(),
        );
        let mut names: Vec<String> = overdue
            .iter()
            .take(DIGEST_NAMED)
            .map(|task| format!("'{}'", task.title))
            .collect();
        if overdue.len() > DIGEST_NAMED {
            names.push(format!("and {} more", overdue.len() - DIGEST_NAMED));
        }
        let count = overdue.len();
        let noun = if count == 1 { "task is" } else { "tasks are" };
        let notification = Notification {
            id: Uuid::new_v5(&Uuid::NAMESPACE_OID, event_id.as_bytes()),
            user_id: user_id.clone(),
            event_id,
            kind: "daily_digest".to_owned(),
            task_id: None,
            title: format!("{count} overdue"),
            message: format!("{count} {noun} overdue: {}", names.join(", ")),
            created_at: now,
            read_at: None,
            payload: json!({
                "date": date,
                "time_zone": prefs.time_zone.name(),
                "overdue": overdue.iter().map(|task| json!({
                    "task_id": task.id,
                    "title": task.title,
                    "due_date": task.due_date.map(format_utc),
                })).collect::<Vec<_>>(),
            }),
        };
        if tasks.record_notification(notification).await? {
            sent += 1;
        }
    }
    Ok(sent)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::embedded::SqliteTaskStore;
    use crate::ports::{ActivityStore, SettingsStore};
    use crate::settings::UserSettings;
    use crate::task::{NewTask, ops};
    use crate::time::parse_datetime;
    use std::sync::atomic::{AtomicU64, Ordering};

    fn at(text: &str) -> DateTime<Utc> {
        parse_datetime(text).expect("date")
    }

    async fn add(store: &SqliteTaskStore, user: &str, title: &str, due: &str) {
        let mut draft = NewTask::titled(title);
        draft.due_date = Some(at(due));
        let (task, events) = ops::create(user, draft, at("2026-01-01T00:00:00Z")).expect("valid");
        store.insert(task, events).await.expect("insert");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_digest_goes_out_at_the_local_hour_once_a_day() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = SqliteTaskStore::open(&dir.path().join("t.db")).expect("open");
        let berlin = UserSettings {
            time_zone: chrono_tz::Europe::Berlin,
            daily_digest: true,
            digest_hour: 8,
        };
        store
            .save_settings("anna", berlin, Utc::now())
            .await
            .expect("save");
        let quiet = UserSettings {
            daily_digest: false,
            ..UserSettings::default()
        };
        store
            .save_settings("ben", quiet, Utc::now())
            .await
            .expect("save");
        add(&store, "anna", "File taxes", "2026-03-01T10:00:00Z").await;
        add(&store, "anna", "Call the bank", "2026-03-02T10:00:00Z").await;
        add(&store, "anna", "Later", "2026-12-01T10:00:00Z").await;
        add(&store, "ben", "Ben's overdue", "2026-03-01T10:00:00Z").await;

        // 08:30 in Berlin is 07:30 UTC in winter.
        assert_eq!(
            daily_digest(&store, &store, at("2026-03-10T06:30:00Z"))
                .await
                .expect("run"),
            0,
            "07:30 in Berlin: not yet"
        );
        assert_eq!(
            daily_digest(&store, &store, at("2026-03-10T07:30:00Z"))
                .await
                .expect("run"),
            1
        );
        assert_eq!(
            daily_digest(&store, &store, at("2026-03-10T07:45:00Z"))
                .await
                .expect("run"),
            0,
            "once per local day"
        );
        let notes = store.list_notifications("anna", 10).await.expect("list");
        assert_eq!(notes.len(), 1);
        assert_eq!(notes[0].kind, "daily_digest");
        assert_eq!(
            notes[0].message,
            "2 tasks are overdue: 'File taxes', 'Call the bank'"
        );
        assert_eq!(notes[0].payload["date"], "2026-03-10");
        assert!(
            store
                .list_notifications("ben", 10)
                .await
                .expect("list")
                .is_empty(),
            "ben did not opt in"
        );
        assert_eq!(
            daily_digest(&store, &store, at("2026-03-11T07:10:00Z"))
                .await
                .expect("run"),
            1,
            "the next day has its own digest"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn notification_retention_keeps_recent_and_unread() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = SqliteTaskStore::open(&dir.path().join("t.db")).expect("open");
        let note = |id: u8, created: &str| Notification {
            id: Uuid::from_bytes([id; 16]),
            user_id: "u".into(),
            event_id: Uuid::from_bytes([id + 100; 16]),
            kind: "reminder".into(),
            task_id: None,
            title: format!("n{id}"),
            message: String::new(),
            created_at: at(created),
            read_at: None,
            payload: json!({}),
        };
        for (id, created) in [
            (1, "2026-01-01T00:00:00Z"),
            (2, "2026-05-01T00:00:00Z"),
            (3, "2026-05-01T00:00:00Z"),
        ] {
            store
                .record_notification(note(id, created))
                .await
                .expect("add");
        }
        store
            .mark_notification_read("u", Uuid::from_bytes([2; 16]), at("2026-05-02T00:00:00Z"))
            .await
            .expect("read");
        let removed = store
            .purge_notifications(at("2026-06-01T00:00:00Z"), at("2026-02-01T00:00:00Z"))
            .await
            .expect("purge");
        assert_eq!(removed, 2, "the very old one and the long-read one");
        let left = store.list_notifications("u", 10).await.expect("list");
        assert_eq!(left.len(), 1);
        assert_eq!(left[0].title, "n3");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn jobs_run_on_their_schedule_and_stop() {
        let runs = Arc::new(AtomicU64::new(0));
        let counter = Arc::clone(&runs);
        let jobs = Jobs::start(vec![PeriodicJob::new("tick", "* * * * * *", move || {
            let counter = Arc::clone(&counter);
            Box::pin(async move { Ok(counter.fetch_add(1, Ordering::SeqCst)) })
        })])
        .await
        .expect("start");
        let deadline = Instant::now() + std::time::Duration::from_secs(10);
        while runs.load(Ordering::SeqCst) < 2 && Instant::now() < deadline {
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        assert!(
            runs.load(Ordering::SeqCst) >= 2,
            "an every-second job ran twice"
        );
        jobs.stop().await;
        assert!(matches!(
            Jobs::start(vec![PeriodicJob::new("bad", "whenever", || Box::pin(
                async { Ok(0) }
            ))])
            .await,
            Err(JobsError::Schedule { name: "bad", .. })
        ));
    }
}
