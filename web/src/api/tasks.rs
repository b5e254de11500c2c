//! Task routes, compatible with the existing Next.js frontend (contract §1–2).

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use taskstream_engine::task::input::{parse_new_task, parse_task_patch};
use taskstream_engine::task::query::LIMIT_DEFAULT;
use taskstream_engine::task::{TaskQuery, TaskView};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::AppState;
use crate::auth::AuthUser;
use crate::error::ApiError;
use crate::extract::{JsonBody, QueryPairs, TaskId, TimeZoneHeader};

/// Body of `PATCH /api/tasks/{task_id}/complete`.
#[derive(Debug, Serialize, ToSchema)]
pub struct CompleteTaskResponse {
    pub completed_task: TaskView,
    /// The next occurrence of a recurring task, created by this completion.
    pub next_task: Option<TaskView>,
}

/// Body of `DELETE /api/tasks/{task_id}`: JSON, because the frontend parses every success.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeleteTaskResponse {
    #[schema(value_type = String, format = Uuid)]
    pub id: Uuid,
    pub deleted: bool,
}

/// Create body, for the docs; validated field by field in the engine.
#[allow(dead_code)]
#[derive(ToSchema)]
pub struct TaskCreate {
    /// 1–255 characters, not blank, no NUL.
    #[schema(
        min_length = 1,
        max_length = 255,
        pattern = r"^[^\x00]*[^\s\x00][^\x00]*$"
    )]
    title: String,
    /// At most 2000 characters, no NUL.
    #[schema(max_length = 2000, pattern = r"^[^\x00]*$")]
    description: Option<String>,
    #[schema(default = "pending", required = false)]
    status: taskstream_engine::task::TaskStatus,
    #[schema(default = "medium", required = false)]
    priority: taskstream_engine::task::Priority,
    /// RFC 3339 between the years 1000 and 9999; any offset, normalised to UTC.
    #[schema(format = DateTime)]
    due_date: Option<String>,
    /// At most 20 tags of 1–50 characters; stored trimmed, lower-cased, de-duplicated.
    #[schema(max_items = 20, required = false)]
    tags: Vec<String>,
    /// Minutes before the due date; at least 1; needs a due date.
    #[schema(minimum = 1, maximum = 525_600)]
    reminder_offset_minutes: Option<i64>,
    /// More reminders: `[{"offset_minutes": N} | {"at": "<RFC 3339>"}]`, at most 10; offsets
    /// need a due date. Shown by `GET /api/tasks/{task_id}/reminders`.
    #[schema(value_type = Option<Vec<Object>>, max_items = 10)]
    reminders: Option<Vec<serde_json::Value>>,
    #[schema(required = false)]
    is_recurring: bool,
    /// DAILY, WEEKLY, MONTHLY, YEARLY, INTERVAL:N, or RRULE:FREQ=… (RFC 5545), firing at most
    /// once an hour.
    #[schema(max_length = 255)]
    recurrence_rule: Option<String>,
    /// What the next occurrence counts from.
    #[schema(default = "due", required = false)]
    recurrence_from: RecurrenceFromDoc,
    /// With `on_due` the next occurrence is created when the due date passes, even while the
    /// task is still open.
    #[schema(default = "on_complete", required = false)]
    recurrence_trigger: RecurrenceTriggerDoc,
    /// A project of the caller's to put the task in (404 `Project not found` otherwise). Not
    /// echoed in `TaskResponse`: see `GET /api/tasks/{task_id}/links`.
    #[schema(value_type = Option<String>, format = Uuid)]
    project_id: Option<String>,
    /// One of the caller's top-level tasks to make this a subtask of (404 `Parent task not
    /// found` otherwise; 409 when it is itself a subtask or has 100 subtasks). The subtask is
    /// in its parent's project (naming another project is a 409).
    #[schema(value_type = Option<String>, format = Uuid)]
    subtask_of: Option<String>,
}

/// `due` or `completion`.
#[allow(dead_code)]
#[derive(ToSchema)]
#[schema(rename_all = "snake_case")]
pub enum RecurrenceFromDoc {
    Due,
    Completion,
}

/// `on_complete` or `on_due`.
#[allow(dead_code)]
#[derive(ToSchema)]
#[schema(rename_all = "snake_case")]
pub enum RecurrenceTriggerDoc {
    OnComplete,
    OnDue,
}

