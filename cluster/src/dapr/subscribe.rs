//! The app side of Dapr pub/sub for the consumer roles (CONTRACT §5; `dapr.md` §1.2, §1.3):
//! `GET /dapr/subscribe`, `GET /dapr/config`, and the delivery routes, which run the engine's
//! own consumer functions ([`ConsumerSpec::handle`] and [`EffectApplier::apply`]) with the same
//! "processed" marks as the embedded runner.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde_json::{Value, json};
use taskstream_engine::EngineError;
use taskstream_engine::consumers::apply::EffectApplier;
use taskstream_engine::consumers::runner::{PROCESSED_TTL, dead_letter_topic, processed_mark};
use taskstream_engine::consumers::{self, ConsumerSpec};
use taskstream_engine::event::{EventEnvelope, Topic};
use taskstream_engine::ports::StateStore;

use super::PUBSUB;
use super::token::{self, AppToken};

/// Audit route: every event of its topics.
pub const HANDLE_EVENT: &str = "/api/v1/handle-event";
/// The `all` role's delivery route prefix: one subscription per topic, every consumer of it.
pub const ALL_ROUTE_PREFIX: &str = "/api/v1/all/";
/// Notification route: the `reminders` topic.
pub const HANDLE_REMINDER: &str = "/api/v1/handle-reminder";
/// Recurring route: `task.completed` events only (a subscription rule sends the rest to
/// [`IGNORE`]).
pub const HANDLE_COMPLETED: &str = "/api/v1/handle-completed";
/// Recurring route: acknowledges the other `task-events`.
pub const IGNORE: &str = "/api/v1/ignore";

/// A consumer app: one Dapr app id, one consumer group, one engine consumer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConsumerRole {
    /// Audit trail of task and reminder events.
    Audit,
    /// Repairs a missing next occurrence after `task.completed`.
    Recurring,
    /// In-app notifications from `reminder.triggered`.
    Notification,
}

impl ConsumerRole {
    /// Every role, for `--role` help and tests.
    pub const ALL: [ConsumerRole; 3] = [Self::Audit, Self::Recurring, Self::Notification];

    /// `audit`, `recurring` or `notification` (the `--role` values).
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|role| role.name() == name)
    }

    /// The engine consumer's group name.
    pub fn name(self) -> &'static str {
        self.spec().group
    }

    /// The engine consumer this role runs.
    pub fn spec(self) -> ConsumerSpec {
        match self {
            Self::Audit => consumers::AUDIT,
            Self::Recurring => consumers::RECURRING,
            Self::Notification => consumers::NOTIFICATION,
        }
    }

    /// The `GET /dapr/subscribe` answer: one entry per topic of the consumer, each with the
    /// topic's dead-letter topic. Audit also reads `reminders`, like the embedded consumer.
    pub fn subscriptions(self, pubsub: &str) -> Value {
        let entries: Vec<Value> = self
            .spec()
            .topics
            .iter()
            .map(|&topic| {
                let mut entry = json!({
                    "pubsubname": pubsub,
                    "topic": topic.name(),
                    "deadLetterTopic": dead_letter_topic(topic),
                });
                match self {
                    Self::Recurring => {
                        entry["routes"] = json!({
                            "rules": [{ "match": "event.type == \"task.completed\"", "path": HANDLE_COMPLETED }],
                            "default": IGNORE,
                        });
                    }
                    Self::Notification => entry["route"] = json!(HANDLE_REMINDER),
                    Self::Audit => entry["route"] = json!(HANDLE_EVENT),
                }
                entry
            })
            .collect();
        Value::Array(entries)
    }
}

impl std::fmt::Display for ConsumerRole {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// What the delivery routes need.
#[derive(Clone)]
pub struct ConsumerDeps {
    /// Where the "processed" marks live (Dapr state in the cluster).
    pub state: Arc<dyn StateStore>,
    /// Carries out effects through the task store.
    pub effects: EffectApplier,
    /// Checks the sidecar's `dapr-api-token`.
    pub app_token: AppToken,
    /// The pub/sub component named in `/dapr/subscribe`.
    pub pubsub: String,
}

impl ConsumerDeps {
    /// Dependencies with the `pubsub` component and no app token.
    pub fn new(state: Arc<dyn StateStore>, effects: EffectApplier) -> Self {
        Self {
            state,
            effects,
            app_token: AppToken::default(),
            pubsub: PUBSUB.to_owned(),
        }
    }

    /// Requires `token` from the sidecar.
    pub fn with_app_token(mut self, token: AppToken) -> Self {
        self.app_token = token;
        self
    }

