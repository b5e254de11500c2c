//! Task pages: the list with counts, filters and quick add; the full form; the task's own page;
//! complete (with undo), delete (with confirmation) and bulk actions.

use askama::Template;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use serde_json::json;
use taskstream_engine::assistant::offline::intent::quick_add as read_quick_add;
use taskstream_engine::task::input::{parse_new_task, parse_task_patch};
use taskstream_engine::task::{DueWindow, Task, TaskQuery, TaskStatus};
use uuid::Uuid;

use super::error::UiError;
use super::form::{Form, FormKind, task_json};
use super::pages::{ActivityRow, activity_rows, chrome};
use super::session::{CsrfToken, Session};
use super::view::{Chrome, ProjectItem, TaskFormValues, TaskRow, short_date};
use super::{html, zone_of};
use crate::AppState;
use crate::extract::QueryPairs;

/// The list's filters as the URL carries them, so a filtered view can be bookmarked.
#[derive(Default, Clone)]
pub struct Filters {
    pub search: String,
    pub status: String,
    pub priority: String,
    pub tags: String,
    pub has_due_date: String,
    pub is_recurring: String,
    pub overdue: bool,
    /// "today" (due today, and overdue) or "upcoming" (the 7 days after today); "" for all.
    pub view: String,
    pub sort: String,
    pub order: String,
    /// A project's id, "none" for the tasks in no project (the Inbox), "" for all.
    pub project: String,
}

impl Filters {
    fn from_pairs(pairs: &[(String, String)]) -> Self {
        let get = |name: &str| {
            pairs
                .iter()
                .find(|(key, _)| key == name)
                .map(|(_, value)| value.trim().to_owned())
                .unwrap_or_default()
        };
        // Completed tasks are hidden unless asked for (the "All" and "Done" tabs).
        let status = match get("status").as_str() {
            "" => "active".to_owned(),
            other => other.to_owned(),
        };
        let view = match get("view").as_str() {
            view @ ("today" | "upcoming") => view.to_owned(),
            _ => String::new(),
        };
        Filters {
            search: get("search"),
            status,
            view,
            priority: get("priority"),
            tags: get("tags"),
            has_due_date: get("has_due_date"),
            is_recurring: get("is_recurring"),
            overdue: get("overdue") == "true",
            sort: get("sort"),
            order: get("order"),
            project: get("project"),
        }
    }

    /// The query for the store: everything but status and overdue, which are applied after
    /// counting so the counts describe the other filters.
    fn query(&self) -> Result<TaskQuery, String> {
        let pairs = [
            ("search", &self.search),
            ("priority", &self.priority),
            ("tags", &self.tags),
            ("has_due_date", &self.has_due_date),
            ("is_recurring", &self.is_recurring),
            ("sort", &self.sort),
            ("order", &self.order),
            ("project_id", &self.project),
        ];
        TaskQuery::from_pairs(
            pairs
                .iter()
                .filter(|(_, value)| !value.is_empty())
                .map(|(key, value)| (*key, value.as_str())),
        )
        .map_err(|errors| {
            errors
                .0
                .iter()
                .map(|error| error.msg.clone())
                .collect::<Vec<_>>()
                .join("; ")
        })
    }

    /// This filter set's URL with the status replaced (the status tabs).
    pub fn with_status(&self, status: &str) -> String {
        let mut query = form_urlencoded::Serializer::new(String::new());
        for (key, value) in [
            ("search", self.search.as_str()),
            ("status", status),
            ("priority", &self.priority),
            ("tags", &self.tags),
            ("has_due_date", &self.has_due_date),
            ("is_recurring", &self.is_recurring),
            ("overdue", if self.overdue { "true" } else { "" }),
            ("view", &self.view),
            ("sort", &self.sort),
            ("order", &self.order),
            ("project", &self.project),
        ] {
            if !value.is_empty() {
                query.append_pair(key, value);
            }
        }
        let query = query.finish();
        if query.is_empty() {
            "/".to_owned()
        } else {
            format!("/?{query}")
        }
    }

    /// This filter set's URL showing the view `view` ("" for the whole list).
    pub fn with_view(&self, view: &str) -> String {
        let mut filters = Filters {
            view: view.to_owned(),
            ..self.clone()
        };
        if !view.is_empty() {
            filters.status = "active".to_owned();
        }
        filters.with_status(&filters.status.clone())
    }

    /// This filter set's URL showing one project ("none": the Inbox; "": every task).
    pub fn with_project(&self, project: &str) -> String {
        let filters = Filters {
            project: project.to_owned(),
            ..self.clone()
        };
        filters.with_status(&filters.status)
    }

    /// Whether the task belongs in the chosen view: Today holds what is due today and what is
    /// overdue (open), Upcoming what is due on the 7 days after today.
    fn in_view(&self, task: &Task, now: DateTime<Utc>, zone: Tz) -> bool {
        let due = task.due_date;
        match self.view.as_str() {
            "today" => due.is_some_and(|due| {
                DueWindow::Today.contains(due, now, zone)
                    || (task.status != TaskStatus::Completed
                        && DueWindow::Overdue.contains(due, now, zone))
            }),
            "upcoming" => due.is_some_and(|due| DueWindow::Upcoming.contains(due, now, zone)),
            _ => true,
        }
    }

