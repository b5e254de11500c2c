//! The state transitions of a task, as pure functions from (current state, request) to a change.
//!
//! Store adapters run these inside one transaction and persist exactly what they return, so the
//! rules live in one place whichever store or door (REST, chat, UI) a change comes through.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::input::{NewTask, TaskPatch};
use super::model::{RecurrenceFrom, Task, TaskStatus};
use crate::error::EngineError;
use crate::event::{OutboxEvent, TaskAction, reminder_scheduled, task_events};

/// A change to an existing task.
#[derive(Debug, Clone, PartialEq)]
pub enum TaskOp {
    Update(TaskPatch),
    Complete,
    Delete,
    /// Makes sure a completed recurring task has its next occurrence: a no-op when it exists
    /// (the normal case), a repair when a completion's follow-up was lost.
    EnsureNextOccurrence,
    /// The due date of an open `on_due` recurring task passed: create its next occurrence now,
    /// leaving the task itself open (a no-op when the next one exists or it no longer applies).
    SpawnOnDue,
    /// Moves the task, and its subtasks with it, into a project (`None`: out of any). The store
    /// checks that the project is the user's before applying it.
    SetProject(Option<Uuid>),
}

impl TaskOp {
    /// Whether the op changes the task's subtasks too, so the store loads them for
    /// [`apply_with_subtasks`].
    pub fn touches_subtasks(&self) -> bool {
        matches!(self, Self::Delete | Self::SetProject(_))
    }
}

/// What a store must persist for one operation, in one transaction.
#[derive(Debug, Clone, PartialEq)]
pub struct Change {
    /// The task after the change (for a delete: as it was when deleted).
    pub task: Task,
    /// Whether `task` must be written back (false when nothing changed).
    pub write: bool,
    pub deleted: bool,
    /// A next occurrence to insert.
    pub next: Option<Task>,
    /// The task's subtasks, written with it (a move) or deleted with it (a delete).
    pub subtasks: Vec<Task>,
    pub events: Vec<OutboxEvent>,
}

impl Change {
    /// The rows a store deletes: the task and its subtasks, when the change is a delete.
    pub fn removed(&self) -> impl Iterator<Item = &Task> {
        let removed = if self.deleted { Some(&self.task) } else { None };
        self.subtasks.iter().filter(|_| self.deleted).chain(removed)
    }

    /// The existing rows a store writes back (the task first, then its subtasks), when the
    /// change wrote anything and is not a delete.
    pub fn written(&self) -> impl Iterator<Item = &Task> {
        let writes = self.write && !self.deleted;
        std::iter::once(&self.task)
            .chain(&self.subtasks)
            .filter(move |_| writes)
    }

    fn unchanged(task: Task) -> Self {
        Self {
            task,
            write: false,
            deleted: false,
            next: None,
            subtasks: Vec::new(),
            events: Vec::new(),
        }
    }
}

fn require_due_date_for_reminder(task: &Task) -> Result<(), EngineError> {
    let offsets = task.reminder_offset_minutes.is_some()
        || task
            .reminders
            .iter()
            .any(|spec| matches!(spec, crate::reminder::ReminderSpec::Offset { .. }));
    if offsets && task.due_date.is_none() {
        Err(EngineError::ReminderRequiresDueDate)
    } else {
        Ok(())
    }
}

/// `reminder.scheduled` for each reminder time the change armed: `remind_at` when it changed,
/// and every extra reminder time that was not armed before.
fn reminder_events(task: &Task, previous: Option<&Task>, now: DateTime<Utc>) -> Vec<OutboxEvent> {
    let mut events = Vec::new();
    if let Some(remind_at) = task.remind_at
        && Some(remind_at) != previous.and_then(|old| old.remind_at)
    {
        events.push(reminder_scheduled(task, remind_at, now));
    }
    let before = previous
        .map(crate::reminder::extra_times)
        .unwrap_or_default();
    for at in crate::reminder::extra_times(task) {
        if !before.contains(&at) && Some(at) != task.remind_at {
            events.push(reminder_scheduled(task, at, now));
        }
    }
    events
}

