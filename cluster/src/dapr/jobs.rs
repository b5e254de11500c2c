//! Reminders as Dapr jobs (CONTRACT §5; `dapr.md` §1.6): one job per task, named
//! `reminder-{task_id}`, due at the task's earliest pending reminder time.
//!
//! The store stays the authority: a job firing only asks the store to fire what is due
//! ([`TaskStore::fire_reminder`] marks each reminder row in the transaction that writes its
//! `reminder.triggered`, so a job delivered twice fires once), and the task's job is then moved
//! to its next pending time. [`DaprJobScheduler`] keeps jobs in step with reminder changes.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use chrono::{DateTime, Utc};
use reqwest::Method;
use serde_json::{Value, json};
use taskstream_engine::EngineError;
use taskstream_engine::event::reminder_payload;
use taskstream_engine::ports::TaskStore;
use taskstream_engine::reminder::FireOutcome;
use taskstream_engine::time::{format_utc, parse_datetime};
use tokio::sync::{broadcast, watch};
use uuid::Uuid;

use super::DaprError;
use super::client::{DaprClient, segment, status_error};
use super::token::{self, AppToken};

/// Prefix of reminder job names; the rest is the task id (lowercase, portable job names).
pub const JOB_PREFIX: &str = "reminder-";
/// The legacy callback path the reference served (`seed-api.md` §6.2).
pub const LEGACY_CALLBACK: &str = "/api/v1/jobs/reminder-callback";
/// Default age past which a due reminder is recorded as missed instead of fired (the
/// appliance's `TASKSTREAM_MISSED_REMINDER_WINDOW_SECS` default).
pub const DEFAULT_MISSED_WINDOW: chrono::Duration = chrono::Duration::hours(24);

/// The job name of a task's reminders.
pub fn job_name(task_id: Uuid) -> String {
    format!("{JOB_PREFIX}{task_id}")
}

/// The task a reminder job name stands for.
pub fn task_of_job(name: &str) -> Option<Uuid> {
    name.strip_prefix(JOB_PREFIX)
        .and_then(|id| Uuid::parse_str(id).ok())
}

/// The jobs API of the sidecar, for reminder jobs.
#[derive(Debug, Clone)]
pub struct DaprJobs {
    client: DaprClient,
}

impl DaprJobs {
    /// Jobs of the app-id the sidecar runs for.
    pub fn new(client: DaprClient) -> Self {
        Self { client }
    }

    /// Creates or replaces job `name`, due once at `due`, delivering `data`:
    /// `{"dueTime": RFC 3339, "data": …, "overwrite": true}`.
    pub async fn schedule(
        &self,
        name: &str,
        due: DateTime<Utc>,
        data: &Value,
    ) -> Result<(), DaprError> {
        let body = json!({ "dueTime": format_utc(due), "data": data, "overwrite": true });
        let request = self
            .client
            .request(Method::POST, &format!("/v1.0/jobs/{}", segment(name)))
            .json(&body);
        let response = self.client.send("job schedule", request).await?;
        if response.status().is_success() {
            Ok(())
        } else {
            Err(status_error("job schedule", response).await)
        }
    }

    /// Deletes job `name`; a job that does not exist is fine (daprd answers 204 anyway).
    pub async fn delete(&self, name: &str) -> Result<(), DaprError> {
        let request = self
            .client
            .request(Method::DELETE, &format!("/v1.0/jobs/{}", segment(name)));
        let response = self.client.send("job delete", request).await?;
        if response.status().is_success() || response.status() == StatusCode::NOT_FOUND {
            Ok(())
        } else {
            Err(status_error("job delete", response).await)
        }
    }

    /// Schedules `task_id`'s job for `at` with the task's reminder payload, or deletes the job
    /// when the task is gone.
    async fn schedule_for(
        &self,
        store: &dyn TaskStore,
        task_id: Uuid,
        at: DateTime<Utc>,
    ) -> Result<(), EngineError> {
        match store.get(task_id).await? {
            Some(task) => {
                self.schedule(&job_name(task_id), at, &reminder_payload(&task, at))
                    .await?;
            }
            None => self.delete(&job_name(task_id)).await?,
        }
        Ok(())
    }

    /// Puts the task's job on its earliest pending reminder time, or deletes it when nothing
    /// is pending; returns that time. Idempotent, so any number of callers may race.
    pub async fn sync_task(
        &self,
        store: &dyn TaskStore,
        task_id: Uuid,
    ) -> Result<Option<DateTime<Utc>>, EngineError> {
        match pending_times(store, task_id).await?.first() {
            Some(&at) => {
                self.schedule_for(store, task_id, at).await?;
                Ok(Some(at))
            }
            None => {
                self.delete(&job_name(task_id)).await?;
                Ok(None)
            }
        }
    }
}