/// The `status` filter of a list.
#[allow(dead_code)]
#[derive(ToSchema)]
#[schema(rename_all = "snake_case")]
pub enum StatusFilterDoc {
    All,
    Active,
    Pending,
    InProgress,
    Completed,
}

/// The `due` window of a list.
#[allow(dead_code)]
#[derive(ToSchema)]
#[schema(rename_all = "snake_case")]
pub enum DueDoc {
    Today,
    Upcoming,
    Overdue,
}

/// The sort key of a list.
#[allow(dead_code)]
#[derive(ToSchema)]
#[schema(rename_all = "snake_case")]
pub enum SortDoc {
    CreatedAt,
    DueDate,
    Priority,
    Title,
}

/// The sort order of a list.
#[allow(dead_code)]
#[derive(ToSchema)]
#[schema(rename_all = "snake_case")]
pub enum OrderDoc {
    Asc,
    Desc,
}

/// Update body, for the docs: only the keys present are applied; `null` clears nullable fields.
#[allow(dead_code)]
#[derive(ToSchema)]
pub struct TaskUpdate {
    #[schema(
        min_length = 1,
        max_length = 255,
        pattern = r"^[^\x00]*[^\s\x00][^\x00]*$",
        required = false
    )]
    title: String,
    #[schema(max_length = 2000, pattern = r"^[^\x00]*$")]
    description: Option<String>,
    #[schema(required = false)]
    status: taskstream_engine::task::TaskStatus,
    #[schema(required = false)]
    priority: taskstream_engine::task::Priority,
    #[schema(format = DateTime)]
    due_date: Option<String>,
    #[schema(max_items = 20, required = false)]
    tags: Vec<String>,
    #[schema(minimum = 1, maximum = 525_600)]
    reminder_offset_minutes: Option<i64>,
    /// More reminders: `[{"offset_minutes": N} | {"at": "<RFC 3339>"}]`, at most 10; offsets
    /// need a due date. Shown by `GET /api/tasks/{task_id}/reminders`.
    #[schema(value_type = Option<Vec<Object>>, max_items = 10)]
    reminders: Option<Vec<serde_json::Value>>,
    #[schema(required = false)]
    is_recurring: bool,
    #[schema(max_length = 255)]
    recurrence_rule: Option<String>,
    #[schema(required = false)]
    recurrence_from: RecurrenceFromDoc,
    #[schema(required = false)]
    recurrence_trigger: RecurrenceTriggerDoc,
}

/// Create a task.
#[utoipa::path(post, path = "/api/tasks", tag = "tasks", request_body = TaskCreate,
    security(("bearer" = [])),
    params(("X-Timezone" = Option<String>, Header, description = "IANA time zone (default: the user's setting from /api/settings, else UTC); recurrence keeps the wall-clock time in it across DST")),
    responses((status = 201, body = TaskView), (status = 401),
        (status = 404, description = "`Project not found` or `Parent task not found`"),
        (status = 409, description = "`subtask_of` is a subtask or has 100 subtasks, or `project_id` is not the parent's project"),
        (status = 422)))]
pub(crate) async fn create(
    State(app): State<AppState>,
    AuthUser(user): AuthUser,
    TimeZoneHeader(zone): TimeZoneHeader,
    JsonBody(body): JsonBody,
) -> Result<(StatusCode, Json<TaskView>), ApiError> {
    let mut draft =
        parse_new_task(&body).map_err(|errors| ApiError::Validation(errors.located_in("body")))?;
    draft.time_zone = super::settings::zone_for(&app, &user, zone).await?;
    let task = app.tasks.create(&user, draft).await?;
    Ok((StatusCode::CREATED, Json(task.view())))
}

