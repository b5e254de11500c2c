//! The embedded task store: SQLite in WAL mode, one writer thread with group commit, and a
//! small pool of read-only connections.

mod account_rows;
mod activity_rows;
mod chat_rows;
mod checkpointer;
mod connection;
mod error;
mod prepared_fires;
mod project_rows;
mod reminder_rows;
mod rows;
mod schema;
mod settings_rows;
mod writer;

pub use error::SqliteError;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, Sender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use rusqlite::Connection;
use tokio::sync::{Notify, Semaphore, broadcast, oneshot, watch};
use uuid::Uuid;

use crate::accounts::{AccountInsert, AccountRecord, ApiTokenRecord};
use crate::activity::{AuditEntry, AuditFilter, Delivery, Notification};
use crate::cache::CacheSizes;
use crate::error::EngineError;
use crate::event::OutboxEvent;
use crate::ports::{
    AccountStore, ActivityStore, ConversationStore, Outbox, OutboxRecord, ProjectStore,
    ReminderStore, SettingsStore, TaskStore,
};
use crate::project::{Project, ProjectDeletion, ProjectSummary, SubtaskCount};
use crate::reminder::{self, FireOutcome, ReminderChange, ReminderFiring};
use crate::task::{Change, Task, TaskOp, TaskQuery, ops};
use rows::sql_error;
use writer::WriteJob;

/// SQLite-backed [`TaskStore`] for the embedded shape.
pub struct SqliteTaskStore {
    /// `None` only while the store shuts down.
    writer: Option<Sender<WriteJob>>,
    writer_thread: Option<JoinHandle<()>>,
    checkpoint_thread: Option<JoinHandle<()>>,
    readers: Arc<ReaderPool>,
    committed: Arc<Notify>,
    reminder_changes: broadcast::Sender<ReminderChange>,
    foreign_commits: watch::Receiver<u64>,
}

/// Reminders prepared per write, so a large read-ahead never holds up other writes for long.
const PREPARE_CHUNK: usize = 500;

/// Reminder changes buffered for a slow scheduler before it must reload.
const REMINDER_CHANGE_BUFFER: usize = 16_384;

/// Read connections kept open (`CacheSizes::sqlite_readers` of them); reads beyond that wait
/// for a free one.
struct ReaderPool {
    path: PathBuf,
    caches: CacheSizes,
    idle: Mutex<Vec<Connection>>,
    permits: Semaphore,
}

impl ReaderPool {
    fn take(&self) -> Result<Connection, EngineError> {
        let idle = self.idle.lock().ok().and_then(|mut idle| idle.pop());
        match idle {
            Some(conn) => Ok(conn),
            None => connection::open_reader(&self.path, &self.caches),
        }
    }

    fn put_back(&self, conn: Connection) {
        if let Ok(mut idle) = self.idle.lock() {
            idle.push(conn);
        }
    }
}

impl SqliteTaskStore {
    /// Opens (creating if needed) the database at `path` and brings its schema up to date,
    /// with the default cache sizes.
    pub fn open(path: &Path) -> Result<Self, EngineError> {
        Self::open_with(path, &CacheSizes::DEFAULT)
    }

    /// Like [`SqliteTaskStore::open`], with the connections' caches sized by `caches`.
    pub fn open_with(path: &Path, caches: &CacheSizes) -> Result<Self, EngineError> {
        let readers = caches
            .sqlite_readers
            .clamp(1, CacheSizes::MAX_SQLITE_READERS);
        let mut conn = connection::open_writer(path, caches)?;
        schema::migrate(&mut conn)?;
        let checkpoint_thread = checkpointer::start(path, &mut conn)?;
        let (sender, jobs) = mpsc::channel();
        let committed = Arc::new(Notify::new());
        let signal = Arc::clone(&committed);
        let (foreign, foreign_commits) = watch::channel(0);
        let writer_thread = std::thread::Builder::new()
            .name("store-writer".to_owned())
            .spawn(move || writer::run(conn, jobs, signal, foreign))
            .map_err(|source| SqliteError::Thread {
                what: "store writer",
                source,
            })?;
        Ok(Self {
            writer: Some(sender),
            writer_thread: Some(writer_thread),
            checkpoint_thread: Some(checkpoint_thread),
            readers: Arc::new(ReaderPool {
                path: path.to_owned(),
                caches: *caches,
                idle: Mutex::new(Vec::with_capacity(readers)),
                permits: Semaphore::new(readers),
            }),
            committed,
            reminder_changes: broadcast::channel(REMINDER_CHANGE_BUFFER).0,
            foreign_commits,
        })
    }

    fn announce(&self, changes: impl IntoIterator<Item = ReminderChange>) {
        for change in changes {
            // No receiver (no scheduler running) is fine: the rows are the truth.
            let _ = self.reminder_changes.send(change);
        }
    }

