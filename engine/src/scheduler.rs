//! The durable reminder scheduler: an in-memory deadline queue (ordered set, woken by the next
//! deadline or by a change, never polling) over the store's reminder rows, rebuilt from the
//! store at start. Reminders due while the process was down fire at start, marked late; older
//! than the missed window, they are recorded as missed instead.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::{broadcast, watch};
use uuid::Uuid;

use crate::error::EngineError;
use crate::ports::TaskStore;
use crate::reminder::{FireOutcome, ReminderChange};

/// Reminders taken up in one transaction when many fall due together: large enough that a
/// burst costs few commits, small enough that the first of them are durable within a few ms.
const FIRE_BATCH: usize = 2_000;
/// Pause before retrying reminders whose firing failed (store trouble).
const RETRY_AFTER: Duration = Duration::from_millis(500);
/// Longest sleep with nothing queued (a change wakes it earlier).
const IDLE: Duration = Duration::from_secs(3600);
/// How long before their deadline the store is asked to prepare reminders' fires (the SQLite
/// store writes their events to the outbox, held until released), so that a burst due at one
/// instant only marks its timers fired.
const PREPARE_AHEAD: chrono::Duration = chrono::Duration::seconds(3);

/// Armed reminders ordered by fire time; a task may have several.
#[derive(Debug, Default)]
pub struct DeadlineQueue {
    by_time: BTreeSet<(DateTime<Utc>, Uuid)>,
    by_task: HashMap<Uuid, Vec<DateTime<Utc>>>,
}

impl DeadlineQueue {
    pub fn from_pending(pending: impl IntoIterator<Item = (Uuid, DateTime<Utc>)>) -> Self {
        let mut queue = Self::default();
        for (task_id, fire_at) in pending {
            if queue.by_time.insert((fire_at, task_id)) {
                queue.by_task.entry(task_id).or_default().push(fire_at);
            }
        }
        queue
    }

    /// Replaces the task's armed times (empty cancels them all).
    pub fn set(&mut self, task_id: Uuid, fire_at: Vec<DateTime<Utc>>) {
        for previous in self.by_task.remove(&task_id).unwrap_or_default() {
            self.by_time.remove(&(previous, task_id));
        }
        let mut kept = Vec::with_capacity(fire_at.len());
        for at in fire_at {
            if self.by_time.insert((at, task_id)) {
                kept.push(at);
            }
        }
        if !kept.is_empty() {
            self.by_task.insert(task_id, kept);
        }
    }

    /// Puts one time back (a fire that must be retried).
    pub fn add(&mut self, task_id: Uuid, fire_at: DateTime<Utc>) {
        if self.by_time.insert((fire_at, task_id)) {
            self.by_task.entry(task_id).or_default().push(fire_at);
        }
    }

    pub fn next_deadline(&self) -> Option<DateTime<Utc>> {
        self.by_time.first().map(|(at, _)| *at)
    }

    /// Removes and returns every reminder due at `now`, soonest first.
    pub fn pop_due(&mut self, now: DateTime<Utc>) -> Vec<(Uuid, DateTime<Utc>)> {
        self.pop_due_at_most(now, usize::MAX)
    }

    /// Removes and returns at most `limit` of the reminders due at `now`, soonest first.
    pub fn pop_due_at_most(
        &mut self,
        now: DateTime<Utc>,
        limit: usize,
    ) -> Vec<(Uuid, DateTime<Utc>)> {
        let mut due = Vec::new();
        while let Some(&(at, task_id)) = self.by_time.first() {
            if at > now || due.len() >= limit {
                break;
            }
            self.by_time.pop_first();
            if let Some(times) = self.by_task.get_mut(&task_id) {
                times.retain(|time| *time != at);
                if times.is_empty() {
                    self.by_task.remove(&task_id);
                }
            }
            due.push((task_id, at));
        }
        due
    }

    /// The reminders armed after `after` (from the start when `None`) and up to `until`.
    pub fn between(
        &self,
        after: Option<DateTime<Utc>>,
        until: DateTime<Utc>,
    ) -> Vec<(Uuid, DateTime<Utc>)> {
        use std::ops::Bound::{Excluded, Included, Unbounded};
        let start = after.map_or(Unbounded, |at| Excluded((at, Uuid::max())));
        if after.is_some_and(|at| at >= until) {
            return Vec::new();
        }
        self.by_time
            .range((start, Included((until, Uuid::max()))))
            .map(|&(at, task_id)| (task_id, at))
            .collect()
    }

    /// The first armed time after `after`.
    pub fn first_after(&self, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
        use std::ops::Bound::{Excluded, Unbounded};
        self.by_time
            .range((Excluded((after, Uuid::max())), Unbounded))
            .next()
            .map(|&(at, _)| at)
    }

    /// Armed reminder times in the queue.
    pub fn len(&self) -> usize {
        self.by_time.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_time.is_empty()
    }
}

