//! The pages around the tasks: notifications (with the bell), activity, settings.

use askama::Template;
use axum::extract::{Path, State};
use axum::http::header::SET_COOKIE;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use serde_json::json;
use taskstream_engine::accounts::ApiTokenInfo;
use taskstream_engine::activity::{AuditEntry, AuditFilter, Notification};
use uuid::Uuid;

use super::error::UiError;
use super::form::Form;
use super::session::{CsrfToken, Session, cookie, set_cookie};
use super::view::{Chrome, short_date};
use super::{html, zone_of};
use crate::AppState;
use crate::extract::QueryPairs;

/// Cookie remembering the chosen theme in this browser.
pub const THEME_COOKIE: &str = "taskstream_theme";
const THEMES: &[&str] = &["system", "light", "dark"];
/// Notifications one page shows.
const NOTIFICATIONS_SHOWN: u32 = 200;

/// The frame of a signed-in page.
pub(crate) async fn chrome(
    app: &AppState,
    session: &Session,
    csrf: &CsrfToken,
    headers: &HeaderMap,
    title: &str,
    nav: &'static str,
) -> Result<Chrome, UiError> {
    let unread = unread_count(app, &session.user_id).await?;
    let theme = cookie(headers, THEME_COOKIE)
        .filter(|theme| THEMES.contains(theme))
        .unwrap_or("system")
        .to_owned();
    Ok(Chrome {
        title: title.to_owned(),
        email: session.email.clone(),
        csrf: csrf.0.clone(),
        nav,
        unread,
        theme,
        asset_version: super::ASSET_VERSION,
    })
}

async fn unread_count(app: &AppState, user: &str) -> Result<u64, UiError> {
    Ok(app.tasks.store().count_unread_notifications(user).await?)
}

/// One line of an activity list.
pub struct ActivityRow {
    pub when: String,
    pub what: String,
    pub title: String,
    pub task_id: String,
}

fn event_words(event_type: &str) -> &'static str {
    match event_type {
        "task.created" => "Created",
        "task.updated" => "Changed",
        "task.completed" => "Completed",
        "task.deleted" => "Deleted",
        "reminder.scheduled" => "Reminder set",
        "reminder.triggered" => "Reminder fired",
        _ => "Event",
    }
}

impl ActivityRow {
    pub fn new(entry: &AuditEntry, zone: Tz, now: DateTime<Utc>) -> Self {
        let title = entry
            .payload
            .get("title")
            .or_else(|| entry.payload.get("task_title"))
            .and_then(|value| value.as_str())
            .unwrap_or("")
            .to_owned();
        ActivityRow {
            when: short_date(entry.received_at, zone, now),
            what: event_words(&entry.event_type).to_owned(),
            title,
            task_id: entry.task_id.clone().unwrap_or_default(),
        }
    }
}

/// The user's audit trail (of one task, or all), newest first, as listed.
pub(crate) async fn activity_rows(
    app: &AppState,
    user: &str,
    task_id: Option<String>,
    zone: Tz,
) -> Result<Vec<ActivityRow>, UiError> {
    let now = taskstream_engine::time::now();
    let filter = AuditFilter {
        task_id,
        limit: 200,
        ..AuditFilter::default()
    };
    Ok(app
        .tasks
        .store()
        .list_audit(user, &filter)
        .await?
        .iter()
        .map(|entry| ActivityRow::new(entry, zone, now))
        .collect())
}

/// One notification as listed.
pub struct NotificationRow {
    pub id: String,
    pub title: String,
    pub message: String,
    pub when: String,
    pub unread: bool,
    pub task_id: String,
    pub snoozable: bool,
}

impl NotificationRow {
    fn new(row: &Notification, zone: Tz, now: DateTime<Utc>) -> Self {
        NotificationRow {
            id: row.id.to_string(),
            title: row.title.clone(),
            message: local_message(row, zone, now),
            when: short_date(row.created_at, zone, now),
            unread: row.read_at.is_none(),
            task_id: row.task_id.clone().unwrap_or_default(),
            snoozable: row.kind == "reminder" && row.task_id.is_some(),
        }
    }
}