/// Builds a new task owned by `user_id`, with its events.
pub fn create(
    user_id: &str,
    draft: NewTask,
    now: DateTime<Utc>,
) -> Result<(Task, Vec<OutboxEvent>), EngineError> {
    let mut task = Task {
        id: crate::time::new_id(),
        user_id: user_id.to_owned(),
        title: draft.title,
        description: draft.description,
        status: draft.status,
        priority: draft.priority,
        due_date: draft.due_date,
        created_at: now,
        updated_at: now,
        tags: draft.tags,
        reminder_offset_minutes: draft.reminder_offset_minutes,
        remind_at: None,
        reminders: draft.reminders,
        is_recurring: draft.is_recurring,
        recurrence_rule: draft.recurrence_rule,
        recurrence_from: draft.recurrence_from,
        recurrence_trigger: draft.recurrence_trigger,
        series_anchor: draft.due_date,
        occurrence_index: 0,
        time_zone: draft.time_zone,
        parent_task_id: None,
        project_id: draft.project_id,
        subtask_of: draft.subtask_of,
    };
    require_due_date_for_reminder(&task)?;
    task.remind_at = task.derive_remind_at();
    let mut events = task_events(TaskAction::Created, &task, now);
    events.extend(reminder_events(&task, None, now));
    Ok((task, events))
}

/// What an import keeps of a task beyond the fields `POST /api/tasks` takes: its identity,
/// history and series bookkeeping, so a lossless export comes back as it was.
#[derive(Debug, Clone, PartialEq)]
pub struct Kept {
    pub id: Uuid,
    pub created_at: Option<DateTime<Utc>>,
    pub updated_at: Option<DateTime<Utc>>,
    pub series_anchor: Option<DateTime<Utc>>,
    pub occurrence_index: u32,
    pub time_zone: Option<chrono_tz::Tz>,
    pub parent_task_id: Option<Uuid>,
}

/// Builds an imported task owned by `user_id`, with the events a create has (`task.created`
/// and its reminders), so consumers, reminders and recurrence treat it like any new task.
pub fn import(
    user_id: &str,
    draft: NewTask,
    kept: Kept,
    now: DateTime<Utc>,
) -> Result<(Task, Vec<OutboxEvent>), EngineError> {
    let created_at = kept.created_at.unwrap_or(now);
    let mut task = Task {
        id: kept.id,
        user_id: user_id.to_owned(),
        title: draft.title,
        description: draft.description,
        status: draft.status,
        priority: draft.priority,
        due_date: draft.due_date,
        created_at,
        updated_at: kept.updated_at.unwrap_or(created_at).max(created_at),
        tags: draft.tags,
        reminder_offset_minutes: draft.reminder_offset_minutes,
        remind_at: None,
        reminders: draft.reminders,
        is_recurring: draft.is_recurring,
        recurrence_rule: draft.recurrence_rule,
        recurrence_from: draft.recurrence_from,
        recurrence_trigger: draft.recurrence_trigger,
        series_anchor: kept.series_anchor.or(draft.due_date),
        occurrence_index: kept.occurrence_index,
        time_zone: kept.time_zone.unwrap_or(draft.time_zone),
        parent_task_id: kept.parent_task_id,
        project_id: draft.project_id,
        subtask_of: draft.subtask_of,
    };
    require_due_date_for_reminder(&task)?;
    task.remind_at = task.derive_remind_at();
    let mut events = task_events(TaskAction::Created, &task, now);
    events.extend(reminder_events(&task, None, now));
    Ok((task, events))
}

/// Applies `op` to `current` on behalf of `user_id`. `has_next` says whether a next occurrence
/// already exists for this task (at most one ever does).
pub fn apply(
    op: TaskOp,
    user_id: &str,
    current: Task,
    has_next: bool,
    now: DateTime<Utc>,
) -> Result<Change, EngineError> {
    apply_with_subtasks(op, user_id, current, has_next, Vec::new(), now)
}

