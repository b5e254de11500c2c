//! The cluster-mode task store: PostgreSQL through a deadpool of tokio-postgres connections,
//! behaving exactly like the embedded SQLite store (same tables, constraints and rules; the
//! engine's conformance suites run against both).
//!
//! Differences that come from several replicas sharing one database:
//! - every change of a task runs in one transaction that first locks the task row
//!   (`SELECT … FOR UPDATE`), so concurrent changes of one task serialise;
//! - outbox rows get their `seq` under a transaction-level advisory lock held until commit, so
//!   `seq` order is commit order;
//! - writes that change tasks, reminders or the outbox `NOTIFY` the other replicas (see
//!   [`listen`]), which is what [`TaskStore::foreign_commits`] counts;
//! - [`PostgresStore::relay_batch`] lets several replicas relay the outbox at once.

mod account_rows;
mod activity_rows;
mod chat_rows;
mod connect;
mod error;
mod jobs;
mod listen;
mod live;
mod login_rows;
mod project_rows;
mod relay;
mod reminder_rows;
mod rows;
mod schema;
mod settings_rows;

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use deadpool_postgres::{Manager, Object, Pool, Runtime, Transaction};
use tokio::sync::{Notify, broadcast, watch};
use tokio_postgres::tls::{MakeTlsConnect, TlsConnect};
use tokio_postgres::{Config, NoTls, Socket};
use uuid::Uuid;

use taskstream_engine::EngineError;
use taskstream_engine::accounts::{AccountInsert, AccountRecord, ApiTokenRecord};
use taskstream_engine::activity::{AuditEntry, AuditFilter, Delivery, Notification};
use taskstream_engine::assistant::ChatMessage;
use taskstream_engine::event::OutboxEvent;
use taskstream_engine::ports::{
    AccountStore, ActivityStore, ConversationStore, LoginAttempts, Outbox, OutboxRecord,
    ProjectStore, ReminderStore, SettingsStore, TaskStore,
};
use taskstream_engine::project::{Project, ProjectDeletion, ProjectSummary, SubtaskCount};
use taskstream_engine::reminder::{self, FireOutcome, ReminderChange, ReminderFiring, Snoozed};
use taskstream_engine::settings::UserSettings;
use taskstream_engine::task::{Change, Task, TaskOp, TaskQuery, ops};

pub use error::PgError;
pub use jobs::JobPeriod;
pub use live::PgLiveFeed;
pub use relay::RelayRound;

use connect::Transport;
use listen::{AbortOnDrop, Origin};
use project_rows::UserLock;

/// Key of the transaction-level advisory lock that orders outbox appends ("tsoutbox"); mixed
/// with the schema name, so stores in different schemas do not wait on each other.
const OUTBOX_LOCK: i64 = 0x7473_6f75_7462_6f78;
/// Reminder changes buffered for a slow scheduler before it must reload (as in SQLite).
const REMINDER_CHANGE_BUFFER: usize = 16_384;
/// How long establishing a pooled connection may take.
const CREATE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long closing the migration connection is waited for.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(5);

/// How to run the store; [`PgOptions::default`] suits a replica.
#[derive(Debug, Clone)]
pub struct PgOptions {
    /// Most connections the pool opens (default 16); reads and writes beyond it wait.
    pub pool_size: usize,
    /// Schema holding the tables, created if missing (tests isolate themselves with one);
    /// `None` uses the server's `search_path`. Set with a startup option, which PgBouncer in
    /// transaction mode does not pass on: use a direct connection with a schema.
    pub schema: Option<String>,
    /// How long a request waits for a free pooled connection before it fails as unavailable.
    pub acquire_timeout: Duration,
}

impl Default for PgOptions {
    fn default() -> Self {
        Self {
            pool_size: 16,
            schema: None,
            acquire_timeout: Duration::from_secs(30),
        }
    }
}

/// PostgreSQL-backed [`TaskStore`], [`ConversationStore`], [`SettingsStore`] and
/// [`AccountStore`] for cluster
/// mode, where several replicas share one database.
pub struct PostgresStore {
    pool: Pool,
    origin: Origin,
    outbox_lock: i64,
    /// The schema's name folded into advisory lock keys.
    schema_hash: i64,
    committed: Arc<Notify>,
    reminder_changes: broadcast::Sender<ReminderChange>,
    foreign_commits: watch::Receiver<u64>,
    /// Bumped on every commit on the schema, by any replica (the live streams' wake-up).
    schema_commits: watch::Receiver<u64>,
    /// The `LISTEN` connection's task; dropping the store stops it.
    _listener: AbortOnDrop,
}