    /// Subscribes on another pub/sub component.
    pub fn with_pubsub(mut self, pubsub: &str) -> Self {
        self.pubsub = pubsub.to_owned();
        self
    }
}

/// The subscriber's verdict on one delivery, in the words daprd understands (`dapr.md` §1.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryStatus {
    /// Handled (or handled before): acknowledge.
    Success,
    /// A transient failure: deliver again later.
    Retry,
    /// Never processable: to the dead-letter topic.
    Drop,
}

impl DeliveryStatus {
    /// The `status` value of the reply.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Success => "SUCCESS",
            Self::Retry => "RETRY",
            Self::Drop => "DROP",
        }
    }
}

/// Why a body is not an event.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error("body is not JSON: {0}")]
    /// Not JSON at all.
    NotJson(String),
    #[error("data_base64 is not base64: {0}")]
    /// `data_base64` that is not base64.
    Base64(String),
    #[error("no event envelope in the body: {0}")]
    /// JSON, but no envelope where one should be.
    NoEnvelope(String),
    #[error("event envelope nested too deep")]
    /// More CloudEvent layers than any sender makes.
    TooDeep,
}

/// How many CloudEvent layers are unwrapped (ours, plus daprd's raw-payload wrapping).
const MAX_LAYERS: usize = 4;

/// The event envelope in a delivery body: a bare envelope, a CloudEvent whose `data` is the
/// envelope (an object, or a JSON string of it), or a CloudEvent whose `data_base64` holds it
/// (how daprd delivers to `rawPayload` subscriptions, CONTRACT §5).
pub fn decode_event(body: &[u8]) -> Result<EventEnvelope, DecodeError> {
    let value: Value =
        serde_json::from_slice(body).map_err(|error| DecodeError::NotJson(error.to_string()))?;
    decode_value(value, 0)
}

fn decode_value(value: Value, depth: usize) -> Result<EventEnvelope, DecodeError> {
    if depth >= MAX_LAYERS {
        return Err(DecodeError::TooDeep);
    }
    let Value::Object(mut fields) = value else {
        return Err(DecodeError::NoEnvelope("not a JSON object".to_owned()));
    };
    if fields.contains_key("event_id") {
        return serde_json::from_value(Value::Object(fields))
            .map_err(|error| DecodeError::NoEnvelope(error.to_string()));
    }
    if let Some(encoded) = fields.remove("data_base64") {
        let text = encoded
            .as_str()
            .ok_or_else(|| DecodeError::Base64("not a string".to_owned()))?;
        let bytes = BASE64
            .decode(text.trim())
            .map_err(|error| DecodeError::Base64(error.to_string()))?;
        let inner: Value = serde_json::from_slice(&bytes)
            .map_err(|error| DecodeError::NotJson(error.to_string()))?;
        return decode_value(inner, depth + 1);
    }
    match fields.remove("data") {
        Some(Value::String(text)) => {
            let inner: Value = serde_json::from_str(&text)
                .map_err(|error| DecodeError::NotJson(error.to_string()))?;
            decode_value(inner, depth + 1)
        }
        Some(inner @ Value::Object(_)) => decode_value(inner, depth + 1),
        Some(_) => Err(DecodeError::NoEnvelope(
            "data is neither object nor string".to_owned(),
        )),
        None => Err(DecodeError::NoEnvelope(
            "neither event_id, data nor data_base64".to_owned(),
        )),
    }
}

/// Whether an engine failure may pass if tried again (store down or busy) rather than being
/// a property of the event.
fn transient(error: &EngineError) -> bool {
    matches!(error, EngineError::Unavailable(_) | EngineError::Store(_))
}

/// Handles one event for `spec`, exactly as the embedded runner does for one record: skip it
/// when its mark is there, apply the consumer's effects (each idempotent on its own, so a
/// concurrent or crashed-midway copy changes nothing twice), then set the mark for a day.
pub async fn process(
    spec: ConsumerSpec,
    state: &dyn StateStore,
    effects: &EffectApplier,
    event: &EventEnvelope,
) -> DeliveryStatus {
    let key = spec.state_key(event.event_id);
    match state.get(&key).await {
        Ok(Some(_)) => {
            tracing::debug!(consumer = spec.group, event_id = %event.event_id, "duplicate delivery");
            metrics::counter!("consumer_duplicates_total", "consumer" => spec.group).increment(1);
            return DeliveryStatus::Success;
        }
        Ok(None) => {}
        Err(error) => {
            tracing::warn!(%error, consumer = spec.group, "cannot read the processed mark");
            return DeliveryStatus::Retry;
        }
    }
    for effect in (spec.handle)(event, taskstream_engine::time::now()) {
        if let Err(error) = effects.apply(effect).await {
            let status = if transient(&error) {
                DeliveryStatus::Retry
            } else {
                DeliveryStatus::Drop
            };
            tracing::warn!(%error, consumer = spec.group, event_id = %event.event_id, status = status.as_str(), "effect failed");
            count_verdict(spec.group, status);
            return status;
        }
    }
    match state
        .set(&key, processed_mark(event.event_id), Some(PROCESSED_TTL))
        .await
    {
        Ok(()) => {
            metrics::counter!("consumer_processed_total", "consumer" => spec.group).increment(1);
            DeliveryStatus::Success
        }
        Err(error) => {
            // The effects stand; a redelivery finds them done and sets the mark then.
            tracing::warn!(%error, consumer = spec.group, "cannot set the processed mark");
            count_verdict(spec.group, DeliveryStatus::Retry);
            DeliveryStatus::Retry
        }
    }
}

