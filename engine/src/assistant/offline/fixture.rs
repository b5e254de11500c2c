//! Shared fixtures for the offline assistant's tests: a fixed "now", a dozen tasks with known
//! ids (two with similar titles, a recurring series with a completed namesake) and the
//! previous turns "undo" and "it" look at.

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use serde_json::{Value, json};
use uuid::Uuid;

use super::Context;
use crate::assistant::ToolInvocation;
use crate::assistant::tools::task_summary;
use crate::recurrence::Recurrence;
use crate::task::{Priority, RecurrenceFrom, Task, TaskStatus};
use crate::time::parse_datetime;

/// Friday 27 November 2026, 10:00 UTC (11:00 in Berlin).
pub const NOW: &str = "2026-11-27T10:00:00Z";

pub fn at(text: &str) -> DateTime<Utc> {
    parse_datetime(text).expect("test instant")
}

pub fn id(n: u128) -> Uuid {
    Uuid::from_u128(n)
}

struct Spec {
    n: u128,
    title: &'static str,
    status: TaskStatus,
    priority: Priority,
    due: Option<&'static str>,
    tags: &'static [&'static str],
    rule: Option<&'static str>,
    reminder: Option<i64>,
}

const fn spec(n: u128, title: &'static str) -> Spec {
    Spec {
        n,
        title,
        status: TaskStatus::Pending,
        priority: Priority::Medium,
        due: None,
        tags: &[],
        rule: None,
        reminder: None,
    }
}

fn task(spec: Spec) -> Task {
    let created = at("2026-11-01T08:00:00Z") + chrono::Duration::minutes(spec.n as i64);
    let due = spec.due.map(at);
    let mut task = Task {
        id: id(spec.n),
        user_id: "alice".to_owned(),
        title: spec.title.to_owned(),
        description: None,
        status: spec.status,
        priority: spec.priority,
        due_date: due,
        created_at: created,
        updated_at: created,
        tags: spec.tags.iter().map(|tag| (*tag).to_owned()).collect(),
        reminder_offset_minutes: spec.reminder,
        remind_at: None,
        reminders: Vec::new(),
        is_recurring: spec.rule.is_some(),
        recurrence_rule: spec
            .rule
            .map(|rule| rule.parse::<Recurrence>().expect("rule")),
        recurrence_from: RecurrenceFrom::Due,
        recurrence_trigger: crate::task::RecurrenceTrigger::OnComplete,
        series_anchor: due,
        occurrence_index: 0,
        time_zone: Tz::UTC,
        parent_task_id: None,
        project_id: None,
        subtask_of: None,
    };
    task.remind_at = task.derive_remind_at();
    task
}

/// The user's tasks. T1/T2 ("Buy milk", "Buy milk and eggs") and T5/T15 ("Call mom", "Call
/// the bank") are the similar pairs; T4 is a pending "Pay rent" whose completed namesake is
/// T16; T13 ("Clean the garage", completed) sits next to T14 ("Clean the kitchen", pending);
/// T17 is the task the previous turn added; T18 ("Talk to Bob") has "to" in its title.
pub fn fixture_tasks() -> Vec<Task> {
    use Priority::{High, Low};
    use TaskStatus::{Completed, InProgress};
    vec![
        task(Spec {
            due: Some("2026-11-28T16:00:00Z"),
            tags: &["shopping"],
            ..spec(1, "Buy milk")
        }),
        task(Spec {
            priority: Low,
            ..spec(2, "Buy milk and eggs")
        }),
        task(Spec {
            priority: High,
            due: Some("2026-12-01T09:00:00Z"),
            tags: &["work"],
            ..spec(3, "Write the quarterly report")
        }),
        task(Spec {
            due: Some("2026-12-01T08:00:00Z"),
            rule: Some("MONTHLY"),
            reminder: Some(60),
            ..spec(4, "Pay rent")
        }),
        task(spec(5, "Call mom")),
        task(Spec {
            status: InProgress,
            due: Some("2026-12-03T14:00:00Z"),
            ..spec(6, "Book dentist appointment")
        }),
        task(Spec {
            status: Completed,
            ..spec(7, "Renew passport")
        }),
        task(Spec {
            due: Some("2026-11-27T17:00:00Z"),
            rule: Some("DAILY"),
            ..spec(8, "Water the plants")
        }),
        task(Spec {
            tags: &["work"],
            ..spec(9, "Email Bob about the budget")
        }),
        task(Spec {
            priority: High,
            tags: &["work"],
            ..spec(10, "Fix the server")
        }),
        task(Spec {
            priority: Low,
            ..spec(11, "Plan team offsite")
        }),
        task(spec(12, "Read chapter 5")),
        task(Spec {
            status: Completed,
            ..spec(13, "Clean the garage")
        }),
        task(spec(14, "Clean the kitchen")),
        task(Spec {
            due: Some("2026-11-26T10:00:00Z"),
            ..spec(15, "Call the bank")
        }),
        task(Spec {
            status: Completed,
            due: Some("2026-11-01T08:00:00Z"),
            rule: Some("MONTHLY"),
            reminder: Some(60),
            ..spec(16, "Pay rent")
        }),
        task(spec(17, "Buy bread")),
        task(spec(18, "Talk to Bob")),
    ]
}

