//! The ports: what the domain needs from the outside world, implemented once per shape
//! (embedded SQLite today; PostgreSQL and Dapr in cluster mode).

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use tokio::sync::Notify;
use uuid::Uuid;

use crate::activity::{AuditEntry, AuditFilter, Delivery, Notification};
use crate::reminder::{FireOutcome, ReminderChange};

use crate::error::EngineError;
use crate::event::{EventEnvelope, OutboxEvent};
use crate::project::{Project, ProjectDeletion, ProjectSummary, SubtaskCount};
use crate::task::{Change, Task, TaskOp, TaskQuery};

/// An event waiting in the outbox for the relay.
#[derive(Debug, Clone, PartialEq)]
pub struct OutboxRecord {
    /// Position in the outbox; the relay publishes in this order.
    pub seq: i64,
    pub topic: String,
    pub key: String,
    pub envelope: EventEnvelope,
}

/// Projects (lists) of tasks, and the subtask counts of tasks (see [`crate::project`]). Part of
/// every [`TaskStore`]: deleting a project changes its tasks in the same transaction.
#[async_trait]
pub trait ProjectStore: Send + Sync + 'static {
    /// Adds a project; `Conflict` when its user already has one of that name (ignoring case)
    /// or [`crate::project::PROJECTS_MAX`] of them. The check and the insert are one step.
    async fn insert_project(&self, project: Project) -> Result<Project, EngineError>;

    /// A project by id with its task counts, whoever owns it; callers check ownership.
    async fn project(&self, id: Uuid) -> Result<Option<ProjectSummary>, EngineError>;

    /// One user's projects with their task counts, by name (ignoring case).
    async fn list_projects(&self, user_id: &str) -> Result<Vec<ProjectSummary>, EngineError>;

    /// Renames one of the user's projects (`ProjectNotFound`, `Forbidden` for another user's,
    /// `Conflict` when another of theirs has the name).
    async fn rename_project(
        &self,
        user_id: &str,
        id: Uuid,
        name: String,
        now: DateTime<Utc>,
    ) -> Result<Project, EngineError>;

    /// Deletes one of the user's projects; in the same transaction its tasks leave it, each
    /// with a `task.updated` event (errors as [`ProjectStore::rename_project`]).
    async fn delete_project(
        &self,
        user_id: &str,
        id: Uuid,
        now: DateTime<Utc>,
    ) -> Result<ProjectDeletion, EngineError>;

    /// For each of `parents` that is the user's and has subtasks: how many, and how many are
    /// completed.
    async fn subtask_counts(
        &self,
        user_id: &str,
        parents: Vec<Uuid>,
    ) -> Result<HashMap<Uuid, SubtaskCount>, EngineError>;
}

/// Durable storage of tasks, with the events their changes produce (see [`Outbox`]), the
/// activity they cause ([`ActivityStore`]), their reminder timers ([`ReminderStore`]) and their
/// projects ([`ProjectStore`]): one store, because every write commits the task rows, their
/// timers and their outbox events in one transaction, so an event is never lost and never
/// announced for a change that did not happen. The roles are separate traits so a component
/// asks for only the part it uses (the relay an [`Outbox`], the scheduler a [`ReminderStore`]).
#[async_trait]
pub trait TaskStore:
    ProjectStore + Outbox + ActivityStore + ReminderStore + Send + Sync + 'static
{
    /// Inserts a new task with its events. A task with a `project_id` or `subtask_of` is
    /// placed by [`crate::project::rules::place`] against the rows as they are in the same
    /// transaction (`ProjectNotFound`, `ParentNotFound`, `Conflict`), and a subtask takes its
    /// parent's project; the stored task is returned.
    async fn insert(&self, task: Task, events: Vec<OutboxEvent>) -> Result<Task, EngineError>;

    /// Loads a task by id, whoever owns it; callers check ownership.
    async fn get(&self, id: Uuid) -> Result<Option<Task>, EngineError>;

    /// The tasks of one user that match `query`, in its order.
    async fn list(&self, user_id: &str, query: &TaskQuery) -> Result<Vec<Task>, EngineError>;

    /// Runs `op` for `user_id` against the current state of task `id` inside one transaction,
    /// through [`crate::task::ops::apply_with_subtasks`] (with the task's subtasks when the op
    /// [touches them](crate::task::TaskOp::touches_subtasks)), and persists the resulting
    /// change. A [`TaskOp::SetProject`] to a project that is not the user's is
    /// `ProjectNotFound`.
    async fn modify(
        &self,
        id: Uuid,
        user_id: &str,
        op: TaskOp,
        now: DateTime<Utc>,
    ) -> Result<Change, EngineError>;

    /// Cheap liveness check for `/ready`.
    async fn ping(&self) -> Result<(), EngineError>;
}

