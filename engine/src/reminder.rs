//! Reminder timers: which instant a task's reminder is armed for, and what firing one means.
//!
//! A task has a pending reminder exactly while it is open and has a `remind_at`. The store keeps
//! one row per (task, fire time) and marks it fired or missed in the same transaction that
//! appends `reminder.triggered`, so a reminder fires once, across crashes and restarts.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::activity::Notification;
use crate::error::EngineError;
use crate::event::OutboxEvent;
use crate::task::ops::{self, Change, TaskOp};
use crate::task::{RecurrenceTrigger, Task, TaskStatus};
use crate::time::format_utc;

/// Every pending fire time of one task after a change (empty: nothing is armed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReminderChange {
    pub task_id: Uuid,
    pub fire_at: Vec<DateTime<Utc>>,
}

/// One extra reminder of a task (`reminders: [...]` on the API), besides the frontend's
/// `reminder_offset_minutes`: so many minutes before the due date, or at a fixed instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ReminderSpec {
    Offset { offset_minutes: i64 },
    At { at: DateTime<Utc> },
}

/// Most extra reminders one task may have.
pub const REMINDERS_MAX: usize = 10;

impl ReminderSpec {
    /// When this reminder fires for `task` (an offset needs a due date).
    pub fn fire_time(&self, due: Option<DateTime<Utc>>) -> Option<DateTime<Utc>> {
        match *self {
            ReminderSpec::Offset { offset_minutes } => {
                chrono::Duration::try_minutes(offset_minutes)
                    .and_then(|offset| due?.checked_sub_signed(offset))
            }
            ReminderSpec::At { at } => Some(at),
        }
    }

    /// The API shape: `{"offset_minutes": N}` or `{"at": "<RFC 3339 UTC>"}`.
    pub fn view(&self) -> serde_json::Value {
        match *self {
            ReminderSpec::Offset { offset_minutes } => {
                serde_json::json!({ "offset_minutes": offset_minutes })
            }
            ReminderSpec::At { at } => serde_json::json!({ "at": format_utc(at) }),
        }
    }
}

/// The fire times of a task's extra reminders (not of `reminder_offset_minutes`), soonest
/// first; none for a completed task.
pub fn extra_times(task: &Task) -> Vec<DateTime<Utc>> {
    if task.status == TaskStatus::Completed {
        return Vec::new();
    }
    let mut times: Vec<_> = task
        .reminders
        .iter()
        .filter_map(|spec| spec.fire_time(task.due_date))
        .collect();
    times.sort_unstable();
    times.dedup();
    times
}

/// Every time a task's own reminders are armed for: `remind_at` and the extra reminders
/// (snoozes are rows of their own, not derived from the task).
pub fn armed_times(task: &Task) -> Vec<DateTime<Utc>> {
    let mut times = extra_times(task);
    times.extend(armed_at(task));
    times.sort_unstable();
    times.dedup();
    times
}

/// How far in the past a reminder time may be when it is set and still fire (at once); older
/// ones (a task entered with a long-past reminder, or whose next occurrence is already overdue)
/// are not armed at all, rather than announced as missed.
pub const ARM_GRACE: chrono::Duration = chrono::Duration::minutes(5);

/// Whether a reminder time set at `written_at` should be armed.
pub fn worth_arming(fire_at: DateTime<Utc>, written_at: DateTime<Utc>) -> bool {
    fire_at >= written_at - ARM_GRACE
}

/// When `task`'s reminder should fire, if one is armed.
pub fn armed_at(task: &Task) -> Option<DateTime<Utc>> {
    match task.status {
        TaskStatus::Completed => None,
        _ => task.remind_at,
    }
}

/// Whether `task` is an open `on_due` recurring task, whose next occurrence is created by a
/// `recur` timer at its due date. A store asks whether a next occurrence exists only then.
pub fn recur_applies(task: &Task) -> bool {
    task.recurrence_trigger == RecurrenceTrigger::OnDue
        && task.is_recurring
        && task.recurrence_rule.is_some()
        && task.status != TaskStatus::Completed
}

/// When `task`'s `recur` timer is armed: its due date, while [`recur_applies`] and it has no
/// next occurrence yet (`has_next`); armed even when past, so the series catches up once.
pub fn recur_at(task: &Task, has_next: bool) -> Option<DateTime<Utc>> {
    task.due_date.filter(|_| recur_applies(task) && !has_next)
}

