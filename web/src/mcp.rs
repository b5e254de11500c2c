//! The MCP (Model Context Protocol) server: the assistant's task and project tools for AI clients, over
//! streamable HTTP at `/mcp` here and over stdio through `taskstream mcp`. One handler serves
//! both; only where the caller's identity comes from differs.
//!
//! Over HTTP every request is authenticated on its own (Bearer JWT, like the REST API) and the
//! handler acts for that token's `sub`, read from the request itself: never from a session and
//! never from tool arguments, so a token for one user cannot reach another user's tasks even with
//! someone else's session id.

use std::sync::Arc;

use axum::Router;
use axum::extract::Request;
use axum::http::request::Parts;
use axum::middleware::Next;
use axum::response::Response;
use chrono_tz::Tz;
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, Implementation, JsonObject,
    ListToolsResult, PaginatedRequestParams, ServerCapabilities, ServerConfig, Tool,
    ToolAnnotations,
};
use rmcp::service::RequestContext;
use rmcp::transport::streamable_http_server::session::never::NeverSessionManager;
use rmcp::transport::{StreamableHttpServerConfig, StreamableHttpService};
use rmcp::{ErrorData, RoleServer, ServerHandler};
use serde_json::Value;
use taskstream_engine::TaskService;
use taskstream_engine::assistant::{TOOL_SPECS, ToolCall, ToolSpec, Tools};

use crate::AppState;
use crate::auth::AuthUser;
use crate::extract::TimeZoneHeader;

/// Where MCP clients reach the server over HTTP.
pub const MCP_PATH: &str = "/mcp";

const INSTRUCTIONS: &str = "taskstream is the user's task list. Use list_tasks to find a task (and its task_id) before \
completing, updating or deleting it; add_task creates one, with optional tags, a reminder \
(minutes before the due date), a recurrence rule, a project (by name: list_projects shows them, \
create_project makes one) and a parent task (subtask_of, by id or title). Dates without an offset \
are read in the user's time zone. Every tool returns {\"success\": true, \"data\": ...} or {\"success\": false, \
\"error\": \"...\"}.";

/// Who the tools act for: fixed for a stdio process, per request over HTTP.
#[derive(Debug, Clone, PartialEq)]
struct Caller {
    user_id: String,
    zone: Tz,
}

/// The MCP handler over the shared tool layer ([`Tools`]), so MCP clients, the chat assistant and
/// REST all change tasks the same way.
#[derive(Clone)]
pub struct TaskstreamMcp {
    tools: Tools,
    /// `Some` for stdio (whoever may start the process acts as this user); `None` over HTTP,
    /// where each request carries its own verified caller.
    fixed: Option<Caller>,
}

impl TaskstreamMcp {
    /// A handler acting for one user in `zone`: for `taskstream mcp` over stdio, where the
    /// operating-system user who launches the process is trusted with the data directory.
    pub fn for_user(tasks: TaskService, user_id: impl Into<String>, zone: Tz) -> Self {
        Self {
            tools: Tools::new(tasks),
            fixed: Some(Caller {
                user_id: user_id.into(),
                zone,
            }),
        }
    }

    /// A handler that reads the caller from each HTTP request (put there by [`authenticate`]).
    fn per_request(tasks: TaskService) -> Self {
        Self {
            tools: Tools::new(tasks),
            fixed: None,
        }
    }

    fn caller(&self, context: &RequestContext<RoleServer>) -> Result<Caller, ErrorData> {
        if let Some(caller) = &self.fixed {
            return Ok(caller.clone());
        }
        context
            .extensions
            .get::<Parts>()
            .and_then(|parts| parts.extensions.get::<Caller>())
            .cloned()
            // Unreachable behind `authenticate`; refusing is the safe answer if it ever is not.
            .ok_or_else(|| ErrorData::internal_error("the request is not authenticated", None))
    }
}

/// The tools as MCP lists them: name, description and the same JSON schema the argument check
/// uses, plus hints for clients that ask before running a tool that changes or deletes data.
pub fn tool_list() -> Vec<Tool> {
    TOOL_SPECS.iter().map(tool).collect()
}