/// The events committed with task changes, waiting for the relay to publish them.
#[async_trait]
pub trait Outbox: Send + Sync + 'static {
    /// The oldest events not yet relayed, in commit order.
    async fn pending_events(&self, limit: usize) -> Result<Vec<OutboxRecord>, EngineError>;

    /// Removes these relayed events (by `seq`); returns how many went. Exactly these, not every
    /// older one: an event skipped because it was not yet publishable stays.
    async fn delete_events(&self, seqs: Vec<i64>) -> Result<u64, EngineError>;

    /// Notified after each commit, so the relay wakes on new events instead of polling; also
    /// after a commit by another process is noticed (see [`Outbox::foreign_commits`]).
    fn commit_signal(&self) -> Arc<Notify>;

    /// Counts commits made by other processes on the same database (`taskstream mcp` over stdio
    /// next to a running `serve`), noticed within about a second. Whoever keeps an in-memory
    /// view of the store (the reminder queue) reloads it when this changes.
    fn foreign_commits(&self) -> tokio::sync::watch::Receiver<u64>;
}

/// What the consumers record about task changes: the audit trail, the in-app notifications
/// and their deliveries to outside channels, each once per event.
#[async_trait]
pub trait ActivityStore: Send + Sync + 'static {
    /// Records an audit row unless its event was already audited; true when added.
    async fn record_audit(&self, entry: AuditEntry) -> Result<bool, EngineError>;

    /// One user's audit trail, newest first.
    async fn list_audit(
        &self,
        user_id: &str,
        filter: &AuditFilter,
    ) -> Result<Vec<AuditEntry>, EngineError>;

    /// Records a notification unless its event already produced one; true when added.
    async fn record_notification(&self, notification: Notification) -> Result<bool, EngineError>;

    /// One user's notifications, newest first.
    async fn list_notifications(
        &self,
        user_id: &str,
        limit: u32,
    ) -> Result<Vec<Notification>, EngineError>;

    /// How many of one user's notifications are unread (the bell of every UI page), counted
    /// by the store rather than by loading them.
    async fn count_unread_notifications(&self, user_id: &str) -> Result<u64, EngineError>;

    /// Logs one delivery attempt of a notification to an outside channel.
    async fn record_delivery(&self, delivery: Delivery) -> Result<(), EngineError>;

    /// Whether the notification of `event_id` already reached `channel`.
    async fn delivered(&self, event_id: Uuid, channel: &str) -> Result<bool, EngineError>;

    /// Marks one of the user's notifications read; `NotificationNotFound` for anything else.
    async fn mark_notification_read(
        &self,
        user_id: &str,
        id: Uuid,
        now: DateTime<Utc>,
    ) -> Result<Notification, EngineError>;
}