/// List, search, filter and sort the caller's tasks.
#[utoipa::path(get, path = "/api/tasks", tag = "tasks", security(("bearer" = [])),
    params(
        ("search" = Option<String>, Query, max_length = 255, description = "Case-insensitive substring of title or description"),
        ("status" = Option<StatusFilterDoc>, Query, description = "all (default) | active | pending | in_progress | completed"),
        ("priority" = Option<taskstream_engine::task::Priority>, Query, description = "low | medium | high"),
        ("tags" = Option<String>, Query, description = "Comma-separated, at most 20; a task must have all of them"),
        ("has_due_date" = Option<bool>, Query),
        ("is_recurring" = Option<bool>, Query),
        ("due" = Option<DueDoc>, Query, description = "today (due on today's date) | upcoming (due on one of the 7 days after today) | overdue (due before now), in the X-Timezone zone or the user's setting"),
        ("project_id" = Option<String>, Query, description = "Only the tasks of this project of the caller's (a UUID; another user's or an unknown one is 404), or `none` for the tasks in no project"),
        ("X-Timezone" = Option<String>, Header, description = "IANA zone `due` is read in (default: the user's setting)"),
        ("sort" = Option<SortDoc>, Query, description = "created_at (default) | due_date | priority | title"),
        ("order" = Option<OrderDoc>, Query, description = "desc (default) | asc"),
        ("limit" = Option<u32>, Query, minimum = 1, maximum = 1000, description = "Page size, 1–1000; 500 when absent. A full page that has more after it carries a `Link: <…>; rel=\"next\"` header"),
        ("offset" = Option<u32>, Query, minimum = 0, maximum = 2_147_483_647, description = "Tasks to skip (default 0)"),
    ),
    responses(
        (status = 200, body = Vec<TaskView>, headers(("Link" = String, description = "`<URL>; rel=\"next\"` when more tasks follow this page"))),
        (status = 401), (status = 404, description = "`Project not found`: `project_id` names no project of the caller's"), (status = 422)))]
pub(crate) async fn list(
    State(app): State<AppState>,
    AuthUser(user): AuthUser,
    TimeZoneHeader(zone): TimeZoneHeader,
    QueryPairs(pairs): QueryPairs,
) -> Result<Response, ApiError> {
    list_page(&app, &user, zone, &pairs, "/api/tasks", None).await
}

/// One page of the caller's tasks for the query in `pairs`, with a `Link` to the next page of
/// `path`; `project` narrows it to that project whatever the query says.
pub(crate) async fn list_page(
    app: &AppState,
    user: &str,
    zone: Option<chrono_tz::Tz>,
    pairs: &[(String, String)],
    path: &str,
    project: Option<Uuid>,
) -> Result<Response, ApiError> {
    let mut query = TaskQuery::from_pairs(pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .map_err(|errors| ApiError::Validation(errors.located_in("query")))?;
    if let Some(project) = project {
        query.project = Some(taskstream_engine::task::ProjectFilter::In(project));
    }
    if query.due.is_some() {
        let zone = super::settings::zone_for(app, user, zone).await?;
        query.resolve_due(taskstream_engine::time::now(), zone);
    }
    let limit = query.limit.unwrap_or(LIMIT_DEFAULT);
    // One task more than the page tells whether another page follows, without a COUNT.
    query.limit = Some(limit.saturating_add(1));
    let mut tasks = app.tasks.list(user, &query).await?;
    let more = tasks.len() > limit as usize;
    tasks.truncate(limit as usize);
    let mut response =
        Json(tasks.iter().map(|task| task.view()).collect::<Vec<_>>()).into_response();
    if more
        && let Ok(link) = HeaderValue::from_str(&next_page_link(path, pairs, query.offset, limit))
    {
        response.headers_mut().insert(header::LINK, link);
    }
    Ok(response)
}

/// `<…>; rel="next"` for the page after this one, keeping every other query parameter.
fn next_page_link(path: &str, pairs: &[(String, String)], offset: u32, limit: u32) -> String {
    let mut query = form_urlencoded::Serializer::new(String::new());
    for (key, value) in pairs {
        if key != "limit" && key != "offset" {
            query.append_pair(key, value);
        }
    }
    query.append_pair("limit", &limit.to_string());
    query.append_pair("offset", &offset.saturating_add(limit).to_string());
    format!("<{path}?{}>; rel=\"next\"", query.finish())
}

/// One task.
#[utoipa::path(get, path = "/api/tasks/{task_id}", tag = "tasks", security(("bearer" = [])),
    params(("task_id" = String, Path, format = Uuid)),
    responses((status = 200, body = TaskView), (status = 403), (status = 404), (status = 422)))]
pub(crate) async fn get_one(
    State(app): State<AppState>,
    AuthUser(user): AuthUser,
    TaskId(id): TaskId,
) -> Result<Json<TaskView>, ApiError> {
    Ok(Json(app.tasks.get(&user, id).await?.view()))
}