/// The embedded runner's counters for a delivery answered RETRY (daprd redelivers) or DROP
/// (daprd moves it to the dead-letter topic), so both shapes report alike on `/metrics`.
fn count_verdict(consumer: &'static str, status: DeliveryStatus) {
    match status {
        DeliveryStatus::Retry => {
            metrics::counter!("consumer_retries_total", "consumer" => consumer).increment(1);
        }
        DeliveryStatus::Drop => {
            metrics::counter!("consumer_dead_lettered_total", "consumer" => consumer).increment(1);
        }
        DeliveryStatus::Success => {}
    }
}

fn reply(status: DeliveryStatus, event_id: Option<uuid::Uuid>) -> Response {
    let mut body = json!({ "status": status.as_str() });
    if let Some(id) = event_id {
        body["event_id"] = json!(id);
    }
    (StatusCode::OK, axum::Json(body)).into_response()
}

#[derive(Clone)]
struct RouteState {
    role: ConsumerRole,
    deps: ConsumerDeps,
}

async fn deliver(State(route): State<RouteState>, body: Bytes) -> Response {
    let spec = route.role.spec();
    let event = match decode_event(&body) {
        Ok(event) => event,
        Err(error) => {
            tracing::warn!(%error, consumer = spec.group, "undecodable delivery; dropping it");
            count_verdict(spec.group, DeliveryStatus::Drop);
            return reply(DeliveryStatus::Drop, None);
        }
    };
    let status = process(spec, route.deps.state.as_ref(), &route.deps.effects, &event).await;
    reply(status, Some(event.event_id))
}

async fn ignore(body: Bytes) -> Response {
    match decode_event(&body) {
        Ok(event) => reply(DeliveryStatus::Success, Some(event.event_id)),
        Err(error) => {
            tracing::warn!(%error, "undecodable delivery on the ignore route; dropping it");
            count_verdict(consumers::RECURRING.group, DeliveryStatus::Drop);
            reply(DeliveryStatus::Drop, None)
        }
    }
}

/// The reference's `/dapr/config` answer (no actors).
fn dapr_config() -> Value {
    json!({ "entities": [], "drainRebalancedActors": false, "reentrancy": { "enabled": false } })
}

/// The routes daprd calls on a consumer app of `role`: `GET /dapr/subscribe`,
/// `GET /dapr/config` and the role's delivery routes (a route of another role answers 404,
/// which daprd dead-letters). Every route checks the app token.
pub fn consumer_router(role: ConsumerRole, deps: ConsumerDeps) -> Router {
    let subscriptions = role.subscriptions(&deps.pubsub);
    let token = deps.app_token.clone();
    let state = RouteState { role, deps };
    let mut router = Router::new()
        .route(
            "/dapr/subscribe",
            get(move || async move { axum::Json(subscriptions) }),
        )
        .route("/dapr/config", get(|| async { axum::Json(dapr_config()) }));
    router = match role {
        ConsumerRole::Audit => router.route(HANDLE_EVENT, post(deliver)),
        ConsumerRole::Notification => router.route(HANDLE_REMINDER, post(deliver)),
        ConsumerRole::Recurring => router
            .route(HANDLE_COMPLETED, post(deliver))
            .route(IGNORE, post(ignore)),
    };
    router
        .with_state(state)
        .layer(axum::middleware::from_fn_with_state(token, token::require))
}

/// `GET /dapr/subscribe` (`[]`) and `GET /dapr/config` for an app that only publishes (the
/// API role), behind the app token.
pub fn producer_router(app_token: AppToken) -> Router {
    Router::new()
        .route("/dapr/subscribe", get(|| async { axum::Json(json!([])) }))
        .route("/dapr/config", get(|| async { axum::Json(dapr_config()) }))
        .layer(axum::middleware::from_fn_with_state(
            app_token,
            token::require,
        ))
}

