//! The OpenAPI document, generated from the handlers, and Swagger UI served from the binary.

use axum::Router;
use axum::routing::get;
use utoipa::openapi::header::Header;
use utoipa::openapi::response::{Response, ResponseBuilder};
use utoipa::openapi::schema::{ObjectBuilder, Type};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{Content, RefOr};
use utoipa::{Modify, OpenApi};
use utoipa_swagger_ui::SwaggerUi;

use crate::AppState;
use crate::api::{accounts, activity, chat, feed, projects, settings, tasks, transfer};

#[derive(OpenApi)]
#[openapi(
    info(title = "taskstream", description = "Self-hosted task manager with an event stream. REST API compatible with the reference Next.js frontend."),
    paths(
        tasks::create, tasks::list, tasks::get_one, tasks::update, tasks::delete, tasks::complete,
        projects::list, projects::create, projects::get_one, projects::rename, projects::delete, projects::tasks,
        projects::links, projects::set_project, projects::subtasks, projects::create_subtask,
        activity::audit, activity::notifications, activity::mark_read, activity::snooze, tasks::reminders, activity::events,
        chat::send, chat::history, chat::clear,
        settings::get, settings::put,
        transfer::export, transfer::import, feed::state, feed::rotate, feed::revoke, feed::calendar,
        accounts::token, accounts::logout, accounts::list_tokens, accounts::create_token, accounts::revoke_token,
        crate::health::health, crate::health::ready, crate::metrics::render,
    ),
    components(schemas(tasks::TaskCreate, tasks::TaskUpdate, chat::ChatRequest, activity::SnoozeRequest, accounts::TokenRequest, accounts::NewTokenRequest, settings::SettingsUpdate, tasks::RecurrenceFromDoc, tasks::RecurrenceTriggerDoc, tasks::StatusFilterDoc, tasks::DueDoc, tasks::SortDoc, tasks::OrderDoc, transfer::ExportFormatDoc, transfer::ImportFormatDoc, taskstream_engine::transfer::ImportReport, feed::FeedState, feed::NewFeed, projects::ProjectName, projects::ProjectMove, projects::DeleteProjectResponse, taskstream_engine::project::ProjectView, taskstream_engine::project::TaskLinks)),
    modifiers(&BearerAuth, &EnforcedLimits),
    tags((name = "tasks", description = "Tasks of the authenticated user"), (name = "projects", description = "Projects (lists) and subtasks of the authenticated user's tasks"), (name = "activity", description = "Audit trail, notifications and the live event stream of the authenticated user"), (name = "chat", description = "The assistant: plain language in, task operations out"), (name = "settings", description = "Time zone and daily digest of the authenticated user"), (name = "data", description = "Export and import of the authenticated user's tasks (JSON, CSV, iCalendar, Todoist), and the calendar feed"), (name = "auth", description = "Local accounts: log-in tokens and personal API tokens"), (name = "health"))
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

/// Adds the answers the middleware and extractors give on every route, so the document lists
/// each status a client can get: 401 wherever a token is required, 413 and 422 for bodies,
/// 429 for task writes (the per-user write limit).
struct EnforcedLimits;

fn detail_response(description: &str) -> RefOr<Response> {
    let detail = ObjectBuilder::new()
        .property("detail", ObjectBuilder::new().schema_type(Type::String))
        .required("detail");
    RefOr::T(
        ResponseBuilder::new()
            .description(description)
            .content("application/json", Content::new(Some(detail)))
            .build(),
    )
}

fn with_header(response: RefOr<Response>, name: &str, description: &str) -> RefOr<Response> {
    match response {
        RefOr::T(mut response) => {
            let mut header = Header::new(ObjectBuilder::new().schema_type(Type::String));
            header.description = Some(description.to_owned());
            response.headers.insert(name.to_owned(), RefOr::T(header));
            RefOr::T(response)
        }
        other => other,
    }
}

impl Modify for EnforcedLimits {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        for (path, item) in openapi.paths.paths.iter_mut() {
            let operations = [
                (&mut item.get, false),
                (&mut item.put, true),
                (&mut item.post, true),
                (&mut item.delete, true),
                (&mut item.patch, true),
            ];
            for (operation, writes) in operations {
                let Some(operation) = operation else { continue };
                let responses = &mut operation.responses.responses;
                let secured = operation
                    .security
                    .as_ref()
                    .is_some_and(|requirements| !requirements.is_empty());
                if secured {
                    responses.insert(
                        "401".to_owned(),
                        with_header(
                            detail_response(
                                "No token, or one that is invalid, expired or revoked \
                                 (`Not authenticated`, `Invalid token`, `Token expired`, \
                                 `Invalid token payload`)",
                            ),
                            "WWW-Authenticate",
                            "`Bearer`",
                        ),
                    );
                }
                if operation.request_body.is_some() {
                    responses
                        .entry("413".to_owned())
                        .or_insert_with(|| detail_response("The body is larger than 64 KiB"));
                    responses
                        .entry("422".to_owned())
                        .or_insert_with(|| detail_response("The body or a parameter is invalid"));
                }
                if writes && (path.starts_with("/api/tasks") || path.starts_with("/api/projects")) {
                    responses.insert(
                        "429".to_owned(),
                        with_header(
                            detail_response(
                                "The user's task write limit is spent (`--task-write-burst`, \
                                 `--task-writes-per-second`)",
                            ),
                            "Retry-After",
                            "Seconds until the next write is allowed",
                        ),
                    );
                }
            }
        }
    }
}

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/metrics", get(crate::metrics::render))
        .merge(SwaggerUi::new("/docs").url("/openapi.json", ApiDoc::openapi()))
}