    fn keeps(&self, task: &Task, now: DateTime<Utc>) -> bool {
        let status_ok = match self.status.as_str() {
            "active" => task.status != TaskStatus::Completed,
            "pending" => task.status == TaskStatus::Pending,
            "in_progress" => task.status == TaskStatus::InProgress,
            "completed" => task.status == TaskStatus::Completed,
            _ => true,
        };
        status_ok && (!self.overdue || is_overdue(task, now))
    }
}

fn is_overdue(task: &Task, now: DateTime<Utc>) -> bool {
    task.status != TaskStatus::Completed && task.due_date.is_some_and(|due| due < now)
}

/// How many tasks each status tab holds.
#[derive(Default)]
pub struct Counts {
    pub all: usize,
    pub active: usize,
    pub pending: usize,
    pub in_progress: usize,
    pub completed: usize,
    pub overdue: usize,
}

/// The line shown after an action, with its undo.
pub struct Flash {
    pub message: String,
    /// `(task id, next occurrence id)` to reopen a completed task.
    pub undo_complete: Option<(String, String)>,
}

#[derive(Template)]
#[template(path = "tasks.html")]
struct TasksPage {
    chrome: Chrome,
    rows: Vec<TaskRow>,
    counts: Counts,
    filters: Filters,
    flash: Option<Flash>,
    notice: Option<String>,
    quick_text: String,
    tabs: Vec<(&'static str, &'static str, usize, String)>,
    /// The list, Today and Upcoming: (view, label, URL).
    views: Vec<(&'static str, &'static str, String)>,
    /// The sidebar: the user's projects, and the project shown (if one is).
    projects: Vec<ProjectItem>,
    project: Option<ProjectItem>,
    all_url: String,
    inbox_url: String,
}

/// `GET /`: the task list.
pub(crate) async fn index(
    State(app): State<AppState>,
    session: Session,
    csrf: CsrfToken,
    headers: HeaderMap,
    QueryPairs(pairs): QueryPairs,
) -> Result<Response, UiError> {
    let mut filters = Filters::from_pairs(&pairs);
    let zone = zone_of(&app, &session.user_id).await?;
    let now = taskstream_engine::time::now();
    let summaries = app.tasks.projects(&session.user_id).await?;
    let mut projects: Vec<ProjectItem> = summaries.iter().map(ProjectItem::of).collect();
    let mut notice = None;
    let project = match filters.project.as_str() {
        "" | "none" => None,
        id => match projects.iter().find(|project| project.id == id) {
            Some(project) => Some(project.clone()),
            None => {
                notice =
                    Some("That project does not exist (any more); showing every task.".to_owned());
                filters.project.clear();
                None
            }
        },
    };
    let query = match filters.query() {
        Ok(query) => query,
        Err(message) => {
            notice = Some(message);
            TaskQuery::default()
        }
    };
    let mut tasks = app.tasks.list(&session.user_id, &query).await?;
    tasks.retain(|task| filters.in_view(task, now, zone));
    if !filters.view.is_empty() && filters.sort.is_empty() {
        tasks.sort_by_key(|task| task.due_date);
    }
    let mut counts = Counts::default();
    for task in &tasks {
        counts.all += 1;
        match task.status {
            TaskStatus::Pending => counts.pending += 1,
            TaskStatus::InProgress => counts.in_progress += 1,
            TaskStatus::Completed => counts.completed += 1,
        }
        if is_overdue(task, now) {
            counts.overdue += 1;
        }
    }
    counts.active = counts.pending + counts.in_progress;
    let shown: Vec<&Task> = tasks
        .iter()
        .filter(|task| filters.keeps(task, now))
        .collect();
    let listing = Listing {
        shown: &shown,
        loaded: &tasks,
        projects: &projects,
        checklist_order: filters.sort.is_empty(),
    };
    let rows = nest(&app, &session.user_id, listing, zone, now).await?;
    // The sidebar keeps the chosen view and filters when it switches project.
    for item in &mut projects {
        item.url = filters.with_project(&item.id);
    }
    let all_url = filters.with_project("");
    let inbox_url = filters.with_project("none");
    let flash = flash(&app, &session.user_id, &pairs, zone, now).await;
    let views = vec![
        ("", "Tasks", filters.with_view("")),
        ("today", "Today", filters.with_view("today")),
        ("upcoming", "Upcoming", filters.with_view("upcoming")),
    ];
    let tabs = vec![
        ("all", "All", counts.all, filters.with_status("all")),
        (
            "active",
            "Active",
            counts.active,
            filters.with_status("active"),
        ),
        (
            "pending",
            "To do",
            counts.pending,
            filters.with_status("pending"),
        ),
        (
            "in_progress",
            "In progress",
            counts.in_progress,
            filters.with_status("in_progress"),
        ),
        (
            "completed",
            "Done",
            counts.completed,
            filters.with_status("completed"),
        ),
    ];
    let page = TasksPage {
        chrome: chrome(&app, &session, &csrf, &headers, "Tasks", "tasks").await?,
        rows,
        counts,
        filters,
        flash,
        notice,
        quick_text: String::new(),
        tabs,
        views,
        all_url,
        inbox_url,
        projects,
        project,
    };
    html(page)
}