/// What the last list showed: T1, T3, T5, T10.
pub fn fixture_last_list() -> Vec<Uuid> {
    vec![id(1), id(3), id(5), id(10)]
}

/// What the previous turn did, for "undo" and "it".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Before {
    Fresh,
    Added,
    Completed,
    Deleted,
    Updated,
    Listed,
    Failed,
}

fn ok(name: &str, result: Value) -> ToolInvocation {
    ToolInvocation {
        tool_name: name.to_owned(),
        success: true,
        result: Some(result),
        error: None,
    }
}

pub fn actions(before: Before, tasks: &[Task]) -> Vec<ToolInvocation> {
    let summary = |n: u128| {
        tasks
            .iter()
            .find(|task| task.id == id(n))
            .map(task_summary)
            .expect("fixture task")
    };
    match before {
        Before::Fresh => Vec::new(),
        Before::Added => vec![ok("add_task", summary(17))],
        Before::Completed => {
            let mut done = summary(16);
            done["next_task"] = summary(4);
            vec![ok("complete_task", done)]
        }
        Before::Deleted => {
            let gone = json!({
                "id": id(99).to_string(),
                "title": "Renew car insurance",
                "description": "Compare two quotes first",
                "status": "pending",
                "priority": "high",
                "due_date": "2026-12-10T09:00:00Z",
                "created_at": "2026-11-01T08:00:00Z",
                "updated_at": "2026-11-01T08:00:00Z",
                "tags": ["car"],
                "reminder_offset_minutes": 1440,
                "remind_at": "2026-12-09T09:00:00Z",
                "is_recurring": true,
                "recurrence_rule": "YEARLY",
                "parent_task_id": null
            });
            vec![ok(
                "delete_task",
                json!({
                    "deleted_id": id(99).to_string(),
                    "deleted_title": "Renew car insurance",
                    "message": "Task 'Renew car insurance' deleted successfully",
                    "task": gone,
                }),
            )]
        }
        Before::Updated => {
            let mut changed = summary(1);
            changed["previous"] = json!({
                "title": "Buy milk",
                "due_date": "2026-11-28T16:00:00Z",
                "recurrence_rule": null,
                "is_recurring": false
            });
            vec![ok("update_task", changed)]
        }
        Before::Listed => vec![ok("list_tasks", Value::Array(vec![summary(1), summary(3)]))],
        Before::Failed => vec![ToolInvocation {
            tool_name: "add_task".to_owned(),
            success: false,
            result: None,
            error: Some("Title is required".to_owned()),
        }],
    }
}

/// Builds a context over borrowed fixture parts.
pub fn context<'a>(
    zone: Tz,
    tasks: &'a [Task],
    last_list: &'a [Uuid],
    last_actions: &'a [ToolInvocation],
) -> Context<'a> {
    Context {
        now: at(NOW),
        zone,
        tasks,
        last_list,
        last_actions,
        choice: None,
    }
}