    /// Runs `work` in the writer's next group commit and waits until it is durable.
    /// Writes a consistent copy of the database to the new file `dest` with SQLite's online
    /// backup API, while the writer thread waits, then runs `then` (the copies of the other stores)
    /// before the writer takes the next write: no write of this process commits between the
    /// copies, so they all show one moment. A write from another process (the stdio MCP
    /// server, the CLI) is in the copy whole or not at all.
    pub async fn backup_with(
        &self,
        dest: std::path::PathBuf,
        then: impl FnOnce() -> Result<(), EngineError> + Send + 'static,
    ) -> Result<(), EngineError> {
        let (source_path, caches) = (self.readers.path.clone(), self.readers.caches);
        self.write(move |_writer| {
            // From a reader: SQLite refuses a backup from the connection that is writing (the
            // writer runs each job inside its group-commit transaction). The reader sees every
            // committed, so every acknowledged, write.
            let source = connection::open_reader(&source_path, &caches)?;
            let mut target = Connection::open(&dest).map_err(sql_error)?;
            rusqlite::backup::Backup::new(&source, &mut target)
                .and_then(|backup| {
                    backup.run_to_completion(i32::MAX, std::time::Duration::from_millis(10), None)
                })
                .map_err(sql_error)?;
            drop(target);
            then()
        })
        .await
    }

    async fn write<T: Send + 'static>(
        &self,
        work: impl FnOnce(&Connection) -> Result<T, EngineError> + Send + 'static,
    ) -> Result<T, EngineError> {
        let (reply, outcome) = oneshot::channel();
        let writer = self
            .writer
            .as_ref()
            .ok_or(SqliteError::Closed("the store is shutting down"))?;
        writer
            .send(WriteJob::new(work, reply))
            .map_err(|_| SqliteError::Closed("the store writer has stopped"))?;
        outcome
            .await
            .map_err(|_| SqliteError::Closed("the store writer has stopped"))?
    }

    async fn read<T: Send + 'static>(
        &self,
        query: impl FnOnce(&Connection) -> Result<T, EngineError> + Send + 'static,
    ) -> Result<T, EngineError> {
        let _permit = self
            .readers
            .permits
            .acquire()
            .await
            .map_err(|_| SqliteError::Closed("the store is closed"))?;
        let pool = Arc::clone(&self.readers);
        tokio::task::spawn_blocking(move || {
            let conn = pool.take()?;
            let result = query(&conn);
            pool.put_back(conn);
            result
        })
        .await
        .map_err(|error| SqliteError::Read(error.to_string()))?
    }
}

/// One task operation inside the writer's transaction: load, apply the domain rules, persist.
/// Returns the change and the pending reminder times of every task it touched.
fn modify_in(
    conn: &Connection,
    id: Uuid,
    user_id: &str,
    op: TaskOp,
    now: DateTime<Utc>,
) -> Result<(Change, Vec<ReminderChange>), EngineError> {
    let current = rows::load_task(conn, id)
        .map_err(sql_error)?
        .ok_or(EngineError::NotFound)?;
    if let TaskOp::SetProject(Some(project)) = &op
        && current.user_id == user_id
    {
        let found = project_rows::load(conn, *project).map_err(sql_error)?;
        crate::project::rules::referenced(found.as_ref(), user_id)?;
    }
    let has_next = rows::has_next_occurrence(conn, id).map_err(sql_error)?;
    let subtasks = if op.touches_subtasks() {
        rows::subtasks_of(conn, id).map_err(sql_error)?
    } else {
        Vec::new()
    };
    let change = ops::apply_with_subtasks(op, user_id, current, has_next, subtasks, now)?;
    let mut armed = Vec::new();
    for task in change.removed() {
        rows::delete_task(conn, task.id).map_err(sql_error)?;
        armed.push(ReminderChange {
            task_id: task.id,
            fire_at: Vec::new(),
        });
    }
    for task in change.written() {
        rows::update_task(conn, task).map_err(sql_error)?;
        armed.push(ReminderChange {
            task_id: task.id,
            fire_at: reminder_rows::sync(conn, task).map_err(sql_error)?,
        });
    }
    if let Some(next) = &change.next {
        rows::insert_task(conn, next).map_err(sql_error)?;
        armed.push(ReminderChange {
            task_id: next.id,
            fire_at: reminder_rows::sync(conn, next).map_err(sql_error)?,
        });
    }
    rows::append_events(conn, &change.events).map_err(sql_error)?;
    Ok((change, armed))
}

/// Arms a snooze for a notification's task inside the writer's transaction.
fn snooze_in(
    conn: &Connection,
    user_id: &str,
    notification_id: Uuid,
    minutes: i64,
    now: DateTime<Utc>,
) -> Result<(reminder::Snoozed, ReminderChange), EngineError> {
    let notification = activity_rows::mark_notification_read(conn, user_id, notification_id, now)
        .map_err(sql_error)?
        .ok_or(EngineError::NotificationNotFound)?;
    let task_id = reminder::snooze_target(&notification)?;
    let task = rows::load_task(conn, task_id).map_err(sql_error)?;
    let plan = reminder::plan_snooze(task.as_ref(), user_id, minutes, now)?;
    let pending = reminder_rows::snooze(conn, task_id, user_id, plan.fire_at).map_err(sql_error)?;
    rows::append_events(conn, &[plan.event]).map_err(sql_error)?;
    Ok((
        reminder::Snoozed {
            task_id,
            fire_at: plan.fire_at,
        },
        ReminderChange {
            task_id,
            fire_at: pending,
        },
    ))
}

