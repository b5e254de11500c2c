//! Reminder timers: which instant a task's reminder is armed for, and what firing one means.
//!
//! A task has a pending reminder exactly while it is open and has a `remind_at`. The store keeps
//! one row per (task, fire time) and marks it fired or missed in the same transaction that
//! appends `reminder.triggered`, so a reminder fires once, across crashes and restarts.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::activity::Notification;
use crate::task::{Task, TaskStatus};
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
