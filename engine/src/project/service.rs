//! Projects and subtasks through the task service, so every door (REST, UI, assistant, MCP,
//! CLI) gets the same rules, ownership checks and write limit.

use std::collections::HashMap;

use uuid::Uuid;

use super::{Project, ProjectDeletion, ProjectSummary, SubtaskCount, TaskLinks, name_key, rules};
use crate::error::EngineError;
use crate::service::TaskService;
use crate::task::{NewTask, SortField, SortOrder, StatusFilter, Task, TaskOp, TaskQuery};
use crate::time;

impl TaskService {
    /// The user's projects with their task counts, by name.
    pub async fn projects(&self, user_id: &str) -> Result<Vec<ProjectSummary>, EngineError> {
        self.store().list_projects(user_id).await
    }

    /// One of the user's projects (404 when there is none, 403 when it is another user's, as
    /// for tasks).
    pub async fn project(&self, user_id: &str, id: Uuid) -> Result<ProjectSummary, EngineError> {
        let found = self.store().project(id).await?;
        let owner = found.as_ref().map(|summary| summary.project.clone());
        rules::owned(owner, user_id)?;
        found.ok_or(EngineError::ProjectNotFound)
    }

    /// The user's project of this name, whatever its case (the assistant's and the CLI's way
    /// to name one).
    pub async fn project_named(
        &self,
        user_id: &str,
        name: &str,
    ) -> Result<Option<ProjectSummary>, EngineError> {
        let key = name_key(name);
        Ok(self
            .projects(user_id)
            .await?
            .into_iter()
            .find(|summary| name_key(&summary.project.name) == key))
    }

    /// Creates a project; 409 when the user has one of that name or too many.
    pub async fn create_project(&self, user_id: &str, name: &str) -> Result<Project, EngineError> {
        let name = super::input::normalise_name(name).map_err(validation("name"))?;
        self.allow_write(user_id)?;
        self.store()
            .insert_project(Project::new(user_id, name, time::now()))
            .await
    }

    /// Renames one of the user's projects.
    pub async fn rename_project(
        &self,
        user_id: &str,
        id: Uuid,
        name: &str,
    ) -> Result<Project, EngineError> {
        let name = super::input::normalise_name(name).map_err(validation("name"))?;
        self.allow_write(user_id)?;
        self.store()
            .rename_project(user_id, id, name, time::now())
            .await
    }

    /// Deletes one of the user's projects; its tasks stay, in no project.
    pub async fn delete_project(
        &self,
        user_id: &str,
        id: Uuid,
    ) -> Result<ProjectDeletion, EngineError> {
        self.allow_write(user_id)?;
        self.store().delete_project(user_id, id, time::now()).await
    }

    /// Moves one of the user's top-level tasks (and its subtasks) into a project of theirs, or
    /// out of any (`None`).
    pub async fn set_project(
        &self,
        user_id: &str,
        id: Uuid,
        project_id: Option<Uuid>,
    ) -> Result<Task, EngineError> {
        self.allow_write(user_id)?;
        let change = self
            .store()
            .modify(id, user_id, TaskOp::SetProject(project_id), time::now())
            .await?;
        Ok(change.task)
    }

    /// Adds a subtask under one of the user's tasks (404 / 403 for the parent as for any task).
    pub async fn create_subtask(
        &self,
        user_id: &str,
        parent: Uuid,
        mut draft: NewTask,
    ) -> Result<Task, EngineError> {
        self.get(user_id, parent).await?;
        draft.subtask_of = Some(parent);
        self.create(user_id, draft).await
    }

    /// The subtasks of one of the user's tasks, oldest first, completed ones included.
    pub async fn subtasks(&self, user_id: &str, parent: Uuid) -> Result<Vec<Task>, EngineError> {
        self.get(user_id, parent).await?;
        let query = TaskQuery {
            subtask_of: Some(parent),
            status: StatusFilter::All,
            sort: SortField::CreatedAt,
            order: SortOrder::Asc,
            ..TaskQuery::default()
        };
        self.store().list(user_id, &query).await
    }

    /// Where one of the user's tasks sits: project, parent, subtask progress.
    pub async fn links(&self, user_id: &str, id: Uuid) -> Result<TaskLinks, EngineError> {
        let task = self.get(user_id, id).await?;
        let counts = self.subtask_counts(user_id, vec![id]).await?;
        Ok(TaskLinks::of(
            &task,
            counts.get(&id).copied().unwrap_or_default(),
        ))
    }

    /// Subtask progress of several of the user's tasks at once (a list page's "2/5"); tasks
    /// without subtasks are absent.
    pub async fn subtask_counts(
        &self,
        user_id: &str,
        parents: Vec<Uuid>,
    ) -> Result<HashMap<Uuid, SubtaskCount>, EngineError> {
        if parents.is_empty() {
            return Ok(HashMap::new());
        }
        self.store().subtask_counts(user_id, parents).await
    }
}

/// A rule a door's text broke, as the 422 a body field would get.
fn validation(field: &'static str) -> impl Fn(String) -> EngineError {
    move |message| {
        EngineError::Validation(crate::error::ValidationErrors(vec![
            crate::error::FieldError::value_error(
                vec![crate::error::Loc::from(field)],
                &message,
                serde_json::Value::Null,
            ),
        ]))
    }
}
