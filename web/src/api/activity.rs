//! The caller's activity: audit trail, notifications, and the live event stream.

use std::convert::Infallible;
use std::time::Duration;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::stream::{self, Stream, StreamExt};
use serde_json::Value;
use taskstream_engine::activity::{
    AUDIT_LIMIT_DEFAULT, AUDIT_LIMIT_MAX, AuditFilter, AuditView, NotificationView,
};
use taskstream_engine::{FieldError, Loc, ValidationErrors};
use uuid::Uuid;

use crate::AppState;
use crate::auth::AuthUser;
use crate::error::ApiError;
use crate::extract::{JsonBody, QueryPairs};

/// Notifications returned by one list call.
const NOTIFICATIONS_LIMIT: u32 = 200;

fn query_error(name: &str, message: &str, input: &str) -> FieldError {
    FieldError::new(
        "int_parsing",
        vec![Loc::from("query"), Loc::from(name)],
        message,
        Value::String(input.to_owned()),
    )
}

fn audit_filter(pairs: &[(String, String)]) -> Result<AuditFilter, ApiError> {
    let mut filter = AuditFilter {
        limit: AUDIT_LIMIT_DEFAULT,
        ..AuditFilter::default()
    };
    let mut errors = Vec::new();
    for (key, value) in pairs {
        match key.as_str() {
            "task_id" => filter.task_id = Some(value.clone()),
            "event_type" => filter.event_type = Some(value.clone()),
            "limit" => match value.trim().parse::<u32>() {
                Ok(n) if (1..=AUDIT_LIMIT_MAX).contains(&n) => filter.limit = n,
                _ => errors.push(query_error(
                    "limit",
                    "Input should be an integer between 1 and 1000",
                    value,
                )),
            },
            "offset" => match value.trim().parse::<u32>() {
                Ok(n) if n <= OFFSET_MAX => filter.offset = n,
                _ => errors.push(query_error(
                    "offset",
                    "Input should be an integer from 0 to 2147483647",
                    value,
                )),
            },
            _ => {}
        }
    }
    if errors.is_empty() {
        Ok(filter)
    } else {
        Err(ApiError::Validation(ValidationErrors(errors)))
    }
}

/// The caller's audit trail, newest first.
#[utoipa::path(get, path = "/api/audit", tag = "activity", security(("bearer" = [])),
    params(("task_id" = Option<String>, Query), ("event_type" = Option<String>, Query),
           ("limit" = Option<u32>, Query, minimum = 1, maximum = 1000, description = "1–1000, default 100"), ("offset" = Option<u32>, Query, minimum = 0, maximum = 2_147_483_647)),
    responses((status = 200, body = Vec<AuditView>), (status = 401), (status = 422)))]
pub(crate) async fn audit(
    State(app): State<AppState>,
    AuthUser(user): AuthUser,
    QueryPairs(pairs): QueryPairs,
) -> Result<Json<Vec<AuditView>>, ApiError> {
    let filter = audit_filter(&pairs)?;
    let rows = app.tasks.store().list_audit(&user, &filter).await?;
    Ok(Json(rows.iter().map(|row| row.view()).collect()))
}

/// The caller's notifications, newest first.
#[utoipa::path(get, path = "/api/notifications", tag = "activity", security(("bearer" = [])),
    responses((status = 200, body = Vec<NotificationView>), (status = 401)))]
pub(crate) async fn notifications(
    State(app): State<AppState>,
    AuthUser(user): AuthUser,
) -> Result<Json<Vec<NotificationView>>, ApiError> {
    let rows = app
        .tasks
        .store()
        .list_notifications(&user, NOTIFICATIONS_LIMIT)
        .await?;
    Ok(Json(rows.iter().map(|row| row.view()).collect()))
}

fn notification_id(raw: &str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(raw).map_err(|error| {
        ApiError::Validation(ValidationErrors(vec![FieldError::new(
            "uuid_parsing",
            vec![Loc::from("path"), Loc::from("id")],
            format!("Input should be a valid UUID, {error}"),
            Value::String(raw.to_owned()),
        )]))
    })
}

/// Largest offset a page may start at (the largest 32-bit signed integer, as documented).
const OFFSET_MAX: u32 = taskstream_engine::task::query::OFFSET_MAX;

/// Longest snooze: one week.
pub(crate) const SNOOZE_MAX_MINUTES: i64 = 7 * 24 * 60;