/// [`apply`] for an op that may change the task's `subtasks` too
/// ([`TaskOp::touches_subtasks`]): a delete takes them with it, each with its own
/// `task.deleted`; a move takes them into the same project, each with its own `task.updated`.
pub fn apply_with_subtasks(
    op: TaskOp,
    user_id: &str,
    current: Task,
    has_next: bool,
    subtasks: Vec<Task>,
    now: DateTime<Utc>,
) -> Result<Change, EngineError> {
    if current.user_id != user_id {
        return Err(EngineError::Forbidden);
    }
    match op {
        TaskOp::Update(patch) => update(current, patch, has_next, now),
        TaskOp::Complete => Ok(complete(current, has_next, now)),
        TaskOp::EnsureNextOccurrence => Ok(ensure_next(current, has_next, now)),
        TaskOp::SpawnOnDue => Ok(spawn_on_due(current, has_next, now)),
        TaskOp::SetProject(project_id) => set_project(current, project_id, subtasks, now),
        TaskOp::Delete => {
            let mut events = task_events(TaskAction::Deleted, &current, now);
            for subtask in &subtasks {
                events.extend(task_events(TaskAction::Deleted, subtask, now));
            }
            Ok(Change {
                task: current,
                write: false,
                deleted: true,
                next: None,
                subtasks,
                events,
            })
        }
    }
}

/// Moves a top-level task and its subtasks into `project_id` (a subtask follows its parent
/// and cannot move alone).
fn set_project(
    mut task: Task,
    project_id: Option<Uuid>,
    mut subtasks: Vec<Task>,
    now: DateTime<Utc>,
) -> Result<Change, EngineError> {
    if task.subtask_of.is_some() {
        return Err(EngineError::Conflict(
            crate::project::SUBTASK_FOLLOWS_PARENT.to_owned(),
        ));
    }
    if task.project_id == project_id {
        return Ok(Change::unchanged(task));
    }
    task.project_id = project_id;
    task.updated_at = now;
    let mut events = task_events(TaskAction::Updated, &task, now);
    for subtask in &mut subtasks {
        subtask.project_id = project_id;
        subtask.updated_at = now;
        events.extend(task_events(TaskAction::Updated, subtask, now));
    }
    Ok(Change {
        task,
        write: true,
        deleted: false,
        next: None,
        subtasks,
        events,
    })
}

fn update(
    current: Task,
    patch: TaskPatch,
    has_next: bool,
    now: DateTime<Utc>,
) -> Result<Change, EngineError> {
    let mut task = current.clone();
    let reanchor = patch.due_date.is_some()
        || patch.recurrence_rule.is_some()
        || patch.recurrence_from.is_some()
        || patch
            .time_zone
            .is_some_and(|zone| zone != current.time_zone);
    if let Some(zone) = patch.time_zone {
        task.time_zone = zone;
    }
    if let Some(title) = patch.title {
        task.title = title;
    }
    if let Some(description) = patch.description {
        task.description = description;
    }
    if let Some(priority) = patch.priority {
        task.priority = priority;
    }
    if let Some(due_date) = patch.due_date {
        task.due_date = due_date;
    }
    if let Some(tags) = patch.tags {
        task.tags = tags;
    }
    if let Some(offset) = patch.reminder_offset_minutes {
        task.reminder_offset_minutes = offset;
    }
    if let Some(reminders) = patch.reminders {
        task.reminders = reminders;
    }
    if let Some(is_recurring) = patch.is_recurring {
        task.is_recurring = is_recurring;
    }
    if let Some(rule) = patch.recurrence_rule {
        task.recurrence_rule = rule;
    }
    if let Some(from) = patch.recurrence_from {
        task.recurrence_from = from;
    }
    if let Some(trigger) = patch.recurrence_trigger {
        task.recurrence_trigger = trigger;
    }
    if reanchor {
        task.series_anchor = task.due_date;
        task.occurrence_index = 0;
    }
    require_due_date_for_reminder(&task)?;
    task.remind_at = task.derive_remind_at();

    let completing =
        patch.status == Some(TaskStatus::Completed) && current.status != TaskStatus::Completed;
    if completing {
        return Ok(complete(task, has_next, now));
    }
    if let Some(status) = patch.status {
        task.status = status;
    }
    task.updated_at = now;
    let mut events = task_events(TaskAction::Updated, &task, now);
    events.extend(reminder_events(&task, Some(&current), now));
    Ok(Change {
        task,
        write: true,
        deleted: false,
        next: None,
        subtasks: Vec::new(),
        events,
    })
}