impl PostgresStore {
    /// Connects to `url` (libpq URL or key/value string; `sslmode=require`/`verify-full` use
    /// TLS), brings the schema up to date under the migration lock, and starts listening for
    /// other replicas' commits.
    pub async fn connect(url: &str, options: PgOptions) -> Result<Self, PgError> {
        if let Some(schema) = &options.schema {
            connect::check_schema(schema)?;
        }
        let (config, transport) = connect::parse(url, options.schema.as_deref())?;
        match transport {
            Transport::Plain => Self::start(config, NoTls, options).await,
            #[cfg(feature = "tls")]
            Transport::Tls => Self::start(config, connect::rustls_connector()?, options).await,
            #[cfg(not(feature = "tls"))]
            Transport::Tls => Err(PgError::Tls(
                "this build has no TLS (cargo feature `tls`); use sslmode=disable".to_owned(),
            )),
        }
    }

    /// [`PostgresStore::connect`] with the tables in `schema` (created if missing), so tests
    /// and side-by-side deployments can share one database.
    pub async fn connect_in_schema(url: &str, schema: &str) -> Result<Self, PgError> {
        Self::connect(
            url,
            PgOptions {
                schema: Some(schema.to_owned()),
                ..PgOptions::default()
            },
        )
        .await
    }

    async fn start<T>(config: Config, tls: T, options: PgOptions) -> Result<Self, PgError>
    where
        T: MakeTlsConnect<Socket> + Clone + Send + Sync + 'static,
        T::Stream: Send + Sync + 'static,
        T::TlsConnect: Send + Sync,
        <T::TlsConnect as TlsConnect<Socket>>::Future: Send,
    {
        migrate(&config, tls.clone(), options.schema.as_deref()).await?;
        let pool = Pool::builder(Manager::new(config.clone(), tls.clone()))
            .max_size(options.pool_size.max(1))
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(options.acquire_timeout))
            .create_timeout(Some(CREATE_TIMEOUT))
            .recycle_timeout(Some(CREATE_TIMEOUT))
            .build()
            .map_err(|error| PgError::Pool(error.to_string()))?;
        let origin = Origin::new(options.schema.as_deref());
        let committed = Arc::new(Notify::new());
        let (foreign, foreign_commits) = watch::channel(0);
        let (schema_commits, schema_commits_rx) = watch::channel(0);
        let signals = listen::Signals {
            committed: Arc::clone(&committed),
            foreign,
            schema_commits,
        };
        let listener = listen::start(&config, tls, origin.clone(), signals).await?;
        Ok(Self {
            pool,
            origin,
            outbox_lock: OUTBOX_LOCK ^ fnv1a(options.schema.as_deref().unwrap_or_default()),
            schema_hash: fnv1a(options.schema.as_deref().unwrap_or_default()),
            committed,
            reminder_changes: broadcast::channel(REMINDER_CHANGE_BUFFER).0,
            foreign_commits,
            schema_commits: schema_commits_rx,
            _listener: listener,
        })
    }

    /// The schema version the database is at.
    pub async fn schema_version(&self) -> Result<i64, PgError> {
        schema::version(&self.client().await?).await
    }

    /// Relays one batch for one of several replicas: claims up to `limit` of the oldest outbox
    /// rows with `FOR UPDATE SKIP LOCKED` (rows another replica holds are skipped, never
    /// published twice), hands those that may go to `publish` in `seq` order, deletes them when
    /// it succeeds and releases them (rolls back) when it fails. Events of one key keep their
    /// order across replicas (see [`RelayRound::deferred`]); events of different keys may
    /// overtake each other. The claim holds one pooled connection and its transaction open while
    /// `publish` runs. Use this, not `pending_events`/`delete_events`, when more than one
    /// process relays.
    pub async fn relay_batch<F, Fut>(
        &self,
        limit: usize,
        publish: F,
    ) -> Result<RelayRound, EngineError>
    where
        F: FnOnce(Vec<OutboxRecord>) -> Fut,
        Fut: Future<Output = Result<(), EngineError>>,
    {
        let mut client = self.client().await?;
        let tx = begin(&mut client).await?;
        let (batch, deferred) = relay::claim(&tx, limit).await?;
        if batch.is_empty() {
            tx.commit().await.map_err(PgError::from)?;
            return Ok(RelayRound {
                published: 0,
                deferred,
            });
        }
        let seqs: Vec<i64> = batch.iter().map(|record| record.seq).collect();
        publish(batch).await?;
        relay::delete(&tx, &seqs).await?;
        tx.commit().await.map_err(PgError::from)?;
        Ok(RelayRound {
            published: seqs.len(),
            deferred,
        })
    }

    async fn client(&self) -> Result<Object, PgError> {
        Ok(self.pool.get().await?)
    }

    /// Finishes a write that changed tasks, reminders or the outbox: appends its events (last,
    /// under the outbox lock), notifies the other replicas (delivered at commit), commits, and
    /// wakes this process's relay.
    async fn commit(&self, tx: Transaction<'_>, events: &[OutboxEvent]) -> Result<(), PgError> {
        rows::append_events(&tx, self.outbox_lock, events).await?;
        let notify = tx.prepare_cached("SELECT pg_notify($1, $2)").await?;
        tx.execute(&notify, &[&listen::CHANNEL, &self.origin.payload()])
            .await?;
        tx.commit().await?;
        self.committed.notify_one();
        Ok(())
    }

    fn announce(&self, changes: impl IntoIterator<Item = ReminderChange>) {
        for change in changes {
            // No receiver (no scheduler running) is fine: the rows are the truth.
            let _ = self.reminder_changes.send(change);
        }
    }
}