/// Partial update; `status: completed` completes the task exactly like PATCH …/complete.
#[utoipa::path(put, path = "/api/tasks/{task_id}", tag = "tasks", request_body = TaskUpdate,
    security(("bearer" = [])), params(("task_id" = String, Path, format = Uuid),
        ("X-Timezone" = Option<String>, Header, description = "IANA time zone; changes the task's zone when sent")),
    responses((status = 200, body = TaskView), (status = 403), (status = 404), (status = 422)))]
pub(crate) async fn update(
    State(app): State<AppState>,
    AuthUser(user): AuthUser,
    TaskId(id): TaskId,
    TimeZoneHeader(zone): TimeZoneHeader,
    JsonBody(body): JsonBody,
) -> Result<Json<TaskView>, ApiError> {
    let mut patch = parse_task_patch(&body)
        .map_err(|errors| ApiError::Validation(errors.located_in("body")))?;
    patch.time_zone = zone;
    Ok(Json(app.tasks.update(&user, id, patch).await?.view()))
}

/// Delete a task, and its subtasks with it (each gets its own `task.deleted`); answers JSON so
/// the frontend can parse it.
#[utoipa::path(delete, path = "/api/tasks/{task_id}", tag = "tasks", security(("bearer" = [])),
    params(("task_id" = String, Path, format = Uuid)),
    responses((status = 200, body = DeleteTaskResponse), (status = 403), (status = 404), (status = 422)))]
pub(crate) async fn delete(
    State(app): State<AppState>,
    AuthUser(user): AuthUser,
    TaskId(id): TaskId,
) -> Result<Json<DeleteTaskResponse>, ApiError> {
    let task = app.tasks.delete(&user, id).await?;
    Ok(Json(DeleteTaskResponse {
        id: task.id,
        deleted: true,
    }))
}

/// Complete a task; a recurring task gets its next occurrence (once).
#[utoipa::path(patch, path = "/api/tasks/{task_id}/complete", tag = "tasks", security(("bearer" = [])),
    params(("task_id" = String, Path, format = Uuid)),
    responses((status = 200, body = CompleteTaskResponse), (status = 403), (status = 404), (status = 422)))]
pub(crate) async fn complete(
    State(app): State<AppState>,
    AuthUser(user): AuthUser,
    TaskId(id): TaskId,
) -> Result<Json<CompleteTaskResponse>, ApiError> {
    let completion = app.tasks.complete(&user, id).await?;
    Ok(Json(CompleteTaskResponse {
        completed_task: completion.completed.view(),
        next_task: completion.next.as_ref().map(|task| task.view()),
    }))
}

/// A task's reminders: the extra reminders it was given (`reminders` on create/update), and
/// every armed, fired, snoozed or missed reminder time.
#[utoipa::path(get, path = "/api/tasks/{task_id}/reminders", tag = "tasks", security(("bearer" = [])),
    params(("task_id" = String, Path, format = Uuid)),
    responses((status = 200, description = "`{\"task_id\", \"reminder_offset_minutes\", \"reminders\": [...], \"schedule\": [{\"fire_at\", \"kind\", \"state\", \"fired_at\", \"late_by_ms\"}]}`"),
        (status = 403), (status = 404), (status = 422)))]
pub(crate) async fn reminders(
    State(app): State<AppState>,
    AuthUser(user): AuthUser,
    TaskId(id): TaskId,
) -> Result<Json<serde_json::Value>, ApiError> {
    use taskstream_engine::time::format_utc;
    let task = app.tasks.get(&user, id).await?;
    let rows = app.tasks.store().reminder_history(id).await?;
    let schedule: Vec<serde_json::Value> = rows
        .iter()
        .map(|row| {
            let state = match (row.fired_at, row.missed) {
                (Some(_), _) => "fired",
                (None, true) => "missed",
                (None, false) => "pending",
            };
            serde_json::json!({
                "fire_at": format_utc(row.fire_at),
                "kind": row.kind,
                "state": state,
                "fired_at": row.fired_at.map(format_utc),
                "late_by_ms": row.late_by_ms,
            })
        })
        .collect();
    Ok(Json(serde_json::json!({
        "task_id": task.id,
        "reminder_offset_minutes": task.reminder_offset_minutes,
        "reminders": task.reminders.iter().map(|spec| spec.view()).collect::<Vec<_>>(),
        "schedule": schedule,
    })))
}