/// Takes up the timers due at one instant of a task inside the writer's transaction: a `recur`
/// timer creates the next occurrence of an `on_due` task; reminders (and snoozes) fire once, or
/// are recorded as missed when older than `missed_window`. Returns the outcome and the pending
/// times of the tasks it touched (the new occurrence's own timers).
fn fire_in(
    conn: &Connection,
    task_id: Uuid,
    fire_at: DateTime<Utc>,
    now: DateTime<Utc>,
    missed_window: chrono::Duration,
) -> Result<(FireOutcome, Vec<ReminderChange>), EngineError> {
    let kinds = reminder_rows::armed_kinds(conn, task_id, fire_at).map_err(sql_error)?;
    if kinds.is_empty() {
        return Ok((FireOutcome::NotArmed, Vec::new()));
    }
    prepared_fires::withdraw(conn, task_id, fire_at).map_err(sql_error)?;
    let Some(task) = rows::load_task(conn, task_id).map_err(sql_error)? else {
        return Ok((FireOutcome::NotArmed, Vec::new()));
    };
    let due = reminder::due_timers(&task, &kinds, fire_at);
    let has_next = due.recur && rows::has_next_occurrence(conn, task_id).map_err(sql_error)?;
    let plan = reminder::plan_fire(&task, due, has_next, fire_at, now, missed_window)?;
    let mut armed = Vec::new();
    if let Some(change) = &plan.recurrence
        && let Some(next) = &change.next
    {
        rows::insert_task(conn, next).map_err(sql_error)?;
        rows::append_events(conn, &change.events).map_err(sql_error)?;
        armed.push(ReminderChange {
            task_id: next.id,
            fire_at: reminder_rows::sync(conn, next).map_err(sql_error)?,
        });
        reminder_rows::mark_fired(conn, task_id, fire_at, "recur", now).map_err(sql_error)?;
    }
    match &plan.reminders {
        Some(ReminderFiring::Missed {
            kinds,
            notification,
        }) => {
            for kind in kinds {
                reminder_rows::mark_missed(conn, task_id, fire_at, kind).map_err(sql_error)?;
            }
            activity_rows::insert_notification(conn, notification).map_err(sql_error)?;
        }
        Some(ReminderFiring::Fired { kinds, event, .. }) => {
            for kind in kinds {
                reminder_rows::mark_fired(conn, task_id, fire_at, kind, now).map_err(sql_error)?;
            }
            rows::append_events(conn, std::slice::from_ref(event)).map_err(sql_error)?;
        }
        None => {}
    }
    if plan.resync {
        armed.push(ReminderChange {
            task_id,
            fire_at: reminder_rows::sync(conn, &task).map_err(sql_error)?,
        });
    }
    Ok((plan.outcome, armed))
}

impl Drop for SqliteTaskStore {
    /// Lets the writer finish the queued writes, then waits for it, so nothing acknowledged is lost.
    fn drop(&mut self) {
        drop(self.writer.take());
        if let Some(thread) = self.writer_thread.take()
            && thread.join().is_err()
        {
            tracing::error!("store writer panicked during shutdown");
        }
        // The writer's connection is closed now, which stops the checkpoint thread.
        if let Some(thread) = self.checkpoint_thread.take()
            && thread.join().is_err()
        {
            tracing::error!("store checkpoint thread panicked during shutdown");
        }
    }
}

#[async_trait]
impl TaskStore for SqliteTaskStore {
    async fn insert(&self, task: Task, events: Vec<OutboxEvent>) -> Result<Task, EngineError> {
        let (task, armed) = self
            .write(move |conn| {
                let mut task = task;
                project_rows::place(conn, &mut task)?;
                rows::insert_task(conn, &task).map_err(sql_error)?;
                let armed = reminder_rows::sync(conn, &task).map_err(sql_error)?;
                rows::append_events(conn, &events).map_err(sql_error)?;
                Ok((task, armed))
            })
            .await?;
        if !armed.is_empty() {
            self.announce([ReminderChange {
                task_id: task.id,
                fire_at: armed,
            }]);
        }
        Ok(task)
    }

    async fn get(&self, id: Uuid) -> Result<Option<Task>, EngineError> {
        self.read(move |conn| rows::load_task(conn, id).map_err(sql_error))
            .await
    }

    async fn list(&self, user_id: &str, query: &TaskQuery) -> Result<Vec<Task>, EngineError> {
        let (sql, args) = rows::list_sql(user_id, query);
        self.read(move |conn| {
            let mut statement = conn.prepare_cached(&sql).map_err(sql_error)?;
            let tasks = statement
                .query_map(rusqlite::params_from_iter(args), rows::task_from_row)
                .map_err(sql_error)?
                .collect::<Result<Vec<_>, _>>()
                .map_err(sql_error)?;
            Ok(tasks)
        })
        .await
    }

    async fn modify(
        &self,
        id: Uuid,
        user_id: &str,
        op: TaskOp,
        now: DateTime<Utc>,
    ) -> Result<Change, EngineError> {
        let user_id = user_id.to_owned();
        let (change, armed) = self
            .write(move |conn| modify_in(conn, id, &user_id, op, now))
            .await?;
        self.announce(armed);
        Ok(change)
    }

    async fn ping(&self) -> Result<(), EngineError> {
        self.read(|conn| {
            conn.query_row("SELECT 1", [], |_| Ok(()))
                .map_err(|error| EngineError::Unavailable(error.to_string()))
        })
        .await
    }
}

#[async_trait]
impl Outbox for SqliteTaskStore {
    async fn pending_events(&self, limit: usize) -> Result<Vec<OutboxRecord>, EngineError> {
        self.read(move |conn| rows::pending_events(conn, limit).map_err(sql_error))
            .await
    }

