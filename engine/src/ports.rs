//! The ports: what the domain needs from the outside world, implemented once per shape
//! (embedded SQLite today; PostgreSQL and Dapr in cluster mode).

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::error::EngineError;
use crate::event::{EventEnvelope, OutboxEvent};
use crate::task::{Change, Task, TaskOp, TaskQuery};

/// An event waiting in the outbox for the relay.
#[derive(Debug, Clone, PartialEq)]
pub struct OutboxRecord {
    /// Position in the outbox; the relay publishes in this order.
    pub seq: i64,
    pub topic: String,
    pub key: String,
    pub envelope: EventEnvelope,
}

/// Durable storage of tasks and of the events their changes produce.
///
/// Every write commits the task rows and their outbox events in one transaction, so an event is
/// never lost and never announced for a change that did not happen.
#[async_trait]
pub trait TaskStore: Send + Sync + 'static {
    /// Inserts a new task with its events.
    async fn insert(&self, task: Task, events: Vec<OutboxEvent>) -> Result<Task, EngineError>;

    /// Loads a task by id, whoever owns it; callers check ownership.
    async fn get(&self, id: Uuid) -> Result<Option<Task>, EngineError>;

    /// The tasks of one user that match `query`, in its order.
    async fn list(&self, user_id: &str, query: &TaskQuery) -> Result<Vec<Task>, EngineError>;

    /// Runs `op` for `user_id` against the current state of task `id` inside one transaction,
    /// through [`crate::task::ops::apply`], and persists the resulting change.
    async fn modify(
        &self,
        id: Uuid,
        user_id: &str,
        op: TaskOp,
        now: DateTime<Utc>,
    ) -> Result<Change, EngineError>;

    /// The oldest events not yet relayed, in commit order.
    async fn pending_events(&self, limit: usize) -> Result<Vec<OutboxRecord>, EngineError>;

    /// Cheap liveness check for `/ready`.
    async fn ping(&self) -> Result<(), EngineError>;
}