/// A reminder's text with its times in the user's zone ("due Tue 1 Dec 09:00"): the stored
/// message (the API's) names them in RFC 3339 UTC, which reads badly on a page.
fn local_message(row: &Notification, zone: Tz, now: DateTime<Utc>) -> String {
    let at = |key: &str| {
        row.payload
            .get(key)
            .and_then(serde_json::Value::as_str)
            .and_then(|text| DateTime::parse_from_rfc3339(text).ok())
            .map(|instant| short_date(instant.with_timezone(&Utc), zone, now))
    };
    let title = &row.title;
    match (row.kind.as_str(), at("due_at"), at("remind_at")) {
        ("reminder", Some(due), _) => format!("Reminder: “{title}” is due {due}."),
        ("reminder", None, _) => format!("Reminder: “{title}”."),
        ("missed_reminder", due, Some(remind)) => format!(
            "Missed reminder: “{title}”{} was meant to remind you at {remind}.",
            due.map(|due| format!(" (due {due})")).unwrap_or_default()
        ),
        _ => row.message.clone(),
    }
}

#[derive(Template)]
#[template(path = "notifications.html")]
struct NotificationsPage {
    chrome: Chrome,
    rows: Vec<NotificationRow>,
    notice: Option<String>,
}

/// `GET /notifications`.
pub(crate) async fn notifications(
    State(app): State<AppState>,
    session: Session,
    csrf: CsrfToken,
    headers: HeaderMap,
    QueryPairs(pairs): QueryPairs,
) -> Result<Response, UiError> {
    let zone = zone_of(&app, &session.user_id).await?;
    let now = taskstream_engine::time::now();
    let rows = app
        .tasks
        .store()
        .list_notifications(&session.user_id, NOTIFICATIONS_SHOWN)
        .await?
        .iter()
        .map(|row| NotificationRow::new(row, zone, now))
        .collect();
    let notice = pairs
        .iter()
        .find(|(key, _)| key == "snoozed")
        .map(|(_, minutes)| format!("Snoozed: you will be reminded again in {minutes} minutes."));
    let page = NotificationsPage {
        chrome: chrome(
            &app,
            &session,
            &csrf,
            &headers,
            "Notifications",
            "notifications",
        )
        .await?,
        rows,
        notice,
    };
    html(page)
}

/// The bell reads `chrome.unread`, the same name it has inside every page's frame.
#[derive(Template)]
#[template(path = "bell.html")]
struct Bell {
    chrome: BellCount,
}

struct BellCount {
    unread: u64,
}

/// `GET /notifications/bell`: the bell alone, for htmx to refresh when something arrives.
pub(crate) async fn bell(
    State(app): State<AppState>,
    session: Session,
) -> Result<Response, UiError> {
    let unread = unread_count(&app, &session.user_id).await?;
    Ok(Html(
        Bell {
            chrome: BellCount { unread },
        }
        .render()?,
    )
    .into_response())
}

fn notification_id(raw: &str) -> Result<Uuid, UiError> {
    Uuid::parse_str(raw).map_err(|_| UiError::NotFound)
}

/// `POST /notifications/{id}/read`.
pub(crate) async fn mark_read(
    State(app): State<AppState>,
    session: Session,
    Path(raw): Path<String>,
    _form: Form,
) -> Result<Response, UiError> {
    app.tasks
        .store()
        .mark_notification_read(
            &session.user_id,
            notification_id(&raw)?,
            taskstream_engine::time::now(),
        )
        .await?;
    Ok(Redirect::to("/notifications").into_response())
}

use crate::api::activity::SNOOZE_MAX_MINUTES;

