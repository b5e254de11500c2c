//! The OpenAPI document, generated from the handlers, and Swagger UI served from the binary.

use axum::Router;
use axum::routing::get;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_swagger_ui::SwaggerUi;

use crate::AppState;
use crate::api::{accounts, activity, chat, settings, tasks};

#[derive(OpenApi)]
#[openapi(
    info(title = "taskstream", description = "Self-hosted task manager with an event stream. REST API compatible with the reference Next.js frontend."),
    paths(
        tasks::create, tasks::list, tasks::get_one, tasks::update, tasks::delete, tasks::complete,
        activity::audit, activity::notifications, activity::mark_read, activity::snooze, tasks::reminders, activity::events,
        chat::send, chat::history, chat::clear,
        settings::get, settings::put,
        accounts::token, accounts::logout, accounts::list_tokens, accounts::create_token, accounts::revoke_token,
        crate::health::health, crate::health::ready, crate::metrics::render,
    ),
    components(schemas(tasks::TaskCreate, tasks::TaskUpdate, chat::ChatRequest, activity::SnoozeRequest, accounts::TokenRequest, accounts::NewTokenRequest)),
    modifiers(&BearerAuth),
    tags((name = "tasks", description = "Tasks of the authenticated user"), (name = "activity", description = "Audit trail, notifications and the live event stream of the authenticated user"), (name = "chat", description = "The assistant: plain language in, task operations out"), (name = "settings", description = "Time zone and daily digest of the authenticated user"), (name = "auth", description = "Local accounts: log-in tokens and personal API tokens"), (name = "health"))
)]
pub struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .build(),
            ),
        );
    }
}

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/metrics", get(crate::metrics::render))
        .merge(SwaggerUi::new("/docs").url("/openapi.json", ApiDoc::openapi()))
}