/// What the list's rows are made of.
struct Listing<'a> {
    /// The tasks the filters keep, in the list's order.
    shown: &'a [&'a Task],
    /// Every task loaded for the page (where a shown subtask's parent is looked up first).
    loaded: &'a [Task],
    projects: &'a [ProjectItem],
    /// No sort was chosen: subtasks under a parent read oldest first, as a checklist.
    checklist_order: bool,
}

/// The list's rows: each subtask shown under its parent when the parent is shown too, else on
/// its own naming its parent; parents with their subtasks' progress; project names.
async fn nest(
    app: &AppState,
    user: &str,
    listing: Listing<'_>,
    zone: Tz,
    now: DateTime<Utc>,
) -> Result<Vec<TaskRow>, UiError> {
    let Listing {
        shown,
        loaded,
        projects,
        checklist_order,
    } = listing;
    let ids: std::collections::HashSet<Uuid> = shown.iter().map(|task| task.id).collect();
    let parents: Vec<Uuid> = shown
        .iter()
        .filter(|task| task.subtask_of.is_none())
        .map(|task| task.id)
        .collect();
    let progress = app.tasks.subtask_counts(user, parents).await?;
    let project_name = |id: &str| {
        projects
            .iter()
            .find(|project| project.id == id)
            .map(|project| project.name.clone())
            .unwrap_or_default()
    };
    let row = |task: &Task| {
        let mut row = TaskRow::new(task, zone, now)
            .with_progress(progress.get(&task.id).copied().unwrap_or_default());
        row.project = project_name(&row.project_id);
        row
    };
    let mut nested: std::collections::HashMap<Uuid, Vec<&Task>> = Default::default();
    for task in shown {
        if let Some(parent) = task.subtask_of.filter(|parent| ids.contains(parent)) {
            nested.entry(parent).or_default().push(task);
        }
    }
    let mut children: std::collections::HashMap<Uuid, Vec<TaskRow>> = Default::default();
    for (parent, mut subtasks) in nested {
        if checklist_order {
            subtasks.sort_by_key(|task| (task.created_at, task.id));
        }
        children.insert(parent, subtasks.into_iter().map(&row).collect());
    }
    let mut rows = Vec::with_capacity(shown.len());
    for task in shown {
        if task.subtask_of.is_some_and(|parent| ids.contains(&parent)) {
            continue;
        }
        let mut top = row(task);
        top.subtasks = children.remove(&task.id).unwrap_or_default();
        if let Some(parent) = task.subtask_of {
            top.parent_title = match loaded.iter().find(|other| other.id == parent) {
                Some(other) => other.title.clone(),
                None => app
                    .tasks
                    .get(user, parent)
                    .await
                    .map(|other| other.title)
                    .unwrap_or_default(),
            };
        }
        rows.push(top);
    }
    Ok(rows)
}

async fn flash(
    app: &AppState,
    user: &str,
    pairs: &[(String, String)],
    zone: Tz,
    now: DateTime<Utc>,
) -> Option<Flash> {
    let get = |name: &str| {
        pairs
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    };
    if let Some(done) = get("done").and_then(|id| Uuid::parse_str(id).ok()) {
        let task = app.tasks.get(user, done).await.ok()?;
        let next = match get("next").and_then(|id| Uuid::parse_str(id).ok()) {
            Some(id) => app.tasks.get(user, id).await.ok(),
            None => None,
        };
        let message = match next.as_ref().and_then(|next| next.due_date) {
            Some(due) => format!(
                "Completed “{}”. Next on {}.",
                task.title,
                short_date(due, zone, now)
            ),
            None => format!("Completed “{}”.", task.title),
        };
        return Some(Flash {
            message,
            undo_complete: Some((
                task.id.to_string(),
                next.map(|next| next.id.to_string()).unwrap_or_default(),
            )),
        });
    }
    let message = match get("flash")? {
        "added" => format!("Added “{}”.", get("title").unwrap_or("the task")),
        "saved" => "Saved.".to_owned(),
        "deleted" => format!("Deleted “{}”.", get("title").unwrap_or("the task")),
        "reopened" => "Reopened; the next occurrence was removed.".to_owned(),
        "bulk_completed" => format!("Completed {} tasks.", get("n").unwrap_or("the")),
        "bulk_deleted" => format!("Deleted {} tasks.", get("n").unwrap_or("the")),
        "project_added" => format!("Created the project “{}”.", get("title").unwrap_or("")),
        "project_renamed" => format!("Renamed the project to “{}”.", get("title").unwrap_or("")),
        "project_deleted" => format!(
            "Deleted the project “{}”; its tasks are kept.",
            get("title").unwrap_or("")
        ),
        _ => return None,
    };
    Some(Flash {
        message,
        undo_complete: None,
    })
}

