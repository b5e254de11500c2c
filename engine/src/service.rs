//! The one entry point for task changes, whichever door they come through (REST, chat, UI).

use std::sync::Arc;

use uuid::Uuid;

use crate::error::EngineError;
use crate::ports::TaskStore;
use crate::task::{NewTask, Task, TaskOp, TaskPatch, TaskQuery, ops};
use crate::time;
use crate::write_limit::{WriteLimit, WriteLimiter};

/// Applies the task rules and persists through the store port.
#[derive(Clone)]
pub struct TaskService {
    store: Arc<dyn TaskStore>,
    /// Per-user limit on the writes users make (create, update, complete, delete); the
    /// consumers' own repairs are not counted. `None`: unlimited.
    writes: Option<Arc<WriteLimiter>>,
}

/// The result of a completion: the task and, for a recurring one, its next occurrence.
#[derive(Debug, Clone, PartialEq)]
pub struct Completion {
    pub completed: Task,
    pub next: Option<Task>,
}

impl TaskService {
    pub fn new(store: Arc<dyn TaskStore>) -> Self {
        Self {
            store,
            writes: None,
        }
    }

    /// Limits each user's writes to `limit` (`None`: no limit).
    pub fn with_write_limit(mut self, limit: Option<WriteLimit>) -> Self {
        self.writes = limit.map(|limit| Arc::new(WriteLimiter::new(limit)));
        self
    }

    pub(crate) fn allow_write(&self, user_id: &str) -> Result<(), EngineError> {
        match &self.writes {
            Some(limiter) => limiter.take(user_id).map_err(|retry_after_secs| {
                tracing::warn!(user = %user_id, retry_after_secs, "task write limit reached");
                EngineError::RateLimited { retry_after_secs }
            }),
            None => Ok(()),
        }
    }

    pub fn store(&self) -> &Arc<dyn TaskStore> {
        &self.store
    }

    pub async fn create(&self, user_id: &str, draft: NewTask) -> Result<Task, EngineError> {
        self.allow_write(user_id)?;
        let (task, events) = ops::create(user_id, draft, time::now())?;
        self.store.insert(task, events).await
    }

    /// Creates one task of an import ([`crate::transfer::import`], which takes the write limit
    /// once for the whole file) with its id, history and series kept.
    pub(crate) async fn import_one(
        &self,
        user_id: &str,
        draft: NewTask,
        kept: ops::Kept,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<Task, EngineError> {
        let (task, events) = ops::import(user_id, draft, kept, now)?;
        self.store.insert(task, events).await
    }

    /// The task if it exists and belongs to `user_id` (403 and 404 are distinct, as the
    /// frontend contract requires).
    pub async fn get(&self, user_id: &str, id: Uuid) -> Result<Task, EngineError> {
        match self.store.get(id).await? {
            None => Err(EngineError::NotFound),
            Some(task) if task.user_id != user_id => Err(EngineError::Forbidden),
            Some(task) => Ok(task),
        }
    }

    /// The user's tasks matching `query`; a `project_id` filter must name one of the user's
    /// projects (another user's is as unknown as a missing one: 404).
    pub async fn list(&self, user_id: &str, query: &TaskQuery) -> Result<Vec<Task>, EngineError> {
        if let Some(crate::task::ProjectFilter::In(project)) = query.project {
            let found = self.store.project(project).await?;
            crate::project::rules::referenced(found.as_ref().map(|s| &s.project), user_id)?;
        }
        self.store.list(user_id, query).await
    }

    pub async fn update(
        &self,
        user_id: &str,
        id: Uuid,
        patch: TaskPatch,
    ) -> Result<Task, EngineError> {
        self.allow_write(user_id)?;
        let change = self
            .store
            .modify(id, user_id, TaskOp::Update(patch), time::now())
            .await?;
        Ok(change.task)
    }

    pub async fn complete(&self, user_id: &str, id: Uuid) -> Result<Completion, EngineError> {
        self.allow_write(user_id)?;
        let change = self
            .store
            .modify(id, user_id, TaskOp::Complete, time::now())
            .await?;
        Ok(Completion {
            completed: change.task,
            next: change.next,
        })
    }

    /// Repairs a completed recurring task whose next occurrence is missing; returns the one
    /// created, if any.
    pub async fn ensure_next_occurrence(
        &self,
        user_id: &str,
        id: Uuid,
    ) -> Result<Option<Task>, EngineError> {
        let change = self
            .store
            .modify(id, user_id, TaskOp::EnsureNextOccurrence, time::now())
            .await?;
        Ok(change.next)
    }

    pub async fn delete(&self, user_id: &str, id: Uuid) -> Result<Task, EngineError> {
        self.allow_write(user_id)?;
        let change = self
            .store
            .modify(id, user_id, TaskOp::Delete, time::now())
            .await?;
        Ok(change.task)
    }
}

impl crate::ports::Probe for TaskService {
    fn check(&self) -> crate::ports::ProbeFuture<'_> {
        Box::pin(async move { self.store().ping().await.map_err(|error| error.to_string()) })
    }
}