async fn begin(client: &mut Object) -> Result<Transaction<'_>, PgError> {
    Ok(client.transaction().await?)
}

/// Runs the migrations on a connection of their own, closed after, so the session-level
/// migration lock can never stay behind in the pool.
async fn migrate<T>(config: &Config, tls: T, schema: Option<&str>) -> Result<(), PgError>
where
    T: MakeTlsConnect<Socket> + Send + 'static,
    T::Stream: Send + 'static,
    T::TlsConnect: Send,
    <T::TlsConnect as TlsConnect<Socket>>::Future: Send,
{
    let (mut client, connection) = config.connect(tls).await?;
    let driver = tokio::spawn(async move {
        if let Err(error) = connection.await {
            tracing::debug!(%error, "migration connection closed with an error");
        }
    });
    let outcome = schema::migrate(&mut client, schema).await;
    drop(client);
    if tokio::time::timeout(CLOSE_TIMEOUT, driver).await.is_err() {
        tracing::warn!("the migration connection did not close in time");
    }
    outcome
}

/// FNV-1a, to fold a schema name into an advisory lock key (stable across builds, unlike
/// `std`'s hasher).
fn fnv1a(text: &str) -> i64 {
    let hash = text.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |hash, byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0000_0100_0000_01b3)
    });
    i64::from_ne_bytes(hash.to_ne_bytes())
}

/// One task operation inside a transaction: lock the user (see [`project_rows`]), lock and
/// load, apply the domain rules, persist. Returns the change and the pending reminder times of
/// every task it touched.
async fn modify_in(
    tx: &Transaction<'_>,
    schema_hash: i64,
    id: Uuid,
    user_id: &str,
    op: TaskOp,
    now: DateTime<Utc>,
) -> Result<(Change, Vec<ReminderChange>), EngineError> {
    let mode = if op.touches_subtasks() {
        UserLock::Exclusive
    } else {
        UserLock::Shared
    };
    project_rows::lock_user(tx, schema_hash, user_id, mode).await?;
    let current = rows::lock_task(tx, id)
        .await?
        .ok_or(EngineError::NotFound)?;
    if let TaskOp::SetProject(Some(project)) = &op
        && current.user_id == user_id
    {
        let found = project_rows::load(tx, *project).await?;
        taskstream_engine::project::rules::referenced(found.as_ref(), user_id)?;
    }
    let has_next = rows::has_next_occurrence(tx, id).await?;
    let subtasks = if op.touches_subtasks() && current.user_id == user_id {
        rows::lock_subtasks_of(tx, id).await?
    } else {
        Vec::new()
    };
    let change = ops::apply_with_subtasks(op, user_id, current, has_next, subtasks, now)?;
    let mut armed = Vec::new();
    for task in change.removed() {
        rows::delete_task(tx, task.id).await?;
        armed.push(ReminderChange {
            task_id: task.id,
            fire_at: Vec::new(),
        });
    }
    for task in change.written() {
        rows::update_task(tx, task).await?;
        armed.push(ReminderChange {
            task_id: task.id,
            fire_at: reminder_rows::sync(tx, task).await?,
        });
    }
    if let Some(next) = &change.next {
        rows::insert_task(tx, next).await?;
        armed.push(ReminderChange {
            task_id: next.id,
            fire_at: reminder_rows::sync(tx, next).await?,
        });
    }
    Ok((change, armed))
}