fn flash_url(kind: &str, title: Option<&str>) -> String {
    flash_url_in(kind, title, None)
}

/// [`flash_url`] on the list of one project.
pub(super) fn flash_url_in(kind: &str, title: Option<&str>, project: Option<Uuid>) -> String {
    let mut query = form_urlencoded::Serializer::new(String::new());
    query.append_pair("flash", kind);
    if let Some(title) = title {
        query.append_pair("title", title);
    }
    if let Some(project) = project {
        query.append_pair("project", &project.to_string());
    }
    format!("/?{}", query.finish())
}

/// A project id a form sent (`project_id`, or `project` for the quick add): `None` for "",
/// an error for anything but a UUID.
pub(super) fn form_project(form: &Form, field: &str) -> Result<Option<Uuid>, String> {
    match form.get(field).unwrap_or("") {
        "" => Ok(None),
        text => Uuid::parse_str(text)
            .map(Some)
            .map_err(|_| "project: choose one of your projects".to_owned()),
    }
}

/// The list page again, with the quick-add text kept and the reason it was refused.
async fn quick_refused(
    app: &AppState,
    session: &Session,
    csrf: &CsrfToken,
    headers: &HeaderMap,
    text: &str,
    message: String,
) -> Result<Response, UiError> {
    let page = TasksPage {
        chrome: chrome(app, session, csrf, headers, "Tasks", "tasks").await?,
        rows: Vec::new(),
        counts: Counts::default(),
        filters: Filters::default(),
        flash: None,
        notice: Some(message),
        quick_text: text.to_owned(),
        tabs: Vec::new(),
        views: Vec::new(),
        projects: Vec::new(),
        project: None,
        all_url: "/".to_owned(),
        inbox_url: "/?project=none".to_owned(),
    };
    Ok((StatusCode::UNPROCESSABLE_ENTITY, Html(page.render()?)).into_response())
}

/// `POST /tasks/quick`: one line in the assistant's language.
pub(crate) async fn quick_add(
    State(app): State<AppState>,
    session: Session,
    csrf: CsrfToken,
    headers: HeaderMap,
    form: Form,
) -> Result<Response, UiError> {
    let text = form.text("text");
    let zone = zone_of(&app, &session.user_id).await?;
    let now = taskstream_engine::time::now();
    if text.is_empty() {
        let message = "Type a task first, e.g. “Pay rent every month on the 1st at 9 #home !high”.";
        return quick_refused(&app, &session, &csrf, &headers, text, message.to_owned()).await;
    }
    let added = match read_quick_add(text, now, zone) {
        Ok(added) => added,
        Err(message) => {
            return quick_refused(&app, &session, &csrf, &headers, text, message).await;
        }
    };
    let mut arguments = added.arguments();
    // The tool arguments name only the rule; the task API also wants the flag.
    if added.recurrence_rule.is_some() {
        arguments["is_recurring"] = serde_json::Value::Bool(true);
    }
    let mut draft = match parse_new_task(&arguments) {
        Ok(draft) => draft,
        Err(errors) => {
            let message = messages(&errors).join("; ");
            return quick_refused(&app, &session, &csrf, &headers, text, message).await;
        }
    };
    draft.time_zone = zone;
    draft.project_id = match form_project(&form, "project") {
        Ok(project) => project,
        Err(message) => {
            return quick_refused(&app, &session, &csrf, &headers, text, message).await;
        }
    };
    let task = app.tasks.create(&session.user_id, draft).await?;
    Ok(Redirect::to(&flash_url_in("added", Some(&task.title), task.project_id)).into_response())
}

#[derive(Template)]
#[template(path = "task_form.html")]
struct TaskFormPage {
    chrome: Chrome,
    /// `None` for a new task.
    task_id: Option<String>,
    values: TaskFormValues,
    errors: Vec<String>,
    zone: String,
    /// The projects the task can be put in.
    projects: Vec<ProjectItem>,
}

async fn project_items(app: &AppState, user: &str) -> Result<Vec<ProjectItem>, UiError> {
    Ok(app
        .tasks
        .projects(user)
        .await?
        .iter()
        .map(ProjectItem::of)
        .collect())
}

/// `GET /tasks/new` (`?project=<id>` chooses the project).
pub(crate) async fn new_form(
    State(app): State<AppState>,
    session: Session,
    csrf: CsrfToken,
    headers: HeaderMap,
    QueryPairs(pairs): QueryPairs,
) -> Result<Response, UiError> {
    let zone = zone_of(&app, &session.user_id).await?;
    let projects = project_items(&app, &session.user_id).await?;
    let mut values = TaskFormValues::default();
    if let Some((_, id)) = pairs.iter().find(|(key, _)| key == "project")
        && projects.iter().any(|project| &project.id == id)
    {
        values.project_id = id.clone();
    }
    html(TaskFormPage {
        chrome: chrome(&app, &session, &csrf, &headers, "New task", "new").await?,
        task_id: None,
        values,
        errors: Vec::new(),
        zone: zone.name().to_owned(),
        projects,
    })
}