/// The reminder timers of tasks: what is armed, and taking a due one up exactly once.
#[async_trait]
pub trait ReminderStore: Send + Sync + 'static {
    /// Changes of armed reminders after each successful write, for the scheduler's queue. A
    /// lagging receiver should reload [`ReminderStore::pending_reminders`].
    fn reminder_changes(&self) -> tokio::sync::broadcast::Receiver<ReminderChange>;

    /// Every armed reminder (task id, fire time), soonest first.
    async fn pending_reminders(&self) -> Result<Vec<(Uuid, DateTime<Utc>)>, EngineError>;

    /// Takes up a due reminder in one transaction: fires it (`reminder.triggered` into the
    /// outbox), or records it as missed when older than `missed_window`, or does nothing when it
    /// is no longer armed for `fire_at`.
    async fn fire_reminder(
        &self,
        task_id: Uuid,
        fire_at: DateTime<Utc>,
        now: DateTime<Utc>,
        missed_window: chrono::Duration,
    ) -> Result<FireOutcome, EngineError>;

    /// Takes up many due timers, each as [`ReminderStore::fire_reminder`] would at the moment it is
    /// processed, in as few transactions as the store can: a burst of reminders due at one
    /// instant then costs one commit instead of one per reminder. The outcomes are in order.
    async fn fire_reminders(
        &self,
        due: Vec<(Uuid, DateTime<Utc>)>,
        missed_window: chrono::Duration,
    ) -> Result<Vec<FireOutcome>, EngineError> {
        let mut outcomes = Vec::with_capacity(due.len());
        for (task_id, fire_at) in due {
            outcomes.push(
                self.fire_reminder(task_id, fire_at, crate::time::now(), missed_window)
                    .await?,
            );
        }
        Ok(outcomes)
    }

    /// Does ahead of time what firing these timers (due in the next seconds) will need, so
    /// that [`ReminderStore::fire_reminders`] at their deadline only marks them (the SQLite store
    /// writes their events ahead, held back until then). A hint: the outcomes are the same with
    /// or without it (an event prepared ahead is stamped with its fire time rather than the
    /// moment it fired, under a second apart), and a store may ignore it.
    async fn prepare_reminders(&self, _due: Vec<(Uuid, DateTime<Utc>)>) -> Result<(), EngineError> {
        Ok(())
    }

    /// Re-arms the reminder of one of the user's notifications `minutes` from `now` as a
    /// one-off (kind `snooze`) and marks the notification read, in one transaction with its
    /// `reminder.scheduled` event. `NotificationNotFound` for anyone else's; `Conflict` when
    /// the notification has no open task to remind about.
    async fn snooze(
        &self,
        user_id: &str,
        notification_id: Uuid,
        minutes: i64,
        now: DateTime<Utc>,
    ) -> Result<crate::reminder::Snoozed, EngineError>;

    /// Every reminder row of a task (pending, fired, missed), by time; callers check ownership.
    async fn reminder_history(
        &self,
        task_id: Uuid,
    ) -> Result<Vec<crate::reminder::ReminderRecord>, EngineError>;
}

/// What a readiness probe returns: `Err(reason)` names what is not ready.
pub type ProbeFuture<'a> =
    std::pin::Pin<Box<dyn std::future::Future<Output = Result<(), String>> + Send + 'a>>;

/// A component `/ready` asks before the process takes traffic (store, log, sidecar, ...).
/// A port so each shape's adapters answer for themselves and the web layer only collects.
pub trait Probe: Send + Sync {
    fn check(&self) -> ProbeFuture<'_>;
}

/// Where committed events go: the embedded log, or Dapr pub/sub in cluster mode.
#[async_trait]
pub trait EventBus: Send + Sync + 'static {
    /// Publishes `events` keeping their order per topic; returns once they are durable on the bus.
    async fn publish(&self, events: &[OutboxRecord]) -> Result<(), EngineError>;
}

/// One event on a user's live stream; `id` resumes the stream right after it.
#[derive(Debug, Clone, PartialEq)]
pub struct LiveEvent {
    pub id: String,
    pub envelope: EventEnvelope,
}

/// The caller's own task changes and notifications, as they happen (`GET /api/events`).
#[async_trait]
pub trait LiveFeed: Send + Sync + 'static {
    /// A position at the current end of the stream.
    async fn position_now(&self) -> Result<String, EngineError>;

    /// Waits until `user_id` has events after `position` and returns them in order (each with the
    /// position just after it). A malformed position is `EngineError::Validation`-free: it restarts
    /// from now.
    async fn next_events(
        &self,
        user_id: &str,
        position: &str,
    ) -> Result<Vec<LiveEvent>, EngineError>;
}

/// An outside channel notifications are pushed to besides the in-app list (a webhook, ...).
#[async_trait]
pub trait NotificationChannel: Send + Sync + 'static {
    /// Stable name, kept in the delivery log.
    fn name(&self) -> &'static str;

    /// One delivery attempt: `Ok(detail)` when the channel accepted it, `Err(reason)` otherwise.
    async fn deliver(&self, notification: &Notification) -> Result<String, String>;
}