    async fn delete_events(&self, seqs: Vec<i64>) -> Result<u64, EngineError> {
        self.write(move |conn| {
            activity_rows::delete_events(conn, &seqs)
                .map(|n| n as u64)
                .map_err(sql_error)
        })
        .await
    }

    fn commit_signal(&self) -> Arc<Notify> {
        Arc::clone(&self.committed)
    }

    fn foreign_commits(&self) -> watch::Receiver<u64> {
        self.foreign_commits.clone()
    }
}

#[async_trait]
impl ActivityStore for SqliteTaskStore {
    async fn record_audit(&self, entry: AuditEntry) -> Result<bool, EngineError> {
        self.write(move |conn| activity_rows::insert_audit(conn, &entry).map_err(sql_error))
            .await
    }

    async fn list_audit(
        &self,
        user_id: &str,
        filter: &AuditFilter,
    ) -> Result<Vec<AuditEntry>, EngineError> {
        let (user_id, filter) = (user_id.to_owned(), filter.clone());
        self.read(move |conn| activity_rows::list_audit(conn, &user_id, &filter).map_err(sql_error))
            .await
    }

    async fn record_notification(&self, notification: Notification) -> Result<bool, EngineError> {
        self.write(move |conn| {
            activity_rows::insert_notification(conn, &notification).map_err(sql_error)
        })
        .await
    }

    async fn list_notifications(
        &self,
        user_id: &str,
        limit: u32,
    ) -> Result<Vec<Notification>, EngineError> {
        let user_id = user_id.to_owned();
        self.read(move |conn| {
            activity_rows::list_notifications(conn, &user_id, limit).map_err(sql_error)
        })
        .await
    }

    async fn count_unread_notifications(&self, user_id: &str) -> Result<u64, EngineError> {
        let user_id = user_id.to_owned();
        self.read(move |conn| activity_rows::count_unread(conn, &user_id).map_err(sql_error))
            .await
    }

    async fn record_delivery(&self, delivery: Delivery) -> Result<(), EngineError> {
        self.write(move |conn| activity_rows::insert_delivery(conn, &delivery).map_err(sql_error))
            .await
    }

    async fn delivered(&self, event_id: Uuid, channel: &str) -> Result<bool, EngineError> {
        let channel = channel.to_owned();
        self.read(move |conn| activity_rows::delivered(conn, event_id, &channel).map_err(sql_error))
            .await
    }

    async fn mark_notification_read(
        &self,
        user_id: &str,
        id: Uuid,
        now: DateTime<Utc>,
    ) -> Result<Notification, EngineError> {
        let user_id = user_id.to_owned();
        self.write(move |conn| {
            activity_rows::mark_notification_read(conn, &user_id, id, now)
                .map_err(sql_error)?
                .ok_or(EngineError::NotificationNotFound)
        })
        .await
    }
}

#[async_trait]
impl ReminderStore for SqliteTaskStore {
    fn reminder_changes(&self) -> broadcast::Receiver<ReminderChange> {
        self.reminder_changes.subscribe()
    }

    async fn pending_reminders(&self) -> Result<Vec<(Uuid, DateTime<Utc>)>, EngineError> {
        self.read(|conn| reminder_rows::pending(conn).map_err(sql_error))
            .await
    }

    async fn fire_reminder(
        &self,
        task_id: Uuid,
        fire_at: DateTime<Utc>,
        now: DateTime<Utc>,
        missed_window: chrono::Duration,
    ) -> Result<FireOutcome, EngineError> {
        let (outcome, armed) = self
            .write(move |conn| fire_in(conn, task_id, fire_at, now, missed_window))
            .await?;
        self.announce(armed);
        Ok(outcome)
    }

    async fn fire_reminders(
        &self,
        due: Vec<(Uuid, DateTime<Utc>)>,
        missed_window: chrono::Duration,
    ) -> Result<Vec<FireOutcome>, EngineError> {
        let (outcomes, armed, released) = self
            .write(move |conn| {
                let mut outcomes = Vec::with_capacity(due.len());
                let mut armed = Vec::new();
                let mut releaser = prepared_fires::Releaser::new(conn).map_err(sql_error)?;
                let mut released = 0_u64;
                for (task_id, fire_at) in due {
                    let now = crate::time::now();
                    let late_by = now - fire_at;
                    if late_by < prepared_fires::ON_TIME
                        && late_by <= missed_window
                        && releaser.release(task_id, fire_at, now).map_err(sql_error)?
                    {
                        outcomes.push(FireOutcome::Fired { late_by });
                        released += 1;
                        continue;
                    }
                    let (outcome, changes) = fire_in(conn, task_id, fire_at, now, missed_window)?;
                    outcomes.push(outcome);
                    armed.extend(changes);
                }
                Ok((outcomes, armed, released))
            })
            .await?;
        metrics::counter!("reminders_fired_prepared_total").increment(released);
        self.announce(armed);
        Ok(outcomes)
    }