#[allow(clippy::too_many_arguments)]
async fn form_refused(
    app: &AppState,
    session: &Session,
    csrf: &CsrfToken,
    headers: &HeaderMap,
    task_id: Option<String>,
    form: &Form,
    errors: Vec<String>,
    zone: Tz,
) -> Result<Response, UiError> {
    let page = TaskFormPage {
        chrome: chrome(app, session, csrf, headers, "Check the task", "new").await?,
        task_id,
        values: TaskFormValues::from_form(form),
        errors,
        zone: zone.name().to_owned(),
        projects: project_items(app, &session.user_id).await?,
    };
    Ok((StatusCode::UNPROCESSABLE_ENTITY, Html(page.render()?)).into_response())
}

/// Each refusal as "field: why", in the form's words.
fn messages(errors: &taskstream_engine::ValidationErrors) -> Vec<String> {
    errors
        .0
        .iter()
        .map(|error| match error.loc.last() {
            Some(taskstream_engine::Loc::Key(field)) if field != "body" => {
                format!("{}: {}", field.replace('_', " "), error.msg)
            }
            _ => error.msg.clone(),
        })
        .collect()
}

fn engine_refusal(error: taskstream_engine::EngineError) -> Result<Vec<String>, UiError> {
    match error {
        taskstream_engine::EngineError::Validation(errors) => Ok(messages(&errors)),
        taskstream_engine::EngineError::ReminderRequiresDueDate => {
            Ok(vec!["A reminder needs a due date.".to_owned()])
        }
        taskstream_engine::EngineError::ProjectNotFound => Ok(vec![
            "project: that project does not exist (any more).".to_owned(),
        ]),
        taskstream_engine::EngineError::Conflict(message) => Ok(vec![message]),
        other => Err(other.into()),
    }
}

/// Validates the task form and creates (`target` None) or updates the task: the saved task, or
/// the reasons to show beside the form.
async fn apply_form(
    app: &AppState,
    user: &str,
    form: &Form,
    zone: Tz,
    target: Option<Uuid>,
) -> Result<Result<Task, Vec<String>>, UiError> {
    let kind = if target.is_some() {
        FormKind::Edit
    } else {
        FormKind::Create
    };
    let body = match task_json(form, zone, kind) {
        Ok(body) => body,
        Err(message) => return Ok(Err(vec![message])),
    };
    // A subtask's form has no project choice (it is in its parent's project).
    let chosen = match form_project(form, "project_id") {
        Ok(project) => project,
        Err(message) => return Ok(Err(vec![message])),
    };
    let moves = form.get("project_id").is_some();
    let saved = match target {
        None => {
            let mut draft = match parse_new_task(&body) {
                Ok(draft) => draft,
                Err(errors) => return Ok(Err(messages(&errors))),
            };
            draft.time_zone = zone;
            draft.project_id = chosen;
            app.tasks.create(user, draft).await
        }
        Some(id) => {
            let mut patch = match parse_task_patch(&body) {
                Ok(patch) => patch,
                Err(errors) => return Ok(Err(messages(&errors))),
            };
            patch.time_zone = Some(zone);
            let current = app.tasks.get(user, id).await?;
            // Moving first: a refused move leaves the rest of the form unsaved too.
            let moved = if moves && current.subtask_of.is_none() && current.project_id != chosen {
                app.tasks.set_project(user, id, chosen).await.map(|_| ())
            } else {
                Ok(())
            };
            match moved {
                Ok(()) => app.tasks.update(user, id, patch).await,
                Err(error) => Err(error),
            }
        }
    };
    match saved {
        Ok(task) => Ok(Ok(task)),
        Err(error) => engine_refusal(error).map(Err),
    }
}

/// `POST /tasks`: the full form.
pub(crate) async fn create(
    State(app): State<AppState>,
    session: Session,
    csrf: CsrfToken,
    headers: HeaderMap,
    form: Form,
) -> Result<Response, UiError> {
    let zone = zone_of(&app, &session.user_id).await?;
    match apply_form(&app, &session.user_id, &form, zone, None).await? {
        Ok(task) => Ok(
            Redirect::to(&flash_url_in("added", Some(&task.title), task.project_id))
                .into_response(),
        ),
        Err(errors) => {
            form_refused(&app, &session, &csrf, &headers, None, &form, errors, zone).await
        }
    }
}