fn tool(spec: &ToolSpec) -> Tool {
    let schema: JsonObject = match spec.parameters_schema() {
        Value::Object(schema) => schema,
        _ => JsonObject::new(),
    };
    let annotations = match spec.name {
        "list_tasks" | "list_projects" => ToolAnnotations::new().read_only(true),
        "delete_task" => ToolAnnotations::new().read_only(false).destructive(true),
        "update_task" => ToolAnnotations::new()
            .read_only(false)
            .destructive(true)
            .idempotent(true),
        "complete_task" => ToolAnnotations::new()
            .read_only(false)
            .destructive(false)
            .idempotent(true),
        _ => ToolAnnotations::new().read_only(false).destructive(false),
    };
    Tool::new(spec.name, spec.description, Arc::new(schema))
        .with_annotations(annotations.open_world(false))
}

impl ServerHandler for TaskstreamMcp {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(
                Implementation::new("taskstream", env!("CARGO_PKG_VERSION"))
                    .with_title("taskstream tasks"),
            )
            .with_instructions(INSTRUCTIONS)
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        Ok(ListToolsResult::with_all_items(tool_list()))
    }

    fn get_tool(&self, name: &str) -> Option<Tool> {
        ToolSpec::find(name).map(tool)
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        if ToolSpec::find(&request.name).is_none() {
            return Err(ErrorData::invalid_params(
                format!("Unknown tool: {}", request.name),
                None,
            ));
        }
        let caller = self.caller(&context)?;
        let arguments = request.arguments.map_or(Value::Null, Value::Object);
        let invocation = self
            .tools
            .call(
                &caller.user_id,
                caller.zone,
                &ToolCall::new(&request.name, arguments),
            )
            .await;
        // The same `{"success", "data"|"error"}` object a model gets in chat, as JSON text for
        // every client and as structured content for those that read it.
        let body = invocation.result_json();
        let result = if invocation.success {
            CallToolResult::structured(body)
        } else {
            CallToolResult::structured_error(body)
        };
        Ok(result.into())
    }
}

/// `/mcp`: the streamable HTTP transport behind Bearer authentication.
///
/// Stateless (no MCP session is kept between requests; every request is authenticated and
/// answered on its own) with plain JSON responses, so nothing long-lived holds a connection or
/// memory, and any instance behind a load balancer can answer. Host-header checking (rmcp's
/// DNS-rebinding guard for unauthenticated local servers) is off: every request needs a Bearer
/// token a rebinding page cannot have, and a fixed host list would break deployments behind a
/// domain name.
pub(crate) fn routes(state: &AppState) -> Router<AppState> {
    let tasks = state.tasks.clone();
    let config = StreamableHttpServerConfig::default()
        .with_legacy_session_mode(false)
        .with_json_response(true)
        .disable_allowed_hosts()
        .with_max_request_body_bytes(crate::BODY_LIMIT_BYTES);
    let service = StreamableHttpService::new(
        move || Ok(TaskstreamMcp::per_request(tasks.clone())),
        Arc::new(NeverSessionManager::default()),
        config,
    );
    Router::new().route_service(MCP_PATH, service).route_layer(
        axum::middleware::from_fn_with_state(state.clone(), authenticate),
    )
}

/// Verifies the Bearer token (401 with `WWW-Authenticate: Bearer` otherwise, exactly like the
/// REST API) and the optional `X-Timezone` header (UTC without one), and hands the caller to the
/// handler through the request's extensions.
async fn authenticate(
    AuthUser(user_id): AuthUser,
    TimeZoneHeader(zone): TimeZoneHeader,
    mut request: Request,
    next: Next,
) -> Response {
    request.extensions_mut().insert(Caller {
        user_id,
        zone: zone.unwrap_or(Tz::UTC),
    });
    next.run(request).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_every_tool_with_its_schema() {
        let tools = tool_list();
        let names: Vec<&str> = tools.iter().map(|tool| tool.name.as_ref()).collect();
        assert_eq!(
            names,
            [
                "add_task",
                "list_tasks",
                "complete_task",
                "update_task",
                "delete_task",
                "list_projects",
                "create_project"
            ]
        );
        for (tool, spec) in tools.iter().zip(TOOL_SPECS.iter()) {
            assert_eq!(
                Value::Object((*tool.input_schema).clone()),
                spec.parameters_schema()
            );
            assert_eq!(tool.description.as_deref(), Some(spec.description));
        }
    }
}