/// Snooze body, for the docs.
#[allow(dead_code)]
#[derive(utoipa::ToSchema)]
pub struct SnoozeRequest {
    /// 1–10080 minutes from now.
    #[schema(minimum = 1, maximum = 10_080)]
    minutes: i64,
}

/// Remind me again in N minutes: re-arms the notification's task reminder as a one-off and
/// marks the notification read. 409 when the task is gone or completed.
#[utoipa::path(post, path = "/api/notifications/{id}/snooze", tag = "activity", security(("bearer" = [])),
    params(("id" = String, Path, format = Uuid)), request_body = SnoozeRequest,
    responses((status = 200, description = "`{\"notification_id\", \"task_id\", \"remind_at\"}`"),
        (status = 404), (status = 409), (status = 422)))]
pub(crate) async fn snooze(
    State(app): State<AppState>,
    AuthUser(user): AuthUser,
    Path(raw): Path<String>,
    JsonBody(body): JsonBody,
) -> Result<Json<Value>, ApiError> {
    let id = notification_id(&raw)?;
    let minutes = match body.get("minutes") {
        Some(value) => value
            .as_i64()
            .filter(|minutes| (1..=SNOOZE_MAX_MINUTES).contains(minutes))
            .ok_or_else(|| {
                ApiError::Validation(ValidationErrors(vec![
                    FieldError::new(
                        "int_range",
                        vec![Loc::from("body"), Loc::from("minutes")],
                        format!("Input should be an integer from 1 to {SNOOZE_MAX_MINUTES}"),
                        value.clone(),
                    )
                    .with_ctx(serde_json::json!({ "ge": 1, "le": SNOOZE_MAX_MINUTES })),
                ]))
            })?,
        None => {
            return Err(ApiError::Validation(ValidationErrors(vec![
                FieldError::new(
                    "missing",
                    vec![Loc::from("body"), Loc::from("minutes")],
                    "Field required",
                    body.clone(),
                ),
            ])));
        }
    };
    let snoozed = app
        .tasks
        .store()
        .snooze(&user, id, minutes, taskstream_engine::time::now())
        .await?;
    Ok(Json(serde_json::json!({
        "notification_id": id,
        "task_id": snoozed.task_id,
        "remind_at": taskstream_engine::time::format_utc(snoozed.fire_at),
    })))
}

/// Marks one of the caller's notifications read.
#[utoipa::path(post, path = "/api/notifications/{id}/read", tag = "activity", security(("bearer" = [])),
    params(("id" = String, Path, format = Uuid)),
    responses((status = 200, body = NotificationView), (status = 404), (status = 422)))]
pub(crate) async fn mark_read(
    State(app): State<AppState>,
    AuthUser(user): AuthUser,
    Path(raw): Path<String>,
) -> Result<Json<NotificationView>, ApiError> {
    let id = notification_id(&raw)?;
    let row = app
        .tasks
        .store()
        .mark_notification_read(&user, id, taskstream_engine::time::now())
        .await?;
    Ok(Json(row.view()))
}

/// Server-Sent Events: the caller's task changes (`task.sync`) and reminders, each `data:` line an
/// event envelope; send `Last-Event-ID` to resume after a disconnect.
#[utoipa::path(get, path = "/api/events", tag = "activity", security(("bearer" = [])),
    responses((status = 200, content_type = "text/event-stream"), (status = 401)))]
pub(crate) async fn events(
    State(app): State<AppState>,
    AuthUser(user): AuthUser,
    headers: HeaderMap,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let resume = headers
        .get("last-event-id")
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned);
    let start = match resume {
        Some(position) => position,
        None => app.live.position_now().await?,
    };
    let feed = app.live.clone();
    let batches = stream::unfold(Some(start), move |position| {
        let (feed, user) = (feed.clone(), user.clone());
        async move {
            let position = position?;
            match feed.next_events(&user, &position).await {
                Ok(events) => {
                    let next = events.last().map(|e| e.id.clone()).unwrap_or(position);
                    Some((events, Some(next)))
                }
                Err(error) => {
                    tracing::warn!(%error, "live stream ended");
                    None
                }
            }
        }
    });
    let events = batches.flat_map(|batch| {
        stream::iter(batch.into_iter().map(|live| {
            let data = serde_json::to_string(&live.envelope).unwrap_or_default();
            Ok(Event::default().id(live.id).data(data))
        }))
    });
    let mut shutdown = app.shutdown.clone();
    let until_shutdown = async move {
        let _ = shutdown.wait_for(|stopping| *stopping).await;
    };
    Ok(Sse::new(events.take_until(until_shutdown))
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15))))
}
