//! The one mapping from errors to HTTP responses: `{"detail": "<string>"}` for application
//! errors and `{"detail": [...]}` (422) for validation, as the frontend already parses them.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use taskstream_engine::accounts::AccountError;
use taskstream_engine::{EngineError, FieldError, Loc, ValidationErrors};

/// An error on its way to the client.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("unauthenticated: {0}")]
    Unauthorized(&'static str),
    #[error("invalid request")]
    Validation(ValidationErrors),
    #[error("{1}")]
    Detail(StatusCode, String),
    /// 429 with `Retry-After` (seconds).
    #[error("too many attempts")]
    RateLimited { retry_after_secs: u64 },
    #[error(transparent)]
    Engine(#[from] EngineError),
}

impl ApiError {
    pub fn detail(status: StatusCode, detail: impl Into<String>) -> Self {
        Self::Detail(status, detail.into())
    }
}

fn detail(status: StatusCode, text: &str) -> Response {
    (status, Json(json!({ "detail": text }))).into_response()
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        match self {
            ApiError::Unauthorized(message) => {
                let mut response = detail(StatusCode::UNAUTHORIZED, message);
                response
                    .headers_mut()
                    .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
                response
            }
            ApiError::Validation(errors) => (
                StatusCode::UNPROCESSABLE_ENTITY,
                Json(json!({ "detail": errors.0 })),
            )
                .into_response(),
            ApiError::Detail(status, message) => detail(status, &message),
            ApiError::RateLimited { retry_after_secs } => {
                let mut response = detail(
                    StatusCode::TOO_MANY_REQUESTS,
                    "Too many attempts, try again later",
                );
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from(retry_after_secs));
                response
            }
            ApiError::Engine(error) => engine_response(error),
        }
    }
}

/// A rule broken by one body field, in the framework's 422 shape.
fn field_error(field: &str, message: &str) -> ApiError {
    ApiError::Validation(ValidationErrors(vec![FieldError::value_error(
        vec![Loc::from("body"), Loc::from(field)],
        message,
        Value::Null,
    )]))
}

impl From<AccountError> for ApiError {
    fn from(error: AccountError) -> Self {
        let message = error.to_string();
        match error {
            AccountError::InvalidEmail => field_error("email", &message),
            AccountError::WeakPassword(_) => field_error("password", &message),
            AccountError::InvalidTokenName => field_error("name", &message),
            AccountError::EmailTaken => ApiError::Detail(StatusCode::CONFLICT, message),
            AccountError::InvalidCredentials => ApiError::Unauthorized("Invalid email or password"),
            AccountError::TooManyAttempts { retry_after_secs } => {
                ApiError::RateLimited { retry_after_secs }
            }
            AccountError::SignupClosed => ApiError::Detail(StatusCode::FORBIDDEN, message),
            AccountError::NotFound => ApiError::Detail(StatusCode::NOT_FOUND, message),
            AccountError::Store(error) => ApiError::Engine(error),
        }
    }
}

fn engine_response(error: EngineError) -> Response {
    match error {
        EngineError::Validation(errors) => ApiError::Validation(errors).into_response(),
        EngineError::ReminderRequiresDueDate => detail(
            StatusCode::UNPROCESSABLE_ENTITY,
            "Reminder requires a due date",
        ),
        EngineError::NotFound => detail(StatusCode::NOT_FOUND, "Task not found"),
        EngineError::Conflict(message) => detail(StatusCode::CONFLICT, &message),
        EngineError::NotificationNotFound => {
            detail(StatusCode::NOT_FOUND, "Notification not found")
        }
        EngineError::ProjectNotFound => detail(StatusCode::NOT_FOUND, "Project not found"),
        EngineError::ParentNotFound => detail(StatusCode::NOT_FOUND, "Parent task not found"),
        EngineError::Forbidden => detail(
            StatusCode::FORBIDDEN,
            "Not authorized to access this resource",
        ),
        EngineError::RateLimited { retry_after_secs } => {
            let mut response = detail(
                StatusCode::TOO_MANY_REQUESTS,
                &format!("Too many task changes; retry in {retry_after_secs} s"),
            );
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(retry_after_secs));
            response
        }
        EngineError::Unavailable(reason) => {
            tracing::error!(%reason, "store unavailable");
            detail(
                StatusCode::SERVICE_UNAVAILABLE,
                "Database connection unavailable",
            )
        }
        EngineError::Store(reason) => {
            tracing::error!(%reason, "store failure");
            detail(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error")
        }
    }
}

pub(crate) async fn not_found() -> Response {
    detail(StatusCode::NOT_FOUND, "Not Found")
}

pub(crate) async fn method_not_allowed() -> Response {
    detail(StatusCode::METHOD_NOT_ALLOWED, "Method Not Allowed")
}

/// A handler panicked (a bug): answer 500 in the usual shape instead of dropping the connection.
pub(crate) fn panic_response(_panic: Box<dyn std::any::Any + Send + 'static>) -> Response {
    tracing::error!("a request handler panicked");
    detail(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error")
}