    async fn prepare_reminders(&self, due: Vec<(Uuid, DateTime<Utc>)>) -> Result<(), EngineError> {
        for (index, chunk) in due.chunks(PREPARE_CHUNK).enumerate() {
            let chunk = chunk.to_vec();
            self.write(move |conn| {
                if index == 0 {
                    prepared_fires::drop_dead(conn, crate::time::now()).map_err(sql_error)?;
                }
                prepared_fires::hold(conn, &chunk).map_err(sql_error)
            })
            .await
            .map(|held| metrics::counter!("reminders_prepared_total").increment(held as u64))?;
        }
        Ok(())
    }

    async fn snooze(
        &self,
        user_id: &str,
        notification_id: Uuid,
        minutes: i64,
        now: DateTime<Utc>,
    ) -> Result<reminder::Snoozed, EngineError> {
        let user_id = user_id.to_owned();
        let (snoozed, armed) = self
            .write(move |conn| snooze_in(conn, &user_id, notification_id, minutes, now))
            .await?;
        self.announce([armed]);
        Ok(snoozed)
    }

    async fn reminder_history(
        &self,
        task_id: Uuid,
    ) -> Result<Vec<reminder::ReminderRecord>, EngineError> {
        self.read(move |conn| reminder_rows::history(conn, task_id).map_err(sql_error))
            .await
    }
}

#[async_trait]
impl ProjectStore for SqliteTaskStore {
    async fn insert_project(&self, project: Project) -> Result<Project, EngineError> {
        self.write(move |conn| {
            project_rows::insert(conn, &project)?;
            Ok(project)
        })
        .await
    }

    async fn project(&self, id: Uuid) -> Result<Option<ProjectSummary>, EngineError> {
        self.read(move |conn| project_rows::summary(conn, id).map_err(sql_error))
            .await
    }

    async fn list_projects(&self, user_id: &str) -> Result<Vec<ProjectSummary>, EngineError> {
        let user_id = user_id.to_owned();
        self.read(move |conn| project_rows::list(conn, &user_id).map_err(sql_error))
            .await
    }

    async fn rename_project(
        &self,
        user_id: &str,
        id: Uuid,
        name: String,
        now: DateTime<Utc>,
    ) -> Result<Project, EngineError> {
        let user_id = user_id.to_owned();
        self.write(move |conn| project_rows::rename(conn, &user_id, id, name, now))
            .await
    }

    async fn delete_project(
        &self,
        user_id: &str,
        id: Uuid,
        now: DateTime<Utc>,
    ) -> Result<ProjectDeletion, EngineError> {
        let user_id = user_id.to_owned();
        self.write(move |conn| {
            let (deletion, events) = project_rows::delete(conn, &user_id, id, now)?;
            rows::append_events(conn, &events).map_err(sql_error)?;
            Ok(deletion)
        })
        .await
    }

    async fn subtask_counts(
        &self,
        user_id: &str,
        parents: Vec<Uuid>,
    ) -> Result<HashMap<Uuid, SubtaskCount>, EngineError> {
        let user_id = user_id.to_owned();
        self.read(move |conn| {
            project_rows::subtask_counts(conn, &user_id, &parents).map_err(sql_error)
        })
        .await
    }
}

#[async_trait]
impl ConversationStore for SqliteTaskStore {
    async fn append_message(
        &self,
        user_id: &str,
        message: crate::assistant::ChatMessage,
    ) -> Result<Uuid, EngineError> {
        let user_id = user_id.to_owned();
        self.write(move |conn| chat_rows::append(conn, &user_id, &message).map_err(sql_error))
            .await
    }

    async fn recent_messages(
        &self,
        user_id: &str,
        limit: u32,
    ) -> Result<(Option<Uuid>, Vec<crate::assistant::ChatMessage>), EngineError> {
        let user_id = user_id.to_owned();
        self.read(move |conn| chat_rows::recent(conn, &user_id, limit).map_err(sql_error))
            .await
    }

    async fn clear_conversation(&self, user_id: &str) -> Result<u64, EngineError> {
        let user_id = user_id.to_owned();
        self.write(move |conn| chat_rows::clear(conn, &user_id).map_err(sql_error))
            .await
    }
}

#[async_trait]
impl SettingsStore for SqliteTaskStore {
    async fn settings(&self, user_id: &str) -> Result<crate::settings::UserSettings, EngineError> {
        let user_id = user_id.to_owned();
        self.read(move |conn| settings_rows::get(conn, &user_id).map_err(sql_error))
            .await
    }

    async fn save_settings(
        &self,
        user_id: &str,
        settings: crate::settings::UserSettings,
        now: DateTime<Utc>,
    ) -> Result<(), EngineError> {
        let user_id = user_id.to_owned();
        self.write(move |conn| {
            settings_rows::save(conn, &user_id, &settings, now).map_err(sql_error)
        })
        .await
    }

    async fn digest_subscribers(
        &self,
    ) -> Result<Vec<(String, crate::settings::UserSettings)>, EngineError> {
        self.read(|conn| settings_rows::digest_subscribers(conn).map_err(sql_error))
            .await
    }

    async fn purge_notifications(
        &self,
        read_before: DateTime<Utc>,
        created_before: DateTime<Utc>,
    ) -> Result<u64, EngineError> {
        self.write(move |conn| {
            settings_rows::purge_notifications(conn, read_before, created_before).map_err(sql_error)
        })
        .await
    }
}

#[async_trait]
impl AccountStore for SqliteTaskStore {
    async fn insert_account(
        &self,
        account: &AccountRecord,
        only_first: bool,
    ) -> Result<AccountInsert, EngineError> {
        let account = account.clone();
        self.write(move |conn| {
            account_rows::insert_account(conn, &account, only_first).map_err(sql_error)
        })
        .await
    }

