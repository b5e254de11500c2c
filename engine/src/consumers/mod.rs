//! The consumers: each a plain function of an event to the effects it should have, so the same
//! code runs behind the embedded log (durable offsets) and behind Dapr deliveries.
//!
//! Idempotency has two layers: a per-consumer "processed" key in the [`crate::ports::StateStore`]
//! (the contract's `{consumer}-processed:{event_id}`, TTL one day), and unique constraints on what
//! the effects write (audit and notification rows per event id, one next occurrence per task), so
//! a redelivery after a crash between effect and mark still changes nothing.

pub mod apply;
pub mod runner;

use chrono::{DateTime, Utc};
use serde_json::Value;
use uuid::Uuid;

use crate::activity::{AuditEntry, Notification};
use crate::event::{EventEnvelope, Topic};

/// What handling one event should do.
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    Audit(AuditEntry),
    EnsureNextOccurrence { task_id: Uuid, user_id: String },
    Notify(Notification),
}

/// A consumer: its group, what it reads, and its handler.
#[derive(Debug, Clone, Copy)]
pub struct ConsumerSpec {
    /// Consumer group (and Dapr app role) name.
    pub group: &'static str,
    pub topics: &'static [Topic],
    /// Prefix of the state keys marking processed events.
    pub state_prefix: &'static str,
    pub handle: fn(&EventEnvelope, DateTime<Utc>) -> Vec<Effect>,
}

impl ConsumerSpec {
    pub fn state_key(&self, event_id: Uuid) -> String {
        format!("{}:{event_id}", self.state_prefix)
    }
}

pub const AUDIT: ConsumerSpec = ConsumerSpec {
    group: "audit",
    topics: &[Topic::TaskEvents, Topic::Reminders],
    state_prefix: "audit-processed",
    handle: audit,
};

pub const RECURRING: ConsumerSpec = ConsumerSpec {
    group: "recurring",
    topics: &[Topic::TaskEvents],
    state_prefix: "recurring-processed",
    handle: recurring,
};

pub const NOTIFICATION: ConsumerSpec = ConsumerSpec {
    group: "notification",
    topics: &[Topic::Reminders],
    state_prefix: "notification-processed",
    handle: notification,
};

pub const ALL: [ConsumerSpec; 3] = [AUDIT, RECURRING, NOTIFICATION];

/// One audit row per event.
pub fn audit(event: &EventEnvelope, now: DateTime<Utc>) -> Vec<Effect> {
    vec![Effect::Audit(AuditEntry::from_event(event, now))]
}

/// On `task.completed` of a recurring task: make sure its next occurrence exists.
pub fn recurring(event: &EventEnvelope, _now: DateTime<Utc>) -> Vec<Effect> {
    if event.event_type != "task.completed" {
        return Vec::new();
    }
    let payload = &event.payload;
    let recurring = payload.get("is_recurring").and_then(Value::as_bool) == Some(true)
        && payload
            .get("recurrence_rule")
            .is_some_and(|rule| !rule.is_null());
    let task_id = payload
        .get("id")
        .and_then(Value::as_str)
        .and_then(|id| Uuid::parse_str(id).ok());
    match task_id {
        Some(task_id) if recurring => vec![Effect::EnsureNextOccurrence {
            task_id,
            user_id: event.user_id.clone(),
        }],
        _ => Vec::new(),
    }
}

/// On `reminder.triggered`: a notification for the task's owner.
pub fn notification(event: &EventEnvelope, now: DateTime<Utc>) -> Vec<Effect> {
    if event.event_type != "reminder.triggered" {
        return Vec::new();
    }
    let payload = &event.payload;
    let text = |key: &str| payload.get(key).and_then(Value::as_str).map(str::to_owned);
    let title = text("task_title").unwrap_or_else(|| "A task".to_owned());
    let message = match text("due_at") {
        Some(due) => format!("Reminder: '{title}' is due at {due}"),
        None => format!("Reminder: '{title}'"),
    };
    vec![Effect::Notify(Notification {
        // Derived from the event, so a redelivered event names the same notification.
        id: Uuid::new_v5(&Uuid::NAMESPACE_OID, event.event_id.as_bytes()),
        user_id: event.user_id.clone(),
        event_id: event.event_id,
        kind: "reminder".to_owned(),
        task_id: text("task_id"),
        title,
        message,
        created_at: now,
        read_at: None,
        payload: payload.clone(),
    })]
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn envelope(event_type: &str, payload: Value) -> EventEnvelope {
        EventEnvelope {
            event_id: Uuid::new_v4(),
            event_type: event_type.to_owned(),
            timestamp: "2026-01-01T00:00:00Z".to_owned(),
            user_id: "alice".to_owned(),
            payload,
            source: "chat-api".to_owned(),
            specversion: "1.0".to_owned(),
        }
    }

    #[test]
    fn audit_keeps_the_task_id_from_either_payload_shape() {
        let now = Utc::now();
        let id = Uuid::new_v4().to_string();
        for payload in [json!({"id": id}), json!({"task_id": id})] {
            let effects = audit(&envelope("task.deleted", payload), now);
            let [Effect::Audit(entry)] = effects.as_slice() else {
                panic!("one audit row")
            };
            assert_eq!(entry.task_id.as_deref(), Some(id.as_str()));
        }
    }

    #[test]
    fn recurring_reacts_only_to_completed_recurring_tasks() {
        let now = Utc::now();
        let id = Uuid::new_v4();
        let done = json!({"id": id, "is_recurring": true, "recurrence_rule": "DAILY"});
        assert_eq!(
            recurring(&envelope("task.completed", done.clone()), now),
            [Effect::EnsureNextOccurrence {
                task_id: id,
                user_id: "alice".into()
            }]
        );
        assert!(recurring(&envelope("task.updated", done), now).is_empty());
        let once = json!({"id": id, "is_recurring": false, "recurrence_rule": null});
        assert!(recurring(&envelope("task.completed", once), now).is_empty());
    }

    #[test]
    fn notification_is_made_for_triggered_reminders_only() {
        let now = Utc::now();
        let payload = json!({"task_id": "t1", "task_title": "Pay rent", "user_id": "alice", "due_at": "2026-02-01T09:00:00Z", "remind_at": "2026-02-01T08:00:00Z"});
        let event = envelope("reminder.triggered", payload.clone());
        let effects = notification(&event, now);
        let [Effect::Notify(n)] = effects.as_slice() else {
            panic!("one notification")
        };
        assert_eq!(
            (n.event_id, n.kind.as_str(), n.title.as_str()),
            (event.event_id, "reminder", "Pay rent")
        );
        assert!(n.message.contains("2026-02-01T09:00:00Z"));
        assert!(notification(&envelope("reminder.scheduled", payload), now).is_empty());
    }
}
