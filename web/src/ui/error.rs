//! What a web UI request can fail with, mapped once to a page or a redirect.

use askama::Template;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use taskstream_engine::EngineError;

use crate::error::ApiError;

/// A failed UI request.
#[derive(Debug, thiserror::Error)]
pub enum UiError {
    /// Not signed in (or the session expired): go to the sign-in page and come back.
    #[error("sign in required")]
    SignIn { next: String },
    /// The form did not repeat the CSRF token: refuse, never act.
    #[error("the form expired or came from another site")]
    Csrf,
    #[error("not found")]
    NotFound,
    /// The input was refused; the message says why.
    #[error("{0}")]
    BadRequest(String),
    /// The user's task write limit is spent.
    #[error("too many task changes; retry in {retry_after_secs} s")]
    TooManyWrites { retry_after_secs: u64 },
    #[error("internal error: {0}")]
    Internal(String),
}

impl From<EngineError> for UiError {
    fn from(error: EngineError) -> Self {
        match error {
            EngineError::NotFound
            | EngineError::NotificationNotFound
            | EngineError::ProjectNotFound
            | EngineError::ParentNotFound
            | EngineError::Forbidden => UiError::NotFound,
            EngineError::Validation(errors) => UiError::BadRequest(
                errors
                    .0
                    .iter()
                    .map(|error| error.msg.clone())
                    .collect::<Vec<_>>()
                    .join("; "),
            ),
            EngineError::ReminderRequiresDueDate => {
                UiError::BadRequest("A reminder needs a due date".to_owned())
            }
            EngineError::Conflict(message) => UiError::BadRequest(message),
            EngineError::RateLimited { retry_after_secs } => {
                UiError::TooManyWrites { retry_after_secs }
            }
            other => UiError::Internal(other.to_string()),
        }
    }
}

impl From<ApiError> for UiError {
    fn from(error: ApiError) -> Self {
        match error {
            ApiError::Engine(error) => error.into(),
            ApiError::Validation(errors) => UiError::BadRequest(
                errors
                    .0
                    .iter()
                    .map(|error| error.msg.clone())
                    .collect::<Vec<_>>()
                    .join("; "),
            ),
            ApiError::Detail(status, message) if status.is_client_error() => {
                UiError::BadRequest(message)
            }
            other => UiError::Internal(other.to_string()),
        }
    }
}

impl From<askama::Error> for UiError {
    fn from(error: askama::Error) -> Self {
        UiError::Internal(format!("template: {error}"))
    }
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage<'a> {
    status: u16,
    heading: &'a str,
    message: &'a str,
}

fn page(status: StatusCode, heading: &str, message: &str) -> Response {
    let body = ErrorPage {
        status: status.as_u16(),
        heading,
        message,
    }
    .render()
    .unwrap_or_else(|_| message.to_owned());
    let mut response = (status, Html(body)).into_response();
    super::security_headers(response.headers_mut());
    response
}

impl IntoResponse for UiError {
    fn into_response(self) -> Response {
        match self {
            UiError::SignIn { next } => {
                let target = format!(
                    "/login?next={}",
                    form_urlencoded::byte_serialize(next.as_bytes()).collect::<String>()
                );
                let mut response = Redirect::to(&target).into_response();
                // htmx follows redirects inside the swapped fragment; ask it to load the page.
                if let Ok(value) = HeaderValue::from_str(&target) {
                    response.headers_mut().insert("hx-redirect", value);
                }
                response
            }
            UiError::Csrf => page(
                StatusCode::FORBIDDEN,
                "This form expired",
                "The form was sent without its security token (it may be old, or come from another site). Go back, reload the page and try again.",
            ),
            UiError::NotFound => page(
                StatusCode::NOT_FOUND,
                "Not found",
                "There is nothing here, or it belongs to someone else.",
            ),
            UiError::BadRequest(message) => page(
                StatusCode::UNPROCESSABLE_ENTITY,
                "That did not work",
                &message,
            ),
            UiError::TooManyWrites { retry_after_secs } => {
                let mut response = page(
                    StatusCode::TOO_MANY_REQUESTS,
                    "Slow down",
                    &format!(
                        "You changed a great many tasks in a short time. Wait {retry_after_secs} s and try again."
                    ),
                );
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from(retry_after_secs));
                response
            }
            UiError::Internal(reason) => {
                tracing::error!(%reason, "web UI request failed");
                let mut response = page(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "Something went wrong",
                    "The server could not finish this request. It has been logged; try again in a moment.",
                );
                response
                    .headers_mut()
                    .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
                response
            }
        }
    }
}