/// Arms a snooze for a notification's task inside a transaction; returns the event to append.
async fn snooze_in(
    tx: &Transaction<'_>,
    schema_hash: i64,
    user_id: &str,
    notification_id: Uuid,
    minutes: i64,
    now: DateTime<Utc>,
) -> Result<(Snoozed, ReminderChange, OutboxEvent), EngineError> {
    project_rows::lock_user(tx, schema_hash, user_id, UserLock::Shared).await?;
    let notification = activity_rows::mark_notification_read(tx, user_id, notification_id, now)
        .await?
        .ok_or(EngineError::NotificationNotFound)?;
    let task_id = reminder::snooze_target(&notification)?;
    let task = rows::lock_task(tx, task_id).await?;
    let plan = reminder::plan_snooze(task.as_ref(), user_id, minutes, now)?;
    let pending = reminder_rows::snooze(tx, task_id, user_id, plan.fire_at).await?;
    Ok((
        Snoozed {
            task_id,
            fire_at: plan.fire_at,
        },
        ReminderChange {
            task_id,
            fire_at: pending,
        },
        plan.event,
    ))
}

/// Takes up the timers due at one instant of a task inside a transaction (the same rules as
/// the SQLite store): a `recur` timer creates an `on_due` task's next occurrence; reminders and
/// snoozes fire once, or are recorded as missed when older than `missed_window`. Returns the
/// outcome, the events to append, whether any row changed, and the pending times of the tasks
/// it touched. The task row is locked before the timer rows, as task changes take them.
async fn fire_in(
    tx: &Transaction<'_>,
    schema_hash: i64,
    task_id: Uuid,
    fire_at: DateTime<Utc>,
    now: DateTime<Utc>,
    missed_window: chrono::Duration,
) -> Result<(FireOutcome, Vec<OutboxEvent>, bool, Vec<ReminderChange>), EngineError> {
    // The owner never changes, so it can be read before its lock is taken.
    let Some(owner) = rows::owner_of(tx, task_id).await? else {
        return Ok((FireOutcome::NotArmed, Vec::new(), false, Vec::new()));
    };
    project_rows::lock_user(tx, schema_hash, &owner, UserLock::Shared).await?;
    let Some(task) = rows::lock_task(tx, task_id).await? else {
        return Ok((FireOutcome::NotArmed, Vec::new(), false, Vec::new()));
    };
    let kinds = reminder_rows::lock_armed(tx, task_id, fire_at).await?;
    if kinds.is_empty() {
        return Ok((FireOutcome::NotArmed, Vec::new(), false, Vec::new()));
    }
    let due = reminder::due_timers(&task, &kinds, fire_at);
    let has_next = due.recur && rows::has_next_occurrence(tx, task_id).await?;
    let plan = reminder::plan_fire(&task, due, has_next, fire_at, now, missed_window)?;
    let mut events = Vec::new();
    let mut armed = Vec::new();
    if let Some(change) = plan.recurrence
        && let Some(next) = &change.next
    {
        rows::insert_task(tx, next).await?;
        events.extend(change.events);
        armed.push(ReminderChange {
            task_id: next.id,
            fire_at: reminder_rows::sync(tx, next).await?,
        });
        reminder_rows::mark_fired(tx, task_id, fire_at, "recur", now).await?;
    }
    match plan.reminders {
        Some(ReminderFiring::Missed {
            kinds,
            notification,
        }) => {
            for kind in &kinds {
                reminder_rows::mark_missed(tx, task_id, fire_at, kind).await?;
            }
            activity_rows::insert_notification(tx, &notification).await?;
        }
        Some(ReminderFiring::Fired { kinds, event, .. }) => {
            for kind in &kinds {
                reminder_rows::mark_fired(tx, task_id, fire_at, kind, now).await?;
            }
            events.push(event);
        }
        None => {}
    }
    if plan.resync {
        armed.push(ReminderChange {
            task_id,
            fire_at: reminder_rows::sync(tx, &task).await?,
        });
    }
    Ok((plan.outcome, events, true, armed))
}

