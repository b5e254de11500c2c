//! Request parts read the way the reference framework reported them: every failure is a 422
//! with a location, never a 400 or a 500.

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Path, Request};
use axum::http::StatusCode;
use axum::http::request::Parts;
use serde_json::{Value, json};
use taskstream_engine::{FieldError, Loc, ValidationErrors};
use uuid::Uuid;

use crate::error::ApiError;

/// A JSON body, parsed but not yet validated.
pub struct JsonBody(pub Value);

impl<S: Send + Sync> FromRequest<S> for JsonBody {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = Bytes::from_request(request, state)
            .await
            .map_err(|rejection| {
                if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                    ApiError::detail(StatusCode::PAYLOAD_TOO_LARGE, "Request body too large")
                } else {
                    ApiError::detail(StatusCode::BAD_REQUEST, "Could not read the request body")
                }
            })?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Err(ApiError::Validation(ValidationErrors(vec![
                FieldError::new(
                    "missing",
                    vec![Loc::from("body")],
                    "Field required",
                    Value::Null,
                ),
            ])));
        }
        serde_json::from_slice(&bytes)
            .map(JsonBody)
            .map_err(|error| {
                ApiError::Validation(ValidationErrors(vec![
                    FieldError::new(
                        "json_invalid",
                        vec![Loc::from("body"), Loc::Index(error.column())],
                        "JSON decode error",
                        json!({}),
                    )
                    .with_ctx(json!({ "error": error.to_string() })),
                ]))
            })
    }
}

/// The `{task_id}` path segment as a UUID.
pub struct TaskId(pub Uuid);

impl<S: Send + Sync> FromRequestParts<S> for TaskId {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let Path(raw) = Path::<String>::from_request_parts(parts, state)
            .await
            .map_err(|_| ApiError::detail(StatusCode::NOT_FOUND, "Not Found"))?;
        Uuid::parse_str(&raw).map(TaskId).map_err(|error| {
            ApiError::Validation(ValidationErrors(vec![FieldError::new(
                "uuid_parsing",
                vec![Loc::from("path"), Loc::from("task_id")],
                format!("Input should be a valid UUID, {error}"),
                Value::String(raw),
            )]))
        })
    }
}

/// The `{project_id}` path segment as a UUID.
pub struct ProjectId(pub Uuid);

impl<S: Send + Sync> FromRequestParts<S> for ProjectId {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let Path(raw) = Path::<String>::from_request_parts(parts, state)
            .await
            .map_err(|_| ApiError::detail(StatusCode::NOT_FOUND, "Not Found"))?;
        Uuid::parse_str(&raw).map(ProjectId).map_err(|error| {
            ApiError::Validation(ValidationErrors(vec![FieldError::new(
                "uuid_parsing",
                vec![Loc::from("path"), Loc::from("project_id")],
                format!("Input should be a valid UUID, {error}"),
                Value::String(raw),
            )]))
        })
    }
}

/// Raw query-string pairs, in order.
pub struct QueryPairs(pub Vec<(String, String)>);

impl<S: Send + Sync> FromRequestParts<S> for QueryPairs {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let query = parts.uri.query().unwrap_or("");
        let pairs = form_urlencoded::parse(query.as_bytes())
            .map(|(key, value)| (key.into_owned(), value.into_owned()))
            .collect();
        Ok(QueryPairs(pairs))
    }
}

/// The caller's time zone from `X-Timezone` (an IANA name such as `Europe/Berlin`), if sent.
/// Recurring tasks keep their wall-clock time in it across DST changes.
pub struct TimeZoneHeader(pub Option<chrono_tz::Tz>);

impl<S: Send + Sync> FromRequestParts<S> for TimeZoneHeader {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let Some(value) = parts.headers.get("x-timezone") else {
            return Ok(TimeZoneHeader(None));
        };
        let text = value.to_str().unwrap_or("").trim().to_owned();
        match taskstream_engine::recurrence::parse_zone(&text) {
            Some(zone) => Ok(TimeZoneHeader(Some(zone))),
            None => Err(ApiError::Validation(ValidationErrors(vec![
                FieldError::value_error(
                    vec![Loc::from("header"), Loc::from("x-timezone")],
                    "Unknown time zone: use an IANA name such as Europe/Berlin",
                    Value::String(text),
                ),
            ]))),
        }
    }
}
