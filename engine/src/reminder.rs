//! Reminder timers: which instant a task's reminder is armed for, and what firing one means.
//!
//! A task has a pending reminder exactly while it is open and has a `remind_at`. The store keeps
//! one row per (task, fire time) and marks it fired or missed in the same transaction that
//! appends `reminder.triggered`, so a reminder fires once, across crashes and restarts.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::activity::Notification;
use crate::task::{Change, Task, TaskStatus};
use crate::time::format_utc;

/// The armed state of one task's reminder after a change: `None` means nothing is armed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReminderChange {
    pub task_id: Uuid,
    pub fire_at: Option<DateTime<Utc>>,
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

/// The reminder changes a task change implies (for the scheduler's in-memory queue).
pub fn changes_of(change: &Change) -> Vec<ReminderChange> {
    let mut out = vec![ReminderChange {
        task_id: change.task.id,
        fire_at: if change.deleted {
            None
        } else {
            armed_at(&change.task)
        },
    }];
    out.extend(change.next.iter().map(|next| ReminderChange {
        task_id: next.id,
        fire_at: armed_at(next),
    }));
    out
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