/// `POST /notifications/{id}/snooze`.
pub(crate) async fn snooze(
    State(app): State<AppState>,
    session: Session,
    Path(raw): Path<String>,
    form: Form,
) -> Result<Response, UiError> {
    let minutes = form
        .text("minutes")
        .parse::<i64>()
        .ok()
        .filter(|minutes| (1..=SNOOZE_MAX_MINUTES).contains(minutes))
        .ok_or_else(|| UiError::BadRequest("Snooze for 1 minute to 7 days.".to_owned()))?;
    app.tasks
        .store()
        .snooze(
            &session.user_id,
            notification_id(&raw)?,
            minutes,
            taskstream_engine::time::now(),
        )
        .await?;
    Ok(Redirect::to(&format!("/notifications?snoozed={minutes}")).into_response())
}

#[derive(Template)]
#[template(path = "activity.html")]
struct ActivityPage {
    chrome: Chrome,
    rows: Vec<ActivityRow>,
}

/// `GET /activity`: the user's audit trail.
pub(crate) async fn activity(
    State(app): State<AppState>,
    session: Session,
    csrf: CsrfToken,
    headers: HeaderMap,
) -> Result<Response, UiError> {
    let zone = zone_of(&app, &session.user_id).await?;
    let rows = activity_rows(&app, &session.user_id, None, zone).await?;
    let page = ActivityPage {
        chrome: chrome(&app, &session, &csrf, &headers, "Activity", "activity").await?,
        rows,
    };
    html(page)
}

/// A personal API token as the settings page lists it.
pub struct TokenRow {
    pub id: String,
    pub name: String,
    pub prefix: String,
    pub created: String,
    pub last_used: String,
}

impl TokenRow {
    fn new(token: &ApiTokenInfo, zone: Tz, now: DateTime<Utc>) -> Self {
        TokenRow {
            id: token.id.clone(),
            name: token.name.clone(),
            prefix: token.prefix.clone(),
            created: short_date(token.created_at, zone, now),
            last_used: token
                .last_used_at
                .map(|at| short_date(at, zone, now))
                .unwrap_or_else(|| "never".to_owned()),
        }
    }
}

#[derive(Template)]
#[template(path = "settings.html")]
pub(crate) struct SettingsPage {
    pub chrome: Chrome,
    pub time_zone: String,
    pub zones: Vec<&'static str>,
    pub daily_digest: bool,
    pub digest_hour: u8,
    pub webhook: bool,
    pub tokens: Vec<TokenRow>,
    /// A token just created: shown once.
    pub new_token: Option<String>,
    /// Since when the calendar feed is on (`None`: off).
    pub feed_since: Option<String>,
    /// A calendar feed URL just made: shown once.
    pub new_feed: Option<String>,
    pub notice: Option<String>,
    pub error: Option<String>,
}

/// Renders the settings page with an optional message (used after each settings form).
pub(crate) async fn settings_page(
    app: &AppState,
    session: &Session,
    csrf: &CsrfToken,
    headers: &HeaderMap,
    new_token: Option<String>,
    notice: Option<String>,
    error: Option<String>,
) -> Result<Response, UiError> {
    settings_page_with_feed(app, session, csrf, headers, new_token, None, notice, error).await
}

/// [`settings_page`] showing a calendar feed URL just made.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn settings_page_with_feed(
    app: &AppState,
    session: &Session,
    csrf: &CsrfToken,
    headers: &HeaderMap,
    new_token: Option<String>,
    new_feed: Option<String>,
    notice: Option<String>,
    error: Option<String>,
) -> Result<Response, UiError> {
    let settings = app.settings.settings(&session.user_id).await?;
    let feed_since = app
        .accounts
        .feed_token_created(&session.user_id)
        .await
        .map_err(|error| UiError::Internal(error.to_string()))?
        .map(|created| short_date(created, settings.time_zone, taskstream_engine::time::now()));
    let now = taskstream_engine::time::now();
    let tokens = app
        .accounts
        .api_tokens(&session.user_id)
        .await
        .map_err(|error| UiError::Internal(error.to_string()))?
        .iter()
        .map(|token| TokenRow::new(token, settings.time_zone, now))
        .collect();
    let status = if error.is_some() {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::OK
    };
    let page = SettingsPage {
        chrome: chrome(app, session, csrf, headers, "Settings", "settings").await?,
        time_zone: settings.time_zone.name().to_owned(),
        zones: chrono_tz::TZ_VARIANTS
            .iter()
            .map(|zone| zone.name())
            .collect(),
        daily_digest: settings.daily_digest,
        digest_hour: settings.digest_hour,
        webhook: app.ui.webhook_configured,
        tokens,
        new_token,
        feed_since,
        new_feed,
        notice,
        error,
    };
    Ok((status, Html(page.render()?)).into_response())
}

