//! Export and import of the caller's tasks (`GET /api/export`, `POST /api/import`).

use axum::Json;
use axum::body::Bytes;
use axum::extract::{FromRequest, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::Value;
use taskstream_engine::task::TaskQuery;
use taskstream_engine::transfer::{self, Format, IMPORT_MAX_BYTES, ImportReport};
use taskstream_engine::{FieldError, Loc, ValidationErrors};

use crate::AppState;
use crate::auth::AuthUser;
use crate::error::ApiError;
use crate::extract::{QueryPairs, TimeZoneHeader};

/// `?format=` of an export.
#[allow(dead_code)]
#[derive(utoipa::ToSchema)]
#[schema(rename_all = "snake_case")]
pub enum ExportFormatDoc {
    Json,
    Csv,
    Ics,
}

/// `?format=` of an import.
#[allow(dead_code)]
#[derive(utoipa::ToSchema)]
#[schema(rename_all = "snake_case")]
pub enum ImportFormatDoc {
    Json,
    Csv,
    Ics,
    Todoist,
}

fn bad_format(value: &str, allowed: &[&str]) -> ApiError {
    ApiError::Validation(ValidationErrors(vec![
        FieldError::new(
            "enum",
            vec![Loc::from("query"), Loc::from("format")],
            format!(
                "Input should be {}",
                allowed
                    .iter()
                    .map(|name| format!("'{name}'"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            Value::String(value.to_owned()),
        )
        .with_ctx(serde_json::json!({ "expected": allowed.join(", ") })),
    ]))
}

fn format_param(pairs: &[(String, String)]) -> Option<&str> {
    pairs
        .iter()
        .rev()
        .find(|(key, _)| key == "format")
        .map(|(_, value)| value.as_str())
}

/// Every task of the caller (completed ones too), as a file: lossless JSON (default), CSV or
/// iCalendar VTODOs.
#[utoipa::path(get, path = "/api/export", tag = "data", security(("bearer" = [])),
    params(("format" = Option<ExportFormatDoc>, Query, description = "json (default; lossless: every field, reminders, recurrence) | csv | ics (RFC 5545 VTODO)")),
    responses(
        (status = 200, description = "The file, with `Content-Disposition: attachment`", content(
            (Object = "application/json"), (String = "text/csv"), (String = "text/calendar"))),
        (status = 401), (status = 422)))]
pub(crate) async fn export(
    State(app): State<AppState>,
    AuthUser(user): AuthUser,
    QueryPairs(pairs): QueryPairs,
) -> Result<Response, ApiError> {
    let format = match format_param(&pairs) {
        None => Format::Json,
        Some(value) => Format::parse(value)
            .filter(|format| format.exportable())
            .ok_or_else(|| bad_format(value, &["json", "csv", "ics"]))?,
    };
    let tasks = app.tasks.list(&user, &TaskQuery::default()).await?;
    let projects: Vec<_> = app
        .tasks
        .projects(&user)
        .await?
        .into_iter()
        .map(|summary| summary.project)
        .collect();
    let body = transfer::export(
        format,
        &tasks,
        &projects,
        &user,
        taskstream_engine::time::now(),
    );
    let mut response = (StatusCode::OK, body).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(format.media_type()),
    );
    headers.insert(
        header::CONTENT_DISPOSITION,
        HeaderValue::from_str(&format!(
            "attachment; filename=\"taskstream-tasks.{}\"",
            format.as_str()
        ))
        .unwrap_or(HeaderValue::from_static("attachment")),
    );
    Ok(response)
}

/// The import body: the file's text.
pub(crate) struct FileBody(String);

impl<S: Send + Sync> FromRequest<S> for FileBody {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = Bytes::from_request(request, state)
            .await
            .map_err(|rejection| {
                if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                    ApiError::detail(
                        StatusCode::PAYLOAD_TOO_LARGE,
                        format!(
                            "Request body too large (an import is at most {IMPORT_MAX_BYTES} bytes)"
                        ),
                    )
                } else {
                    ApiError::detail(StatusCode::BAD_REQUEST, "Could not read the request body")
                }
            })?;
        String::from_utf8(bytes.to_vec())
            .map(FileBody)
            .map_err(|error| {
                ApiError::Validation(ValidationErrors(vec![FieldError::new(
                    "value_error",
                    vec![Loc::from("body")],
                    format!(
                        "The file is not UTF-8 text (byte {})",
                        error.utf8_error().valid_up_to()
                    ),
                    Value::Null,
                )]))
            })
    }
}

