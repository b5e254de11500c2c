//! Projects (lists) and subtasks.
//!
//! A project is a named list of one user's tasks; a task is in at most one project. A subtask
//! is a task under another task, one level deep: a subtask cannot have subtasks of its own, and
//! it is always in its parent's project (moving the parent moves it). Neither link is part of
//! `TaskResponse`, whose keys are fixed by the contract; clients see them through the project
//! routes and `GET /api/tasks/{id}/links`.
//!
//! What happens around the links, decided once here for every door (REST, UI, assistant, MCP,
//! CLI, import):
//! - deleting a project keeps its tasks: they leave the project, each with a `task.updated`;
//! - deleting a task deletes its subtasks, each with its own `task.deleted`;
//! - completing a task leaves its subtasks as they are (open ones stay open);
//! - the next occurrence of a recurring task stays in its project and under its parent; the
//!   subtasks of a recurring task stay with the occurrence they were added to.

pub mod input;
pub mod model;
pub mod rules;
mod service;

pub use model::{Project, ProjectDeletion, ProjectSummary, ProjectView, SubtaskCount, TaskLinks};

/// Longest project name, in characters (after trimming).
pub const NAME_MAX: usize = 100;
/// Most projects one user may have.
pub const PROJECTS_MAX: u64 = 200;
/// Most subtasks one task may have (completed ones count).
pub const SUBTASKS_MAX: u64 = 100;

/// Why a subtask cannot change project on its own.
pub const SUBTASK_FOLLOWS_PARENT: &str =
    "A subtask is in its parent's project; move its parent instead";
/// Why a subtask cannot get subtasks.
pub const ONE_LEVEL: &str = "A subtask cannot have subtasks of its own";
/// Why a second project of the same name is refused.
pub const NAME_TAKEN: &str = "A project with this name already exists";

/// The key names are compared by: two names that differ only in case are the same project.
pub fn name_key(name: &str) -> String {
    name.trim().to_lowercase()
}