#[async_trait]
impl TaskStore for PostgresStore {
    async fn insert(&self, task: Task, events: Vec<OutboxEvent>) -> Result<Task, EngineError> {
        let mut client = self.client().await?;
        let tx = begin(&mut client).await?;
        let linked = task.project_id.is_some() || task.subtask_of.is_some();
        let mode = if linked {
            UserLock::Exclusive
        } else {
            UserLock::Shared
        };
        project_rows::lock_user(&tx, self.schema_hash, &task.user_id, mode).await?;
        let mut task = task;
        project_rows::place(&tx, &mut task).await?;
        rows::insert_task(&tx, &task).await?;
        let armed = reminder_rows::sync(&tx, &task).await?;
        self.commit(tx, &events).await?;
        if !armed.is_empty() {
            self.announce([ReminderChange {
                task_id: task.id,
                fire_at: armed,
            }]);
        }
        Ok(task)
    }

    async fn get(&self, id: Uuid) -> Result<Option<Task>, EngineError> {
        Ok(rows::load_task(&self.client().await?, id).await?)
    }

    async fn list(&self, user_id: &str, query: &TaskQuery) -> Result<Vec<Task>, EngineError> {
        let (sql, params) = rows::list_sql(user_id, query);
        let client = self.client().await?;
        let statement = client.prepare_cached(&sql).await.map_err(PgError::from)?;
        let found = client
            .query(&statement, &rows::borrow(&params))
            .await
            .map_err(PgError::from)?;
        Ok(found
            .iter()
            .map(rows::task_from_row)
            .collect::<Result<_, _>>()?)
    }

    async fn modify(
        &self,
        id: Uuid,
        user_id: &str,
        op: TaskOp,
        now: DateTime<Utc>,
    ) -> Result<Change, EngineError> {
        let mut client = self.client().await?;
        let tx = begin(&mut client).await?;
        let (change, armed) = modify_in(&tx, self.schema_hash, id, user_id, op, now).await?;
        if armed.is_empty() && change.events.is_empty() {
            // Nothing changed (a repeated completion): release the row lock, tell nobody.
            tx.commit().await.map_err(PgError::from)?;
        } else {
            self.commit(tx, &change.events).await?;
        }
        self.announce(armed);
        Ok(change)
    }

    async fn ping(&self) -> Result<(), EngineError> {
        let client = self.client().await?;
        client
            .simple_query("SELECT 1")
            .await
            .map_err(|error| EngineError::Unavailable(error.to_string()))?;
        Ok(())
    }
}

#[async_trait]
impl Outbox for PostgresStore {
    async fn pending_events(&self, limit: usize) -> Result<Vec<OutboxRecord>, EngineError> {
        Ok(rows::pending_events(&self.client().await?, limit).await?)
    }

    async fn delete_events(&self, seqs: Vec<i64>) -> Result<u64, EngineError> {
        let removed = rows::delete_events(&self.client().await?, &seqs).await?;
        self.committed.notify_one();
        Ok(removed)
    }

    fn commit_signal(&self) -> Arc<Notify> {
        Arc::clone(&self.committed)
    }

    fn foreign_commits(&self) -> watch::Receiver<u64> {
        self.foreign_commits.clone()
    }
}

#[async_trait]
impl ActivityStore for PostgresStore {
    async fn record_audit(&self, entry: AuditEntry) -> Result<bool, EngineError> {
        let added = activity_rows::insert_audit(&self.client().await?, &entry).await?;
        self.committed.notify_one();
        Ok(added)
    }