/// `GET /tasks/{id}/edit`.
pub(crate) async fn edit_form(
    State(app): State<AppState>,
    session: Session,
    csrf: CsrfToken,
    headers: HeaderMap,
    Path(raw): Path<String>,
) -> Result<Response, UiError> {
    let task = app
        .tasks
        .get(&session.user_id, super::path_id(&raw)?)
        .await?;
    let zone = zone_of(&app, &session.user_id).await?;
    html(TaskFormPage {
        chrome: chrome(&app, &session, &csrf, &headers, "Edit task", "tasks").await?,
        task_id: Some(task.id.to_string()),
        values: TaskFormValues::of(&task, zone),
        errors: Vec::new(),
        zone: zone.name().to_owned(),
        projects: project_items(&app, &session.user_id).await?,
    })
}

/// `POST /tasks/{id}`: save the edit form (completing through it is a real completion).
pub(crate) async fn update(
    State(app): State<AppState>,
    session: Session,
    csrf: CsrfToken,
    headers: HeaderMap,
    Path(raw): Path<String>,
    form: Form,
) -> Result<Response, UiError> {
    let id = super::path_id(&raw)?;
    let zone = zone_of(&app, &session.user_id).await?;
    match apply_form(&app, &session.user_id, &form, zone, Some(id)).await? {
        Ok(task) => Ok(Redirect::to(&format!("/tasks/{}?saved=1", task.id)).into_response()),
        Err(errors) => {
            let shown = Some(id.to_string());
            form_refused(&app, &session, &csrf, &headers, shown, &form, errors, zone).await
        }
    }
}