/// What the scheduler needs from the store: the armed rows, their changes, and the one
/// transaction that fires a due one. Every [`TaskStore`] is one; tests drive the queue logic
/// in virtual time through a small in-memory one.
#[async_trait::async_trait]
pub trait ReminderSource: Send + Sync + 'static {
    fn reminder_changes(&self) -> broadcast::Receiver<ReminderChange>;
    fn foreign_commits(&self) -> watch::Receiver<u64>;
    async fn pending_reminders(&self) -> Result<Vec<(Uuid, DateTime<Utc>)>, EngineError>;
    async fn fire_reminder(
        &self,
        task_id: Uuid,
        fire_at: DateTime<Utc>,
        now: DateTime<Utc>,
        missed_window: chrono::Duration,
    ) -> Result<FireOutcome, EngineError>;

    /// Prepares the fires of timers due in the next seconds (see
    /// [`TaskStore::prepare_reminders`]); by default nothing.
    async fn prepare(&self, _due: Vec<(Uuid, DateTime<Utc>)>) -> Result<(), EngineError> {
        Ok(())
    }

    /// Takes up several due timers at once (a burst at one instant); by default one by one at
    /// `now`. The store's version reads the time as it processes each and commits once.
    async fn fire_batch(
        &self,
        due: Vec<(Uuid, DateTime<Utc>)>,
        now: DateTime<Utc>,
        missed_window: chrono::Duration,
    ) -> Result<Vec<FireOutcome>, EngineError> {
        let mut outcomes = Vec::with_capacity(due.len());
        for (task_id, fire_at) in due {
            outcomes.push(
                self.fire_reminder(task_id, fire_at, now, missed_window)
                    .await?,
            );
        }
        Ok(outcomes)
    }
}

struct StoreSource(Arc<dyn TaskStore>);

#[async_trait::async_trait]
impl ReminderSource for StoreSource {
    fn reminder_changes(&self) -> broadcast::Receiver<ReminderChange> {
        self.0.reminder_changes()
    }

    fn foreign_commits(&self) -> watch::Receiver<u64> {
        self.0.foreign_commits()
    }

    async fn pending_reminders(&self) -> Result<Vec<(Uuid, DateTime<Utc>)>, EngineError> {
        self.0.pending_reminders().await
    }

    async fn fire_reminder(
        &self,
        task_id: Uuid,
        fire_at: DateTime<Utc>,
        now: DateTime<Utc>,
        missed_window: chrono::Duration,
    ) -> Result<FireOutcome, EngineError> {
        self.0
            .fire_reminder(task_id, fire_at, now, missed_window)
            .await
    }

    async fn fire_batch(
        &self,
        due: Vec<(Uuid, DateTime<Utc>)>,
        _now: DateTime<Utc>,
        missed_window: chrono::Duration,
    ) -> Result<Vec<FireOutcome>, EngineError> {
        self.0.fire_reminders(due, missed_window).await
    }

    async fn prepare(&self, due: Vec<(Uuid, DateTime<Utc>)>) -> Result<(), EngineError> {
        self.0.prepare_reminders(due).await
    }
}

/// Where "now" comes from: the system clock, or tokio's (pausable) clock in tests.
pub trait Clock: Send + Sync + 'static {
    fn now(&self) -> DateTime<Utc>;
}

/// The wall clock.
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// A clock that runs with tokio's timer, so `tokio::time::pause`/`advance` move it.
pub struct TokioClock {
    origin: DateTime<Utc>,
    started: tokio::time::Instant,
}

impl TokioClock {
    pub fn starting_at(origin: DateTime<Utc>) -> Self {
        Self {
            origin,
            started: tokio::time::Instant::now(),
        }
    }
}

impl Clock for TokioClock {
    fn now(&self) -> DateTime<Utc> {
        let elapsed = chrono::Duration::from_std(self.started.elapsed()).unwrap_or_default();
        self.origin + elapsed
    }
}

pub struct ReminderScheduler {
    store: Arc<dyn ReminderSource>,
    clock: Arc<dyn Clock>,
    missed_window: chrono::Duration,
}

impl ReminderScheduler {
    pub fn new(store: Arc<dyn TaskStore>, missed_window: chrono::Duration) -> Self {
        Self::with_source(
            Arc::new(StoreSource(store)),
            Arc::new(SystemClock),
            missed_window,
        )
    }

    pub fn with_source(
        store: Arc<dyn ReminderSource>,
        clock: Arc<dyn Clock>,
        missed_window: chrono::Duration,
    ) -> Self {
        Self {
            store,
            clock,
            missed_window,
        }
    }

    async fn load(&self) -> Result<DeadlineQueue, EngineError> {
        let pending = self.store.pending_reminders().await?;
        tracing::info!(pending = pending.len(), "reminder queue loaded");
        Ok(DeadlineQueue::from_pending(pending))
    }

