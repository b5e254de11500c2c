//! `POST/GET/DELETE /api/{user_id}/chat`: the reference's chat contract (§4.1), with history.

use std::convert::Infallible;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::sse::{Event, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::stream::{self, Stream};
use serde::Serialize;
use serde_json::{Value, json};
use taskstream_engine::assistant::chat::MESSAGE_MAX;
use taskstream_engine::assistant::{ChatMessage, ToolInvocation};
use taskstream_engine::{FieldError, Loc, ValidationErrors};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::AppState;
use crate::auth::AuthUser;
use crate::error::ApiError;
use crate::extract::{JsonBody, TimeZoneHeader};

/// Reply of a non-streamed chat turn.
#[derive(Debug, Serialize, ToSchema)]
pub struct ChatResponse {
    pub message: String,
    pub tools_invoked: Vec<ToolInvocation>,
    #[schema(value_type = Option<String>, format = Uuid)]
    pub conversation_id: Option<Uuid>,
}

/// Chat request body, for the docs.
#[allow(dead_code)]
#[derive(ToSchema)]
pub struct ChatRequest {
    /// 1–4000 characters, not blank.
    #[schema(
        min_length = 1,
        max_length = 4000,
        pattern = r"^[^\x00]*[^\s\x00][^\x00]*$"
    )]
    message: String,
    /// `true` answers with Server-Sent Events (`tool_invocation`, `content`, `done`, `[DONE]`).
    #[schema(default = false)]
    stream: Option<bool>,
}

/// One stored message as `GET /api/{user_id}/chat` returns it.
#[derive(Debug, Serialize, ToSchema)]
pub struct MessageView {
    #[schema(value_type = String, format = Uuid)]
    pub id: Uuid,
    /// `user` or `assistant`.
    pub role: String,
    pub content: String,
    /// The tools the assistant ran for this message; `null` when none.
    pub tool_calls: Option<Vec<ToolInvocation>>,
    #[schema(format = DateTime)]
    pub created_at: String,
}

/// The conversation so far.
#[derive(Debug, Serialize, ToSchema)]
pub struct HistoryResponse {
    #[schema(value_type = Option<String>, format = Uuid)]
    pub conversation_id: Option<Uuid>,
    pub messages: Vec<MessageView>,
}

impl From<&ChatMessage> for MessageView {
    fn from(message: &ChatMessage) -> Self {
        Self {
            id: message.id,
            role: message.role.as_str().to_owned(),
            content: message.content.clone(),
            tool_calls: (!message.tool_calls.is_empty()).then(|| message.tool_calls.clone()),
            created_at: taskstream_engine::time::format_utc(message.created_at),
        }
    }
}

/// The path's user must be the token's (reference §1.9).
fn check_owner(path_user: &str, user: &str) -> Result<(), ApiError> {
    if path_user == user {
        Ok(())
    } else {
        Err(ApiError::detail(
            StatusCode::FORBIDDEN,
            "Not authorized to access this resource",
        ))
    }
}

/// `{"message": 1..4000 chars, "stream": bool = false}`, with the framework's error shapes.
fn parse_request(body: &Value) -> Result<(String, bool), ValidationErrors> {
    let loc = |key: &str| vec![Loc::from("body"), Loc::from(key)];
    let mut errors = Vec::new();
    let Value::Object(fields) = body else {
        return Err(ValidationErrors(vec![FieldError::new(
            "model_attributes_type",
            vec![Loc::from("body")],
            "Input should be a valid dictionary or object to extract fields from",
            body.clone(),
        )]));
    };
    let message = match fields.get("message") {
        None => {
            errors.push(FieldError::new(
                "missing",
                loc("message"),
                "Field required",
                body.clone(),
            ));
            None
        }
        Some(Value::String(text)) => {
            let length = text.chars().count();
            if length < 1 {
                errors.push(
                    FieldError::new(
                        "string_too_short",
                        loc("message"),
                        "String should have at least 1 character",
                        json!(text),
                    )
                    .with_ctx(json!({ "min_length": 1 })),
                );
            } else if text.contains('\0') {
                errors.push(FieldError::value_error(
                    loc("message"),
                    "Text must not contain NUL characters",
                    json!(text),
                ));
            } else if length > MESSAGE_MAX {
                errors.push(
                    FieldError::new(
                        "string_too_long",
                        loc("message"),
                        format!("String should have at most {MESSAGE_MAX} characters"),
                        json!(text),
                    )
                    .with_ctx(json!({ "max_length": MESSAGE_MAX })),
                );
            }
            Some(text.clone())
        }
        Some(other) => {
            errors.push(FieldError::new(
                "string_type",
                loc("message"),
                "Input should be a valid string",
                other.clone(),
            ));
            None
        }
    };
    let stream = match fields.get("stream") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(flag)) => *flag,
        Some(other) => {
            errors.push(FieldError::new(
                "bool_type",
                loc("stream"),
                "Input should be a valid boolean",
                other.clone(),
            ));
            false
        }
    };
    match message {
        Some(message) if errors.is_empty() => Ok((message, stream)),
        _ => Err(ValidationErrors(errors)),
    }
}