/// What a store does to make a task's pending timer rows match the task.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SyncPlan {
    /// Pending rows (time, kind) to delete: times the task no longer has, snoozes of a
    /// completed task, a `recur` timer no longer wanted.
    pub cancel: Vec<(DateTime<Utc>, String)>,
    /// Reminder times to arm as `task` rows; a time that already fired or was missed keeps its
    /// row (the store inserts without overwriting), so no time fires twice.
    pub arm: Vec<DateTime<Utc>>,
    /// The `recur` timer to arm, if any.
    pub recur: Option<DateTime<Utc>>,
}

/// Plans the timer rows of `task` from its `pending` rows (time, kind) and its [`recur_at`].
/// A pending row for a current time is kept even if it is past: a reminder waiting for
/// catch-up. Times long past when they were set are not armed ([`worth_arming`]).
pub fn plan_sync(
    task: &Task,
    pending: &[(DateTime<Utc>, String)],
    recur: Option<DateTime<Utc>>,
) -> SyncPlan {
    let wanted = armed_times(task);
    let open = task.status != TaskStatus::Completed;
    let cancel = pending
        .iter()
        .filter(|(at, kind)| match kind.as_str() {
            "snooze" => !open,
            "recur" => recur != Some(*at),
            _ => !wanted.contains(at),
        })
        .cloned()
        .collect();
    let arm = wanted
        .into_iter()
        .filter(|at| worth_arming(*at, task.updated_at))
        .collect();
    SyncPlan { cancel, arm, recur }
}

/// The task a snooze is for: the one its notification is about.
pub fn snooze_target(notification: &Notification) -> Result<Uuid, EngineError> {
    notification
        .task_id
        .as_deref()
        .and_then(|id| Uuid::parse_str(id).ok())
        .ok_or_else(|| EngineError::Conflict("This notification is not about a task".to_owned()))
}

/// A snooze to arm and the `reminder.scheduled` event that announces it.
#[derive(Debug, Clone, PartialEq)]
pub struct SnoozePlan {
    pub fire_at: DateTime<Utc>,
    pub event: OutboxEvent,
}

/// Plans snoozing `task` (as loaded by the store; `None` when it is gone) for `minutes` on
/// behalf of `user_id`: a clear conflict when the task is gone, someone else's or completed,
/// or the time overflows.
pub fn plan_snooze(
    task: Option<&Task>,
    user_id: &str,
    minutes: i64,
    now: DateTime<Utc>,
) -> Result<SnoozePlan, EngineError> {
    let conflict = |text: &str| EngineError::Conflict(text.to_owned());
    let task = task
        .filter(|task| task.user_id == user_id)
        .ok_or_else(|| conflict("The task of this notification no longer exists"))?;
    if task.status == TaskStatus::Completed {
        return Err(conflict("The task is already completed"));
    }
    let fire_at = chrono::Duration::try_minutes(minutes)
        .and_then(|snooze| now.checked_add_signed(snooze))
        .map(crate::time::truncate_micros)
        .ok_or_else(|| conflict("Snooze too long"))?;
    Ok(SnoozePlan {
        fire_at,
        event: crate::event::reminder_scheduled(task, fire_at, now),
    })
}

/// What taking up the reminders due at one instant means.
#[derive(Debug, Clone, PartialEq)]
pub enum ReminderFiring {
    /// On time (within the missed window): mark `kinds` fired and append `event`
    /// (`reminder.triggered`).
    Fired {
        kinds: Vec<String>,
        late_by: chrono::Duration,
        event: OutboxEvent,
    },
    /// Too late: mark `kinds` missed and record `notification` instead.
    Missed {
        kinds: Vec<String>,
        notification: Notification,
    },
}

/// Everything a store writes when it takes up the timers due at one instant of a task.
#[derive(Debug, Clone, PartialEq)]
pub struct FirePlan {
    /// A `recur` timer's next occurrence: insert `change.next`, append `change.events`, arm its
    /// timers and mark the `recur` row fired.
    pub recurrence: Option<Change>,
    /// The task's reminders (and snoozes) due at that instant.
    pub reminders: Option<ReminderFiring>,
    /// Some timer no longer matches the task: re-sync the task's rows after.
    pub resync: bool,
    pub outcome: FireOutcome,
}

