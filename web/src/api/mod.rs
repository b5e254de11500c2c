//! The REST API under `/api`.

pub(crate) mod accounts;
pub(crate) mod activity;
pub(crate) mod chat;
pub(crate) mod feed;
pub(crate) mod projects;
pub(crate) mod settings;
pub(crate) mod tasks;
pub(crate) mod transfer;

use axum::Router;
use axum::routing::{delete, get, patch, post, put};

use crate::AppState;

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/tasks", get(tasks::list).post(tasks::create))
        .route(
            "/api/tasks/{task_id}",
            get(tasks::get_one).put(tasks::update).delete(tasks::delete),
        )
        .route("/api/tasks/{task_id}/complete", patch(tasks::complete))
        .route("/api/projects", get(projects::list).post(projects::create))
        .route(
            "/api/projects/{project_id}",
            get(projects::get_one)
                .put(projects::rename)
                .delete(projects::delete),
        )
        .route("/api/projects/{project_id}/tasks", get(projects::tasks))
        .route("/api/tasks/{task_id}/links", get(projects::links))
        .route("/api/tasks/{task_id}/project", put(projects::set_project))
        .route(
            "/api/tasks/{task_id}/subtasks",
            get(projects::subtasks).post(projects::create_subtask),
        )
        .route("/api/audit", get(activity::audit))
        .route("/api/notifications", get(activity::notifications))
        .route("/api/notifications/{id}/read", post(activity::mark_read))
        .route("/api/notifications/{id}/snooze", post(activity::snooze))
        .route("/api/tasks/{task_id}/reminders", get(tasks::reminders))
        .route("/api/events", get(activity::events))
        .route("/api/settings", get(settings::get).put(settings::put))
        .route("/api/export", get(transfer::export))
        .route(
            "/api/calendar-feed",
            get(feed::state).post(feed::rotate).delete(feed::revoke),
        )
        .route("/ical/{file}", get(feed::calendar))
        .route(
            "/api/import",
            post(transfer::import).layer(axum::extract::DefaultBodyLimit::max(
                taskstream_engine::transfer::IMPORT_MAX_BYTES,
            )),
        )
        .route("/api/auth/token", post(accounts::token))
        .route("/api/auth/logout", post(accounts::logout))
        .route(
            "/api/auth/tokens",
            get(accounts::list_tokens).post(accounts::create_token),
        )
        .route("/api/auth/tokens/{id}", delete(accounts::revoke_token))
        .route(
            "/api/{user_id}/chat",
            post(chat::send).get(chat::history).delete(chat::clear),
        )
}
