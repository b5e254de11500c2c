//! Project and subtask forms: create, rename and delete a project; move a task into one; add a
//! subtask. Plain form posts that redirect, like every other UI flow.

use askama::Template;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Redirect, Response};
use taskstream_engine::assistant::offline::intent::quick_add as read_quick_add;
use taskstream_engine::project::input::normalise_name;
use taskstream_engine::task::input::parse_new_task;

use super::error::UiError;
use super::form::Form;
use super::pages::chrome;
use super::session::{CsrfToken, Session};
use super::tasks::{flash_url_in, form_project};
use super::view::Chrome;
use super::{html, zone_of};
use crate::AppState;

/// `POST /projects`: a new project, then its (empty) list.
pub(crate) async fn create(
    State(app): State<AppState>,
    session: Session,
    form: Form,
) -> Result<Response, UiError> {
    let name = normalise_name(form.text("name")).map_err(UiError::BadRequest)?;
    let project = app.tasks.create_project(&session.user_id, &name).await?;
    let url = flash_url_in("project_added", Some(&project.name), Some(project.id));
    Ok(Redirect::to(&url).into_response())
}

/// `POST /projects/{id}/rename`.
pub(crate) async fn rename(
    State(app): State<AppState>,
    session: Session,
    Path(raw): Path<String>,
    form: Form,
) -> Result<Response, UiError> {
    let id = super::path_id(&raw)?;
    let name = normalise_name(form.text("name")).map_err(UiError::BadRequest)?;
    let project = app
        .tasks
        .rename_project(&session.user_id, id, &name)
        .await?;
    let url = flash_url_in("project_renamed", Some(&project.name), Some(project.id));
    Ok(Redirect::to(&url).into_response())
}

#[derive(Template)]
#[template(path = "confirm_project_delete.html")]
struct ConfirmPage {
    chrome: Chrome,
    id: String,
    name: String,
    tasks: u64,
}

/// `GET /projects/{id}/delete`: are you sure?
pub(crate) async fn confirm_delete(
    State(app): State<AppState>,
    session: Session,
    csrf: CsrfToken,
    headers: HeaderMap,
    Path(raw): Path<String>,
) -> Result<Response, UiError> {
    let summary = app
        .tasks
        .project(&session.user_id, super::path_id(&raw)?)
        .await?;
    html(ConfirmPage {
        chrome: chrome(&app, &session, &csrf, &headers, "Delete project", "tasks").await?,
        id: summary.project.id.to_string(),
        name: summary.project.name,
        tasks: summary.task_count,
    })
}

/// `POST /projects/{id}/delete`: the project goes, its tasks stay (in no project).
pub(crate) async fn delete(
    State(app): State<AppState>,
    session: Session,
    Path(raw): Path<String>,
    _form: Form,
) -> Result<Response, UiError> {
    let deletion = app
        .tasks
        .delete_project(&session.user_id, super::path_id(&raw)?)
        .await?;
    let url = flash_url_in("project_deleted", Some(&deletion.project.name), None);
    Ok(Redirect::to(&url).into_response())
}

/// `POST /tasks/{id}/project`: move a task (and its subtasks) into a project, or out.
pub(crate) async fn move_task(
    State(app): State<AppState>,
    session: Session,
    Path(raw): Path<String>,
    form: Form,
) -> Result<Response, UiError> {
    let project = form_project(&form, "project_id").map_err(UiError::BadRequest)?;
    let task = app
        .tasks
        .set_project(&session.user_id, super::path_id(&raw)?, project)
        .await?;
    Ok(Redirect::to(&format!("/tasks/{}?saved=1", task.id)).into_response())
}

/// `POST /tasks/{id}/subtasks`: one line in the quick-add language becomes a subtask.
pub(crate) async fn add_subtask(
    State(app): State<AppState>,
    session: Session,
    Path(raw): Path<String>,
    form: Form,
) -> Result<Response, UiError> {
    let parent = super::path_id(&raw)?;
    let text = form.text("text");
    if text.is_empty() {
        return Err(UiError::BadRequest(
            "Type the subtask first, e.g. “Call the plumber tomorrow at 10”.".to_owned(),
        ));
    }
    let zone = zone_of(&app, &session.user_id).await?;
    let added =
        read_quick_add(text, taskstream_engine::time::now(), zone).map_err(UiError::BadRequest)?;
    let mut arguments = added.arguments();
    if added.recurrence_rule.is_some() {
        arguments["is_recurring"] = serde_json::Value::Bool(true);
    }
    let mut draft = parse_new_task(&arguments)
        .map_err(|errors| UiError::from(taskstream_engine::EngineError::Validation(errors)))?;
    draft.time_zone = zone;
    app.tasks
        .create_subtask(&session.user_id, parent, draft)
        .await?;
    Ok(Redirect::to(&format!("/tasks/{parent}#subtasks")).into_response())
}
