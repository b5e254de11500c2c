//! Events: the envelope every consumer reads, the topics, and the events each change produces.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::task::Task;
use crate::time::format_utc;

/// The producer name consumers of the reference system expect in `source`.
/// Event types that reach the browser on the live stream, in both shapes
/// (`reminder.scheduled` is bookkeeping, not news).
pub const LIVE_TYPES: [&str; 2] = ["task.sync", "reminder.triggered"];

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

/// An on-time `reminder.triggered` serialised ahead of its fire moment (a burst of reminders
/// due together): only the event id and the timestamp are left to fill in when it fires, so
/// the fire transaction does no JSON work. Renders exactly what serialising the envelope of
/// [`reminder_triggered`] gives for a lateness under a second.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TriggeredDraft {
    /// The outbox key: the task id.
    pub key: String,
    user_id: String,
    payload: String,
}

impl TriggeredDraft {
    pub fn new(task: &Task, remind_at: DateTime<Utc>) -> Self {
        let text = |value: &Value| serde_json::to_string(value).unwrap_or_default();
        Self {
            key: task.id.to_string(),
            user_id: text(&json!(task.user_id)),
            payload: text(&reminder_payload(task, remind_at)),
        }
    }

    /// The envelope JSON of the reminder fired at `at` as event `event_id`.
    pub fn render(&self, event_id: Uuid, at: DateTime<Utc>) -> String {
        let source = json!(EVENT_SOURCE);
        let version = json!(SPEC_VERSION);
        format!(
            r#"{{"event_id":"{event_id}","event_type":"reminder.triggered","timestamp":"{}","user_id":{},"payload":{},"source":{source},"specversion":{version}}}"#,
            format_utc(at),
            self.user_id,
            self.payload,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::task::{NewTask, ops};

    #[test]
    fn a_triggered_draft_renders_what_the_envelope_serialises_to() {
        let mut draft = NewTask::titled("say \"hi\" \\ ünïcode");
        draft.due_date = crate::time::parse_datetime("2031-01-01T10:00:00Z");
        draft.reminder_offset_minutes = Some(5);
        let (task, _) = ops::create("user \"q\"", draft, crate::time::now()).expect("valid");
        let remind_at = task.remind_at.expect("armed");
        let at = remind_at + chrono::Duration::microseconds(123_456);
        let event = reminder_triggered(&task, remind_at, at - remind_at, at);
        let expected = serde_json::to_string(&event.envelope).expect("serialise");
        let rendered = TriggeredDraft::new(&task, remind_at).render(event.envelope.event_id, at);
        assert_eq!(rendered, expected);
    }
}
