//! The task as stored and as shown to clients.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::recurrence::Recurrence;
use crate::time::format_utc;

/// Where a task stands; any transition is allowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum TaskStatus {
    Pending,
    InProgress,
    Completed,
}

impl TaskStatus {
    pub const ALL: [TaskStatus; 3] = [Self::Pending, Self::InProgress, Self::Completed];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::InProgress => "in_progress",
            Self::Completed => "completed",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|status| status.as_str() == text)
    }
}

/// Importance; ordered `low < medium < high` for sorting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Priority {
    Low,
    Medium,
    High,
}

impl Priority {
    pub const ALL: [Priority; 3] = [Self::Low, Self::Medium, Self::High];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Low => "low",
            Self::Medium => "medium",
            Self::High => "high",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|priority| priority.as_str() == text)
    }

    /// The sort rank stored alongside the task.
    pub fn rank(self) -> i64 {
        match self {
            Self::Low => 0,
            Self::Medium => 1,
            Self::High => 2,
        }
    }

    pub fn from_rank(rank: i64) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|priority| priority.rank() == rank)
    }
}

/// Whether the next occurrence counts from the previous due date or from the completion time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RecurrenceFrom {
    #[default]
    Due,
    Completion,
}

impl RecurrenceFrom {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Due => "due",
            Self::Completion => "completion",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "due" => Some(Self::Due),
            "completion" => Some(Self::Completion),
            _ => None,
        }
    }
}

/// What creates a recurring task's next occurrence.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RecurrenceTrigger {
    /// Completing it (the reference's behaviour).
    #[default]
    OnComplete,
    /// Its due date passing, even while it is still open (a durable timer fires at the due
    /// date).
    OnDue,
}

impl RecurrenceTrigger {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::OnComplete => "on_complete",
            Self::OnDue => "on_due",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "on_complete" => Some(Self::OnComplete),
            "on_due" => Some(Self::OnDue),
            _ => None,
        }
    }
}

/// A task with everything the store keeps, including the series bookkeeping that makes month-end
/// recurrence drift-free (`series_anchor`, `occurrence_index`).
#[derive(Debug, Clone, PartialEq)]
pub struct Task {
    pub id: Uuid,
    pub user_id: String,
    pub title: String,
    pub description: Option<String>,
    pub status: TaskStatus,
    pub priority: Priority,
    pub due_date: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub tags: Vec<String>,
    pub reminder_offset_minutes: Option<i64>,
    pub remind_at: Option<DateTime<Utc>>,
    /// Extra reminders besides `reminder_offset_minutes` (not part of `TaskResponse`; see
    /// `GET /api/tasks/{id}/reminders`).
    pub reminders: Vec<crate::reminder::ReminderSpec>,
    pub is_recurring: bool,
    pub recurrence_rule: Option<Recurrence>,
    pub recurrence_from: RecurrenceFrom,
    /// What creates the next occurrence: completing the task, or its due date passing.
    pub recurrence_trigger: RecurrenceTrigger,
    /// The first due date of the series this task belongs to.
    pub series_anchor: Option<DateTime<Utc>>,
    /// This task's position in its series (0 for the first).
    pub occurrence_index: u32,
    /// The owner's time zone when the task was written (`X-Timezone`); recurrence keeps the
    /// wall-clock time of day in it across DST changes.
    pub time_zone: chrono_tz::Tz,
    pub parent_task_id: Option<Uuid>,
    /// The project (list) the task is in, if any; a subtask is always in its parent's. Not part
    /// of `TaskResponse` (contract §1): clients read it from `GET /api/tasks/{id}/links`.
    pub project_id: Option<Uuid>,
    /// The task this one is a subtask of (one level deep: a subtask has no subtasks). Not the
    /// recurrence link, which is `parent_task_id`.
    pub subtask_of: Option<Uuid>,
}

impl Task {
    /// `due_date − offset` when both are set; the only way `remind_at` is ever derived.
    pub fn derive_remind_at(&self) -> Option<DateTime<Utc>> {
        match (self.due_date, self.reminder_offset_minutes) {
            (Some(due), Some(offset)) if offset > 0 => chrono::Duration::try_minutes(offset)
                .and_then(|offset| due.checked_sub_signed(offset)),
            _ => None,
        }
    }

    pub fn view(&self) -> TaskView {
        TaskView::from(self)
    }
}

/// The task as clients see it: the reference's `TaskResponse` keys in their order, plus `user_id`.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct TaskView {
    #[schema(value_type = String, format = Uuid)]
    pub id: Uuid,
    pub title: String,
    pub description: Option<String>,
    pub status: TaskStatus,
    pub priority: Priority,
    /// RFC 3339 UTC (`Z`).
    #[schema(value_type = Option<String>, format = DateTime)]
    pub due_date: Option<String>,
    #[schema(value_type = String, format = DateTime)]
    pub created_at: String,
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: String,
    pub tags: Vec<String>,
    pub reminder_offset_minutes: Option<i64>,
    #[schema(value_type = Option<String>, format = DateTime)]
    pub remind_at: Option<String>,
    pub is_recurring: bool,
    pub recurrence_rule: Option<String>,
    #[schema(value_type = Option<String>, format = Uuid)]
    pub parent_task_id: Option<Uuid>,
    pub user_id: String,
}

impl From<&Task> for TaskView {
    fn from(task: &Task) -> Self {
        Self {
            id: task.id,
            title: task.title.clone(),
            description: task.description.clone(),
            status: task.status,
            priority: task.priority,
            due_date: task.due_date.map(format_utc),
            created_at: format_utc(task.created_at),
            updated_at: format_utc(task.updated_at),
            tags: task.tags.clone(),
            reminder_offset_minutes: task.reminder_offset_minutes,
            remind_at: task.remind_at.map(format_utc),
            is_recurring: task.is_recurring,
            recurrence_rule: task.recurrence_rule.as_ref().map(Recurrence::to_string),
            parent_task_id: task.parent_task_id,
            user_id: task.user_id.clone(),
        }
    }
}