    async fn account_by_email(&self, email: &str) -> Result<Option<AccountRecord>, EngineError> {
        let email = email.to_owned();
        self.read(move |conn| account_rows::by_email(conn, &email).map_err(sql_error))
            .await
    }

    async fn account_by_id(&self, id: &str) -> Result<Option<AccountRecord>, EngineError> {
        let id = id.to_owned();
        self.read(move |conn| account_rows::by_id(conn, &id).map_err(sql_error))
            .await
    }

    async fn account_count(&self) -> Result<u64, EngineError> {
        self.read(|conn| account_rows::count(conn).map_err(sql_error))
            .await
    }

    async fn list_accounts(&self) -> Result<Vec<AccountRecord>, EngineError> {
        self.read(|conn| account_rows::list(conn).map_err(sql_error))
            .await
    }

    async fn set_password_hash(
        &self,
        id: &str,
        password_hash: &str,
        now: DateTime<Utc>,
    ) -> Result<bool, EngineError> {
        let (id, password_hash) = (id.to_owned(), password_hash.to_owned());
        self.write(move |conn| {
            account_rows::set_password_hash(conn, &id, &password_hash, now).map_err(sql_error)
        })
        .await
    }

    async fn insert_api_token(&self, token: &ApiTokenRecord) -> Result<(), EngineError> {
        let token = token.clone();
        self.write(move |conn| account_rows::insert_token(conn, &token).map_err(sql_error))
            .await
    }

    async fn api_tokens(&self, user_id: &str) -> Result<Vec<ApiTokenRecord>, EngineError> {
        let user_id = user_id.to_owned();
        self.read(move |conn| account_rows::live_tokens(conn, &user_id).map_err(sql_error))
            .await
    }

    async fn revoke_api_token(
        &self,
        user_id: &str,
        token_id: &str,
        now: DateTime<Utc>,
    ) -> Result<bool, EngineError> {
        let (user_id, token_id) = (user_id.to_owned(), token_id.to_owned());
        self.write(move |conn| {
            account_rows::revoke_token(conn, &user_id, &token_id, now).map_err(sql_error)
        })
        .await
    }

    async fn api_token_by_hash(
        &self,
        token_hash: &str,
    ) -> Result<Option<ApiTokenRecord>, EngineError> {
        let token_hash = token_hash.to_owned();
        self.read(move |conn| {
            account_rows::live_token_by_hash(conn, &token_hash).map_err(sql_error)
        })
        .await
    }

    async fn touch_api_token(&self, token_id: &str, now: DateTime<Utc>) -> Result<(), EngineError> {
        let token_id = token_id.to_owned();
        self.write(move |conn| account_rows::touch_token(conn, &token_id, now).map_err(sql_error))
            .await
    }