/// `GET /settings`.
pub(crate) async fn settings(
    State(app): State<AppState>,
    session: Session,
    csrf: CsrfToken,
    headers: HeaderMap,
    QueryPairs(pairs): QueryPairs,
) -> Result<Response, UiError> {
    let notice = pairs
        .iter()
        .any(|(key, _)| key == "saved")
        .then(|| "Settings saved.".to_owned());
    settings_page(&app, &session, &csrf, &headers, None, notice, None).await
}

/// `POST /settings`: time zone, digest and theme.
pub(crate) async fn save_settings(
    State(app): State<AppState>,
    session: Session,
    csrf: CsrfToken,
    headers: HeaderMap,
    form: Form,
) -> Result<Response, UiError> {
    let current = app.settings.settings(&session.user_id).await?;
    let hour: u8 = form
        .text("digest_hour")
        .parse()
        .unwrap_or(current.digest_hour);
    let body = json!({
        "time_zone": form.text("time_zone"),
        "daily_digest": form.get("daily_digest").is_some(),
        "digest_hour": hour,
    });
    let updated = match current.patched(&body) {
        Ok(updated) => updated,
        Err(errors) => {
            let message = errors
                .0
                .iter()
                .map(|error| error.msg.clone())
                .collect::<Vec<_>>()
                .join("; ");
            return settings_page(&app, &session, &csrf, &headers, None, None, Some(message)).await;
        }
    };
    app.settings
        .save_settings(&session.user_id, updated, taskstream_engine::time::now())
        .await?;
    let theme = form.text("theme");
    let mut response = Redirect::to("/settings?saved=1").into_response();
    if THEMES.contains(&theme) {
        response.headers_mut().append(
            SET_COOKIE,
            set_cookie(THEME_COOKIE, theme, 60 * 60 * 24 * 365, app.ui.behind_https),
        );
    }
    Ok(response)
}

/// `POST /settings/calendar-feed`: a new calendar feed URL (the old one stops working).
pub(crate) async fn rotate_feed(
    State(app): State<AppState>,
    session: Session,
    csrf: CsrfToken,
    headers: HeaderMap,
    _form: Form,
) -> Result<Response, UiError> {
    let (token, _) = app
        .accounts
        .rotate_feed_token(&session.user_id)
        .await
        .map_err(|error| UiError::Internal(error.to_string()))?;
    let url = crate::api::feed::absolute_url(
        &headers,
        app.ui.behind_https,
        &format!("/ical/{token}.ics"),
    );
    settings_page_with_feed(
        &app,
        &session,
        &csrf,
        &headers,
        None,
        Some(url),
        Some("Calendar feed URL created. Copy it now: it is not shown again.".to_owned()),
        None,
    )
    .await
}

/// `POST /settings/calendar-feed/revoke`: the feed URL stops working.
pub(crate) async fn revoke_feed(
    State(app): State<AppState>,
    session: Session,
    _form: Form,
) -> Result<Response, UiError> {
    app.accounts
        .revoke_feed_token(&session.user_id)
        .await
        .map_err(|error| UiError::Internal(error.to_string()))?;
    Ok(Redirect::to("/settings?saved=1").into_response())
}
