//! The project as stored and as shown, and the links of a task.

use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::task::Task;
use crate::time::format_utc;

/// A named list of one user's tasks.
#[derive(Debug, Clone, PartialEq)]
pub struct Project {
    pub id: Uuid,
    pub user_id: String,
    /// As the user wrote it, trimmed; unique per user regardless of case.
    pub name: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl Project {
    /// A new project of `user_id`, created at `now`.
    pub fn new(user_id: &str, name: String, now: DateTime<Utc>) -> Self {
        Self {
            id: crate::time::new_id(),
            user_id: user_id.to_owned(),
            name,
            created_at: now,
            updated_at: now,
        }
    }
}

/// A project with how many tasks it holds (the sidebar's counts), counted by the store.
#[derive(Debug, Clone, PartialEq)]
pub struct ProjectSummary {
    pub project: Project,
    /// Every task in it, subtasks and completed ones included.
    pub task_count: u64,
    /// Those not completed.
    pub open_task_count: u64,
}

impl ProjectSummary {
    pub fn view(&self) -> ProjectView {
        ProjectView {
            id: self.project.id,
            name: self.project.name.clone(),
            created_at: format_utc(self.project.created_at),
            updated_at: format_utc(self.project.updated_at),
            task_count: self.task_count,
            open_task_count: self.open_task_count,
        }
    }
}

/// A project as clients see it.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct ProjectView {
    #[schema(value_type = String, format = Uuid)]
    pub id: Uuid,
    /// 1–100 characters; unique per user regardless of case.
    pub name: String,
    #[schema(value_type = String, format = DateTime)]
    pub created_at: String,
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: String,
    /// Tasks in the project, subtasks and completed ones included.
    pub task_count: u64,
    /// Tasks in the project that are not completed.
    pub open_task_count: u64,
}

/// What a project's deletion did: the project as it was, and the tasks it released (now in
/// no project).
#[derive(Debug, Clone, PartialEq)]
pub struct ProjectDeletion {
    pub project: Project,
    pub released: Vec<Task>,
}

/// How many subtasks a task has, and how many of them are completed (the UI's "2/5").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SubtaskCount {
    pub total: u64,
    pub completed: u64,
}

/// Where a task sits: its project, its parent, and its subtasks' progress
/// (`GET /api/tasks/{id}/links`; `TaskResponse` cannot carry them).
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct TaskLinks {
    #[schema(value_type = String, format = Uuid)]
    pub task_id: Uuid,
    /// The project the task is in; `null` for none.
    #[schema(value_type = Option<String>, format = Uuid)]
    pub project_id: Option<Uuid>,
    /// The task this one is a subtask of; `null` for a top-level task.
    #[schema(value_type = Option<String>, format = Uuid)]
    pub subtask_of: Option<Uuid>,
    /// How many subtasks it has (at most 100).
    pub subtask_count: u64,
    /// How many of them are completed.
    pub subtasks_completed: u64,
}

impl TaskLinks {
    pub fn of(task: &Task, count: SubtaskCount) -> Self {
        Self {
            task_id: task.id,
            project_id: task.project_id,
            subtask_of: task.subtask_of,
            subtask_count: count.total,
            subtasks_completed: count.completed,
        }
    }
}