/// Send a chat message; the assistant acts on the caller's tasks and answers.
#[utoipa::path(post, path = "/api/{user_id}/chat", tag = "chat", request_body = ChatRequest,
    security(("bearer" = [])),
    params(("user_id" = String, Path, description = "Must equal the token's `sub`"),
        ("X-Timezone" = Option<String>, Header, description = "IANA time zone the assistant reads and speaks dates in (default: the user's setting, else UTC)")),
    responses((status = 200, body = ChatResponse), (status = 401), (status = 403), (status = 422)))]
pub(crate) async fn send(
    State(app): State<AppState>,
    AuthUser(user): AuthUser,
    Path(path_user): Path<String>,
    TimeZoneHeader(zone): TimeZoneHeader,
    JsonBody(body): JsonBody,
) -> Result<Response, ApiError> {
    check_owner(&path_user, &user)?;
    let (message, stream) = parse_request(&body).map_err(ApiError::Validation)?;
    let zone = super::settings::zone_for(&app, &user, zone).await?;
    let outcome = app.chat.send(&user, zone, &message).await?;
    if stream {
        return Ok(
            Sse::new(frames(outcome.reply.message, outcome.reply.tools_invoked)).into_response(),
        );
    }
    Ok(Json(ChatResponse {
        message: outcome.reply.message,
        tools_invoked: outcome.reply.tools_invoked,
        conversation_id: Some(outcome.conversation_id),
    })
    .into_response())
}

/// The reference's streaming framing: one `tool_invocation` frame per tool, the text as
/// `content` deltas (word by word), `done` with every invocation, then `[DONE]`.
fn frames(
    text: String,
    invocations: Vec<ToolInvocation>,
) -> impl Stream<Item = Result<Event, Infallible>> {
    let mut data: Vec<String> = invocations
        .iter()
        .map(|invocation| json!({ "type": "tool_invocation", "data": invocation }).to_string())
        .collect();
    data.extend(
        text.split_inclusive(' ')
            .map(|delta| json!({ "type": "content", "data": delta }).to_string()),
    );
    data.push(json!({ "type": "done", "data": { "tools_invoked": invocations } }).to_string());
    data.push("[DONE]".to_owned());
    stream::iter(
        data.into_iter()
            .map(|frame| Ok(Event::default().data(frame))),
    )
}

/// The conversation so far, oldest message first.
#[utoipa::path(get, path = "/api/{user_id}/chat", tag = "chat", security(("bearer" = [])),
    params(("user_id" = String, Path, description = "Must equal the token's `sub`")),
    responses((status = 200, body = HistoryResponse), (status = 401), (status = 403)))]
pub(crate) async fn history(
    State(app): State<AppState>,
    AuthUser(user): AuthUser,
    Path(path_user): Path<String>,
) -> Result<Json<HistoryResponse>, ApiError> {
    check_owner(&path_user, &user)?;
    let (conversation_id, messages) = app.chat.history(&user).await?;
    Ok(Json(HistoryResponse {
        conversation_id,
        messages: messages.iter().map(MessageView::from).collect(),
    }))
}

/// Forget the conversation (tasks stay as they are).
#[utoipa::path(delete, path = "/api/{user_id}/chat", tag = "chat", security(("bearer" = [])),
    params(("user_id" = String, Path, description = "Must equal the token's `sub`")),
    responses((status = 200, description = "`{\"deleted\": true, \"messages\": N}`"), (status = 401), (status = 403)))]
pub(crate) async fn clear(
    State(app): State<AppState>,
    AuthUser(user): AuthUser,
    Path(path_user): Path<String>,
) -> Result<Json<Value>, ApiError> {
    check_owner(&path_user, &user)?;
    let removed = app.chat.clear(&user).await?;
    Ok(Json(json!({ "deleted": true, "messages": removed })))
}