/// The format of an import: `?format=`, else the body's `Content-Type` (`text/calendar`,
/// `text/csv`, `application/json`).
fn import_format(pairs: &[(String, String)], headers: &HeaderMap) -> Result<Format, ApiError> {
    const ALLOWED: &[&str] = &["json", "csv", "ics", "todoist"];
    if let Some(value) = format_param(pairs) {
        return Format::parse(value).ok_or_else(|| bad_format(value, ALLOWED));
    }
    let media = headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.split(';').next())
        .map(|value| value.trim().to_ascii_lowercase())
        .unwrap_or_default();
    match media.as_str() {
        "text/calendar" => Ok(Format::Ical),
        "text/csv" => Ok(Format::Csv),
        "application/json" => Ok(Format::Json),
        _ => Err(ApiError::Validation(ValidationErrors(vec![
            FieldError::new(
                "missing",
                vec![Loc::from("query"), Loc::from("format")],
                "Field required: say the file's format with ?format=json|csv|ics|todoist (or a Content-Type of application/json, text/csv or text/calendar)",
                Value::Null,
            ),
        ]))),
    }
}

/// Import a file of tasks for the caller. Every record is checked first: when one is invalid
/// nothing is imported and the 422 names each bad line or record. Tasks whose id the caller
/// already has are skipped, so importing the same file twice creates nothing new. Imported
/// tasks get their events, reminders and recurrence like any created task.
#[utoipa::path(post, path = "/api/import", tag = "data", security(("bearer" = [])),
    params(
        ("format" = Option<ImportFormatDoc>, Query, description = "json (taskstream's export, or an array of tasks) | csv | ics | todoist (Todoist's project CSV export); default: from the Content-Type"),
        ("project" = Option<String>, Query, description = "Put the tasks that name no project of their own (all of a Todoist file's) into this project, found by name or created"),
        ("X-Timezone" = Option<String>, Header, description = "IANA zone for dates without one (default: the user's setting)")),
    request_body(description = "The file, at most 4 MiB and 10,000 tasks", content(
        (String = "text/csv"), (String = "text/calendar"), (Object = "application/json"), (String = "text/plain"))),
    responses((status = 200, body = ImportReport), (status = 401), (status = 413, description = "The file is larger than 4 MiB"), (status = 422, description = "The file or a record in it is invalid; each problem names its line or record"), (status = 429, description = "The user's task write limit is spent")))]
pub(crate) async fn import(
    State(app): State<AppState>,
    AuthUser(user): AuthUser,
    TimeZoneHeader(zone): TimeZoneHeader,
    QueryPairs(pairs): QueryPairs,
    headers: HeaderMap,
    FileBody(text): FileBody,
) -> Result<Json<ImportReport>, ApiError> {
    let format = import_format(&pairs, &headers)?;
    let zone = super::settings::zone_for(&app, &user, zone).await?;
    let mut parsed = transfer::parse(format, &text, taskstream_engine::time::now(), zone)?;
    parsed.project = pairs
        .iter()
        .rev()
        .find(|(key, _)| key == "project")
        .map(|(_, value)| value.clone());
    let report = transfer::import(&app.tasks, &user, parsed, zone).await?;
    tracing::info!(user = %user, format = format.as_str(), created = report.created, skipped = report.skipped, "import");
    Ok(Json(report))
}