    async fn list_audit(
        &self,
        user_id: &str,
        filter: &AuditFilter,
    ) -> Result<Vec<AuditEntry>, EngineError> {
        Ok(activity_rows::list_audit(&self.client().await?, user_id, filter).await?)
    }

    async fn record_notification(&self, notification: Notification) -> Result<bool, EngineError> {
        let added =
            activity_rows::insert_notification(&self.client().await?, &notification).await?;
        self.committed.notify_one();
        Ok(added)
    }

    async fn list_notifications(
        &self,
        user_id: &str,
        limit: u32,
    ) -> Result<Vec<Notification>, EngineError> {
        Ok(activity_rows::list_notifications(&self.client().await?, user_id, limit).await?)
    }

    async fn count_unread_notifications(&self, user_id: &str) -> Result<u64, EngineError> {
        Ok(activity_rows::count_unread(&self.client().await?, user_id).await?)
    }

    async fn record_delivery(&self, delivery: Delivery) -> Result<(), EngineError> {
        activity_rows::insert_delivery(&self.client().await?, &delivery).await?;
        self.committed.notify_one();
        Ok(())
    }

    async fn delivered(&self, event_id: Uuid, channel: &str) -> Result<bool, EngineError> {
        Ok(activity_rows::delivered(&self.client().await?, event_id, channel).await?)
    }

    async fn mark_notification_read(
        &self,
        user_id: &str,
        id: Uuid,
        now: DateTime<Utc>,
    ) -> Result<Notification, EngineError> {
        let read = activity_rows::mark_notification_read(&self.client().await?, user_id, id, now)
            .await?
            .ok_or(EngineError::NotificationNotFound)?;
        self.committed.notify_one();
        Ok(read)
    }
}

#[async_trait]
impl ReminderStore for PostgresStore {
    fn reminder_changes(&self) -> broadcast::Receiver<ReminderChange> {
        self.reminder_changes.subscribe()
    }

    async fn pending_reminders(&self) -> Result<Vec<(Uuid, DateTime<Utc>)>, EngineError> {
        Ok(reminder_rows::pending(&self.client().await?).await?)
    }

    async fn fire_reminder(
        &self,
        task_id: Uuid,
        fire_at: DateTime<Utc>,
        now: DateTime<Utc>,
        missed_window: chrono::Duration,
    ) -> Result<FireOutcome, EngineError> {
        let mut client = self.client().await?;
        let tx = begin(&mut client).await?;
        let (outcome, events, changed, armed) =
            fire_in(&tx, self.schema_hash, task_id, fire_at, now, missed_window).await?;
        if changed {
            self.commit(tx, &events).await?;
        } else {
            tx.commit().await.map_err(PgError::from)?;
        }
        self.announce(armed);
        Ok(outcome)
    }

    async fn snooze(
        &self,
        user_id: &str,
        notification_id: Uuid,
        minutes: i64,
        now: DateTime<Utc>,
    ) -> Result<Snoozed, EngineError> {
        let mut client = self.client().await?;
        let tx = begin(&mut client).await?;
        let (snoozed, armed, event) = snooze_in(
            &tx,
            self.schema_hash,
            user_id,
            notification_id,
            minutes,
            now,
        )
        .await?;
        self.commit(tx, &[event]).await?;
        self.announce([armed]);
        Ok(snoozed)
    }

    async fn reminder_history(
        &self,
        task_id: Uuid,
    ) -> Result<Vec<reminder::ReminderRecord>, EngineError> {
        Ok(reminder_rows::history(&self.client().await?, task_id).await?)
    }
}

#[async_trait]
impl ProjectStore for PostgresStore {
    async fn insert_project(&self, project: Project) -> Result<Project, EngineError> {
        let mut client = self.client().await?;
        let tx = begin(&mut client).await?;
        project_rows::lock_user(&tx, self.schema_hash, &project.user_id, UserLock::Exclusive)
            .await?;
        project_rows::insert(&tx, &project).await?;
        tx.commit().await.map_err(PgError::from)?;
        Ok(project)
    }

    async fn project(&self, id: Uuid) -> Result<Option<ProjectSummary>, EngineError> {
        Ok(project_rows::summary(&self.client().await?, id).await?)
    }

