//! The built-in web UI: server-rendered askama pages, progressively enhanced with htmx (vendored
//! in `static/vendor`). Every core flow is a plain form post followed by a redirect, so it works
//! without JavaScript; htmx only swaps fragments, and `static/app.js` adds live updates,
//! notifications and keyboard shortcuts.

mod account;
mod assets;
mod chat;
mod error;
mod form;
mod pages;
mod projects;
mod session;
mod tasks;
mod view;

use axum::Router;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::routing::{get, post};
use tower_http::compression::CompressionLayer;

use crate::AppState;

use assets::ASSET_VERSION;
use error::UiError;

/// The user's saved time zone: how every UI page reads and shows dates.
async fn zone_of(app: &AppState, user: &str) -> Result<chrono_tz::Tz, UiError> {
    Ok(app.settings.settings(user).await?.time_zone)
}

/// A rendered page as a 200 response.
fn html(page: impl askama::Template) -> Result<axum::response::Response, UiError> {
    use axum::response::IntoResponse;
    Ok(axum::response::Html(page.render()?).into_response())
}

/// How the UI is served.
#[derive(Debug, Clone, Copy, Default)]
pub struct UiOptions {
    /// A TLS-terminating proxy is in front (`--behind-https`): cookies get `Secure`.
    pub behind_https: bool,
    /// Whether a notification webhook is configured (shown in the settings).
    pub webhook_configured: bool,
}

/// Content Security Policy of every UI page: no inline script or style, nothing from elsewhere,
/// never framed.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'";

/// Adds the headers every UI response carries.
pub(crate) fn security_headers(headers: &mut HeaderMap) {
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    headers
        .entry(header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
}

async fn with_security_headers(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let mut response = next.run(request).await;
    security_headers(response.headers_mut());
    response
}

/// The UI's routes; the REST API keeps `/api`.
pub(crate) fn routes(state: &AppState) -> Router<AppState> {
    Router::new()
        .route("/", get(tasks::index))
        .route("/tasks", get(tasks::index).post(tasks::create))
        .route("/tasks/new", get(tasks::new_form))
        .route("/tasks/quick", post(tasks::quick_add))
        .route("/tasks/bulk", post(tasks::bulk))
        .route("/tasks/{id}", get(tasks::detail).post(tasks::update))
        .route("/tasks/{id}/edit", get(tasks::edit_form))
        .route("/tasks/{id}/complete", post(tasks::complete))
        .route("/tasks/{id}/reopen", post(tasks::reopen))
        .route("/tasks/{id}/project", post(projects::move_task))
        .route("/tasks/{id}/subtasks", post(projects::add_subtask))
        .route("/projects", post(projects::create))
        .route("/projects/{id}/rename", post(projects::rename))
        .route(
            "/projects/{id}/delete",
            get(projects::confirm_delete).post(projects::delete),
        )
        .route(
            "/tasks/{id}/delete",
            get(tasks::confirm_delete).post(tasks::delete),
        )
        .route("/login", get(account::login_form).post(account::login))
        .route("/signup", get(account::signup_form).post(account::signup))
        .route("/logout", post(account::logout))
        .route("/chat", get(chat::page).post(chat::send))
        .route("/chat/clear", post(chat::clear))
        .route("/notifications", get(pages::notifications))
        .route("/notifications/bell", get(pages::bell))
        .route("/notifications/{id}/read", post(pages::mark_read))
        .route("/notifications/{id}/snooze", post(pages::snooze))
        .route("/activity", get(pages::activity))
        .route("/settings", get(pages::settings).post(pages::save_settings))
        .route("/settings/password", post(account::change_password))
        .route("/settings/tokens", post(account::create_token))
        .route("/settings/calendar-feed", post(pages::rotate_feed))
        .route("/settings/calendar-feed/revoke", post(pages::revoke_feed))
        .route("/settings/tokens/{id}/revoke", post(account::revoke_token))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            session::csrf_cookie,
        ))
        .layer(axum::middleware::from_fn(with_security_headers))
        .route("/static/{name}", get(assets::serve))
        .layer(CompressionLayer::new())
}

/// The id in a page's path; one that is not a UUID names no page, so it is a 404.
fn path_id(raw: &str) -> Result<uuid::Uuid, error::UiError> {
    uuid::Uuid::parse_str(raw).map_err(|_| error::UiError::NotFound)
}
