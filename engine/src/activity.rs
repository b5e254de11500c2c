//! What the consumers leave behind for the user: the audit trail and notifications.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::event::EventEnvelope;
use crate::time::format_utc;

/// One audited event (the reference's `audit_log` row, with a UNIQUE `event_id`).
#[derive(Debug, Clone, PartialEq)]
pub struct AuditEntry {
    pub id: Uuid,
    pub event_id: Uuid,
    pub event_type: String,
    /// The publisher's timestamp, as published.
    pub timestamp: String,
    pub received_at: DateTime<Utc>,
    pub user_id: String,
    pub task_id: Option<String>,
    pub source: String,
    pub payload: Value,
}

impl AuditEntry {
    /// The audit row for an event; the task id is `payload.id`, else `payload.task_id`.
    pub fn from_event(event: &EventEnvelope, received_at: DateTime<Utc>) -> Self {
        let task_id = ["id", "task_id"]
            .iter()
            .find_map(|key| event.payload.get(*key).and_then(Value::as_str))
            .map(str::to_owned);
        Self {
            id: crate::time::new_id(),
            event_id: event.event_id,
            event_type: event.event_type.clone(),
            timestamp: event.timestamp.clone(),
            received_at,
            user_id: event.user_id.clone(),
            task_id,
            source: event.source.clone(),
            payload: event.payload.clone(),
        }
    }

    pub fn view(&self) -> AuditView {
        AuditView {
            id: self.id,
            event_id: self.event_id,
            event_type: self.event_type.clone(),
            timestamp: self.timestamp.clone(),
            received_at: format_utc(self.received_at),
            user_id: self.user_id.clone(),
            task_id: self.task_id.clone(),
            source: self.source.clone(),
            payload: self.payload.clone(),
        }
    }
}

/// An audit row as `GET /api/audit` returns it.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct AuditView {
    #[schema(value_type = String, format = Uuid)]
    pub id: Uuid,
    #[schema(value_type = String, format = Uuid)]
    pub event_id: Uuid,
    pub event_type: String,
    pub timestamp: String,
    pub received_at: String,
    pub user_id: String,
    pub task_id: Option<String>,
    pub source: String,
    #[schema(value_type = Object)]
    pub payload: Value,
}

/// Which audit rows to list (always within one user's trail).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct AuditFilter {
    pub task_id: Option<String>,
    pub event_type: Option<String>,
    pub limit: u32,
    pub offset: u32,
}

/// Default and largest page of audit rows.
pub const AUDIT_LIMIT_DEFAULT: u32 = 100;
pub const AUDIT_LIMIT_MAX: u32 = 1000;

/// Something the user should be told about, e.g. a reminder that fired.
#[derive(Debug, Clone, PartialEq)]
pub struct Notification {
    pub id: Uuid,
    pub user_id: String,
    /// The event that caused it; unique, so a redelivered event never notifies twice.
    pub event_id: Uuid,
    pub kind: String,
    pub task_id: Option<String>,
    pub title: String,
    pub message: String,
    pub created_at: DateTime<Utc>,
    pub read_at: Option<DateTime<Utc>>,
    pub payload: Value,
}

impl Notification {
    pub fn view(&self) -> NotificationView {
        NotificationView {
            id: self.id,
            kind: self.kind.clone(),
            task_id: self.task_id.clone(),
            title: self.title.clone(),
            message: self.message.clone(),
            created_at: format_utc(self.created_at),
            read_at: self.read_at.map(format_utc),
            payload: self.payload.clone(),
        }
    }
}

/// A notification as `GET /api/notifications` returns it.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct NotificationView {
    #[schema(value_type = String, format = Uuid)]
    pub id: Uuid,
    pub kind: String,
    pub task_id: Option<String>,
    pub title: String,
    pub message: String,
    pub created_at: String,
    pub read_at: Option<String>,
    #[schema(value_type = Object)]
    pub payload: Value,
}

/// One attempt to push a notification to an outside channel, kept as a delivery log.
#[derive(Debug, Clone, PartialEq)]
pub struct Delivery {
    pub event_id: Uuid,
    pub notification_id: Uuid,
    pub channel: String,
    pub attempt: u32,
    pub succeeded: bool,
    /// The channel's answer or the failure reason.
    pub detail: String,
    pub at: DateTime<Utc>,
}