#[derive(Template)]
#[template(path = "task_detail.html")]
struct TaskDetailPage {
    chrome: Chrome,
    task: TaskRow,
    schedule: Vec<(String, &'static str, String)>,
    activity: Vec<ActivityRow>,
    saved: bool,
    /// The task's subtasks, oldest first (a subtask has none and gets no form to add one).
    subtasks: Vec<TaskRow>,
    can_have_subtasks: bool,
    /// The projects it can be moved to.
    projects: Vec<ProjectItem>,
}

/// `GET /tasks/{id}`: the task, its reminders and its history.
pub(crate) async fn detail(
    State(app): State<AppState>,
    session: Session,
    csrf: CsrfToken,
    headers: HeaderMap,
    Path(raw): Path<String>,
    QueryPairs(pairs): QueryPairs,
) -> Result<Response, UiError> {
    let task = app
        .tasks
        .get(&session.user_id, super::path_id(&raw)?)
        .await?;
    let zone = zone_of(&app, &session.user_id).await?;
    let now = taskstream_engine::time::now();
    let schedule = app
        .tasks
        .store()
        .reminder_history(task.id)
        .await?
        .iter()
        .map(|row| {
            let state = match (row.fired_at, row.missed) {
                (Some(_), _) => "fired",
                (None, true) => "missed",
                (None, false) => "pending",
            };
            (short_date(row.fire_at, zone, now), state, row.kind.clone())
        })
        .collect();
    let activity = activity_rows(&app, &session.user_id, Some(task.id.to_string()), zone).await?;
    let projects = project_items(&app, &session.user_id).await?;
    let subtasks = if task.subtask_of.is_none() {
        app.tasks.subtasks(&session.user_id, task.id).await?
    } else {
        Vec::new()
    };
    let done = subtasks
        .iter()
        .filter(|sub| sub.status == TaskStatus::Completed)
        .count() as u64;
    let mut row =
        TaskRow::new(&task, zone, now).with_progress(taskstream_engine::project::SubtaskCount {
            total: subtasks.len() as u64,
            completed: done,
        });
    row.project = projects
        .iter()
        .find(|project| project.id == row.project_id)
        .map(|project| project.name.clone())
        .unwrap_or_default();
    if let Some(parent) = task.subtask_of {
        row.parent_title = app
            .tasks
            .get(&session.user_id, parent)
            .await
            .map(|parent| parent.title)
            .unwrap_or_default();
    }
    html(TaskDetailPage {
        chrome: chrome(&app, &session, &csrf, &headers, &task.title, "tasks").await?,
        task: row,
        schedule,
        activity,
        saved: pairs.iter().any(|(key, _)| key == "saved"),
        subtasks: subtasks
            .iter()
            .map(|sub| TaskRow::new(sub, zone, now))
            .collect(),
        can_have_subtasks: task.subtask_of.is_none(),
        projects,
    })
}

/// Where a form asks to go back to (`back`): only a task's own page of this site.
fn back_to(form: &Form) -> Option<String> {
    let back = form.get("back")?;
    let id = back.strip_prefix("/tasks/")?;
    Uuid::parse_str(id).ok().map(|id| format!("/tasks/{id}"))
}

/// The project a list form was showing (`project`: an id or "none"), to return to it.
fn shown_project(form: &Form) -> Option<String> {
    match form.get("project")? {
        "none" => Some("none".to_owned()),
        id => Uuid::parse_str(id).ok().map(|id| id.to_string()),
    }
}

/// `POST /tasks/{id}/complete` (`back`: a task page to return to, e.g. a subtask's parent).
pub(crate) async fn complete(
    State(app): State<AppState>,
    session: Session,
    Path(raw): Path<String>,
    form: Form,
) -> Result<Response, UiError> {
    let completion = app
        .tasks
        .complete(&session.user_id, super::path_id(&raw)?)
        .await?;
    if let Some(back) = back_to(&form) {
        return Ok(Redirect::to(&format!("{back}#subtasks")).into_response());
    }
    let mut url = format!("/?done={}", completion.completed.id);
    if let Some(next) = &completion.next {
        url.push_str(&format!("&next={}", next.id));
    }
    if let Some(project) = shown_project(&form) {
        url.push_str(&format!("&project={project}"));
    }
    Ok(Redirect::to(&url).into_response())
}

/// `POST /tasks/{id}/reopen`: undo a completion, removing the occurrence it created.
pub(crate) async fn reopen(
    State(app): State<AppState>,
    session: Session,
    Path(raw): Path<String>,
    form: Form,
) -> Result<Response, UiError> {
    let id = super::path_id(&raw)?;
    let patch = parse_task_patch(&json!({ "status": "pending" }))
        .map_err(|_| UiError::Internal("reopen patch".to_owned()))?;
    app.tasks.update(&session.user_id, id, patch).await?;
    if let Some(next) = form.get("next").and_then(|next| Uuid::parse_str(next).ok())
        && let Ok(task) = app.tasks.get(&session.user_id, next).await
        && task.parent_task_id == Some(id)
    {
        app.tasks.delete(&session.user_id, next).await?;
    }
    if let Some(back) = back_to(&form) {
        return Ok(Redirect::to(&format!("{back}#subtasks")).into_response());
    }
    Ok(Redirect::to(&flash_url("reopened", None)).into_response())
}

#[derive(Template)]
#[template(path = "confirm_delete.html")]
struct ConfirmDeletePage {
    chrome: Chrome,
    tasks: Vec<TaskRow>,
    /// The single task's id, or empty for a bulk delete.
    single: String,
}

/// `GET /tasks/{id}/delete`: are you sure?
pub(crate) async fn confirm_delete(
    State(app): State<AppState>,
    session: Session,
    csrf: CsrfToken,
    headers: HeaderMap,
    Path(raw): Path<String>,
) -> Result<Response, UiError> {
    let task = app
        .tasks
        .get(&session.user_id, super::path_id(&raw)?)
        .await?;
    let zone = zone_of(&app, &session.user_id).await?;
    let now = taskstream_engine::time::now();
    let counts = app
        .tasks
        .subtask_counts(&session.user_id, vec![task.id])
        .await?;
    let row = TaskRow::new(&task, zone, now)
        .with_progress(counts.get(&task.id).copied().unwrap_or_default());
    html(ConfirmDeletePage {
        chrome: chrome(&app, &session, &csrf, &headers, "Delete task", "tasks").await?,
        single: task.id.to_string(),
        tasks: vec![row],
    })
}

/// `POST /tasks/{id}/delete`.
pub(crate) async fn delete(
    State(app): State<AppState>,
    session: Session,
    Path(raw): Path<String>,
    _form: Form,
) -> Result<Response, UiError> {
    let task = app
        .tasks
        .delete(&session.user_id, super::path_id(&raw)?)
        .await?;
    Ok(Redirect::to(&flash_url("deleted", Some(&task.title))).into_response())
}

/// Most tasks one bulk action takes.
const BULK_MAX: usize = 500;

/// `POST /tasks/bulk`: complete or delete the ticked tasks (delete asks first).
pub(crate) async fn bulk(
    State(app): State<AppState>,
    session: Session,
    csrf: CsrfToken,
    headers: HeaderMap,
    form: Form,
) -> Result<Response, UiError> {
    let ids: Vec<Uuid> = form
        .all("ids")
        .iter()
        .filter_map(|id| Uuid::parse_str(id).ok())
        .take(BULK_MAX)
        .collect();
    if ids.is_empty() {
        return Err(UiError::BadRequest(
            "Tick at least one task first.".to_owned(),
        ));
    }
    match form.text("action") {
        "complete" => {
            let mut done = 0;
            for id in &ids {
                app.tasks.complete(&session.user_id, *id).await?;
                done += 1;
            }
            let mut url = format!("/?flash=bulk_completed&n={done}");
            if let Some(project) = shown_project(&form) {
                url.push_str(&format!("&project={project}"));
            }
            Ok(Redirect::to(&url).into_response())
        }
        "delete" if form.get("confirmed") == Some("1") => {
            let mut done = 0;
            for id in &ids {
                match app.tasks.delete(&session.user_id, *id).await {
                    Ok(_) => done += 1,
                    // A ticked subtask already went with its ticked parent.
                    Err(taskstream_engine::EngineError::NotFound) => {}
                    Err(error) => return Err(error.into()),
                }
            }
            let mut url = format!("/?flash=bulk_deleted&n={done}");
            if let Some(project) = shown_project(&form) {
                url.push_str(&format!("&project={project}"));
            }
            Ok(Redirect::to(&url).into_response())
        }
        "delete" => {
            let zone = zone_of(&app, &session.user_id).await?;
            let now = taskstream_engine::time::now();
            let counts = app
                .tasks
                .subtask_counts(&session.user_id, ids.clone())
                .await?;
            let mut tasks = Vec::new();
            for id in &ids {
                let task = app.tasks.get(&session.user_id, *id).await?;
                tasks.push(
                    TaskRow::new(&task, zone, now)
                        .with_progress(counts.get(id).copied().unwrap_or_default()),
                );
            }
            html(ConfirmDeletePage {
                chrome: chrome(&app, &session, &csrf, &headers, "Delete tasks", "tasks").await?,
                tasks,
                single: String::new(),
            })
        }
        other => Err(UiError::BadRequest(format!("Unknown action '{other}'."))),
    }
}

/// Renders the task list for `tasks` as `GET /` would (the benchmark and the escaping tests
/// use it without a server).
#[cfg(test)]
fn render_task_list(tasks: &[Task], zone: Tz, now: DateTime<Utc>) -> Result<String, UiError> {
    #[derive(Template)]
    #[template(path = "task_list.html")]
    struct TaskList {
        rows: Vec<TaskRow>,
        csrf: String,
        filters: Filters,
    }
    Ok(TaskList {
        filters: Filters::default(),
        rows: tasks
            .iter()
            .map(|task| TaskRow::new(task, zone, now))
            .collect(),
        csrf: String::new(),
    }
    .render()?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use taskstream_engine::task::{Priority, RecurrenceFrom, RecurrenceTrigger};

    fn task(n: usize, now: DateTime<Utc>) -> Task {
        Task {
            id: Uuid::now_v7(),
            user_id: "u".to_owned(),
            title: format!("Task number {n} with a realistic title"),
            description: Some("a description".to_owned()),
            status: if n.is_multiple_of(5) {
                TaskStatus::Completed
            } else {
                TaskStatus::Pending
            },
            priority: [Priority::Low, Priority::Medium, Priority::High][n % 3],
            due_date: n
                .is_multiple_of(2)
                .then(|| now + chrono::Duration::hours(n as i64 - 500)),
            created_at: now,
            updated_at: now,
            tags: vec!["home".to_owned(), format!("t{}", n % 7)],
            reminder_offset_minutes: n.is_multiple_of(4).then_some(30),
            remind_at: None,
            reminders: Vec::new(),
            is_recurring: n.is_multiple_of(6),
            recurrence_rule: n
                .is_multiple_of(6)
                .then_some(taskstream_engine::recurrence::Recurrence::Weekly),
            recurrence_from: RecurrenceFrom::Due,
            recurrence_trigger: RecurrenceTrigger::OnComplete,
            series_anchor: None,
            occurrence_index: 0,
            time_zone: Tz::UTC,
            parent_task_id: None,
            project_id: None,
            subtask_of: None,
        }
    }

    #[test]
    fn titles_descriptions_and_tags_render_as_text() {
        let now = Utc::now();
        let mut evil = task(1, now);
        evil.title = "<script>alert('x')</script>".to_owned();
        evil.tags = vec!["\"><img src=x onerror=alert(1)>".to_owned()];
        let html = render_task_list(&[evil], Tz::UTC, now).unwrap_or_default();
        assert!(!html.contains("<script>"), "{html}");
        assert!(!html.contains("<img"), "{html}");
        assert!(html.contains("&#60;script&#62;"), "{html}");
    }

    #[test]
    fn overdue_and_recurring_tasks_are_marked() {
        let now = Utc::now();
        let mut late = task(1, now);
        late.due_date = Some(now - chrono::Duration::hours(1));
        late.is_recurring = true;
        late.recurrence_rule = Some(taskstream_engine::recurrence::Recurrence::Daily);
        let html = render_task_list(&[late], Tz::UTC, now).unwrap_or_default();
        assert!(html.contains("overdue"), "{html}");
        assert!(html.contains("↻ daily"), "{html}");
    }

    /// `cargo test -p taskstream-web --release --lib -- --ignored --nocapture bench_render`
    #[test]
    #[ignore = "benchmark: prints figures"]
    fn bench_render_task_list() {
        let now = Utc::now();
        let tasks: Vec<Task> = (0..1000).map(|n| task(n, now)).collect();
        let zone: Tz = "Europe/Berlin".parse().unwrap_or(Tz::UTC);
        let mut times = Vec::new();
        let mut bytes = 0;
        for _ in 0..500 {
            let started = std::time::Instant::now();
            let html = render_task_list(&tasks, zone, now).unwrap_or_default();
            times.push(started.elapsed());
            bytes = html.len();
        }
        times.sort();
        let at = |q: f64| times[((times.len() as f64 * q) as usize).min(times.len() - 1)];
        println!(
            "render 1,000 tasks ({bytes} bytes of HTML), 500 runs: p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
            at(0.5).as_secs_f64() * 1e3,
            at(0.99).as_secs_f64() * 1e3,
            times[times.len() - 1].as_secs_f64() * 1e3
        );
        assert!(bytes > 100_000, "1,000 rows were rendered");
    }
}
