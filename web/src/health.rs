//! Liveness (`/health`, the reference's shape) and readiness (`/ready`: every probe passes).

use std::future::Future;
use std::pin::Pin;

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use chrono::{SecondsFormat, Utc};
use serde_json::{Map, Value, json};

use crate::AppState;

pub type ProbeFuture<'a> = Pin<Box<dyn Future<Output = Result<(), String>> + Send + 'a>>;

/// A component that can say whether it is ready to serve (store, log, scheduler, ...).
pub trait Probe: Send + Sync {
    fn check(&self) -> ProbeFuture<'_>;
}

impl Probe for taskstream_engine::TaskService {
    fn check(&self) -> ProbeFuture<'_> {
        Box::pin(async move { self.store().ping().await.map_err(|error| error.to_string()) })
    }
}

impl Probe for taskstream_engine::log::EventLog {
    fn check(&self) -> ProbeFuture<'_> {
        Box::pin(async move {
            self.end_offset("task-events", 0)
                .map(|_| ())
                .map_err(|error| error.to_string())
        })
    }
}

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
    let mut checks = Map::new();
    let mut all_ready = true;
    for (name, probe) in app.probes.iter() {
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
