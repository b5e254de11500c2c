//! Events: the envelope every consumer reads, the topics, and the events each change produces.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::task::Task;
use crate::time::format_utc;

/// The producer name consumers of the reference system expect in `source`.
pub const EVENT_SOURCE: &str = "chat-api";
pub const SPEC_VERSION: &str = "1.0";

/// The three streams of the system.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Topic {
    TaskEvents,
    Reminders,
    TaskUpdates,
}

impl Topic {
    pub const ALL: [Topic; 3] = [Self::TaskEvents, Self::Reminders, Self::TaskUpdates];

    pub fn name(self) -> &'static str {
        match self {
            Self::TaskEvents => "task-events",
            Self::Reminders => "reminders",
            Self::TaskUpdates => "task-updates",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|topic| topic.name() == name)
    }
}

/// The envelope, exactly as the reference published it (contract §3).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventEnvelope {
    pub event_id: Uuid,
    pub event_type: String,
    pub timestamp: String,
    pub user_id: String,
    pub payload: Value,
    pub source: String,
    pub specversion: String,
}

/// An event bound for a topic, keyed by task id so one task's events stay in order.
#[derive(Debug, Clone, PartialEq)]
pub struct OutboxEvent {
    pub topic: Topic,
    pub key: String,
    pub envelope: EventEnvelope,
}

impl OutboxEvent {
    fn new(topic: Topic, event_type: &str, task: &Task, payload: Value, at: DateTime<Utc>) -> Self {
        Self {
            topic,
            key: task.id.to_string(),
            envelope: EventEnvelope {
                event_id: crate::time::new_id(),
                event_type: event_type.to_owned(),
                timestamp: format_utc(at),
                user_id: task.user_id.clone(),
                payload,
                source: EVENT_SOURCE.to_owned(),
                specversion: SPEC_VERSION.to_owned(),
            },
        }
    }
}

/// The kind of change, as named in `task.*` and `task.sync` events.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TaskAction {
    Created,
    Updated,
    Completed,
    Deleted,
}

impl TaskAction {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Created => "created",
            Self::Updated => "updated",
            Self::Completed => "completed",
            Self::Deleted => "deleted",
        }
    }
}

fn task_payload(task: &Task) -> Value {
    serde_json::to_value(task.view()).unwrap_or(Value::Null)
}

/// The `task.*` event and its `task.sync` companion for one change.
pub fn task_events(action: TaskAction, task: &Task, at: DateTime<Utc>) -> Vec<OutboxEvent> {
    let mut payload = task_payload(task);
    if action == TaskAction::Deleted
        && let Value::Object(fields) = &mut payload
    {
        fields.insert("task_id".to_owned(), json!(task.id));
    }
    let event_type = format!("task.{}", action.as_str());
    vec![
        OutboxEvent::new(Topic::TaskEvents, &event_type, task, payload, at),
        OutboxEvent::new(
            Topic::TaskUpdates,
            "task.sync",
            task,
            json!({ "task_id": task.id, "action": action.as_str() }),
            at,
        ),
    ]
}

/// The reminder payload shared by `reminder.scheduled` and `reminder.triggered`.
pub fn reminder_payload(task: &Task, remind_at: DateTime<Utc>) -> Value {
    json!({
        "task_id": task.id,
        "task_title": task.title,
        "user_id": task.user_id,
        "due_at": task.due_date.map(format_utc),
        "remind_at": format_utc(remind_at),
    })
}

/// `reminder.scheduled` for a task whose reminder was (re)armed.
pub fn reminder_scheduled(task: &Task, remind_at: DateTime<Utc>, at: DateTime<Utc>) -> OutboxEvent {
    OutboxEvent::new(
        Topic::Reminders,
        "reminder.scheduled",
        task,
        reminder_payload(task, remind_at),
        at,
    )
}

/// `reminder.triggered` for a reminder that fired now; `late_by` (when at least a second) is
/// reported as `late_by_seconds`, e.g. after the process was down at the fire time.
pub fn reminder_triggered(
    task: &Task,
    remind_at: DateTime<Utc>,
    late_by: chrono::Duration,
    at: DateTime<Utc>,
) -> OutboxEvent {
    let mut payload = reminder_payload(task, remind_at);
    if late_by >= chrono::Duration::seconds(1)
        && let Value::Object(fields) = &mut payload
    {
        fields.insert("late_by_seconds".to_owned(), json!(late_by.num_seconds()));
    }
    OutboxEvent::new(Topic::Reminders, "reminder.triggered", task, payload, at)
}