/// The `all` role's routes: every consumer behind one sidecar. Dapr allows one subscription
/// per topic and app, so each topic gets one route that runs every consumer of it, each with
/// its own "processed" marks. Every route checks the app token.
pub fn all_consumers_router(deps: ConsumerDeps) -> Router {
    let subscriptions: Vec<Value> = [Topic::TaskEvents, Topic::Reminders]
        .into_iter()
        .map(|topic| {
            json!({
                "pubsubname": deps.pubsub,
                "topic": topic.name(),
                "route": format!("{ALL_ROUTE_PREFIX}{}", topic.name()),
                "deadLetterTopic": dead_letter_topic(topic),
            })
        })
        .collect();
    let subscriptions = Value::Array(subscriptions);
    let token = deps.app_token.clone();
    Router::new()
        .route(
            "/dapr/subscribe",
            get(move || async move { axum::Json(subscriptions) }),
        )
        .route("/dapr/config", get(|| async { axum::Json(dapr_config()) }))
        .route(
            &format!("{ALL_ROUTE_PREFIX}{}", Topic::TaskEvents.name()),
            post(|deps, body| deliver_all(Topic::TaskEvents, deps, body)),
        )
        .route(
            &format!("{ALL_ROUTE_PREFIX}{}", Topic::Reminders.name()),
            post(|deps, body| deliver_all(Topic::Reminders, deps, body)),
        )
        .with_state(deps)
        .layer(axum::middleware::from_fn_with_state(token, token::require))
}

/// Runs every consumer of `topic` on one delivery: RETRY when any asks for it (the ones done
/// skip the copy by their mark), DROP when one can never process it, else SUCCESS.
async fn deliver_all(topic: Topic, State(deps): State<ConsumerDeps>, body: Bytes) -> Response {
    let event = match decode_event(&body) {
        Ok(event) => event,
        Err(error) => {
            tracing::warn!(%error, topic = topic.name(), "undecodable delivery; dropping it");
            return reply(DeliveryStatus::Drop, None);
        }
    };
    let mut verdict = DeliveryStatus::Success;
    for spec in consumers::ALL {
        if !spec.topics.contains(&topic) {
            continue;
        }
        let status = process(spec, deps.state.as_ref(), &deps.effects, &event).await;
        verdict = match (verdict, status) {
            (DeliveryStatus::Retry, _) | (_, DeliveryStatus::Retry) => DeliveryStatus::Retry,
            (DeliveryStatus::Drop, _) | (_, DeliveryStatus::Drop) => DeliveryStatus::Drop,
            _ => DeliveryStatus::Success,
        };
    }
    reply(verdict, Some(event.event_id))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn envelope() -> Value {
        json!({
            "event_id": "0190a5a4-5f4e-7c3a-8d61-3f0f4a0b2c11",
            "event_type": "task.completed",
            "timestamp": "2026-01-01T00:00:00Z",
            "user_id": "alice",
            "payload": {"id": "x"},
            "source": "chat-api",
            "specversion": "1.0",
        })
    }

    #[test]
    fn the_three_body_shapes_decode_to_the_same_event() {
        let bare = envelope();
        let with_data =
            json!({"specversion": "1.0", "id": "x", "type": "task.completed", "data": bare});
        let with_string = json!({"specversion": "1.0", "data": bare.to_string()});
        let raw = json!({"specversion": "1.0", "datacontenttype": "application/octet-stream",
            "data_base64": BASE64.encode(with_data.to_string())});
        let expected = decode_event(bare.to_string().as_bytes()).expect("bare");
        for body in [with_data, with_string, raw] {
            assert_eq!(
                decode_event(body.to_string().as_bytes()).expect("decodes"),
                expected
            );
        }
        for bad in [
            &b"not json"[..],
            b"[]",
            br#"{"data": 5}"#,
            br#"{"data_base64": "%%%"}"#,
            br#"{"event_id": "not-a-uuid"}"#,
        ] {
            assert!(decode_event(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn roles_subscribe_with_dead_letter_topics() {
        let recurring = ConsumerRole::Recurring.subscriptions("pubsub");
        assert_eq!(recurring[0]["topic"], "task-events");
        assert_eq!(recurring[0]["deadLetterTopic"], "task-events-dlq");
        assert_eq!(recurring[0]["routes"]["default"], IGNORE);
        let notification = ConsumerRole::Notification.subscriptions("pubsub");
        assert_eq!(notification[0]["route"], HANDLE_REMINDER);
        assert_eq!(notification[0]["deadLetterTopic"], "reminders-dlq");
        let audit = ConsumerRole::Audit.subscriptions("pubsub");
        let topics: Vec<&Value> = audit
            .as_array()
            .into_iter()
            .flatten()
            .map(|e| &e["topic"])
            .collect();
        assert_eq!(topics, [&json!("task-events"), &json!("reminders")]);
        assert_eq!(ConsumerRole::parse("audit"), Some(ConsumerRole::Audit));
        assert_eq!(ConsumerRole::parse("api"), None);
    }
}