/// Plans taking up the timers `due` ([`due_timers`]) of `task` at `fire_at`. `has_next` says
/// whether the task already has its next occurrence (read only when `due.recur`).
pub fn plan_fire(
    task: &Task,
    due: DueTimers,
    has_next: bool,
    fire_at: DateTime<Utc>,
    now: DateTime<Utc>,
    missed_window: chrono::Duration,
) -> Result<FirePlan, EngineError> {
    let mut outcome = FireOutcome::NotArmed;
    let mut resync = due.stale;
    let mut recurrence = None;
    if due.recur {
        let change = ops::apply(
            TaskOp::SpawnOnDue,
            &task.user_id,
            task.clone(),
            has_next,
            now,
        )?;
        match &change.next {
            Some(next) => {
                outcome = FireOutcome::Recurred { next: next.id };
                recurrence = Some(change);
            }
            None => resync = true,
        }
    }
    let reminders = if due.reminding.is_empty() {
        None
    } else {
        let late_by = now - fire_at;
        if late_by > missed_window {
            outcome = FireOutcome::Missed;
            Some(ReminderFiring::Missed {
                kinds: due.reminding,
                notification: missed_notification(task, fire_at, now),
            })
        } else {
            outcome = FireOutcome::Fired { late_by };
            Some(ReminderFiring::Fired {
                kinds: due.reminding,
                late_by,
                event: crate::event::reminder_triggered(task, fire_at, late_by, now),
            })
        }
    };
    Ok(FirePlan {
        recurrence,
        reminders,
        resync,
        outcome,
    })
}

/// One reminder row of a task: pending, fired (and how late) or missed.
#[derive(Debug, Clone, PartialEq)]
pub struct ReminderRecord {
    pub fire_at: DateTime<Utc>,
    /// `task` (from the task's own fields) or `snooze`.
    pub kind: String,
    pub fired_at: Option<DateTime<Utc>>,
    pub missed: bool,
    pub late_by_ms: Option<i64>,
}

/// A snooze that was armed.
#[derive(Debug, Clone, PartialEq)]
pub struct Snoozed {
    pub task_id: Uuid,
    pub fire_at: DateTime<Utc>,
}

/// The timers armed for one instant of a task, sorted by what taking them up means; the one
/// rule every store adapter applies inside its fire transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DueTimers {
    /// A `recur` timer: create the next occurrence of an `on_due` task.
    pub recur: bool,
    /// The reminder kinds (`task`, `snooze`) that still apply and fire (or are missed) together.
    pub reminding: Vec<String>,
    /// Some reminder row no longer matches the task: the task's timers must be re-synced.
    pub stale: bool,
}

/// Sorts the kinds armed at `fire_at` for `task`: a snooze applies while the task is open, a
/// task reminder while that time is still one of the task's reminder times.
pub fn due_timers(task: &Task, kinds: &[String], fire_at: DateTime<Utc>) -> DueTimers {
    let open = task.status != TaskStatus::Completed;
    let reminder_kinds: Vec<&String> = kinds.iter().filter(|kind| *kind != "recur").collect();
    let reminding: Vec<String> = reminder_kinds
        .iter()
        .filter(|kind| match kind.as_str() {
            "snooze" => open,
            "task" => armed_times(task).contains(&fire_at),
            _ => false,
        })
        .map(|kind| (*kind).clone())
        .collect();
    DueTimers {
        recur: kinds.iter().any(|kind| kind == "recur"),
        stale: reminding.len() < reminder_kinds.len(),
        reminding,
    }
}

/// What happened when a due reminder was taken up.
#[derive(Debug, Clone, PartialEq)]
pub enum FireOutcome {
    /// Fired: `reminder.triggered` is in the outbox.
    Fired { late_by: chrono::Duration },
    /// Too old to fire (the process was down longer than the window): recorded as missed and
    /// the user notified of it.
    Missed,
    /// No longer armed for that time (changed, completed or deleted meanwhile): nothing done.
    NotArmed,
    /// An `on_due` recurring task's due date passed: its next occurrence was created.
    Recurred { next: Uuid },
}