/// Chat history: one conversation per user, its messages in the order they were said.
#[async_trait]
pub trait ConversationStore: Send + Sync + 'static {
    /// Appends a message to the user's conversation (created on first use) and bumps its
    /// `updated_at`; returns the conversation id.
    async fn append_message(
        &self,
        user_id: &str,
        message: crate::assistant::ChatMessage,
    ) -> Result<Uuid, EngineError>;

    /// The user's conversation id and its newest `limit` messages, oldest first.
    async fn recent_messages(
        &self,
        user_id: &str,
        limit: u32,
    ) -> Result<(Option<Uuid>, Vec<crate::assistant::ChatMessage>), EngineError>;

    /// Forgets the user's conversation; returns how many messages went.
    async fn clear_conversation(&self, user_id: &str) -> Result<u64, EngineError>;
}

/// Per-user settings, and the notifications housekeeping the periodic jobs do.
#[async_trait]
pub trait SettingsStore: Send + Sync + 'static {
    /// The user's settings, or the defaults when none were saved.
    async fn settings(&self, user_id: &str) -> Result<crate::settings::UserSettings, EngineError>;

    async fn save_settings(
        &self,
        user_id: &str,
        settings: crate::settings::UserSettings,
        now: DateTime<Utc>,
    ) -> Result<(), EngineError>;

    /// Users who asked for the daily digest, with their settings.
    async fn digest_subscribers(
        &self,
    ) -> Result<Vec<(String, crate::settings::UserSettings)>, EngineError>;

    /// Deletes notifications read before `read_before` and any created before
    /// `created_before`; returns how many went.
    async fn purge_notifications(
        &self,
        read_before: DateTime<Utc>,
        created_before: DateTime<Utc>,
    ) -> Result<u64, EngineError>;
}

/// Local accounts and their personal API tokens (the rows behind
/// [`crate::accounts::AccountService`]).
#[async_trait]
pub trait AccountStore: Send + Sync + 'static {
    /// Adds an account unless its email is taken or, with `only_first`, any account exists;
    /// the check and the insert are one atomic step.
    async fn insert_account(
        &self,
        account: &crate::accounts::AccountRecord,
        only_first: bool,
    ) -> Result<crate::accounts::AccountInsert, EngineError>;

    /// The account with this (normalised) email.
    async fn account_by_email(
        &self,
        email: &str,
    ) -> Result<Option<crate::accounts::AccountRecord>, EngineError>;

    async fn account_by_id(
        &self,
        id: &str,
    ) -> Result<Option<crate::accounts::AccountRecord>, EngineError>;

    async fn account_count(&self) -> Result<u64, EngineError>;

    /// Every account, oldest first.
    async fn list_accounts(&self) -> Result<Vec<crate::accounts::AccountRecord>, EngineError>;

    /// Replaces an account's password hash; false when there is no such account.
    async fn set_password_hash(
        &self,
        id: &str,
        password_hash: &str,
        now: DateTime<Utc>,
    ) -> Result<bool, EngineError>;

    async fn insert_api_token(
        &self,
        token: &crate::accounts::ApiTokenRecord,
    ) -> Result<(), EngineError>;

    /// The user's tokens that are not revoked, newest first.
    async fn api_tokens(
        &self,
        user_id: &str,
    ) -> Result<Vec<crate::accounts::ApiTokenRecord>, EngineError>;

    /// Marks one of the user's live tokens revoked; false when there is none with that id.
    async fn revoke_api_token(
        &self,
        user_id: &str,
        token_id: &str,
        now: DateTime<Utc>,
    ) -> Result<bool, EngineError>;

    /// The live (not revoked) token with this hash.
    async fn api_token_by_hash(
        &self,
        token_hash: &str,
    ) -> Result<Option<crate::accounts::ApiTokenRecord>, EngineError>;

    /// Records that a token was used at `now`.
    async fn touch_api_token(&self, token_id: &str, now: DateTime<Utc>) -> Result<(), EngineError>;

    /// Marks the sign-in session `session_id` (the `sid` of the JWTs this server signs) ended
    /// until `expires_at`, when its token expires anyway; revoking it again changes nothing.
    /// Drops the rows of sessions that expired before `now`, so the table stays small.
    async fn revoke_session(
        &self,
        session_id: &str,
        user_id: &str,
        expires_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<(), EngineError>;

    /// Whether the session was revoked (and not yet dropped as expired).
    async fn session_revoked(&self, session_id: &str) -> Result<bool, EngineError>;

    /// Sets the keyed hash of the user's calendar feed token, replacing the one before (a
    /// user has at most one feed; a new token retires the old URL).
    async fn set_feed_token(
        &self,
        user_id: &str,
        token_hash: &str,
        created_at: DateTime<Utc>,
    ) -> Result<(), EngineError>;

    /// The user whose calendar feed token has this hash.
    async fn feed_token_user(&self, token_hash: &str) -> Result<Option<String>, EngineError>;

    /// When the user's calendar feed token was made, if they have one.
    async fn feed_token_created(&self, user_id: &str)
    -> Result<Option<DateTime<Utc>>, EngineError>;

    /// Removes the user's calendar feed token; false when there was none.
    async fn delete_feed_token(&self, user_id: &str) -> Result<bool, EngineError>;
}