    async fn revoke_session(
        &self,
        session_id: &str,
        user_id: &str,
        expires_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<(), EngineError> {
        let (session_id, user_id) = (session_id.to_owned(), user_id.to_owned());
        self.write(move |conn| {
            account_rows::revoke_session(conn, &session_id, &user_id, expires_at, now)
                .map_err(sql_error)
        })
        .await
    }

    async fn session_revoked(&self, session_id: &str) -> Result<bool, EngineError> {
        let session_id = session_id.to_owned();
        self.read(move |conn| account_rows::session_revoked(conn, &session_id).map_err(sql_error))
            .await
    }

    async fn set_feed_token(
        &self,
        user_id: &str,
        token_hash: &str,
        created_at: DateTime<Utc>,
    ) -> Result<(), EngineError> {
        let (user_id, token_hash) = (user_id.to_owned(), token_hash.to_owned());
        self.write(move |conn| {
            account_rows::set_feed_token(conn, &user_id, &token_hash, created_at).map_err(sql_error)
        })
        .await
    }

    async fn feed_token_user(&self, token_hash: &str) -> Result<Option<String>, EngineError> {
        let token_hash = token_hash.to_owned();
        self.read(move |conn| account_rows::feed_token_user(conn, &token_hash).map_err(sql_error))
            .await
    }

    async fn feed_token_created(
        &self,
        user_id: &str,
    ) -> Result<Option<DateTime<Utc>>, EngineError> {
        let user_id = user_id.to_owned();
        self.read(move |conn| account_rows::feed_token_created(conn, &user_id).map_err(sql_error))
            .await
    }

    async fn delete_feed_token(&self, user_id: &str) -> Result<bool, EngineError> {
        let user_id = user_id.to_owned();
        self.write(move |conn| account_rows::delete_feed_token(conn, &user_id).map_err(sql_error))
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn passes_the_account_store_conformance_suite() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = SqliteTaskStore::open(&dir.path().join("tasks.db")).expect("open");
        crate::conformance::account_store_suite(&store).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn passes_the_conversation_store_conformance_suite() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = SqliteTaskStore::open(&dir.path().join("tasks.db")).expect("open");
        crate::conformance::conversation_store_suite(&store).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn passes_the_settings_store_conformance_suite() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = SqliteTaskStore::open(&dir.path().join("tasks.db")).expect("open");
        crate::conformance::settings_store_suite(&store).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn passes_the_project_store_conformance_suite() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = SqliteTaskStore::open(&dir.path().join("tasks.db")).expect("open");
        crate::conformance::project_store_suite(&store).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn passes_the_task_store_conformance_suite() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = SqliteTaskStore::open(&dir.path().join("tasks.db")).expect("open");
        crate::conformance::task_store_suite(&store).await;
    }

    /// A task with one reminder at `fire_at`, stored; returns its id.
    async fn reminding(store: &SqliteTaskStore, title: &str, fire_at: DateTime<Utc>) -> Uuid {
        let mut draft = crate::task::NewTask::titled(title);
        draft.due_date = Some(fire_at + chrono::Duration::minutes(5));
        draft.reminder_offset_minutes = Some(5);
        let (task, events) = ops::create("alice", draft, crate::time::now()).expect("valid");
        store.insert(task, events).await.expect("insert").id
    }

    /// Held reminder events in the outbox, released or not: (task id, held fire time).
    async fn held(store: &SqliteTaskStore) -> Vec<(String, i64)> {
        store
            .read(|conn| {
                let mut statement = conn
                    .prepare("SELECT partition_key, held_fire_at FROM outbox WHERE held_fire_at IS NOT NULL ORDER BY seq")
                    .map_err(sql_error)?;
                let rows = statement
                    .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))
                    .map_err(sql_error)?;
                rows.collect::<rusqlite::Result<Vec<_>>>().map_err(sql_error)
            })
            .await
            .expect("read held")
    }

    async fn triggered(store: &SqliteTaskStore) -> Vec<crate::ports::OutboxRecord> {
        store
            .pending_events(1000)
            .await
            .expect("outbox")
            .into_iter()
            .filter(|r| r.envelope.event_type == "reminder.triggered")
            .collect()
    }

    /// A prepared reminder's event waits in the outbox unseen by the relay, is released by
    /// its timer firing (once), and then outlives its task.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_held_event_is_released_once_by_its_fire_and_outlives_its_task() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = SqliteTaskStore::open(&dir.path().join("tasks.db")).expect("open");
        // Just past, as at a fire: a held event is never released before its time.
        let fire_at = crate::time::truncate_micros(Utc::now() - chrono::Duration::seconds(2));
        let task_id = reminding(&store, "prepared", fire_at).await;
        let before = store.pending_events(1000).await.expect("outbox").len();
        store
            .prepare_reminders(vec![(task_id, fire_at), (Uuid::new_v4(), fire_at)])
            .await
            .expect("prepare");
        store
            .prepare_reminders(vec![(task_id, fire_at)])
            .await
            .expect("prepare again");
        assert_eq!(
            held(&store).await,
            [(task_id.to_string(), fire_at.timestamp_micros())],
            "only the armed reminder is held, once"
        );
        assert_eq!(
            store.pending_events(1000).await.expect("outbox").len(),
            before,
            "the relay does not see a held event"
        );

        let window = chrono::Duration::hours(24);
        let (first, second) = store
            .write(move |conn| {
                let mut releaser = prepared_fires::Releaser::new(conn).map_err(sql_error)?;
                let first = releaser.release(task_id, fire_at, fire_at);
                Ok((first, releaser.release(task_id, fire_at, fire_at)))
            })
            .await
            .expect("release");
        assert!(first.expect("first") && !second.expect("second"));
        let again = store
            .fire_reminders(vec![(task_id, fire_at)], window)
            .await
            .expect("fire");
        assert_eq!(again, [FireOutcome::NotArmed], "never twice");
        let history = store.reminder_history(task_id).await.expect("history");
        assert_eq!(history.len(), 1);
        assert_eq!(history[0].fired_at, Some(fire_at));
        let fired = triggered(&store).await;
        assert_eq!(fired.len(), 1, "released, and only once");
        assert_eq!(
            fired[0].envelope.timestamp,
            crate::time::format_utc(fire_at)
        );
        assert_eq!(fired[0].envelope.payload["task_title"], "prepared");
        assert!(fired[0].envelope.payload.get("late_by_seconds").is_none());

        store
            .modify(task_id, "alice", TaskOp::Delete, crate::time::now())
            .await
            .expect("delete");
        let kept = triggered(&store).await;
        assert_eq!(
            kept.iter().map(|r| r.seq).collect::<Vec<_>>(),
            [fired[0].seq],
            "a released event outlives its task"
        );
        assert!(held(&store).await.is_empty(), "and is an ordinary row now");
    }

    /// Whatever touches a held event's task or its instant withdraws the event, so the fire
    /// takes the ordinary path; the relay deletes exactly what it published.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn changes_withdraw_held_events_and_the_relay_leaves_them_alone() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = SqliteTaskStore::open(&dir.path().join("tasks.db")).expect("open");
        // Just past, as at a fire: a held event is never released before its time.
        let fire_at = crate::time::truncate_micros(Utc::now() - chrono::Duration::seconds(2));
        let renamed = reminding(&store, "renamed", fire_at).await;
        let deleted = reminding(&store, "deleted", fire_at).await;
        let shared = reminding(&store, "shared", fire_at).await;
        let kept = reminding(&store, "kept", fire_at).await;
        let all = vec![
            (renamed, fire_at),
            (deleted, fire_at),
            (shared, fire_at),
            (kept, fire_at),
        ];
        store.prepare_reminders(all.clone()).await.expect("prepare");
        assert_eq!(held(&store).await.len(), 4);

        let patch =
            crate::task::input::parse_task_patch(&serde_json::json!({"title": "new title"}))
                .expect("valid");
        store
            .modify(renamed, "alice", TaskOp::Update(patch), crate::time::now())
            .await
            .expect("rename");
        store
            .modify(deleted, "alice", TaskOp::Delete, crate::time::now())
            .await
            .expect("delete");
        store
            .write(move |conn| {
                conn.execute(
                    "INSERT INTO reminders (task_id, fire_at, kind, user_id) VALUES (?1, ?2, 'snooze', 'alice')",
                    rusqlite::params![shared.to_string(), fire_at.timestamp_micros()],
                )
                .map_err(sql_error)
            })
            .await
            .expect("a snooze at the same instant");
        assert_eq!(
            held(&store).await,
            [(kept.to_string(), fire_at.timestamp_micros())],
            "renaming, deleting and sharing the instant withdrew the others"
        );

        // The relay publishes and deletes what is visible; the held event stays.
        let visible = store.pending_events(1000).await.expect("outbox");
        let seqs = visible.iter().map(|r| r.seq).collect();
        store.delete_events(seqs).await.expect("delete relayed");
        assert!(store.pending_events(1000).await.expect("outbox").is_empty());
        assert_eq!(held(&store).await.len(), 1, "the held event is not lost");

        let now = crate::time::now();
        let outcomes = store
            .write(move |conn| {
                let mut releaser = prepared_fires::Releaser::new(conn).map_err(sql_error)?;
                all.iter()
                    .map(|&(task_id, at)| {
                        if releaser.release(task_id, at, now).map_err(sql_error)? {
                            Ok(None)
                        } else {
                            fire_in(conn, task_id, at, now, chrono::Duration::hours(24))
                                .map(|(outcome, _)| Some(outcome))
                        }
                    })
                    .collect::<Result<Vec<_>, EngineError>>()
            })
            .await
            .expect("fire");
        assert_eq!(
            outcomes[0],
            Some(FireOutcome::Fired {
                late_by: now - fire_at
            })
        );
        assert_eq!(outcomes[1], Some(FireOutcome::NotArmed));
        assert_eq!(
            outcomes[2],
            Some(FireOutcome::Fired {
                late_by: now - fire_at
            })
        );
        assert_eq!(outcomes[3], None, "only the untouched one is released");
        let mut titles: Vec<_> = triggered(&store)
            .await
            .into_iter()
            .map(|r| r.envelope.payload["task_title"].clone())
            .collect();
        titles.sort_by_key(|title| title.to_string());
        assert_eq!(titles, ["kept", "new title", "shared"]);
    }

    /// A held event never released (its fire came late, or never) is dropped by the next
    /// preparation; one whose fire is late is withdrawn by the ordinary, late fire.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn late_fires_withdraw_and_dead_held_events_are_dropped() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = SqliteTaskStore::open(&dir.path().join("tasks.db")).expect("open");
        let soon = crate::time::truncate_micros(Utc::now() + chrono::Duration::hours(1));
        let late = reminding(&store, "late", soon).await;
        let dead = reminding(&store, "dead", soon).await;
        store
            .prepare_reminders(vec![(late, soon), (dead, soon)])
            .await
            .expect("prepare");
        // Five seconds after its time a fire is late: the scheduler takes the ordinary path.
        let at = soon + chrono::Duration::seconds(5);
        let (outcome, _) = store
            .write(move |conn| fire_in(conn, late, soon, at, chrono::Duration::hours(24)))
            .await
            .expect("late fire");
        assert_eq!(
            outcome,
            FireOutcome::Fired {
                late_by: chrono::Duration::seconds(5)
            }
        );
        let late_events = triggered(&store).await;
        assert_eq!(late_events.len(), 1);
        assert_eq!(late_events[0].envelope.payload["late_by_seconds"], 5);
        assert_eq!(
            held(&store).await,
            [(dead.to_string(), soon.timestamp_micros())]
        );
        store
            .write(move |conn| {
                prepared_fires::drop_dead(conn, soon + chrono::Duration::minutes(2))
                    .map_err(sql_error)
            })
            .await
            .expect("hold nothing, later");
        assert!(held(&store).await.is_empty(), "the dead one is dropped");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn data_survives_reopening() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("tasks.db");
        let service_task = {
            let store = SqliteTaskStore::open(&path).expect("open");
            let (task, events) = crate::task::ops::create(
                "alice",
                crate::task::NewTask::titled("keep me"),
                crate::time::now(),
            )
            .expect("valid");
            store.insert(task, events).await.expect("insert")
        };
        let store = SqliteTaskStore::open(&path).expect("reopen");
        assert_eq!(
            store.get(service_task.id).await.expect("get"),
            Some(service_task)
        );
        assert_eq!(store.pending_events(10).await.expect("outbox").len(), 2);
    }

    #[test]
    fn a_database_from_the_future_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("tasks.db");
        drop(SqliteTaskStore::open(&path).expect("open"));
        let conn = Connection::open(&path).expect("raw open");
        conn.pragma_update(None, "user_version", 99)
            .expect("bump version");
        drop(conn);
        assert!(
            matches!(SqliteTaskStore::open(&path), Err(EngineError::Store(message)) if message.contains("newer"))
        );
    }
}