/// The task's pending reminder times, soonest first.
async fn pending_times(
    store: &dyn TaskStore,
    task_id: Uuid,
) -> Result<Vec<DateTime<Utc>>, EngineError> {
    let mut times: Vec<DateTime<Utc>> = store
        .reminder_history(task_id)
        .await?
        .into_iter()
        .filter(|row| row.fired_at.is_none() && !row.missed)
        .map(|row| row.fire_at)
        .collect();
    times.sort_unstable();
    times.dedup();
    Ok(times)
}

/// What the job callbacks need.
#[derive(Clone)]
pub struct JobCallbackDeps {
    /// The authority on which reminders are pending and fired.
    pub store: Arc<dyn TaskStore>,
    /// Moves the task's job to its next pending time.
    pub jobs: DaprJobs,
    /// Due reminders older than this are recorded as missed, not fired.
    pub missed_window: chrono::Duration,
    /// Checks the sidecar's `dapr-api-token`.
    pub app_token: AppToken,
}

impl JobCallbackDeps {
    /// Callbacks with the default missed window and no app token.
    pub fn new(store: Arc<dyn TaskStore>, jobs: DaprJobs) -> Self {
        Self {
            store,
            jobs,
            missed_window: DEFAULT_MISSED_WINDOW,
            app_token: AppToken::default(),
        }
    }

    /// Another missed window (the appliance's setting).
    pub fn with_missed_window(mut self, window: chrono::Duration) -> Self {
        self.missed_window = window;
        self
    }

    /// Requires `token` from the sidecar.
    pub fn with_app_token(mut self, token: AppToken) -> Self {
        self.app_token = token;
        self
    }
}

/// What one job trigger did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FireReport {
    /// Reminders fired now (`reminder.triggered` in the outbox).
    pub fired: usize,
    /// Reminders too old to fire, recorded as missed.
    pub missed: usize,
    /// `on_due` recurrence timers that created the next occurrence.
    pub recurred: usize,
    /// The task's next pending time, its job now due then.
    pub next: Option<DateTime<Utc>>,
}

/// Handles a trigger of `task_id`'s job: fires the reminder the job was for (`remind_at` of
/// its data) and any other of the task's reminders already due, each exactly once through the
/// store, then moves the job to the next pending time.
pub async fn fire_job(
    deps: &JobCallbackDeps,
    task_id: Uuid,
    data: Option<&Value>,
) -> Result<FireReport, EngineError> {
    let store = deps.store.as_ref();
    let now = taskstream_engine::time::now();
    let mut due: BTreeSet<DateTime<Utc>> = pending_times(store, task_id)
        .await?
        .into_iter()
        .filter(|at| *at <= now)
        .collect();
    // The job's own time even if our clock is a little behind the scheduler's.
    if let Some(at) = data
        .and_then(|data| data.get("remind_at"))
        .and_then(Value::as_str)
        .and_then(parse_datetime)
    {
        due.insert(at);
    }
    let mut report = FireReport::default();
    for at in due {
        match store
            .fire_reminder(task_id, at, now, deps.missed_window)
            .await?
        {
            FireOutcome::Fired { .. } => report.fired += 1,
            FireOutcome::Missed => report.missed += 1,
            // The new occurrence's own timers reach the job scheduler through the store's
            // reminder changes.
            FireOutcome::Recurred { .. } => report.recurred += 1,
            FireOutcome::NotArmed => {}
        }
    }
    report.next = deps.jobs.sync_task(store, task_id).await?;
    Ok(report)
}

async fn answer(deps: &JobCallbackDeps, task_id: Uuid, data: Option<&Value>) -> Response {
    match fire_job(deps, task_id, data).await {
        Ok(report) => (
            StatusCode::OK,
            axum::Json(json!({
                "status": "SUCCESS",
                "task_id": task_id,
                "fired": report.fired,
                "missed": report.missed,
                "recurred": report.recurred,
                "next": report.next.map(format_utc),
            })),
        )
            .into_response(),
        Err(error) => {
            tracing::warn!(%error, task = %task_id, "reminder job failed; the sidecar retries it");
            // Any status but 2xx and 404 makes daprd retry under the job's failure policy.
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                axum::Json(
                    json!({ "status": "RETRY", "task_id": task_id, "error": error.to_string() }),
                ),
            )
                .into_response()
        }
    }
}