    async fn list_projects(&self, user_id: &str) -> Result<Vec<ProjectSummary>, EngineError> {
        Ok(project_rows::list(&self.client().await?, user_id).await?)
    }

    async fn rename_project(
        &self,
        user_id: &str,
        id: Uuid,
        name: String,
        now: DateTime<Utc>,
    ) -> Result<Project, EngineError> {
        let mut client = self.client().await?;
        let tx = begin(&mut client).await?;
        project_rows::lock_user(&tx, self.schema_hash, user_id, UserLock::Exclusive).await?;
        let renamed = project_rows::rename(&tx, user_id, id, name, now).await?;
        tx.commit().await.map_err(PgError::from)?;
        Ok(renamed)
    }

    async fn delete_project(
        &self,
        user_id: &str,
        id: Uuid,
        now: DateTime<Utc>,
    ) -> Result<ProjectDeletion, EngineError> {
        let mut client = self.client().await?;
        let tx = begin(&mut client).await?;
        project_rows::lock_user(&tx, self.schema_hash, user_id, UserLock::Exclusive).await?;
        let (deletion, events) = project_rows::delete(&tx, user_id, id, now).await?;
        self.commit(tx, &events).await?;
        Ok(deletion)
    }

    async fn subtask_counts(
        &self,
        user_id: &str,
        parents: Vec<Uuid>,
    ) -> Result<HashMap<Uuid, SubtaskCount>, EngineError> {
        Ok(project_rows::subtask_counts(&self.client().await?, user_id, &parents).await?)
    }
}

#[async_trait]
impl ConversationStore for PostgresStore {
    async fn append_message(
        &self,
        user_id: &str,
        message: ChatMessage,
    ) -> Result<Uuid, EngineError> {
        let mut client = self.client().await?;
        let tx = begin(&mut client).await?;
        let conversation = chat_rows::append(&tx, user_id, &message).await?;
        tx.commit().await.map_err(PgError::from)?;
        self.committed.notify_one();
        Ok(conversation)
    }

    async fn recent_messages(
        &self,
        user_id: &str,
        limit: u32,
    ) -> Result<(Option<Uuid>, Vec<ChatMessage>), EngineError> {
        Ok(chat_rows::recent(&self.client().await?, user_id, limit).await?)
    }

    async fn clear_conversation(&self, user_id: &str) -> Result<u64, EngineError> {
        let mut client = self.client().await?;
        let tx = begin(&mut client).await?;
        let removed = chat_rows::clear(&tx, user_id).await?;
        tx.commit().await.map_err(PgError::from)?;
        self.committed.notify_one();
        Ok(removed)
    }
}

#[async_trait]
impl SettingsStore for PostgresStore {
    async fn settings(&self, user_id: &str) -> Result<UserSettings, EngineError> {
        Ok(settings_rows::get(&self.client().await?, user_id).await?)
    }

    async fn save_settings(
        &self,
        user_id: &str,
        settings: UserSettings,
        now: DateTime<Utc>,
    ) -> Result<(), EngineError> {
        settings_rows::save(&self.client().await?, user_id, &settings, now).await?;
        self.committed.notify_one();
        Ok(())
    }

    async fn digest_subscribers(&self) -> Result<Vec<(String, UserSettings)>, EngineError> {
        Ok(settings_rows::digest_subscribers(&self.client().await?).await?)
    }

    async fn purge_notifications(
        &self,
        read_before: DateTime<Utc>,
        created_before: DateTime<Utc>,
    ) -> Result<u64, EngineError> {
        let removed =
            settings_rows::purge_notifications(&self.client().await?, read_before, created_before)
                .await?;
        self.committed.notify_one();
        Ok(removed)
    }
}

#[async_trait]
impl LoginAttempts for PostgresStore {
    async fn blocked_for(&self, email: &str, client: &str) -> Result<Option<u64>, EngineError> {
        Ok(login_rows::blocked_for(&self.client().await?, email, client).await?)
    }

    async fn failed(&self, email: &str, client: &str) -> Result<(), EngineError> {
        Ok(login_rows::failed(&self.client().await?, email, client).await?)
    }

    async fn succeeded(&self, email: &str) -> Result<(), EngineError> {
        Ok(login_rows::succeeded(&self.client().await?, email).await?)
    }
}