    /// Fires reminders until `shutdown` turns true.
    pub async fn run(self, mut shutdown: watch::Receiver<bool>) {
        // Subscribed before loading, so no change between the two is lost.
        let mut changes = self.store.reminder_changes();
        let mut foreign = self.store.foreign_commits();
        foreign.mark_unchanged();
        let mut foreign_open = true;
        let mut queue = loop {
            match self.load().await {
                Ok(queue) => break queue,
                Err(error) => {
                    tracing::warn!(%error, "cannot load reminders; retrying");
                    tokio::select! {
                        () = tokio::time::sleep(RETRY_AFTER) => {}
                        _ = shutdown.changed() => return,
                    }
                }
            }
        };
        // Reminders up to this time were handed to the store to prepare.
        let mut prepared_through = None;
        loop {
            metrics::gauge!("reminders_pending").set(queue.len() as f64);
            let now = self.clock.now();
            prepared_through = Some(self.prepare_soon(&queue, prepared_through, now));
            let wait = Self::wait(&queue, prepared_through, now);
            tokio::select! {
                () = tokio::time::sleep(wait) => {
                    let failed = self.fire_due(&mut queue).await;
                    if !failed.is_empty() {
                        for (task_id, at) in failed {
                            queue.add(task_id, at);
                        }
                        tokio::time::sleep(RETRY_AFTER).await;
                    }
                }
                change = changes.recv() => match change {
                    Ok(ReminderChange { task_id, fire_at }) => {
                        let soon: Vec<_> = fire_at
                            .iter()
                            .filter(|at| Some(**at) <= prepared_through)
                            .map(|at| (task_id, *at))
                            .collect();
                        queue.set(task_id, fire_at);
                        self.prepare(soon);
                    }
                    Err(broadcast::error::RecvError::Lagged(missed)) => {
                        tracing::warn!(missed, "reminder changes overflowed; reloading the queue");
                        if let Ok(reloaded) = self.load().await {
                            queue = reloaded;
                            prepared_through = None;
                        }
                    }
                    Err(broadcast::error::RecvError::Closed) => break,
                },
                // Another process (`taskstream mcp`) wrote to the store: its reminder changes
                // were never announced here, so the rows are read again.
                changed = foreign.changed(), if foreign_open => match changed {
                    Ok(()) => match self.load().await {
                        Ok(reloaded) => {
                            queue = reloaded;
                            prepared_through = None;
                        }
                        Err(error) => tracing::warn!(%error, "cannot reload reminders after another process's write"),
                    },
                    Err(_) => foreign_open = false,
                },
                _ = shutdown.changed() => break,
            }
        }
        tracing::debug!("reminder scheduler stopped");
    }