/// Completion, whichever door it comes through: once, with at most one next occurrence.
fn complete(mut task: Task, has_next: bool, now: DateTime<Utc>) -> Change {
    if task.status == TaskStatus::Completed {
        return Change::unchanged(task);
    }
    task.status = TaskStatus::Completed;
    task.updated_at = now;
    let mut events = task_events(TaskAction::Completed, &task, now);
    let next = if has_next {
        None
    } else {
        next_occurrence(&task, now)
    };
    if let Some(next) = &next {
        events.extend(task_events(TaskAction::Created, next, now));
        events.extend(reminder_events(next, None, now));
    }
    Change {
        task,
        write: true,
        deleted: false,
        next,
        subtasks: Vec::new(),
        events,
    }
}

fn ensure_next(task: Task, has_next: bool, now: DateTime<Utc>) -> Change {
    if task.status != TaskStatus::Completed || has_next {
        return Change::unchanged(task);
    }
    // The repair of a completion: the same next occurrence the completion would have made.
    with_next_occurrence(task, now, None)
}

/// Adds the task's next occurrence (and its events) without changing the task itself; due
/// after `not_before` when given.
fn with_next_occurrence(
    task: Task,
    now: DateTime<Utc>,
    not_before: Option<DateTime<Utc>>,
) -> Change {
    let Some(next) = next_occurrence_after(&task, now, not_before) else {
        return Change::unchanged(task);
    };
    let mut events = task_events(TaskAction::Created, &next, now);
    events.extend(reminder_events(&next, None, now));
    Change {
        task,
        write: false,
        deleted: false,
        next: Some(next),
        subtasks: Vec::new(),
        events,
    }
}

fn spawn_on_due(task: Task, has_next: bool, now: DateTime<Utc>) -> Change {
    let due_passed = task.due_date.is_some_and(|due| due <= now);
    if task.recurrence_trigger != super::model::RecurrenceTrigger::OnDue
        || task.status == TaskStatus::Completed
        || has_next
        || !due_passed
    {
        return Change::unchanged(task);
    }
    // An `on_due` series spawns on its own, so it catches up: its next occurrence is the first
    // one after `now`, never one already past (which would spawn again at once, and again).
    with_next_occurrence(task, now, Some(now))
}

/// The next occurrence of a recurring task, or `None` when it does not recur or its series ended.
pub fn next_occurrence(task: &Task, now: DateTime<Utc>) -> Option<Task> {
    next_occurrence_after(task, now, None)
}