/// Where failed log-ins are counted (see [`crate::accounts`] for the limits). The default
/// counts in memory, which serves one process; a store shared by several replicas counts for
/// all of them, so spreading guesses over the replicas does not multiply the allowance.
#[async_trait]
pub trait LoginAttempts: Send + Sync + 'static {
    /// Seconds to wait when `email` or `client` ("" when unknown) used up its failures within
    /// the window; `None` when the attempt may go ahead.
    async fn blocked_for(&self, email: &str, client: &str) -> Result<Option<u64>, EngineError>;

    /// Counts one failed attempt against the email and the client.
    async fn failed(&self, email: &str, client: &str) -> Result<(), EngineError>;

    /// Forgets the email's failures after a successful log-in (the client's stay).
    async fn succeeded(&self, email: &str) -> Result<(), EngineError>;
}

/// Small keyed state with optional time-to-live: the consumers' idempotency memory
/// (`audit-processed:{event_id}` and friends, CONTRACT.md §5). Dapr state in cluster mode.
#[async_trait]
pub trait StateStore: Send + Sync + 'static {
    /// The value of `key`; expired entries read as `None`.
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, EngineError>;
    /// The values of `keys`, in order. A consumer asks this once per batch of events; the
    /// default asks `get` for each key concurrently, an adapter that can read them together
    /// overrides it.
    async fn get_many(&self, keys: &[String]) -> Result<Vec<Option<Vec<u8>>>, EngineError> {
        futures_util::future::join_all(keys.iter().map(|key| self.get(key)))
            .await
            .into_iter()
            .collect()
    }
    /// Stores `value` under `key`, replacing any value; `ttl` `None` keeps it until deleted.
    async fn set(
        &self,
        key: &str,
        value: Vec<u8>,
        ttl: Option<std::time::Duration>,
    ) -> Result<(), EngineError>;
    /// Atomically stores `value` if `key` is absent or expired; true if it stored (the caller "won").
    async fn set_if_absent(
        &self,
        key: &str,
        value: Vec<u8>,
        ttl: Option<std::time::Duration>,
    ) -> Result<bool, EngineError>;
    /// Removes `key` (absent keys are fine).
    async fn delete(&self, key: &str) -> Result<(), EngineError>;
    /// Removes expired entries; returns how many.
    async fn purge_expired(&self) -> Result<u64, EngineError>;
}

/// The port to an OpenAI-compatible chat-completions endpoint; the appliance implements it with
/// HTTP (timeouts and retries live there), tests with scripted answers.
#[async_trait]
pub trait ChatModel: Send + Sync + 'static {
    async fn complete(
        &self,
        request: &crate::assistant::llm::ChatRequest,
    ) -> Result<crate::assistant::llm::ChatResponse, crate::assistant::llm::ModelError>;
}