    /// Asks the store to prepare the reminders due within [`PREPARE_AHEAD`] not yet handed
    /// over (those already due fire at once: too late to prepare); returns how far that goes.
    fn prepare_soon(
        &self,
        queue: &DeadlineQueue,
        prepared_through: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> DateTime<Utc> {
        let horizon = now + PREPARE_AHEAD;
        let after = prepared_through.map_or(now, |through| through.max(now));
        self.prepare(queue.between(Some(after), horizon));
        prepared_through.map_or(horizon, |through| through.max(horizon))
    }

    /// Prepares in the background: firing never waits for it, and a fire it did not prepare in
    /// time simply takes the ordinary path.
    fn prepare(&self, soon: Vec<(Uuid, DateTime<Utc>)>) {
        if soon.is_empty() {
            return;
        }
        let store = Arc::clone(&self.store);
        tokio::spawn(async move {
            if let Err(error) = store.prepare(soon).await {
                tracing::debug!(%error, "cannot prepare reminders ahead; they fire the ordinary way");
            }
        });
    }

    /// Sleep until the next deadline, or until the next reminder is to be prepared.
    fn wait(
        queue: &DeadlineQueue,
        prepared_through: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> Duration {
        let next_prepare = prepared_through
            .and_then(|through| queue.first_after(through))
            .map(|at| at - PREPARE_AHEAD);
        [queue.next_deadline(), next_prepare]
            .into_iter()
            .flatten()
            .min()
            .map_or(IDLE, |at| (at - now).to_std().unwrap_or(Duration::ZERO))
    }

    /// Fires the due reminders, soonest first, in batches (one transaction each) taken from
    /// the queue as they go, so the first batch starts at once and reminders falling due
    /// meanwhile join; returns the ones to retry. A batch that fails is retried whole: firing
    /// is idempotent per (task, time).
    async fn fire_due(&self, queue: &mut DeadlineQueue) -> Vec<(Uuid, DateTime<Utc>)> {
        let mut failed = Vec::new();
        loop {
            let chunk = queue.pop_due_at_most(self.clock.now(), FIRE_BATCH);
            if chunk.is_empty() {
                return failed;
            }
            match self
                .store
                .fire_batch(chunk.clone(), self.clock.now(), self.missed_window)
                .await
            {
                Ok(outcomes) => {
                    for (&(task_id, at), outcome) in chunk.iter().zip(outcomes) {
                        record_outcome(task_id, at, outcome);
                    }
                }
                Err(error) => {
                    tracing::warn!(%error, reminders = chunk.len(), "firing reminders failed; will retry");
                    failed.extend(chunk);
                }
            }
        }
    }
}

/// Counts and logs what one timer did.
fn record_outcome(task_id: Uuid, at: DateTime<Utc>, outcome: FireOutcome) {
    match outcome {
        FireOutcome::Fired { late_by } => {
            let seconds = late_by.num_microseconds().unwrap_or(i64::MAX) as f64 / 1e6;
            metrics::counter!("reminders_fired_total").increment(1);
            metrics::histogram!("reminder_fire_lateness_seconds").record(seconds.max(0.0));
            if late_by >= chrono::Duration::seconds(1) {
                metrics::counter!("reminders_late_total").increment(1);
                tracing::info!(task = %task_id, late_by_seconds = late_by.num_seconds(), "fired a late reminder");
            }
        }
        FireOutcome::Missed => {
            metrics::counter!("reminders_missed_total").increment(1);
            tracing::warn!(task = %task_id, fire_at = %at, "reminder missed (too old to fire)");
        }
        FireOutcome::Recurred { next } => {
            metrics::counter!("recurrences_on_due_total").increment(1);
            tracing::info!(task = %task_id, next = %next, "due date passed: next occurrence created");
        }
        FireOutcome::NotArmed => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ports::{Outbox, ReminderStore};
    use crate::time::parse_datetime;

    fn at(text: &str) -> DateTime<Utc> {
        parse_datetime(text).expect("date")
    }

    #[test]
    fn a_task_may_have_several_times_and_each_pops_once() {
        let a = Uuid::new_v4();
        let mut queue = DeadlineQueue::from_pending([
            (a, at("2030-01-01T10:00:00Z")),
            (a, at("2030-01-01T09:00:00Z")),
        ]);
        assert_eq!(queue.len(), 2);
        assert_eq!(
            queue.pop_due(at("2030-01-01T09:30:00Z")),
            [(a, at("2030-01-01T09:00:00Z"))]
        );
        assert_eq!(
            queue.next_deadline(),
            Some(at("2030-01-01T10:00:00Z")),
            "the other stays"
        );
        queue.add(a, at("2030-01-01T09:00:00Z"));
        queue.set(a, vec![at("2030-01-01T12:00:00Z")]);
        assert_eq!(queue.len(), 1, "set replaces every time of the task");
        assert_eq!(queue.next_deadline(), Some(at("2030-01-01T12:00:00Z")));
    }

    #[test]
    fn the_queue_hands_out_windows_and_bounded_batches() {
        let (a, b, c) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
        let mut queue = DeadlineQueue::from_pending([
            (a, at("2030-01-01T10:00:00Z")),
            (b, at("2030-01-01T10:00:00Z")),
            (c, at("2030-01-01T10:00:05Z")),
        ]);
        let ids = |found: Vec<(Uuid, DateTime<Utc>)>| {
            let mut ids: Vec<Uuid> = found.into_iter().map(|(id, _)| id).collect();
            ids.sort();
            ids
        };
        let mut ab = vec![a, b];
        ab.sort();
        assert_eq!(ids(queue.between(None, at("2030-01-01T10:00:00Z"))), ab);
        assert_eq!(
            ids(queue.between(Some(at("2030-01-01T10:00:00Z")), at("2030-01-01T10:00:05Z"))),
            [c],
            "after is excluded, until included"
        );
        assert!(
            queue
                .between(Some(at("2030-01-01T10:00:05Z")), at("2030-01-01T10:00:01Z"))
                .is_empty()
        );
        assert_eq!(
            queue.first_after(at("2030-01-01T10:00:00Z")),
            Some(at("2030-01-01T10:00:05Z"))
        );
        assert_eq!(queue.first_after(at("2030-01-01T10:00:05Z")), None);
        let first = queue.pop_due_at_most(at("2030-01-01T11:00:00Z"), 2);
        assert_eq!(ids(first), ab, "the soonest first, at most two");
        assert_eq!(queue.len(), 1);
        assert_eq!(
            queue.pop_due_at_most(at("2030-01-01T11:00:00Z"), 2),
            [(c, at("2030-01-01T10:00:05Z"))]
        );
    }

    #[test]
    fn the_queue_orders_rearms_and_cancels() {
        let (a, b, c) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
        let mut queue = DeadlineQueue::from_pending([
            (a, at("2030-01-01T10:00:00Z")),
            (b, at("2030-01-01T09:00:00Z")),
        ]);
        assert_eq!(queue.next_deadline(), Some(at("2030-01-01T09:00:00Z")));
        queue.set(b, vec![at("2030-01-01T11:00:00Z")]);
        assert_eq!(
            queue.next_deadline(),
            Some(at("2030-01-01T10:00:00Z")),
            "re-armed later"
        );
        queue.set(c, vec![at("2030-01-01T10:00:00Z")]);
        queue.set(a, Vec::new());
        assert_eq!(queue.len(), 2, "cancelled");
        assert_eq!(
            queue.pop_due(at("2030-01-01T10:30:00Z")),
            [(c, at("2030-01-01T10:00:00Z"))]
        );
        assert_eq!(queue.pop_due(at("2030-01-01T10:30:00Z")), []);
        assert_eq!(
            queue.pop_due(at("2031-01-01T00:00:00Z")),
            [(b, at("2030-01-01T11:00:00Z"))]
        );
        assert!(queue.is_empty() && queue.next_deadline().is_none());
    }

    /// A reminder armed by another process on the same database (`taskstream mcp` next to
    /// `serve`) was never announced to this scheduler; it must still fire.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn fires_a_reminder_another_process_armed() {
        use crate::embedded::SqliteTaskStore;
        use crate::task::{NewTask, ops};

        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("t.db");
        let server = Arc::new(SqliteTaskStore::open(&path).expect("open"));
        let other = SqliteTaskStore::open(&path).expect("second opener");
        let (stop, stopped) = watch::channel(false);
        let scheduler = ReminderScheduler::new(server.clone(), chrono::Duration::hours(1));
        let running = tokio::spawn(scheduler.run(stopped));
        // Let the scheduler load its (empty) queue first, so only the reload can find the task.
        tokio::time::sleep(Duration::from_millis(300)).await;

        // Due in a minute and three seconds, reminded a minute before: fires in ~3 s.
        let mut draft = NewTask::titled("call the plumber");
        draft.due_date = Some(crate::time::truncate_micros(
            Utc::now() + chrono::Duration::seconds(63),
        ));
        draft.reminder_offset_minutes = Some(1);
        let (task, events) = ops::create("alice", draft, crate::time::now()).expect("valid");
        other.insert(task, events).await.expect("insert");

        let mut fired = false;
        for _ in 0..200 {
            fired = server
                .pending_events(100)
                .await
                .expect("outbox")
                .iter()
                .any(|record| record.envelope.event_type == "reminder.triggered");
            if fired {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        stop.send(true).expect("stop");
        running.await.expect("scheduler stops");
        assert!(fired, "the reminder fired");
    }

    /// Against the real store, on-time reminders fire from events written ahead: each event
    /// is stamped with its fire time exactly (the ordinary path stamps the moment it ran), once.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn on_time_reminders_fire_from_events_prepared_ahead() {
        use crate::embedded::SqliteTaskStore;
        use crate::task::{NewTask, ops};

        let dir = tempfile::tempdir().expect("tempdir");
        let store = Arc::new(SqliteTaskStore::open(&dir.path().join("t.db")).expect("open"));
        let (stop, stopped) = watch::channel(false);
        let scheduler = ReminderScheduler::new(store.clone(), chrono::Duration::hours(1));
        let running = tokio::spawn(scheduler.run(stopped));
        // Two reminders at one instant about two seconds away: inside the read-ahead.
        let remind_at = crate::time::truncate_micros(Utc::now() + chrono::Duration::seconds(2));
        let mut ids = Vec::new();
        for title in ["water the plants", "feed the cat"] {
            let mut draft = NewTask::titled(title);
            draft.due_date = Some(remind_at + chrono::Duration::minutes(1));
            draft.reminder_offset_minutes = Some(1);
            let (task, events) = ops::create("alice", draft, crate::time::now()).expect("valid");
            ids.push(store.insert(task, events).await.expect("insert").id);
        }

        let triggered = || async {
            let events = store.pending_events(100).await.expect("outbox");
            events
                .into_iter()
                .filter(|record| record.envelope.event_type == "reminder.triggered")
                .collect::<Vec<_>>()
        };
        let mut fired = Vec::new();
        for _ in 0..200 {
            fired = triggered().await;
            if fired.len() == 2 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
        stop.send(true).expect("stop");
        running.await.expect("scheduler stops");
        let again = triggered().await;
        assert_eq!(again.len(), 2, "each fired once: {again:?}");
        for record in &fired {
            assert_eq!(
                record.envelope.timestamp,
                crate::time::format_utc(remind_at),
                "prepared ahead, stamped with its fire time"
            );
            assert!(record.envelope.payload.get("late_by_seconds").is_none());
        }
        for id in ids {
            let history = store.reminder_history(id).await.expect("history");
            let fired_at = history[0].fired_at.expect("marked fired");
            assert!(fired_at >= remind_at, "never before its time");
        }
    }
}

/// The queue logic in virtual time: an in-memory reminder source and a paused tokio clock, so
/// "fires at 10 s, not at 9 s" is checked exactly and instantly.
#[cfg(test)]
mod virtual_time {
    use std::sync::Mutex;

    use super::*;

    #[derive(Default)]
    struct Recorded {
        pending: Vec<(Uuid, DateTime<Utc>)>,
        fired: Vec<(Uuid, DateTime<Utc>, DateTime<Utc>)>,
        fail_once: Vec<Uuid>,
    }

    struct FakeSource {
        changes: broadcast::Sender<ReminderChange>,
        foreign: watch::Sender<u64>,
        state: Mutex<Recorded>,
    }

    #[async_trait::async_trait]
    impl ReminderSource for FakeSource {
        fn reminder_changes(&self) -> broadcast::Receiver<ReminderChange> {
            self.changes.subscribe()
        }

        fn foreign_commits(&self) -> watch::Receiver<u64> {
            self.foreign.subscribe()
        }

        async fn pending_reminders(&self) -> Result<Vec<(Uuid, DateTime<Utc>)>, EngineError> {
            Ok(self.state.lock().expect("lock").pending.clone())
        }

        async fn fire_reminder(
            &self,
            task_id: Uuid,
            fire_at: DateTime<Utc>,
            now: DateTime<Utc>,
            _missed_window: chrono::Duration,
        ) -> Result<FireOutcome, EngineError> {
            let mut state = self.state.lock().expect("lock");
            if let Some(at) = state.fail_once.iter().position(|id| *id == task_id) {
                state.fail_once.remove(at);
                return Err(EngineError::Unavailable("disk busy".into()));
            }
            state.fired.push((task_id, fire_at, now));
            Ok(FireOutcome::Fired {
                late_by: now - fire_at,
            })
        }
    }

    fn origin() -> DateTime<Utc> {
        crate::time::parse_datetime("2030-01-01T00:00:00Z").expect("date")
    }

    fn t(seconds: i64) -> DateTime<Utc> {
        origin() + chrono::Duration::seconds(seconds)
    }

    /// Lets the scheduler task run after the clock moved.
    async fn settle() {
        for _ in 0..20 {
            tokio::task::yield_now().await;
        }
    }

    async fn advance_to(seconds: f64, started: tokio::time::Instant) {
        let target = started + Duration::from_secs_f64(seconds);
        let now = tokio::time::Instant::now();
        if target > now {
            tokio::time::advance(target - now).await;
        }
        settle().await;
    }

    #[tokio::test(start_paused = true)]
    async fn fires_on_time_rearms_cancels_and_retries_in_virtual_time() {
        let (a, b, c, d) = (
            Uuid::new_v4(),
            Uuid::new_v4(),
            Uuid::new_v4(),
            Uuid::new_v4(),
        );
        let (changes, _) = broadcast::channel(64);
        let (foreign, _) = watch::channel(0);
        let source = Arc::new(FakeSource {
            changes: changes.clone(),
            foreign,
            state: Mutex::new(Recorded {
                pending: vec![(a, t(10)), (b, t(20)), (a, t(30))],
                fail_once: vec![d],
                ..Recorded::default()
            }),
        });
        let started = tokio::time::Instant::now();
        let clock = Arc::new(TokioClock::starting_at(origin()));
        let scheduler =
            ReminderScheduler::with_source(source.clone(), clock, chrono::Duration::hours(24));
        let (stop, stopped) = watch::channel(false);
        let running = tokio::spawn(scheduler.run(stopped));
        settle().await;
        let fired = |source: &FakeSource| {
            source
                .state
                .lock()
                .expect("lock")
                .fired
                .iter()
                .map(|(task, at, now)| (*task, *at, *now))
                .collect::<Vec<_>>()
        };

        advance_to(9.999, started).await;
        assert!(fired(&source).is_empty(), "nothing before its time");
        advance_to(10.0, started).await;
        assert_eq!(fired(&source), [(a, t(10), t(10))], "on the dot, not late");

        // b re-armed earlier, c armed then cancelled, d fails once.
        changes
            .send(ReminderChange {
                task_id: b,
                fire_at: vec![t(15)],
            })
            .expect("send");
        changes
            .send(ReminderChange {
                task_id: c,
                fire_at: vec![t(16)],
            })
            .expect("send");
        changes
            .send(ReminderChange {
                task_id: c,
                fire_at: Vec::new(),
            })
            .expect("send");
        changes
            .send(ReminderChange {
                task_id: d,
                fire_at: vec![t(17)],
            })
            .expect("send");
        settle().await;
        advance_to(15.0, started).await;
        assert_eq!(
            fired(&source).last(),
            Some(&(b, t(15), t(15))),
            "re-armed time"
        );
        advance_to(17.0, started).await;
        assert_eq!(fired(&source).len(), 2, "d's first attempt failed");
        advance_to(17.5, started).await;
        assert_eq!(
            fired(&source).last(),
            Some(&(d, t(17), t(17) + chrono::Duration::milliseconds(500))),
            "retried after the pause"
        );
        advance_to(29.0, started).await;
        let before_30 = fired(&source);
        assert!(before_30.iter().all(|(task, _, _)| *task != c), "cancelled");
        assert!(
            before_30
                .iter()
                .all(|(task, at, _)| !(*task == b && *at == t(20))),
            "the old time of b was dropped"
        );
        advance_to(30.0, started).await;
        assert_eq!(
            fired(&source).last(),
            Some(&(a, t(30), t(30))),
            "a's second reminder"
        );
        let order: Vec<Uuid> = fired(&source).iter().map(|(task, _, _)| *task).collect();
        assert_eq!(order, [a, b, d, a], "each armed time once, in time order");

        stop.send(true).expect("stop");
        running.await.expect("scheduler stops");
    }

    #[tokio::test(start_paused = true)]
    async fn reminders_due_at_start_fire_at_once_marked_late() {
        let task = Uuid::new_v4();
        let (changes, _) = broadcast::channel(8);
        let (foreign, _) = watch::channel(0);
        let source = Arc::new(FakeSource {
            changes,
            foreign,
            state: Mutex::new(Recorded {
                pending: vec![(task, t(-90))],
                ..Recorded::default()
            }),
        });
        let scheduler = ReminderScheduler::with_source(
            source.clone(),
            Arc::new(TokioClock::starting_at(origin())),
            chrono::Duration::hours(24),
        );
        let (stop, stopped) = watch::channel(false);
        let running = tokio::spawn(scheduler.run(stopped));
        settle().await;
        let fired = source.state.lock().expect("lock").fired.clone();
        assert_eq!(
            fired,
            [(task, t(-90), t(0))],
            "caught up at start, 90 s late"
        );
        stop.send(true).expect("stop");
        running.await.expect("scheduler stops");
    }
}

/// Figures for the reminder benchmark (issue: 100,000 pending; 10,000 due in the same second).
/// Run: `cargo test --release -p taskstream-engine --lib -- --ignored --nocapture bench_reminders`
#[cfg(test)]
mod bench {
    use std::time::Instant;

    use super::*;
    use crate::embedded::SqliteTaskStore;
    use crate::ports::{Outbox, ReminderStore};
    use crate::task::{NewTask, ops};

    fn rss_kib() -> u64 {
        std::fs::read_to_string("/proc/self/status")
            .ok()
            .and_then(|status| {
                status
                    .lines()
                    .find(|line| line.starts_with("VmRSS:"))
                    .and_then(|line| line.split_whitespace().nth(1)?.parse().ok())
            })
            .unwrap_or(0)
    }

    async fn insert_reminding(
        store: &Arc<SqliteTaskStore>,
        count: usize,
        remind_at: DateTime<Utc>,
    ) {
        let due = remind_at + chrono::Duration::minutes(1);
        for chunk in (0..count).collect::<Vec<_>>().chunks(1000) {
            futures_util::future::join_all(chunk.iter().map(|n| async move {
                let mut draft = NewTask::titled(&format!("task {n}"));
                draft.due_date = Some(due);
                draft.reminder_offset_minutes = Some(1);
                let (task, events) =
                    ops::create(&format!("user-{}", n % 500), draft, crate::time::now())
                        .expect("valid");
                store.insert(task, events).await.expect("insert");
            }))
            .await;
        }
    }

    fn percentile(sorted: &[f64], p: f64) -> f64 {
        sorted
            .get(((sorted.len() as f64 - 1.0) * p).round() as usize)
            .copied()
            .unwrap_or(f64::NAN)
    }

    /// The store's reminder source, noting when each fire batch came back committed: a
    /// reminder has fired once it is durable, not when its event was stamped.
    /// `TASKSTREAM_BENCH_NO_PREPARE=1` turns the read-ahead off, for comparison.
    /// A fire batch: handed to the store at, back at, and its size.
    type Batch = (DateTime<Utc>, DateTime<Utc>, usize);

    struct Timed {
        inner: StoreSource,
        prepare: bool,
        committed: std::sync::Mutex<Vec<(DateTime<Utc>, DateTime<Utc>)>>,
        /// Each fire batch: when it was handed to the store, when it came back, its size.
        batches: std::sync::Mutex<Vec<Batch>>,
        /// When each preparation came back.
        prepared: std::sync::Mutex<Vec<DateTime<Utc>>>,
    }

    #[async_trait::async_trait]
    impl ReminderSource for Timed {
        fn reminder_changes(&self) -> broadcast::Receiver<ReminderChange> {
            self.inner.reminder_changes()
        }

        fn foreign_commits(&self) -> watch::Receiver<u64> {
            self.inner.foreign_commits()
        }

        async fn pending_reminders(&self) -> Result<Vec<(Uuid, DateTime<Utc>)>, EngineError> {
            self.inner.pending_reminders().await
        }

        async fn fire_reminder(
            &self,
            task_id: Uuid,
            fire_at: DateTime<Utc>,
            now: DateTime<Utc>,
            missed_window: chrono::Duration,
        ) -> Result<FireOutcome, EngineError> {
            self.inner
                .fire_reminder(task_id, fire_at, now, missed_window)
                .await
        }

        async fn fire_batch(
            &self,
            due: Vec<(Uuid, DateTime<Utc>)>,
            now: DateTime<Utc>,
            missed_window: chrono::Duration,
        ) -> Result<Vec<FireOutcome>, EngineError> {
            let started = Utc::now();
            let outcomes = self
                .inner
                .fire_batch(due.clone(), now, missed_window)
                .await?;
            let committed = Utc::now();
            if let Ok(mut batches) = self.batches.lock() {
                batches.push((started, committed, due.len()));
            }
            let mut log = self.committed.lock().expect("lock");
            for ((_, at), outcome) in due.iter().zip(&outcomes) {
                if matches!(outcome, FireOutcome::Fired { .. }) {
                    log.push((*at, committed));
                }
            }
            Ok(outcomes)
        }

        async fn prepare(&self, due: Vec<(Uuid, DateTime<Utc>)>) -> Result<(), EngineError> {
            if self.prepare {
                self.inner.prepare(due).await?;
                if let Ok(mut prepared) = self.prepared.lock() {
                    prepared.push(Utc::now());
                }
                Ok(())
            } else {
                Ok(())
            }
        }
    }

    /// The embedded log as the relay's bus, noting each `reminder.triggered` it took.
    struct Published {
        log: crate::embedded::log_bus::LogBus,
        triggered: std::sync::Mutex<Vec<(String, serde_json::Value)>>,
        /// When the last batch holding a `reminder.triggered` was durable in the log.
        last_in_log: std::sync::Mutex<Option<DateTime<Utc>>>,
    }

    #[async_trait::async_trait]
    impl crate::ports::EventBus for Published {
        async fn publish(&self, events: &[crate::ports::OutboxRecord]) -> Result<(), EngineError> {
            self.log.publish(events).await?;
            let durable = Utc::now();
            let fired: Vec<_> = events
                .iter()
                .filter(|r| r.envelope.event_type == "reminder.triggered")
                .map(|r| (r.key.clone(), r.envelope.payload["remind_at"].clone()))
                .collect();
            if !fired.is_empty() {
                if let Ok(mut last) = self.last_in_log.lock() {
                    *last = Some(durable);
                }
                if let Ok(mut triggered) = self.triggered.lock() {
                    triggered.extend(fired);
                }
            }
            Ok(())
        }
    }

    fn summary(mut lateness_ms: Vec<f64>) -> String {
        lateness_ms.sort_by(f64::total_cmp);
        format!(
            "p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
            percentile(&lateness_ms, 0.5),
            percentile(&lateness_ms, 0.99),
            lateness_ms.last().copied().unwrap_or_default()
        )
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    #[ignore = "benchmark: prints figures"]
    async fn bench_reminders() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Arc::new(SqliteTaskStore::open(&dir.path().join("t.db")).expect("open"));
        let far = Utc::now() + chrono::Duration::days(30);
        let started = Instant::now();
        insert_reminding(&store, 90_000, far).await;
        // Far enough ahead that the next 10,000 inserts and the start are done by then, even on
        // a busy machine: 20 s, or three times what those inserts should take plus 10 s.
        let lead = chrono::Duration::from_std(started.elapsed() / 3)
            .unwrap_or_default()
            .max(chrono::Duration::seconds(10))
            + chrono::Duration::seconds(10);
        let burst_at = crate::time::truncate_micros(Utc::now() + lead);
        insert_reminding(&store, 10_000, burst_at).await;
        println!(
            "inserted 100,000 tasks with reminders in {:.1} s; the burst is due in {:.1} s",
            started.elapsed().as_secs_f64(),
            (burst_at - Utc::now()).as_seconds_f64()
        );

        let loading = Instant::now();
        let pending = store.pending_reminders().await.expect("pending");
        let read_time = loading.elapsed();
        let before = rss_kib();
        let queue = DeadlineQueue::from_pending(pending);
        let load_time = loading.elapsed();
        let after = rss_kib();
        println!(
            "queue rebuild: {} pending read in {:.0} ms, queue built by {:.0} ms; the queue adds {} KiB RSS (process {} KiB)",
            queue.len(),
            read_time.as_secs_f64() * 1e3,
            load_time.as_secs_f64() * 1e3,
            after.saturating_sub(before),
            after
        );
        drop(queue);

        // The outbox relay runs as in the product, publishing to the embedded log (it drains
        // the inserts' events before the burst, then relays the burst while it fires).
        // `TASKSTREAM_BENCH_NO_RELAY=1` leaves it out.
        let (stop, stopped) = watch::channel(false);
        let published = Arc::new(Published {
            log: crate::embedded::log_bus::LogBus::new(
                crate::embedded::log::EventLog::open(
                    &dir.path().join("log.redb"),
                    Default::default(),
                )
                .expect("event log"),
            ),
            triggered: std::sync::Mutex::default(),
            last_in_log: std::sync::Mutex::default(),
        });
        let relay = std::env::var_os("TASKSTREAM_BENCH_NO_RELAY")
            .is_none()
            .then(|| {
                let bus: Arc<dyn crate::ports::EventBus> = published.clone();
                tokio::spawn(
                    crate::relay::OutboxRelay::new(store.clone(), bus).run(stopped.clone()),
                )
            });
        let source = Arc::new(Timed {
            inner: StoreSource(store.clone()),
            prepare: std::env::var_os("TASKSTREAM_BENCH_NO_PREPARE").is_none(),
            committed: std::sync::Mutex::default(),
            batches: std::sync::Mutex::default(),
            prepared: std::sync::Mutex::default(),
        });
        let scheduler = ReminderScheduler::with_source(
            source.clone(),
            Arc::new(SystemClock),
            chrono::Duration::hours(24),
        );
        let running = tokio::spawn(scheduler.run(stopped));
        if burst_at - Utc::now() < PREPARE_AHEAD {
            println!("warning: the scheduler started less than {PREPARE_AHEAD} before the burst");
        }
        let wait = (burst_at - Utc::now()).to_std().unwrap_or_default() + Duration::from_secs(15);
        tokio::time::sleep(wait).await;
        stop.send(true).expect("stop");
        running.await.expect("scheduler");
        if let Some(relay) = relay {
            relay.await.expect("relay");
        }

        // What reached the log, and what is still in the outbox.
        let mut triggered = published.triggered.lock().expect("lock").clone();
        triggered.extend(
            store
                .pending_events(10_000_000)
                .await
                .expect("outbox")
                .into_iter()
                .filter(|r| r.envelope.event_type == "reminder.triggered")
                .map(|r| (r.key, r.envelope.payload["remind_at"].clone())),
        );
        let remind_at = serde_json::json!(crate::time::format_utc(burst_at));
        triggered.retain(|(_, at)| *at == remind_at);
        let distinct: std::collections::HashSet<_> =
            triggered.iter().map(|(key, _)| key.clone()).collect();
        let committed: Vec<f64> = source
            .committed
            .lock()
            .expect("lock")
            .iter()
            .filter_map(|(due, at)| Some((*at - *due).num_microseconds()? as f64 / 1e3))
            .collect();
        println!(
            "burst of 10,000 due at the same instant{}: fired {} (missed {}, doubled {}); lateness (fire committed, durable) {}",
            if std::env::var_os("TASKSTREAM_BENCH_NO_RELAY").is_none() {
                ", the relay running"
            } else {
                ""
            },
            triggered.len(),
            10_000_usize.saturating_sub(distinct.len()),
            triggered.len() - distinct.len(),
            summary(committed),
        );
        let offset =
            |at: DateTime<Utc>| (at - burst_at).num_microseconds().unwrap_or(0) as f64 / 1e3;
        let prepared = source.prepared.lock().expect("lock");
        if let (Some(first), Some(last)) = (prepared.first(), prepared.last()) {
            println!(
                "prepared in {} rounds, from {:.0} ms to {:.0} ms relative to the burst",
                prepared.len(),
                offset(*first),
                offset(*last)
            );
        }
        let batches: Vec<String> = source
            .batches
            .lock()
            .expect("lock")
            .iter()
            .filter(|(started, _, _)| *started >= burst_at)
            .map(|(started, committed, size)| {
                format!(
                    "{size} at +{:.1}..+{:.1} ms",
                    offset(*started),
                    offset(*committed)
                )
            })
            .collect();
        println!("fire batches: {}", batches.join(", "));
        if let Some(last) = *published.last_in_log.lock().expect("lock") {
            println!(
                "the relay had every fired reminder durable in the embedded log by +{:.1} ms",
                offset(last)
            );
        }
    }
}