/// [`next_occurrence`], due after `not_before` when one is given.
fn next_occurrence_after(
    task: &Task,
    now: DateTime<Utc>,
    not_before: Option<DateTime<Utc>>,
) -> Option<Task> {
    if !task.is_recurring {
        return None;
    }
    let rule = task.recurrence_rule.as_ref()?;
    let (due_date, series_anchor, occurrence_index) = match (task.due_date, task.recurrence_from) {
        (None, _) => (None, None, 0),
        (Some(due), RecurrenceFrom::Due) => {
            let anchor = task.series_anchor.unwrap_or(due);
            let (next, index) = rule.next_occurrence_after(
                anchor,
                task.occurrence_index,
                due,
                not_before.unwrap_or(due),
                task.time_zone,
            )?;
            (Some(next), Some(anchor), index)
        }
        (Some(due), RecurrenceFrom::Completion) => {
            // Same wall-clock time of day as the due date, counted from the (local) day of
            // completion.
            let zone = task.time_zone;
            let local_day = now.with_timezone(&zone).date_naive();
            let local_time = due.with_timezone(&zone).time();
            let base = crate::recurrence::from_wall_clock(zone, local_day.and_time(local_time))?;
            let (next, _) = rule.next_occurrence(base, 0, base, zone)?;
            (Some(next), Some(next), 0)
        }
    };
    if due_date.is_some_and(|due| !crate::time::in_supported_range(&due)) {
        return None;
    }
    let mut next = Task {
        id: crate::time::new_id(),
        user_id: task.user_id.clone(),
        title: task.title.clone(),
        description: task.description.clone(),
        status: TaskStatus::Pending,
        priority: task.priority,
        due_date,
        created_at: now,
        updated_at: now,
        tags: task.tags.clone(),
        reminder_offset_minutes: task.reminder_offset_minutes.filter(|_| due_date.is_some()),
        remind_at: None,
        // Offsets follow the series; fixed instants were for this occurrence only.
        reminders: task
            .reminders
            .iter()
            .copied()
            .filter(|spec| {
                due_date.is_some() && matches!(spec, crate::reminder::ReminderSpec::Offset { .. })
            })
            .collect(),
        is_recurring: true,
        recurrence_rule: task.recurrence_rule.clone(),
        recurrence_from: task.recurrence_from,
        recurrence_trigger: task.recurrence_trigger,
        series_anchor,
        occurrence_index,
        time_zone: task.time_zone,
        parent_task_id: Some(task.id),
        // The next occurrence stays where its series is: in the project, under the parent.
        project_id: task.project_id,
        subtask_of: task.subtask_of,
    };
    next.remind_at = next.derive_remind_at();
    Some(next)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::task::input::parse_new_task;
    use crate::time::{format_utc, parse_datetime};
    use serde_json::json;

    fn at(text: &str) -> DateTime<Utc> {
        parse_datetime(text).expect("date")
    }

    fn created(body: serde_json::Value) -> Task {
        let draft = parse_new_task(&body).expect("valid body");
        create("alice", draft, at("2026-01-01T00:00:00Z"))
            .expect("created")
            .0
    }

    fn event_types(change: &Change) -> Vec<&str> {
        change
            .events
            .iter()
            .map(|e| e.envelope.event_type.as_str())
            .collect()
    }

    #[test]
    fn create_derives_remind_at_and_announces_the_reminder() {
        let draft = parse_new_task(&json!({"title": "t", "due_date": "2026-02-01T10:00:00Z", "reminder_offset_minutes": 30})).expect("valid");
        let (task, events) = create("alice", draft, at("2026-01-01T00:00:00Z")).expect("created");
        assert_eq!(
            task.remind_at.map(format_utc).as_deref(),
            Some("2026-02-01T09:30:00Z")
        );
        let types: Vec<&str> = events
            .iter()
            .map(|e| e.envelope.event_type.as_str())
            .collect();
        assert_eq!(types, ["task.created", "task.sync", "reminder.scheduled"]);
    }

    #[test]
    fn reminder_without_due_date_is_refused() {
        let draft =
            parse_new_task(&json!({"title": "t", "reminder_offset_minutes": 30})).expect("valid");
        assert!(matches!(
            create("alice", draft, at("2026-01-01T00:00:00Z")),
            Err(EngineError::ReminderRequiresDueDate)
        ));
    }

    #[test]
    fn another_users_task_is_forbidden() {
        let task = created(json!({"title": "t"}));
        assert!(matches!(
            apply(
                TaskOp::Complete,
                "mallory",
                task,
                false,
                at("2026-01-02T00:00:00Z")
            ),
            Err(EngineError::Forbidden)
        ));
    }

    #[test]
    fn completing_a_recurring_task_creates_the_next_once() {
        let task = created(
            json!({"title": "rent", "due_date": "2026-01-31T09:00:00Z", "is_recurring": true, "recurrence_rule": "monthly", "reminder_offset_minutes": 60}),
        );
        let change = apply(
            TaskOp::Complete,
            "alice",
            task.clone(),
            false,
            at("2026-01-31T10:00:00Z"),
        )
        .expect("completed");
        let next = change.next.clone().expect("next occurrence");
        assert_eq!(
            next.due_date.map(format_utc).as_deref(),
            Some("2026-02-28T09:00:00Z")
        );
        assert_eq!(
            next.remind_at.map(format_utc).as_deref(),
            Some("2026-02-28T08:00:00Z")
        );
        assert_eq!(next.parent_task_id, Some(task.id));
        assert_eq!(
            event_types(&change),
            [
                "task.completed",
                "task.sync",
                "task.created",
                "task.sync",
                "reminder.scheduled"
            ]
        );

        let again = apply(
            TaskOp::Complete,
            "alice",
            change.task.clone(),
            true,
            at("2026-02-01T00:00:00Z"),
        )
        .expect("idempotent");
        assert!(!again.write && again.next.is_none() && again.events.is_empty());

        let third = apply(
            TaskOp::Complete,
            "alice",
            next,
            false,
            at("2026-02-28T10:00:00Z"),
        )
        .expect("completed");
        assert_eq!(
            third
                .next
                .and_then(|t| t.due_date)
                .map(format_utc)
                .as_deref(),
            Some("2026-03-31T09:00:00Z")
        );
    }

    #[test]
    fn put_with_completed_status_is_a_completion() {
        let task = created(
            json!({"title": "water plants", "due_date": "2026-01-05T08:00:00Z", "is_recurring": true, "recurrence_rule": "INTERVAL:3"}),
        );
        let patch = crate::task::input::parse_task_patch(
            &json!({"status": "completed", "priority": "high"}),
        )
        .expect("valid");
        let change = apply(
            TaskOp::Update(patch),
            "alice",
            task,
            false,
            at("2026-01-05T09:00:00Z"),
        )
        .expect("updated");
        assert_eq!(change.task.status, TaskStatus::Completed);
        assert_eq!(change.task.priority, crate::task::Priority::High);
        assert_eq!(
            change
                .next
                .and_then(|t| t.due_date)
                .map(format_utc)
                .as_deref(),
            Some("2026-01-08T08:00:00Z")
        );
        assert_eq!(change.events[0].envelope.event_type, "task.completed");
    }

    #[test]
    fn recurrence_from_completion_counts_from_the_completion_day() {
        let task = created(
            json!({"title": "stretch", "due_date": "2026-01-05T07:00:00Z", "is_recurring": true, "recurrence_rule": "DAILY", "recurrence_from": "completion"}),
        );
        let change = apply(
            TaskOp::Complete,
            "alice",
            task,
            false,
            at("2026-01-09T15:00:00Z"),
        )
        .expect("completed");
        assert_eq!(
            change
                .next
                .and_then(|t| t.due_date)
                .map(format_utc)
                .as_deref(),
            Some("2026-01-10T07:00:00Z")
        );
    }

    #[test]
    fn a_series_ends_at_the_last_representable_year() {
        let task = created(
            json!({"title": "far", "due_date": "9999-12-31T00:00:00Z", "is_recurring": true, "recurrence_rule": "YEARLY"}),
        );
        let change = apply(
            TaskOp::Complete,
            "alice",
            task,
            false,
            at("2026-01-01T00:00:00Z"),
        )
        .expect("completed");
        assert!(change.next.is_none());
        let task = created(
            json!({"title": "far", "due_date": "9999-06-01T00:00:00Z", "is_recurring": true, "recurrence_rule": "INTERVAL:36500"}),
        );
        assert!(
            apply(
                TaskOp::Complete,
                "alice",
                task,
                false,
                at("2026-01-01T00:00:00Z")
            )
            .expect("completed")
            .next
            .is_none()
        );
    }

    #[test]
    fn update_merges_and_rechecks_the_reminder() {
        let task = created(
            json!({"title": "t", "due_date": "2026-02-01T10:00:00Z", "reminder_offset_minutes": 10}),
        );
        let patch =
            crate::task::input::parse_task_patch(&json!({"due_date": null})).expect("valid");
        assert!(matches!(
            apply(
                TaskOp::Update(patch),
                "alice",
                task,
                false,
                at("2026-01-02T00:00:00Z")
            ),
            Err(EngineError::ReminderRequiresDueDate)
        ));
    }

    #[test]
    fn delete_carries_the_full_task_and_its_id() {
        let task = created(json!({"title": "t"}));
        let change = apply(
            TaskOp::Delete,
            "alice",
            task.clone(),
            false,
            at("2026-01-02T00:00:00Z"),
        )
        .expect("deleted");
        assert!(change.deleted);
        let payload = &change.events[0].envelope.payload;
        assert_eq!(payload["task_id"], json!(task.id));
        assert_eq!(payload["title"], json!("t"));
    }
}