#[async_trait]
impl AccountStore for PostgresStore {
    async fn insert_account(
        &self,
        account: &AccountRecord,
        only_first: bool,
    ) -> Result<AccountInsert, EngineError> {
        let mut client = self.client().await?;
        let tx = begin(&mut client).await?;
        let outcome = account_rows::insert_account(&tx, account, only_first).await?;
        tx.commit().await.map_err(PgError::from)?;
        Ok(outcome)
    }

    async fn account_by_email(&self, email: &str) -> Result<Option<AccountRecord>, EngineError> {
        Ok(account_rows::by_email(&self.client().await?, email).await?)
    }

    async fn account_by_id(&self, id: &str) -> Result<Option<AccountRecord>, EngineError> {
        Ok(account_rows::by_id(&self.client().await?, id).await?)
    }

    async fn account_count(&self) -> Result<u64, EngineError> {
        Ok(account_rows::count(&self.client().await?).await?)
    }

    async fn list_accounts(&self) -> Result<Vec<AccountRecord>, EngineError> {
        Ok(account_rows::list(&self.client().await?).await?)
    }

    async fn set_password_hash(
        &self,
        id: &str,
        password_hash: &str,
        now: DateTime<Utc>,
    ) -> Result<bool, EngineError> {
        Ok(account_rows::set_password_hash(&self.client().await?, id, password_hash, now).await?)
    }

    async fn insert_api_token(&self, token: &ApiTokenRecord) -> Result<(), EngineError> {
        Ok(account_rows::insert_token(&self.client().await?, token).await?)
    }

    async fn api_tokens(&self, user_id: &str) -> Result<Vec<ApiTokenRecord>, EngineError> {
        Ok(account_rows::live_tokens(&self.client().await?, user_id).await?)
    }

    async fn revoke_api_token(
        &self,
        user_id: &str,
        token_id: &str,
        now: DateTime<Utc>,
    ) -> Result<bool, EngineError> {
        Ok(account_rows::revoke_token(&self.client().await?, user_id, token_id, now).await?)
    }

    async fn api_token_by_hash(
        &self,
        token_hash: &str,
    ) -> Result<Option<ApiTokenRecord>, EngineError> {
        Ok(account_rows::live_token_by_hash(&self.client().await?, token_hash).await?)
    }

    async fn touch_api_token(&self, token_id: &str, now: DateTime<Utc>) -> Result<(), EngineError> {
        Ok(account_rows::touch_token(&self.client().await?, token_id, now).await?)
    }

    async fn revoke_session(
        &self,
        session_id: &str,
        user_id: &str,
        expires_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<(), EngineError> {
        Ok(account_rows::revoke_session(
            &self.client().await?,
            session_id,
            user_id,
            expires_at,
            now,
        )
        .await?)
    }

    async fn session_revoked(&self, session_id: &str) -> Result<bool, EngineError> {
        Ok(account_rows::session_revoked(&self.client().await?, session_id).await?)
    }

    async fn set_feed_token(
        &self,
        user_id: &str,
        token_hash: &str,
        created_at: DateTime<Utc>,
    ) -> Result<(), EngineError> {
        Ok(
            account_rows::set_feed_token(&self.client().await?, user_id, token_hash, created_at)
                .await?,
        )
    }

    async fn feed_token_user(&self, token_hash: &str) -> Result<Option<String>, EngineError> {
        Ok(account_rows::feed_token_user(&self.client().await?, token_hash).await?)
    }

    async fn feed_token_created(
        &self,
        user_id: &str,
    ) -> Result<Option<DateTime<Utc>>, EngineError> {
        Ok(account_rows::feed_token_created(&self.client().await?, user_id).await?)
    }

    async fn delete_feed_token(&self, user_id: &str) -> Result<bool, EngineError> {
        Ok(account_rows::delete_feed_token(&self.client().await?, user_id).await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outbox_lock_keys_differ_per_schema_and_are_stable() {
        assert_eq!(
            fnv1a(""),
            i64::from_ne_bytes(0xcbf2_9ce4_8422_2325_u64.to_ne_bytes())
        );
        assert_ne!(fnv1a("ts_a"), fnv1a("ts_b"));
    }
}