/// `POST /job/{name}`: the body is exactly the job's `data` (empty when it had none).
async fn on_job(
    State(deps): State<JobCallbackDeps>,
    Path(name): Path<String>,
    body: Bytes,
) -> Response {
    let Some(task_id) = task_of_job(&name) else {
        // daprd counts 404 as done, so an unknown job is not retried forever.
        return (
            StatusCode::NOT_FOUND,
            axum::Json(json!({ "status": "DROP", "error": "unknown job" })),
        )
            .into_response();
    };
    let data = serde_json::from_slice::<Value>(&body).ok();
    if data.is_none() && !body.is_empty() {
        tracing::warn!(job = %name, "job data is not JSON; firing what is due");
    }
    answer(&deps, task_id, data.as_ref()).await
}

/// `POST /api/v1/jobs/reminder-callback`: `{"name", "data": {…}}` as the reference sent it,
/// or the bare data.
async fn on_legacy(State(deps): State<JobCallbackDeps>, body: Bytes) -> Response {
    let Ok(body) = serde_json::from_slice::<Value>(&body) else {
        return (
            StatusCode::UNPROCESSABLE_ENTITY,
            axum::Json(json!({ "detail": "body is not JSON" })),
        )
            .into_response();
    };
    let data = body
        .get("data")
        .filter(|data| data.is_object())
        .unwrap_or(&body);
    let task_id = data
        .get("task_id")
        .and_then(Value::as_str)
        .and_then(|id| Uuid::parse_str(id).ok())
        .or_else(|| {
            body.get("name")
                .and_then(Value::as_str)
                .and_then(task_of_job)
        });
    match task_id {
        Some(task_id) => answer(&deps, task_id, Some(data)).await,
        None => (
            StatusCode::UNPROCESSABLE_ENTITY,
            axum::Json(json!({ "detail": "data.task_id is missing or not a UUID" })),
        )
            .into_response(),
    }
}

/// The job trigger routes: `POST /job/{name}` (what daprd calls) and the legacy
/// `POST /api/v1/jobs/reminder-callback`, both behind the app token.
pub fn job_callback_router(deps: JobCallbackDeps) -> Router {
    let token = deps.app_token.clone();
    Router::new()
        .route("/job/{name}", post(on_job))
        .route(LEGACY_CALLBACK, post(on_legacy))
        .with_state(deps)
        .layer(axum::middleware::from_fn_with_state(token, token::require))
}

const RETRY_FIRST: Duration = Duration::from_millis(200);
const RETRY_MAX: Duration = Duration::from_secs(30);
/// Tasks scheduled concurrently at start.
const SCHEDULE_CONCURRENCY: usize = 16;

/// Keeps the sidecar's reminder jobs in step with the store: schedules every pending reminder
/// at start, then overwrites or deletes a task's job after each reminder change. There is no
/// HTTP API to list jobs (`dapr.md` §1.6), so jobs cannot be reconciled the other way round;
/// instead, every `resync_every` the reminders already overdue by `overdue_grace` get their
/// job again, which heals jobs lost with a scheduler on in-memory storage.
pub struct DaprJobScheduler {
    store: Arc<dyn TaskStore>,
    jobs: DaprJobs,
    resync_every: Duration,
    overdue_grace: chrono::Duration,
}

impl DaprJobScheduler {
    /// A scheduler that re-checks overdue reminders every five minutes.
    pub fn new(store: Arc<dyn TaskStore>, jobs: DaprJobs) -> Self {
        Self {
            store,
            jobs,
            resync_every: Duration::from_secs(300),
            overdue_grace: chrono::Duration::minutes(1),
        }
    }

    /// Re-posts jobs of reminders overdue by more than `grace`, every `every`.
    pub fn with_resync(mut self, every: Duration, grace: chrono::Duration) -> Self {
        self.resync_every = every.max(Duration::from_millis(10));
        self.overdue_grace = grace;
        self
    }

    /// Each task with a pending reminder and its earliest time.
    async fn earliest_pending(&self) -> Result<BTreeMap<Uuid, DateTime<Utc>>, EngineError> {
        let mut earliest = BTreeMap::new();
        for (task_id, at) in self.store.pending_reminders().await? {
            earliest
                .entry(task_id)
                .and_modify(|known: &mut DateTime<Utc>| *known = (*known).min(at))
                .or_insert(at);
        }
        Ok(earliest)
    }

