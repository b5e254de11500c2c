//! The chat panel: the same assistant and history as `/api/{user_id}/chat`.

use askama::Template;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{Html, IntoResponse, Redirect, Response};
use taskstream_engine::assistant::Role;
use taskstream_engine::assistant::chat::MESSAGE_MAX;

use super::error::UiError;
use super::form::Form;
use super::session::{CsrfToken, Session};
use super::view::{Chrome, short_date};
use super::{html, zone_of};
use crate::AppState;

/// One message as shown.
pub struct Bubble {
    pub mine: bool,
    pub text: String,
    pub when: String,
    /// Tools the assistant ran for this answer ("add_task ✓").
    pub tools: Vec<String>,
}

#[derive(Template)]
#[template(path = "chat.html")]
struct ChatPage {
    chrome: Chrome,
    bubbles: Vec<Bubble>,
    error: Option<String>,
}

#[derive(Template)]
#[template(path = "chat_log.html")]
struct ChatLog {
    bubbles: Vec<Bubble>,
    error: Option<String>,
}

async fn bubbles(app: &AppState, user: &str) -> Result<Vec<Bubble>, UiError> {
    let zone = zone_of(app, user).await?;
    let now = taskstream_engine::time::now();
    let (_, history) = app.chat.history(user).await?;
    Ok(history
        .iter()
        .map(|message| Bubble {
            mine: message.role == Role::User,
            text: message.content.clone(),
            when: short_date(message.created_at, zone, now),
            tools: message
                .tool_calls
                .iter()
                .map(|call| {
                    format!(
                        "{} {}",
                        call.tool_name,
                        if call.success { "✓" } else { "✗" }
                    )
                })
                .collect(),
        })
        .collect())
}

/// `GET /chat`.
pub(crate) async fn page(
    State(app): State<AppState>,
    session: Session,
    csrf: CsrfToken,
    headers: HeaderMap,
) -> Result<Response, UiError> {
    let page = ChatPage {
        chrome: super::pages::chrome(&app, &session, &csrf, &headers, "Assistant", "chat").await?,
        bubbles: bubbles(&app, &session.user_id).await?,
        error: None,
    };
    html(page)
}

/// `POST /chat`: one turn; htmx gets the conversation fragment, a plain form the page.
pub(crate) async fn send(
    State(app): State<AppState>,
    session: Session,
    form: Form,
) -> Result<Response, UiError> {
    let message = form.text("message");
    let error = if message.is_empty() {
        Some("Type a message first.".to_owned())
    } else if message.chars().count() > MESSAGE_MAX {
        Some(format!("Messages are at most {MESSAGE_MAX} characters."))
    } else if message.contains('\0') {
        Some("The message contains a NUL character.".to_owned())
    } else {
        let zone = zone_of(&app, &session.user_id).await?;
        app.chat.send(&session.user_id, zone, message).await?;
        None
    };
    if form.htmx {
        let log = ChatLog {
            bubbles: bubbles(&app, &session.user_id).await?,
            error,
        };
        return Ok(Html(log.render()?).into_response());
    }
    match error {
        Some(error) => Err(UiError::BadRequest(error)),
        None => Ok(Redirect::to("/chat#end").into_response()),
    }
}

/// `POST /chat/clear`.
pub(crate) async fn clear(
    State(app): State<AppState>,
    session: Session,
    _form: Form,
) -> Result<Response, UiError> {
    app.chat.clear(&session.user_id).await?;
    Ok(Redirect::to("/chat").into_response())
}
