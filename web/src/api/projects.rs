//! Projects (lists) and subtasks: routes of their own, because `TaskResponse` keeps exactly the
//! keys the contract names (see `taskstream_engine::project` for the rules).

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use serde::Serialize;
use taskstream_engine::project::input::{parse_move_body, parse_project_body};
use taskstream_engine::project::{ProjectView, TaskLinks};
use taskstream_engine::task::TaskView;
use taskstream_engine::task::input::parse_new_task;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::AppState;
use crate::auth::AuthUser;
use crate::error::ApiError;
use crate::extract::{JsonBody, ProjectId, QueryPairs, TaskId, TimeZoneHeader};

/// Body of creating or renaming a project, for the docs.
#[allow(dead_code)]
#[derive(ToSchema)]
pub struct ProjectName {
    /// 1–100 characters after trimming, no NUL; unique among the caller's projects regardless
    /// of case (409 otherwise).
    #[schema(
        min_length = 1,
        max_length = 100,
        pattern = r"^[^\x00]*[^\s\x00][^\x00]*$"
    )]
    name: String,
}

/// Body of `PUT /api/tasks/{task_id}/project`, for the docs.
#[allow(dead_code)]
#[derive(ToSchema)]
pub struct ProjectMove {
    /// A project of the caller's, or `null` for none. Required.
    #[schema(value_type = Option<String>, format = Uuid, required = true)]
    project_id: Option<String>,
}

/// Body of `DELETE /api/projects/{project_id}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeleteProjectResponse {
    #[schema(value_type = String, format = Uuid)]
    pub id: Uuid,
    pub deleted: bool,
    /// How many tasks left the project (they are kept, in no project).
    pub released_tasks: u64,
}

fn body_error(errors: taskstream_engine::ValidationErrors) -> ApiError {
    ApiError::Validation(errors.located_in("body"))
}

/// The caller's projects with their task counts, by name (ignoring case).
#[utoipa::path(get, path = "/api/projects", tag = "projects", security(("bearer" = [])),
    responses((status = 200, body = Vec<ProjectView>), (status = 401)))]
pub(crate) async fn list(
    State(app): State<AppState>,
    AuthUser(user): AuthUser,
) -> Result<Json<Vec<ProjectView>>, ApiError> {
    let projects = app.tasks.projects(&user).await?;
    Ok(Json(
        projects.iter().map(|summary| summary.view()).collect(),
    ))
}

/// Create a project (at most 200 per user).
#[utoipa::path(post, path = "/api/projects", tag = "projects", request_body = ProjectName,
    security(("bearer" = [])),
    responses((status = 201, body = ProjectView), (status = 401),
        (status = 409, description = "A project with this name already exists, or the caller has 200 projects"),
        (status = 422)))]
pub(crate) async fn create(
    State(app): State<AppState>,
    AuthUser(user): AuthUser,
    JsonBody(body): JsonBody,
) -> Result<(StatusCode, Json<ProjectView>), ApiError> {
    let name = parse_project_body(&body).map_err(body_error)?;
    let project = app.tasks.create_project(&user, &name).await?;
    let summary = app.tasks.project(&user, project.id).await?;
    Ok((StatusCode::CREATED, Json(summary.view())))
}

/// One project of the caller's.
#[utoipa::path(get, path = "/api/projects/{project_id}", tag = "projects", security(("bearer" = [])),
    params(("project_id" = String, Path, format = Uuid)),
    responses((status = 200, body = ProjectView),
        (status = 403, description = "Another user's project"),
        (status = 404, description = "`Project not found`"), (status = 422)))]
pub(crate) async fn get_one(
    State(app): State<AppState>,
    AuthUser(user): AuthUser,
    ProjectId(id): ProjectId,
) -> Result<Json<ProjectView>, ApiError> {
    Ok(Json(app.tasks.project(&user, id).await?.view()))
}

/// Rename a project.
#[utoipa::path(put, path = "/api/projects/{project_id}", tag = "projects", request_body = ProjectName,
    security(("bearer" = [])), params(("project_id" = String, Path, format = Uuid)),
    responses((status = 200, body = ProjectView), (status = 403), (status = 404),
        (status = 409, description = "Another project of the caller's has this name"),
        (status = 422)))]
pub(crate) async fn rename(
    State(app): State<AppState>,
    AuthUser(user): AuthUser,
    ProjectId(id): ProjectId,
    JsonBody(body): JsonBody,
) -> Result<Json<ProjectView>, ApiError> {
    let name = parse_project_body(&body).map_err(body_error)?;
    app.tasks.rename_project(&user, id, &name).await?;
    Ok(Json(app.tasks.project(&user, id).await?.view()))
}

/// Delete a project. Its tasks are kept, in no project; each gets a `task.updated`.
#[utoipa::path(delete, path = "/api/projects/{project_id}", tag = "projects", security(("bearer" = [])),
    params(("project_id" = String, Path, format = Uuid)),
    responses((status = 200, body = DeleteProjectResponse), (status = 403), (status = 404), (status = 422)))]
pub(crate) async fn delete(
    State(app): State<AppState>,
    AuthUser(user): AuthUser,
    ProjectId(id): ProjectId,
) -> Result<Json<DeleteProjectResponse>, ApiError> {
    let deletion = app.tasks.delete_project(&user, id).await?;
    Ok(Json(DeleteProjectResponse {
        id: deletion.project.id,
        deleted: true,
        released_tasks: deletion.released.len() as u64,
    }))
}

