//! The per-user calendar feed: `GET /ical/{token}.ics` serves the user's tasks as iCalendar
//! VTODOs to calendar and to-do apps, which cannot send a Bearer token; the secret in the URL
//! is the credential. It is made, replaced and turned off through `/api/calendar-feed` (and
//! Settings in the web UI); only its keyed hash is stored, so the URL is shown once.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use taskstream_engine::task::{TaskQuery, TaskStatus};
use utoipa::ToSchema;

use crate::AppState;
use crate::auth::AuthUser;
use crate::error::ApiError;

/// How long completed tasks stay in the feed.
const COMPLETED_SHOWN_DAYS: i64 = 30;
/// Most tasks one feed lists (the soonest due first).
const FEED_MAX_TASKS: usize = 5000;

/// The feed as `GET /api/calendar-feed` describes it (never the secret).
#[derive(Debug, Serialize, ToSchema)]
pub struct FeedState {
    /// Whether the user has a feed URL.
    pub enabled: bool,
    /// When the current URL was made (RFC 3339 UTC).
    pub created_at: Option<String>,
}

/// A new feed URL, shown once.
#[derive(Debug, Serialize, ToSchema)]
pub struct NewFeed {
    /// The full URL for calendar apps (from this request's `Host`).
    pub url: String,
    /// The same, as a path on this server: `/ical/{token}.ics`.
    pub path: String,
    /// The secret in it (`cal_…`).
    pub token: String,
    pub created_at: String,
}

fn account_error(error: taskstream_engine::accounts::AccountError) -> ApiError {
    ApiError::detail(StatusCode::INTERNAL_SERVER_ERROR, error.to_string())
}

/// The full URL of `path` as the client reached this server.
pub(crate) fn absolute_url(headers: &HeaderMap, behind_https: bool, path: &str) -> String {
    let scheme = if behind_https { "https" } else { "http" };
    match headers
        .get(header::HOST)
        .and_then(|host| host.to_str().ok())
        .filter(|host| !host.is_empty() && !host.contains(['/', ' ', '@']))
    {
        Some(host) => format!("{scheme}://{host}{path}"),
        None => path.to_owned(),
    }
}

/// Whether the caller has a calendar feed.
#[utoipa::path(get, path = "/api/calendar-feed", tag = "data", security(("bearer" = [])),
    responses((status = 200, body = FeedState), (status = 401)))]
pub(crate) async fn state(
    State(app): State<AppState>,
    AuthUser(user): AuthUser,
) -> Result<Json<FeedState>, ApiError> {
    let created = app
        .accounts
        .feed_token_created(&user)
        .await
        .map_err(account_error)?;
    Ok(Json(FeedState {
        enabled: created.is_some(),
        created_at: created.map(taskstream_engine::time::format_utc),
    }))
}

/// A new calendar feed URL for the caller; the previous one stops working. Shown once.
#[utoipa::path(post, path = "/api/calendar-feed", tag = "data", security(("bearer" = [])),
    responses((status = 201, body = NewFeed), (status = 401)))]
pub(crate) async fn rotate(
    State(app): State<AppState>,
    AuthUser(user): AuthUser,
    headers: HeaderMap,
) -> Result<(StatusCode, Json<NewFeed>), ApiError> {
    let (token, created) = app
        .accounts
        .rotate_feed_token(&user)
        .await
        .map_err(account_error)?;
    let path = format!("/ical/{token}.ics");
    Ok((
        StatusCode::CREATED,
        Json(NewFeed {
            url: absolute_url(&headers, app.ui.behind_https, &path),
            path,
            token,
            created_at: taskstream_engine::time::format_utc(created),
        }),
    ))
}

/// Turns the caller's calendar feed off.
#[utoipa::path(delete, path = "/api/calendar-feed", tag = "data", security(("bearer" = [])),
    responses((status = 200, description = "`{\"revoked\": true|false}` (false: there was no feed)"), (status = 401)))]
pub(crate) async fn revoke(
    State(app): State<AppState>,
    AuthUser(user): AuthUser,
) -> Result<Json<serde_json::Value>, ApiError> {
    let revoked = app
        .accounts
        .revoke_feed_token(&user)
        .await
        .map_err(account_error)?;
    Ok(Json(serde_json::json!({ "revoked": revoked })))
}

/// The calendar feed: the user's open tasks and those completed in the last 30 days, as
/// iCalendar VTODOs. No Bearer token: the secret in the path is the credential; a wrong one
/// is 404.
#[utoipa::path(get, path = "/ical/{token}.ics", tag = "data",
    params(("token" = String, Path, description = "The feed's secret (`cal_…`), from POST /api/calendar-feed")),
    responses(
        (status = 200, description = "text/calendar", content((String = "text/calendar"))),
        (status = 404, description = "No feed has this token")))]
pub(crate) async fn calendar(
    State(app): State<AppState>,
    Path(file): Path<String>,
) -> Result<Response, ApiError> {
    let not_found = || ApiError::detail(StatusCode::NOT_FOUND, "Not Found");
    let token = file.strip_suffix(".ics").ok_or_else(not_found)?;
    let user = app
        .accounts
        .feed_user(token)
        .await
        .map_err(account_error)?
        .ok_or_else(not_found)?;
    let now = taskstream_engine::time::now();
    let since = now - chrono::Duration::days(COMPLETED_SHOWN_DAYS);
    let mut tasks: Vec<_> = app
        .tasks
        .list(&user, &TaskQuery::default())
        .await?
        .into_iter()
        .filter(|task| task.status != TaskStatus::Completed || task.updated_at >= since)
        .collect();
    tasks.sort_by_key(|task| (task.due_date.is_none(), task.due_date));
    tasks.truncate(FEED_MAX_TASKS);
    let body = taskstream_engine::transfer::ical::write_named(&tasks, now, Some("taskstream"));
    let mut response = (StatusCode::OK, body).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/calendar; charset=utf-8"),
    );
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, max-age=300"),
    );
    Ok(response)
}
