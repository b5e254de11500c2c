//! Liveness (`/health`, the reference's shape) and readiness (`/ready`: every probe passes).

use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;
use axum::routing::get;
use chrono::{SecondsFormat, Utc};
use metrics_exporter_prometheus::PrometheusHandle;
use serde_json::{Map, Value, json};
pub use taskstream_engine::ports::{Probe, ProbeFuture};

use crate::AppState;

/// The named probes `/ready` asks, in the order it reports them.
pub type Probes = Arc<Vec<(&'static str, Arc<dyn Probe>)>>;

fn timestamp() -> String {
    Utc::now().to_rfc3339_opts(SecondsFormat::Micros, true)
}

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/health", get(health))
        .route("/ready", get(ready))
}

/// Always 200 while the process serves HTTP.
#[utoipa::path(get, path = "/health", tag = "health", responses((status = 200)))]
pub(crate) async fn health() -> Json<Value> {
    Json(json!({ "status": "healthy", "timestamp": timestamp() }))
}

/// 200 when every component is ready, else 503 naming the failing ones.
#[utoipa::path(get, path = "/ready", tag = "health", responses((status = 200), (status = 503)))]
pub(crate) async fn ready(State(app): State<AppState>) -> (StatusCode, Json<Value>) {
    readiness(&app.probes).await
}

async fn readiness(probes: &Probes) -> (StatusCode, Json<Value>) {
    let mut checks = Map::new();
    let mut all_ready = true;
    for (name, probe) in probes.iter() {
        let outcome = match probe.check().await {
            Ok(()) => "ok".to_owned(),
            Err(reason) => {
                all_ready = false;
                reason
            }
        };
        checks.insert((*name).to_owned(), Value::String(outcome));
    }
    let status = if all_ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let word = if all_ready { "ready" } else { "unavailable" };
    (
        status,
        Json(json!({ "status": word, "checks": checks, "timestamp": timestamp() })),
    )
}

/// What a process that serves no REST API (a cluster consumer role) still answers:
/// `/health`, `/ready` and `/metrics`, with the same bodies as the full router.
pub fn ops_router(metrics: PrometheusHandle, probes: Probes) -> Router {
    Router::new()
        .route("/health", get(health))
        .route(
            "/ready",
            get(move || {
                let probes = Arc::clone(&probes);
                async move { readiness(&probes).await }
            }),
        )
        .route(
            "/metrics",
            get(move || {
                let metrics = metrics.clone();
                async move {
                    (
                        [(CONTENT_TYPE, crate::metrics::CONTENT_TYPE_TEXT)],
                        metrics.render(),
                    )
                        .into_response()
                }
            }),
        )
}