/// The tasks of a project of the caller's: the same query, page and `Link` as `GET
/// /api/tasks` (whose `project_id` it sets).
#[utoipa::path(get, path = "/api/projects/{project_id}/tasks", tag = "projects", security(("bearer" = [])),
    params(("project_id" = String, Path, format = Uuid),
        ("search" = Option<String>, Query, max_length = 255),
        ("status" = Option<crate::api::tasks::StatusFilterDoc>, Query),
        ("priority" = Option<taskstream_engine::task::Priority>, Query),
        ("tags" = Option<String>, Query, description = "Comma-separated, at most 20"),
        ("has_due_date" = Option<bool>, Query),
        ("is_recurring" = Option<bool>, Query),
        ("due" = Option<crate::api::tasks::DueDoc>, Query),
        ("sort" = Option<crate::api::tasks::SortDoc>, Query),
        ("order" = Option<crate::api::tasks::OrderDoc>, Query),
        ("limit" = Option<u32>, Query, minimum = 1, maximum = 1000),
        ("offset" = Option<u32>, Query, minimum = 0, maximum = 2_147_483_647),
        ("X-Timezone" = Option<String>, Header, description = "IANA zone `due` is read in")),
    responses((status = 200, body = Vec<TaskView>), (status = 403), (status = 404), (status = 422)))]
pub(crate) async fn tasks(
    State(app): State<AppState>,
    AuthUser(user): AuthUser,
    ProjectId(id): ProjectId,
    TimeZoneHeader(zone): TimeZoneHeader,
    QueryPairs(pairs): QueryPairs,
) -> Result<Response, ApiError> {
    app.tasks.project(&user, id).await?;
    let path = format!("/api/projects/{id}/tasks");
    crate::api::tasks::list_page(&app, &user, zone, &pairs, &path, Some(id)).await
}

/// Where a task sits: its project, the task it is a subtask of, and its subtasks' progress.
#[utoipa::path(get, path = "/api/tasks/{task_id}/links", tag = "projects", security(("bearer" = [])),
    params(("task_id" = String, Path, format = Uuid)),
    responses((status = 200, body = TaskLinks), (status = 403), (status = 404), (status = 422)))]
pub(crate) async fn links(
    State(app): State<AppState>,
    AuthUser(user): AuthUser,
    TaskId(id): TaskId,
) -> Result<Json<TaskLinks>, ApiError> {
    Ok(Json(app.tasks.links(&user, id).await?))
}

/// Move a task, with its subtasks, into a project of the caller's (`null`: out of any). Each
/// task moved gets a `task.updated`.
#[utoipa::path(put, path = "/api/tasks/{task_id}/project", tag = "projects", request_body = ProjectMove,
    security(("bearer" = [])), params(("task_id" = String, Path, format = Uuid)),
    responses((status = 200, body = TaskLinks), (status = 403),
        (status = 404, description = "`Task not found` or `Project not found`"),
        (status = 409, description = "The task is a subtask: it is in its parent's project"),
        (status = 422)))]
pub(crate) async fn set_project(
    State(app): State<AppState>,
    AuthUser(user): AuthUser,
    TaskId(id): TaskId,
    JsonBody(body): JsonBody,
) -> Result<Json<TaskLinks>, ApiError> {
    let project = parse_move_body(&body).map_err(body_error)?;
    app.tasks.set_project(&user, id, project).await?;
    Ok(Json(app.tasks.links(&user, id).await?))
}

/// The subtasks of a task, oldest first, completed ones included.
#[utoipa::path(get, path = "/api/tasks/{task_id}/subtasks", tag = "projects", security(("bearer" = [])),
    params(("task_id" = String, Path, format = Uuid)),
    responses((status = 200, body = Vec<TaskView>), (status = 403), (status = 404), (status = 422)))]
pub(crate) async fn subtasks(
    State(app): State<AppState>,
    AuthUser(user): AuthUser,
    TaskId(id): TaskId,
) -> Result<Json<Vec<TaskView>>, ApiError> {
    let subtasks = app.tasks.subtasks(&user, id).await?;
    Ok(Json(subtasks.iter().map(|task| task.view()).collect()))
}

/// Add a subtask (the body of `POST /api/tasks`); it goes into its parent's project.
#[utoipa::path(post, path = "/api/tasks/{task_id}/subtasks", tag = "projects",
    request_body = crate::api::tasks::TaskCreate, security(("bearer" = [])),
    params(("task_id" = String, Path, format = Uuid),
        ("X-Timezone" = Option<String>, Header, description = "IANA time zone (default: the user's setting)")),
    responses((status = 201, body = TaskView), (status = 403),
        (status = 404, description = "`Task not found` (the parent)"),
        (status = 409, description = "The parent is itself a subtask, has 100 subtasks, or the body names another project"),
        (status = 422)))]
pub(crate) async fn create_subtask(
    State(app): State<AppState>,
    AuthUser(user): AuthUser,
    TaskId(id): TaskId,
    TimeZoneHeader(zone): TimeZoneHeader,
    JsonBody(body): JsonBody,
) -> Result<(StatusCode, Json<TaskView>), ApiError> {
    let mut draft = parse_new_task(&body).map_err(body_error)?;
    draft.time_zone = super::settings::zone_for(&app, &user, zone).await?;
    let task = app.tasks.create_subtask(&user, id, draft).await?;
    Ok((StatusCode::CREATED, Json(task.view())))
}