    /// Schedules one job per task with pending reminders; tasks that failed land in `retry`.
    /// Returns how many jobs were scheduled.
    pub async fn schedule_all(&self, retry: &mut BTreeSet<Uuid>) -> Result<usize, EngineError> {
        let earliest: Vec<(Uuid, DateTime<Utc>)> =
            self.earliest_pending().await?.into_iter().collect();
        let mut scheduled = 0;
        for chunk in earliest.chunks(SCHEDULE_CONCURRENCY) {
            let outcomes =
                futures_util::future::join_all(chunk.iter().map(|&(task_id, at)| async move {
                    (
                        task_id,
                        self.jobs
                            .schedule_for(self.store.as_ref(), task_id, at)
                            .await,
                    )
                }))
                .await;
            for (task_id, outcome) in outcomes {
                match outcome {
                    Ok(()) => scheduled += 1,
                    Err(error) => {
                        tracing::warn!(%error, task = %task_id, "cannot schedule a reminder job; will retry");
                        retry.insert(task_id);
                    }
                }
            }
        }
        tracing::info!(scheduled, "reminder jobs scheduled");
        Ok(scheduled)
    }

    /// Syncs the jobs of `tasks`, leaving the ones that failed in it.
    async fn sync_tasks(&self, tasks: &mut BTreeSet<Uuid>) {
        let batch: Vec<Uuid> = std::mem::take(tasks).into_iter().collect();
        for task_id in batch {
            if let Err(error) = self.jobs.sync_task(self.store.as_ref(), task_id).await {
                tracing::warn!(%error, task = %task_id, "cannot update a reminder job; will retry");
                tasks.insert(task_id);
            }
        }
    }

    /// Marks the tasks whose earliest reminder is overdue for rescheduling.
    async fn overdue(&self, tasks: &mut BTreeSet<Uuid>) -> Result<(), EngineError> {
        let limit = Utc::now() - self.overdue_grace;
        for (task_id, at) in self.earliest_pending().await? {
            if at <= limit {
                tasks.insert(task_id);
            }
        }
        Ok(())
    }

    /// Runs until `shutdown` turns true (or the store's change feed closes). Failures (sidecar
    /// or store down) are retried with exponential backoff; a lagging change feed triggers a
    /// full reschedule.
    pub async fn run(self, mut shutdown: watch::Receiver<bool>) {
        // Subscribed before the first load, so no change between the two is lost.
        let mut changes = self.store.reminder_changes();
        let mut dirty = BTreeSet::new();
        let mut full = true;
        let mut backoff = RETRY_FIRST;
        let mut resync = tokio::time::interval_at(
            tokio::time::Instant::now() + self.resync_every,
            self.resync_every,
        );
        resync.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            if *shutdown.borrow() {
                break;
            }
            if full {
                match self.schedule_all(&mut dirty).await {
                    Ok(_) => full = false,
                    Err(error) => {
                        tracing::warn!(%error, "cannot load pending reminders; will retry")
                    }
                }
            }
            if !dirty.is_empty() {
                self.sync_tasks(&mut dirty).await;
            }
            let failing = full || !dirty.is_empty();
            if !failing {
                backoff = RETRY_FIRST;
            }
            tokio::select! {
                change = changes.recv() => match change {
                    Ok(change) => {
                        dirty.insert(change.task_id);
                        while let Ok(more) = changes.try_recv() {
                            dirty.insert(more.task_id);
                        }
                    }
                    Err(broadcast::error::RecvError::Lagged(missed)) => {
                        tracing::warn!(missed, "reminder changes overflowed; rescheduling every job");
                        full = true;
                    }
                    Err(broadcast::error::RecvError::Closed) => break,
                },
                () = tokio::time::sleep(backoff), if failing => {
                    backoff = (backoff * 2).min(RETRY_MAX);
                }
                _ = resync.tick() => {
                    if let Err(error) = self.overdue(&mut dirty).await {
                        tracing::warn!(%error, "cannot check for overdue reminders");
                    }
                }
                changed = shutdown.changed() => {
                    if changed.is_err() {
                        break;
                    }
                }
            }
        }
        tracing::debug!("dapr job scheduler stopped");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn job_names_carry_the_task_id() {
        let id = Uuid::new_v4();
        assert_eq!(task_of_job(&job_name(id)), Some(id));
        assert_eq!(task_of_job("reminder-nope"), None);
        assert_eq!(task_of_job(&id.to_string()), None);
    }
}
