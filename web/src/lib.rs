//! The HTTP surface of taskstream: the frontend-compatible REST API, the built-in web UI, the
//! MCP server for AI clients, health, readiness, Prometheus metrics and OpenAPI docs. Knows nothing of Dapr or
//! PostgreSQL.
#![forbid(unsafe_code)]

mod api;
mod auth;
mod docs;
mod error;
mod extract;
mod health;
mod mcp;
mod metrics;
mod ui;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderName, HeaderValue, Method};
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::cors::{AllowHeaders, AllowOrigin, CorsLayer};
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;

pub use api::accounts::{ClientAddr, LOGIN_TOKEN_TTL_DAYS};
pub use auth::{AuthUser, JwtVerifier, SESSION_COOKIE, TokenSigner};
pub use error::ApiError;
pub use health::{Probe, ProbeFuture, Probes, ops_router};
pub use mcp::{MCP_PATH, TaskstreamMcp};
pub use metrics::install_recorder;
pub use ui::UiOptions;

use taskstream_engine::TaskService;

/// Largest request body accepted; the biggest valid task is a few KiB.
pub const BODY_LIMIT_BYTES: usize = 64 * 1024;

/// Origins the existing frontend is served from (reference §1.0); more come from configuration.
pub const DEFAULT_CORS_ORIGINS: &[&str] = &[
    "http://localhost:3000",
    "http://127.0.0.1:3000",
    "http://[::1]:3000",
    "http://localhost:3001",
    "http://127.0.0.1:3001",
    "https://frontend-sepia-alpha-94.vercel.app",
    "https://todo-chatbot-app.vercel.app",
];

/// Everything the handlers share.
#[derive(Clone)]
pub struct AppState {
    pub tasks: TaskService,
    /// The assistant behind `/api/{user_id}/chat`, with its history.
    pub chat: taskstream_engine::assistant::ChatService,
    /// Per-user settings (time zone, digest).
    pub settings: Arc<dyn taskstream_engine::ports::SettingsStore>,
    pub auth: Arc<JwtVerifier>,
    /// Local accounts: log-in, sign-up and personal API tokens.
    pub accounts: taskstream_engine::accounts::AccountService,
    /// Signs the JWTs handed out at log-in (same secret as `auth`).
    pub signer: Arc<TokenSigner>,
    pub metrics: metrics_exporter_prometheus::PrometheusHandle,
    /// Source of `GET /api/events`.
    pub live: Arc<dyn taskstream_engine::ports::LiveFeed>,
    /// Turns true when the server begins to shut down, so streaming responses can end.
    pub shutdown: tokio::sync::watch::Receiver<bool>,
    /// Named checks behind `/ready`.
    pub probes: Probes,
    /// How the web UI is served.
    pub ui: UiOptions,
}

/// Builds the whole HTTP application. `extra_origins` are added to [`DEFAULT_CORS_ORIGINS`].
pub fn router(state: AppState, extra_origins: &[String]) -> Router {
    let request_id = HeaderName::from_static("x-request-id");
    Router::new()
        .merge(health::routes())
        .merge(api::routes())
        .merge(mcp::routes(&state))
        .merge(docs::routes())
        .merge(ui::routes(&state))
        .fallback(error::not_found)
        .method_not_allowed_fallback(error::method_not_allowed)
        .layer(axum::middleware::from_fn(metrics::track))
        .layer(DefaultBodyLimit::max(BODY_LIMIT_BYTES))
        .layer(CatchPanicLayer::custom(error::panic_response))
        .with_state(state)
        .layer(
            TraceLayer::new_for_http().make_span_with(|request: &axum::http::Request<_>| {
                let id = request
                    .headers()
                    .get("x-request-id")
                    .and_then(|value| value.to_str().ok())
                    .unwrap_or("-");
                tracing::info_span!("http", method = %request.method(), uri = %request.uri().path(), request_id = %id)
            }),
        )
        .layer(PropagateRequestIdLayer::new(request_id.clone()))
        .layer(SetRequestIdLayer::new(request_id, MakeRequestUuid))
        .layer(cors(extra_origins))
}

fn cors(extra_origins: &[String]) -> CorsLayer {
    let origins: Vec<HeaderValue> = DEFAULT_CORS_ORIGINS
        .iter()
        .map(|origin| origin.to_string())
        .chain(extra_origins.iter().cloned())
        .filter_map(|origin| {
            let origin = origin.trim().trim_end_matches('/').to_owned();
            HeaderValue::from_str(&origin).ok()
        })
        .collect();
    CorsLayer::new()
        .allow_origin(AllowOrigin::list(origins))
        .allow_credentials(true)
        .allow_methods([
            Method::GET,
            Method::POST,
            Method::PUT,
            Method::PATCH,
            Method::DELETE,
            Method::OPTIONS,
        ])
        .allow_headers(AllowHeaders::mirror_request())
        .expose_headers([
            HeaderName::from_static("x-request-id"),
            HeaderName::from_static("www-authenticate"),
        ])
        .max_age(Duration::from_secs(600))
}