/// The in-app notice that a reminder could not fire in time (the server was down too long).
/// Its id derives from the task and the fire time, so it is recorded once.
pub fn missed_notification(
    task: &Task,
    fire_at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Notification {
    let mut seed = task.id.as_bytes().to_vec();
    seed.extend_from_slice(&fire_at.timestamp_micros().to_be_bytes());
    let event_id = Uuid::new_v5(&Uuid::NAMESPACE_OID, &seed);
    let due = task
        .due_date
        .map(format_utc)
        .unwrap_or_else(|| "no due date".to_owned());
    Notification {
        id: Uuid::new_v5(&Uuid::NAMESPACE_OID, event_id.as_bytes()),
        user_id: task.user_id.clone(),
        event_id,
        kind: "missed_reminder".to_owned(),
        task_id: Some(task.id.to_string()),
        title: task.title.clone(),
        message: format!(
            "Missed reminder: '{}' (due {due}) was meant to remind you at {}",
            task.title,
            format_utc(fire_at)
        ),
        created_at: now,
        read_at: None,
        payload: serde_json::json!({
            "task_id": task.id,
            "task_title": task.title,
            "user_id": task.user_id,
            "due_at": task.due_date.map(format_utc),
            "remind_at": format_utc(fire_at),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::task::input::parse_new_task;
    use crate::time::parse_datetime;
    use serde_json::json;

    fn at(text: &str) -> DateTime<Utc> {
        parse_datetime(text).expect("date")
    }

    fn created(body: serde_json::Value) -> Task {
        let draft = parse_new_task(&body).expect("valid body");
        ops::create("alice", draft, at("2026-01-01T00:00:00Z"))
            .expect("created")
            .0
    }

    fn kinds(names: &[&str]) -> Vec<String> {
        names.iter().map(|name| (*name).to_owned()).collect()
    }

    fn on_due_series() -> Task {
        created(
            json!({"title": "water plants", "due_date": "2026-01-02T09:00:00Z", "is_recurring": true,
            "recurrence_rule": "DAILY", "recurrence_trigger": "on_due"}),
        )
    }

    #[test]
    fn sync_cancels_what_the_task_no_longer_has_and_arms_what_it_has() {
        let mut task = created(json!({"title": "t", "due_date": "2026-01-05T10:00:00Z",
            "reminder_offset_minutes": 60}));
        let remind = at("2026-01-05T09:00:00Z");
        let old = at("2026-01-04T09:00:00Z");
        let pending = vec![
            (old, "task".to_owned()),
            (remind, "task".to_owned()),
            (at("2026-01-03T00:00:00Z"), "snooze".to_owned()),
            (at("2026-01-02T00:00:00Z"), "recur".to_owned()),
        ];
        let plan = plan_sync(&task, &pending, None);
        assert_eq!(
            plan.cancel,
            vec![
                (old, "task".to_owned()),
                (at("2026-01-02T00:00:00Z"), "recur".to_owned())
            ]
        );
        assert_eq!(plan.arm, vec![remind]);
        assert_eq!(plan.recur, None);

        task.status = TaskStatus::Completed;
        let plan = plan_sync(&task, &pending, None);
        assert_eq!(plan.cancel.len(), 4, "a completed task keeps no timer");
        assert!(plan.arm.is_empty());
    }

    #[test]
    fn sync_does_not_arm_a_reminder_long_past_when_it_was_set() {
        let task = created(json!({"title": "t", "due_date": "2025-12-01T10:00:00Z",
            "reminder_offset_minutes": 10}));
        assert_eq!(armed_times(&task), vec![at("2025-12-01T09:50:00Z")]);
        assert!(plan_sync(&task, &[], None).arm.is_empty());
    }

    #[test]
    fn the_recur_timer_is_the_due_date_of_an_open_on_due_series_without_a_next() {
        let series = on_due_series();
        assert!(recur_applies(&series));
        assert_eq!(recur_at(&series, false), Some(at("2026-01-02T09:00:00Z")));
        assert_eq!(recur_at(&series, true), None);
        let plain = created(json!({"title": "t", "due_date": "2026-01-02T09:00:00Z"}));
        assert!(!recur_applies(&plain));
        assert_eq!(recur_at(&plain, false), None);
        let plan = plan_sync(&series, &[], recur_at(&series, false));
        assert_eq!(plan.recur, Some(at("2026-01-02T09:00:00Z")));
    }

    #[test]
    fn snooze_is_refused_clearly_for_a_gone_foreign_or_completed_task() {
        let now = at("2026-01-01T12:00:00Z");
        let mut task = created(json!({"title": "t"}));
        let conflict = |result: Result<SnoozePlan, EngineError>| match result {
            Err(EngineError::Conflict(text)) => text,
            other => panic!("expected a conflict, got {other:?}"),
        };
        assert!(conflict(plan_snooze(None, "alice", 10, now)).contains("no longer exists"));
        assert!(conflict(plan_snooze(Some(&task), "bob", 10, now)).contains("no longer exists"));
        assert_eq!(
            conflict(plan_snooze(Some(&task), "alice", i64::MAX, now)),
            "Snooze too long"
        );
        let plan = plan_snooze(Some(&task), "alice", 10, now).expect("snoozed");
        assert_eq!(plan.fire_at, at("2026-01-01T12:10:00Z"));
        assert_eq!(plan.event.envelope.event_type, "reminder.scheduled");
        task.status = TaskStatus::Completed;
        assert!(conflict(plan_snooze(Some(&task), "alice", 10, now)).contains("already completed"));
    }

    #[test]
    fn fire_is_on_time_within_the_window_and_missed_after_it() {
        let task = created(json!({"title": "t", "due_date": "2026-01-05T10:00:00Z",
            "reminder_offset_minutes": 60}));
        let fire_at = at("2026-01-05T09:00:00Z");
        let window = chrono::Duration::minutes(30);
        let due = due_timers(&task, &kinds(&["task"]), fire_at);
        let plan = plan_fire(
            &task,
            due.clone(),
            false,
            fire_at,
            at("2026-01-05T09:00:02Z"),
            window,
        )
        .expect("plan");
        assert_eq!(
            plan.outcome,
            FireOutcome::Fired {
                late_by: chrono::Duration::seconds(2)
            }
        );
        assert!(
            matches!(plan.reminders, Some(ReminderFiring::Fired { ref kinds, .. }) if kinds == &["task"])
        );
        assert!(plan.recurrence.is_none() && !plan.resync);

        let plan = plan_fire(
            &task,
            due,
            false,
            fire_at,
            at("2026-01-05T10:00:00Z"),
            window,
        )
        .expect("plan");
        assert_eq!(plan.outcome, FireOutcome::Missed);
        match plan.reminders {
            Some(ReminderFiring::Missed { notification, .. }) => {
                assert_eq!(notification.kind, "missed_reminder");
                assert_eq!(notification.task_id, Some(task.id.to_string()));
            }
            other => panic!("expected missed, got {other:?}"),
        }
    }

    #[test]
    fn a_stale_timer_fires_nothing_and_asks_for_a_resync() {
        let task = created(json!({"title": "t", "due_date": "2026-01-05T10:00:00Z",
            "reminder_offset_minutes": 60}));
        let other_time = at("2026-01-05T08:00:00Z");
        let due = due_timers(&task, &kinds(&["task"]), other_time);
        let plan = plan_fire(
            &task,
            due,
            false,
            other_time,
            other_time,
            chrono::Duration::hours(1),
        )
        .expect("plan");
        assert_eq!(plan.outcome, FireOutcome::NotArmed);
        assert!(plan.reminders.is_none());
        assert!(plan.resync);
    }

    #[test]
    fn a_recur_timer_spawns_the_next_occurrence_once() {
        let series = on_due_series();
        let due_at = at("2026-01-02T09:00:00Z");
        let due = due_timers(&series, &kinds(&["recur"]), due_at);
        assert!(due.recur);
        let plan = plan_fire(
            &series,
            due.clone(),
            false,
            due_at,
            due_at,
            chrono::Duration::hours(1),
        )
        .expect("plan");
        let next = plan
            .recurrence
            .as_ref()
            .and_then(|change| change.next.as_ref())
            .expect("a next occurrence");
        assert_eq!(plan.outcome, FireOutcome::Recurred { next: next.id });
        assert_eq!(next.due_date, Some(at("2026-01-03T09:00:00Z")));
        assert!(!plan.resync);

        let again = plan_fire(
            &series,
            due,
            true,
            due_at,
            due_at,
            chrono::Duration::hours(1),
        )
        .expect("plan");
        assert!(again.recurrence.is_none(), "never a second next occurrence");
        assert_eq!(again.outcome, FireOutcome::NotArmed);
        assert!(again.resync);
    }
}
