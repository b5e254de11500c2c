//! A stand-in Dapr sidecar for the fast tests (the real daprd, built by `cluster/it/build.sh`,
//! runs in `tests/tests/real_dapr.rs`): an in-process axum server that
//! implements the HTTP behaviour `docs/reference/dapr.md` documents, point by point (§5's
//! conformance list, with the contracts of §1):
//!
//! 1. publish wraps bodies in CloudEvents (or passes `application/cloudevents+json` through);
//! 2. at start it calls the app's `GET /dapr/subscribe`, only once the app port is open;
//! 3. it delivers to the app's routes and acts on each reply (SUCCESS ack, RETRY redeliver,
//!    DROP and 404 to the dead-letter topic, other failures retried, then dead-lettered);
//! 4. state with numeric ETags, first-write, TTL, bulk and all-or-nothing transactions;
//! 5. secrets from a map given at start;
//! 6. jobs firing `POST /job/<name>` at their due time, retried per failure policy;
//! 7. `healthz` and `healthz/outbound`;
//! 8. API tokens in both directions.
//!
//! Test knobs daprd does not have: every message can be delivered `redeliveries` extra times
//! (one after another, or at the same time as the first), the clock of due times and TTLs can
//! be moved forward, and the sidecar can be stopped and started again on the same port, keeping
//! what a real deployment keeps outside daprd (state, jobs, topics and consumer offsets).
//! Everything it saw is recorded for assertions.
//!
//! What it does not do: cron `schedule`s other than `@every` (refused with 400), bulk publish,
//! bulk subscribe, service invocation, actors.
//!
//! Checked against the real daprd 1.18.3 (with state.redis and secretstores.local.file) by
//! `tests/tests/real_dapr.rs` (`the_test_sidecar_answers_like_real_daprd`), which sends both the
//! same requests. What that comparison changed here: a missing secret is a 500
//! `ERR_SECRET_GET` (not 204), an unknown secret store a 401, a secret outside the
//! Configuration's scope a 403; a save without an ETag on a key first written with
//! `first-write` fails with a 500 `ERR_STATE_SAVE` (plain saves too), while `first-write`
//! over a key written without it succeeds; an unparsable `dueTime`/`ttl` or `repeats: 0` is a
//! 500 `DAPR_SCHEDULER_SCHEDULE_JOB`, a `repeats` that is no uint32 a 400
//! `ERR_MALFORMED_REQUEST`, a non-numeric ETag a 400 under the operation's code
//! (`ERR_STATE_SAVE`); `GET /v1.0/jobs/{name}` wraps `data` in a `google.protobuf.Value` and
//! shows the default failure policy; `/v1.0-alpha1/jobs` is not served (404).

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// The header carrying API tokens both ways.
pub const TOKEN_HEADER: &str = "dapr-api-token";
/// Runtime version the fake reports in `/v1.0/metadata`.
pub const RUNTIME_VERSION: &str = "1.18.3-taskstream-test-sidecar";

/// How the sidecar is set up.
#[derive(Debug, Clone)]
pub struct SidecarConfig {
    /// The app id: CloudEvent `source`, state key prefix.
    pub app_id: String,
    /// Where the app listens (on 127.0.0.1); `None`: no app channel, so no subscriptions,
    /// deliveries or job triggers (like daprd without `app-port`).
    pub app_port: Option<u16>,
    /// Port of the sidecar's HTTP API; `None` picks a free one.
    pub port: Option<u16>,
    pub pubsubs: Vec<String>,
    pub state_stores: Vec<String>,
    /// store → secret name → key → value.
    pub secrets: BTreeMap<String, BTreeMap<String, BTreeMap<String, String>>>,
    /// The Configuration's `secrets.scopes` with `defaultAccess: deny`: only these names may
    /// be read (403 otherwise); `None` allows every name.
    pub allowed_secrets: Option<Vec<String>>,
    /// `DAPR_API_TOKEN`: required from callers of the API (healthz exempt).
    pub api_token: Option<String>,
    /// `APP_API_TOKEN`: sent to the app on every call.
    pub app_token: Option<String>,
    /// Extra deliveries of every message, after it is handled (or, with
    /// `concurrent_redeliveries`, at the same time as the first delivery).
    pub redeliveries: u32,
    pub concurrent_redeliveries: bool,
    /// Inbound resiliency policy: retries after a failed delivery (0: no policy, one attempt).
    pub delivery_retries: u32,
    pub delivery_retry_interval: Duration,
    /// A job's default failure policy: retries and their interval (daprd: 3 × 1 s).
    pub job_retries: u32,
    pub job_retry_interval: Duration,
    /// `healthz/outbound` answers 500 until this long after each start.
    pub outbound_ready_after: Duration,
    /// Status of a save without ETag on a key first written with `first-write` (500: what
    /// daprd answers with state.redis, whose error there is not an ETag error; 409 mimics a
    /// component that reports it as one).
    pub first_write_conflict_status: u16,
}

impl Default for SidecarConfig {
    fn default() -> Self {
        Self {
            app_id: "taskstream".to_owned(),
            app_port: None,
            port: None,
            pubsubs: vec!["pubsub".to_owned()],
            state_stores: vec!["statestore".to_owned()],
            secrets: BTreeMap::new(),
            allowed_secrets: None,
            api_token: None,
            app_token: None,
            redeliveries: 0,
            concurrent_redeliveries: false,
            delivery_retries: 3,
            delivery_retry_interval: Duration::from_millis(50),
            job_retries: 3,
            job_retry_interval: Duration::from_secs(1),
            outbound_ready_after: Duration::ZERO,
            first_write_conflict_status: 500,
        }
    }
}

impl SidecarConfig {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn app_port(mut self, port: u16) -> Self {
        self.app_port = Some(port);
        self
    }

    pub fn port(mut self, port: u16) -> Self {
        self.port = Some(port);
        self
    }

    pub fn api_token(mut self, token: &str) -> Self {
        self.api_token = Some(token.to_owned());
        self
    }

    pub fn app_token(mut self, token: &str) -> Self {
        self.app_token = Some(token.to_owned());
        self
    }

    /// Delivers every message `n` more times after it was handled.
    pub fn redeliveries(mut self, n: u32) -> Self {
        self.redeliveries = n;
        self
    }

    /// Sends the extra copies at the same time as the first delivery.
    pub fn concurrent_redeliveries(mut self) -> Self {
        self.concurrent_redeliveries = true;
        self
    }

    pub fn delivery_retries(mut self, retries: u32, interval: Duration) -> Self {
        self.delivery_retries = retries;
        self.delivery_retry_interval = interval;
        self
    }

    pub fn job_retries(mut self, retries: u32, interval: Duration) -> Self {
        self.job_retries = retries;
        self.job_retry_interval = interval;
        self
    }

    pub fn outbound_ready_after(mut self, delay: Duration) -> Self {
        self.outbound_ready_after = delay;
        self
    }

    /// Only `names` of the secret stores may be read (403 for the rest).
    pub fn allowed_secrets(mut self, names: &[&str]) -> Self {
        self.allowed_secrets = Some(names.iter().map(|name| (*name).to_owned()).collect());
        self
    }

    pub fn first_write_conflict_status(mut self, status: u16) -> Self {
        self.first_write_conflict_status = status;
        self
    }

    /// Adds a secret `name` with `pairs` to secret store `store`.
    pub fn secret(mut self, store: &str, name: &str, pairs: &[(&str, &str)]) -> Self {
        let secret = pairs
            .iter()
            .map(|(key, value)| ((*key).to_owned(), (*value).to_owned()))
            .collect();
        self.secrets
            .entry(store.to_owned())
            .or_default()
            .insert(name.to_owned(), secret);
        self
    }
}

/// One call to the sidecar's API, as received.
#[derive(Debug, Clone)]
pub struct ApiCall {
    pub method: String,
    /// Path and query.
    pub uri: String,
    pub token: Option<String>,
    pub content_type: Option<String>,
    pub body: Vec<u8>,
    pub status: u16,
}

/// One accepted publish.
#[derive(Debug, Clone)]
pub struct Published {
    pub pubsub: String,
    pub topic: String,
    pub partition_key: Option<String>,
    /// The request's content type.
    pub content_type: Option<String>,
    /// `metadata.rawPayload=true`: stored without an envelope.
    pub raw_payload: bool,
    /// The CloudEvent as stored (`None` for raw payloads).
    pub cloud_event: Option<Value>,
    /// The bytes on the "broker".
    pub message: Vec<u8>,
}

/// How the sidecar judged one reply of the app to a delivery (`dapr.md` §1.3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Success,
    Retry,
    Drop,
    /// 404: dropped without retry.
    NotFound,
    /// Other non-2xx, unknown status, or no answer: retried.
    Failed(String),
}

/// One delivery attempt to the app.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub topic: String,
    pub route: String,
    /// The body sent (a CloudEvent).
    pub body: Value,
    pub content_type: String,
    pub token: Option<String>,
    pub status: Option<u16>,
    pub reply: Option<Value>,
    pub verdict: Verdict,
    /// 1 for the first attempt, counting resiliency retries.
    pub attempt: u32,
    /// One of the configured extra copies.
    pub copy: bool,
}

/// A message republished to a dead-letter topic.
#[derive(Debug, Clone)]
pub struct DeadLetter {
    pub topic: String,
    pub dead_letter_topic: String,
    pub message: Vec<u8>,
    pub reason: String,
}

/// One trigger of a job into the app.
#[derive(Debug, Clone)]
pub struct JobTrigger {
    pub name: String,
    pub body: Vec<u8>,
    pub content_type: String,
    pub token: Option<String>,
    /// `None`: no answer.
    pub status: Option<u16>,
    pub attempt: u32,
    /// On the sidecar's clock.
    pub at: DateTime<Utc>,
}

/// One call of the app's `GET /dapr/subscribe`.
#[derive(Debug, Clone)]
pub struct SubscribeCall {
    pub status: Option<u16>,
    pub token: Option<String>,
    /// When the app port was first seen open, and when the call was made.
    pub port_open_at: Instant,
    pub called_at: Instant,
}

/// A subscription as the sidecar understood it.
#[derive(Debug, Clone, PartialEq)]
pub struct Subscription {
    pub pubsub: String,
    pub topic: String,
    /// (CEL match, path) in order.
    pub rules: Vec<(String, String)>,
    pub default_route: Option<String>,
    pub dead_letter_topic: Option<String>,
    pub raw_payload: bool,
}

/// A job as scheduled.
#[derive(Debug, Clone)]
pub struct JobSnapshot {
    pub name: String,
    pub due: DateTime<Utc>,
    pub data: Option<Value>,
    /// The request body, for `GET`.
    pub spec: Value,
}

#[derive(Debug, Clone, Copy)]
enum FailurePolicy {
    Constant {
        interval: Duration,
        max_retries: Option<u32>,
    },
    Drop,
}

#[derive(Debug, Clone)]
struct Job {
    spec: Value,
    due: DateTime<Utc>,
    every: Option<chrono::Duration>,
    repeats: Option<u32>,
    fired: u32,
    expires: Option<DateTime<Utc>>,
    data: Option<Value>,
    policy: FailurePolicy,
    generation: u64,
    in_flight: bool,
}

#[derive(Debug, Clone)]
struct StateItem {
    value: Vec<u8>,
    version: u64,
    expires: Option<DateTime<Utc>>,
    /// Written with `first-write` at some point: state.redis then refuses any save without
    /// the right ETag until the key goes.
    first_written: bool,
}

/// What survives a restart (kept by Redis, the scheduler's etcd and Kafka in real life).
#[derive(Debug, Default)]
struct Persisted {
    /// (store, key) → item.
    state: HashMap<(String, String), StateItem>,
    jobs: BTreeMap<String, Job>,
    next_generation: u64,
    /// (pubsub, topic) → messages.
    topics: HashMap<(String, String), Vec<Vec<u8>>>,
    /// The app's consumer group offsets, per (pubsub, topic).
    offsets: HashMap<(String, String), usize>,
}

#[derive(Debug, Default)]
struct Recorded {
    calls: Vec<ApiCall>,
    published: Vec<Published>,
    deliveries: Vec<Delivery>,
    dead_letters: Vec<DeadLetter>,
    job_triggers: Vec<JobTrigger>,
    subscribe_calls: Vec<SubscribeCall>,
    warnings: Vec<String>,
}

#[derive(Debug, Default)]
struct Runtime {
    started_at: Option<Instant>,
    subscriptions: Vec<Subscription>,
    discovered: bool,
    workers: Vec<JoinHandle<()>>,
}

struct Shared {
    config: SidecarConfig,
    clock_offset: Mutex<chrono::Duration>,
    persisted: Mutex<Persisted>,
    recorded: Mutex<Recorded>,
    runtime: Mutex<Runtime>,
    /// Bumped on every publish, so delivery workers wake.
    published: watch::Sender<u64>,
    http: reqwest::Client,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Shared {
    fn now(&self) -> DateTime<Utc> {
        Utc::now() + *lock(&self.clock_offset)
    }

    fn warn(&self, message: String) {
        lock(&self.recorded).warnings.push(message);
    }

    fn app_url(&self, path: &str) -> Option<String> {
        self.config
            .app_port
            .map(|port| format!("http://127.0.0.1:{port}{path}"))
    }

    fn app_request(&self, method: reqwest::Method, url: &str) -> reqwest::RequestBuilder {
        let request = self.http.request(method, url);
        match &self.config.app_token {
            Some(token) => request.header(TOKEN_HEADER, token),
            None => request,
        }
    }
}

struct Running {
    shutdown: watch::Sender<bool>,
    server: JoinHandle<()>,
}

/// The running (or stopped) sidecar. Dropping it stops it.
pub struct DaprSidecar {
    shared: Arc<Shared>,
    port: u16,
    running: Option<Running>,
}

impl Drop for DaprSidecar {
    fn drop(&mut self) {
        if let Some(running) = self.running.take() {
            running.shutdown.send_replace(true);
            running.server.abort();
        }
        for worker in lock(&self.shared.runtime).workers.drain(..) {
            worker.abort();
        }
    }
}

impl DaprSidecar {
    /// Starts a sidecar in the current Tokio runtime.
    pub async fn start(config: SidecarConfig) -> DaprSidecar {
        let http = reqwest::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(10))
            .build()
            .expect("http client");
        let port = config.port.unwrap_or(0);
        let shared = Arc::new(Shared {
            config,
            clock_offset: Mutex::new(chrono::Duration::zero()),
            persisted: Mutex::new(Persisted::default()),
            recorded: Mutex::new(Recorded::default()),
            runtime: Mutex::new(Runtime::default()),
            published: watch::channel(0).0,
            http,
        });
        let mut sidecar = DaprSidecar {
            shared,
            port,
            running: None,
        };
        sidecar.boot().await;
        sidecar
    }

    async fn boot(&mut self) {
        let mut listener = None;
        for _ in 0..100 {
            match tokio::net::TcpListener::bind(("127.0.0.1", self.port)).await {
                Ok(bound) => {
                    listener = Some(bound);
                    break;
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
            }
        }
        let listener = listener.expect("bind the sidecar port");
        self.port = listener.local_addr().expect("local addr").port();
        {
            let mut runtime = lock(&self.shared.runtime);
            runtime.started_at = Some(Instant::now());
            runtime.subscriptions.clear();
            runtime.discovered = false;
        }
        for job in lock(&self.shared.persisted).jobs.values_mut() {
            job.in_flight = false;
        }
        let (shutdown, stopped) = watch::channel(false);
        let app = router(Arc::clone(&self.shared));
        let mut server_stop = stopped.clone();
        let server = tokio::spawn(async move {
            let serving = axum::serve(listener, app).with_graceful_shutdown(async move {
                drop(server_stop.wait_for(|stop| *stop).await);
            });
            drop(serving.await);
        });
        let jobs = tokio::spawn(run_jobs(Arc::clone(&self.shared), stopped.clone()));
        let mut workers = vec![jobs];
        if self.shared.config.app_port.is_some() {
            workers.push(tokio::spawn(discover(Arc::clone(&self.shared), stopped)));
        }
        lock(&self.shared.runtime).workers.extend(workers);
        self.running = Some(Running { shutdown, server });
    }

    /// Stops serving and delivering (in-flight deliveries are abandoned, so their messages
    /// come again after [`DaprSidecar::restart`]); state, jobs, topics and offsets stay.
    pub async fn stop(&mut self) {
        // The flag first, so a discovery finishing right now does not start workers after.
        if let Some(running) = &self.running {
            running.shutdown.send_replace(true);
        }
        let workers: Vec<JoinHandle<()>> = lock(&self.shared.runtime).workers.drain(..).collect();
        for worker in &workers {
            worker.abort();
        }
        for worker in workers {
            drop(worker.await);
        }
        if let Some(running) = self.running.take() {
            running.shutdown.send_replace(true);
            let mut server = running.server;
            if tokio::time::timeout(Duration::from_secs(3), &mut server)
                .await
                .is_err()
            {
                server.abort();
                drop(server.await);
            }
        }
    }

    /// Starts again on the same port, like daprd after a restart: rediscovers the app's
    /// subscriptions and resumes from the persisted offsets and jobs.
    pub async fn restart(&mut self) {
        self.stop().await;
        self.boot().await;
    }

    pub fn is_running(&self) -> bool {
        self.running.is_some()
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// `http://127.0.0.1:<port>`.
    pub fn base_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn config(&self) -> &SidecarConfig {
        &self.shared.config
    }

    /// The sidecar's clock (due times and TTLs).
    pub fn now(&self) -> DateTime<Utc> {
        self.shared.now()
    }

    /// Moves the sidecar's clock forward: due jobs fire at once, TTLs run out.
    pub fn advance(&self, by: Duration) {
        let by = chrono::Duration::from_std(by).unwrap_or(chrono::Duration::MAX);
        let mut offset = lock(&self.shared.clock_offset);
        *offset += by;
    }

    pub fn calls(&self) -> Vec<ApiCall> {
        lock(&self.shared.recorded).calls.clone()
    }

    pub fn published(&self) -> Vec<Published> {
        lock(&self.shared.recorded).published.clone()
    }

    /// Publishes to `topic` only.
    pub fn published_to(&self, topic: &str) -> Vec<Published> {
        self.published()
            .into_iter()
            .filter(|published| published.topic == topic)
            .collect()
    }

    pub fn deliveries(&self) -> Vec<Delivery> {
        lock(&self.shared.recorded).deliveries.clone()
    }

    pub fn dead_letters(&self) -> Vec<DeadLetter> {
        lock(&self.shared.recorded).dead_letters.clone()
    }

    pub fn job_triggers(&self) -> Vec<JobTrigger> {
        lock(&self.shared.recorded).job_triggers.clone()
    }

    pub fn subscribe_calls(&self) -> Vec<SubscribeCall> {
        lock(&self.shared.recorded).subscribe_calls.clone()
    }

    /// Things the sidecar could not use (subscriptions without a route, bad CEL, …).
    pub fn warnings(&self) -> Vec<String> {
        lock(&self.shared.recorded).warnings.clone()
    }

    /// The subscriptions discovered since the last start.
    pub fn subscriptions(&self) -> Vec<Subscription> {
        lock(&self.shared.runtime).subscriptions.clone()
    }

    /// Whether `/dapr/subscribe` was read since the last start.
    pub fn discovered(&self) -> bool {
        lock(&self.shared.runtime).discovered
    }

    pub fn jobs(&self) -> Vec<JobSnapshot> {
        lock(&self.shared.persisted)
            .jobs
            .iter()
            .map(|(name, job)| JobSnapshot {
                name: name.clone(),
                due: job.due,
                data: job.data.clone(),
                spec: job.spec.clone(),
            })
            .collect()
    }

    pub fn job(&self, name: &str) -> Option<JobSnapshot> {
        self.jobs().into_iter().find(|job| job.name == name)
    }

    /// The live value of `key` in state store `store`, as stored (JSON text).
    pub fn state_value(&self, store: &str, key: &str) -> Option<Vec<u8>> {
        let now = self.now();
        lock(&self.shared.persisted)
            .state
            .get(&(store.to_owned(), key.to_owned()))
            .filter(|item| live(item, now))
            .map(|item| item.value.clone())
    }

    /// Messages on a topic of pub/sub `pubsub` (dead letters included), as bytes.
    pub fn topic_messages(&self, pubsub: &str, topic: &str) -> Vec<Vec<u8>> {
        lock(&self.shared.persisted)
            .topics
            .get(&(pubsub.to_owned(), topic.to_owned()))
            .cloned()
            .unwrap_or_default()
    }

    /// Polls `probe` every 10 ms until it gives a value; panics naming `what` after `timeout`.
    pub async fn wait_for<T>(
        &self,
        what: &str,
        timeout: Duration,
        mut probe: impl FnMut(&DaprSidecar) -> Option<T>,
    ) -> T {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(value) = probe(self) {
                return value;
            }
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

// ---------------------------------------------------------------------------------------------
// HTTP API

fn router(shared: Arc<Shared>) -> Router {
    let api = Router::new()
        .route("/v1.0/healthz", get(healthz))
        .route("/v1.0/healthz/outbound", get(healthz_outbound))
        .route("/v1.0/metadata", get(metadata))
        .route(
            "/v1.0/publish/{pubsub}/{*topic}",
            post(publish).put(publish),
        )
        .route("/v1.0/state/{store}", post(state_save).put(state_save))
        .route("/v1.0/state/{store}/bulk", post(state_bulk).put(state_bulk))
        .route(
            "/v1.0/state/{store}/transaction",
            post(state_transaction).put(state_transaction),
        )
        .route(
            "/v1.0/state/{store}/{key}",
            get(state_get).delete(state_delete),
        )
        .route("/v1.0/secrets/{store}/bulk", get(secrets_bulk))
        .route("/v1.0/secrets/{store}/{name}", get(secret_get))
        .route(
            "/v1.0/jobs/{name}",
            post(job_schedule).get(job_get).delete(job_delete),
        );
    // daprd 1.18.3 no longer serves /v1.0-alpha1/jobs (404), whatever dapr.md §1.6 says.
    api.layer(axum::middleware::from_fn_with_state(
        Arc::clone(&shared),
        check_token,
    ))
    .layer(axum::middleware::from_fn_with_state(
        Arc::clone(&shared),
        record_call,
    ))
    .with_state(shared)
}

fn error(status: StatusCode, code: &str, message: &str) -> Response {
    (
        status,
        axum::Json(json!({ "errorCode": code, "message": message })),
    )
        .into_response()
}

async fn record_call(State(shared): State<Arc<Shared>>, request: Request, next: Next) -> Response {
    let (parts, body) = request.into_parts();
    let body = axum::body::to_bytes(body, 64 << 20)
        .await
        .unwrap_or_default();
    let header = |name: &str| {
        parts
            .headers
            .get(name)
            .and_then(|value| value.to_str().ok())
            .map(str::to_owned)
    };
    let mut call = ApiCall {
        method: parts.method.to_string(),
        uri: parts.uri.to_string(),
        token: header(TOKEN_HEADER),
        content_type: header("content-type"),
        body: body.to_vec(),
        status: 0,
    };
    let response = next.run(Request::from_parts(parts, Body::from(body))).await;
    call.status = response.status().as_u16();
    lock(&shared.recorded).calls.push(call);
    response
}

/// `dapr.md` §1.8: with an API token, every call but healthz needs `dapr-api-token`.
async fn check_token(State(shared): State<Arc<Shared>>, request: Request, next: Next) -> Response {
    let exempt = request.uri().path().starts_with("/v1.0/healthz");
    if let Some(expected) = &shared.config.api_token
        && !exempt
    {
        let presented = request
            .headers()
            .get(TOKEN_HEADER)
            .and_then(|value| value.to_str().ok());
        if presented != Some(expected.as_str()) {
            return (StatusCode::UNAUTHORIZED, "invalid api token").into_response();
        }
    }
    next.run(request).await
}

fn outbound_ready(shared: &Shared) -> bool {
    lock(&shared.runtime)
        .started_at
        .is_some_and(|started| started.elapsed() >= shared.config.outbound_ready_after)
}

async fn healthz(State(shared): State<Arc<Shared>>) -> Response {
    let app_ready = shared.config.app_port.is_none() || lock(&shared.runtime).discovered;
    if outbound_ready(&shared) && app_ready {
        StatusCode::NO_CONTENT.into_response()
    } else {
        error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "ERR_HEALTH_NOT_READY",
            "dapr is not ready",
        )
    }
}

async fn healthz_outbound(State(shared): State<Arc<Shared>>) -> Response {
    if outbound_ready(&shared) {
        StatusCode::NO_CONTENT.into_response()
    } else {
        error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "ERR_OUTBOUND_HEALTH_NOT_READY",
            "dapr outbound is not ready",
        )
    }
}

async fn metadata(State(shared): State<Arc<Shared>>) -> Response {
    let mut components = Vec::new();
    for name in &shared.config.pubsubs {
        components.push(json!({"name": name, "type": "pubsub.in-memory", "version": "v1"}));
    }
    for name in &shared.config.state_stores {
        components.push(json!({"name": name, "type": "state.in-memory", "version": "v1"}));
    }
    for name in shared.config.secrets.keys() {
        components.push(json!({"name": name, "type": "secretstores.local.map", "version": "v1"}));
    }
    let subscriptions: Vec<Value> = lock(&shared.runtime)
        .subscriptions
        .iter()
        .map(|sub| {
            json!({
                "pubsubname": sub.pubsub,
                "topic": sub.topic,
                "rules": { "rules": sub.rules.iter().map(|(m, p)| json!({"match": m, "path": p}))
                    .chain(sub.default_route.iter().map(|p| json!({"match": "", "path": p})))
                    .collect::<Vec<_>>() },
                "deadLetterTopic": sub.dead_letter_topic.clone().unwrap_or_default(),
            })
        })
        .collect();
    axum::Json(json!({
        "id": shared.config.app_id,
        "runtimeVersion": RUNTIME_VERSION,
        "components": components,
        "subscriptions": subscriptions,
        "appConnectionProperties": { "port": shared.config.app_port, "protocol": "http" },
    }))
    .into_response()
}

// --- publish (`dapr.md` §1.1) -----------------------------------------------------------------

fn is_json_type(content_type: &str) -> bool {
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    essence == "application/json" || essence.ends_with("+json")
}

fn is_binary_type(content_type: &str) -> bool {
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    matches!(
        essence.as_str(),
        "application/octet-stream" | "application/protobuf" | "application/x-protobuf"
    )
}

fn trace_parent() -> String {
    let trace = uuid::Uuid::new_v4().simple().to_string();
    let span = uuid::Uuid::new_v4().simple().to_string();
    format!("00-{trace}-{}-01", &span[..16])
}

async fn publish(
    State(shared): State<Arc<Shared>>,
    Path((pubsub, topic)): Path<(String, String)>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if !shared.config.pubsubs.contains(&pubsub) {
        return error(
            StatusCode::NOT_FOUND,
            "ERR_PUBSUB_NOT_FOUND",
            &format!("pubsub {pubsub} not found"),
        );
    }
    let topic = topic.trim_start_matches('/').to_owned();
    if topic.is_empty() {
        return error(
            StatusCode::NOT_FOUND,
            "ERR_TOPIC_NAME_EMPTY",
            "topic is empty",
        );
    }
    let meta = |key: &str| query.get(&format!("metadata.{key}")).cloned();
    let content_type = headers
        .get("content-type")
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned);
    let raw_payload = meta("rawPayload").is_some_and(|value| value.eq_ignore_ascii_case("true"));
    let now = shared.now();
    let (message, cloud_event) = if raw_payload {
        (body.to_vec(), None)
    } else {
        let passed_through = content_type
            .as_deref()
            .is_some_and(|ct| ct.starts_with("application/cloudevents+json"));
        let mut event = if passed_through {
            match serde_json::from_slice::<Value>(&body) {
                Ok(Value::Object(fields)) => {
                    let mut event = Value::Object(fields);
                    for (field, default) in [
                        ("source", json!("Dapr")),
                        ("type", json!("com.dapr.event.sent")),
                        ("specversion", json!("1.0")),
                    ] {
                        if event.get(field).is_none() {
                            event[field] = default;
                        }
                    }
                    event
                }
                _ => {
                    return error(
                        StatusCode::BAD_REQUEST,
                        "ERR_PUBSUB_CLOUD_EVENTS_SER",
                        "body is not a JSON CloudEvent",
                    );
                }
            }
        } else {
            let data_type = content_type
                .clone()
                .unwrap_or_else(|| "text/plain".to_owned());
            let mut event = json!({
                "id": uuid::Uuid::new_v4(),
                "source": shared.config.app_id,
                "type": "com.dapr.event.sent",
                "specversion": "1.0",
                "datacontenttype": data_type,
            });
            if is_json_type(&data_type) {
                event["data"] = serde_json::from_slice::<Value>(&body)
                    .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&body).into_owned()));
            } else if is_binary_type(&data_type) {
                event["data_base64"] = json!(BASE64.encode(&body));
            } else {
                event["data"] = Value::String(String::from_utf8_lossy(&body).into_owned());
            }
            event
        };
        event["topic"] = json!(topic);
        event["pubsubname"] = json!(pubsub);
        if event.get("time").is_none() {
            event["time"] = json!(now.to_rfc3339_opts(chrono::SecondsFormat::Secs, true));
        }
        if event.get("traceparent").is_none() {
            let parent = trace_parent();
            event["traceid"] = json!(parent);
            event["traceparent"] = json!(parent);
            event["tracestate"] = json!("");
        }
        for field in [
            "id",
            "source",
            "type",
            "subject",
            "traceparent",
            "tracestate",
            "traceid",
        ] {
            if let Some(value) = meta(&format!("cloudevent.{field}")) {
                event[field] = json!(value);
            }
        }
        if let Some(seconds) = meta("ttlInSeconds").and_then(|ttl| ttl.parse::<i64>().ok()) {
            event["expiration"] = json!(
                (now + chrono::Duration::seconds(seconds))
                    .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
            );
        }
        let bytes = serde_json::to_vec(&event).unwrap_or_default();
        (bytes, Some(event))
    };
    lock(&shared.recorded).published.push(Published {
        pubsub: pubsub.clone(),
        topic: topic.clone(),
        partition_key: meta("partitionKey"),
        content_type,
        raw_payload,
        cloud_event,
        message: message.clone(),
    });
    append(&shared, &pubsub, &topic, message);
    StatusCode::NO_CONTENT.into_response()
}

fn append(shared: &Shared, pubsub: &str, topic: &str, message: Vec<u8>) {
    lock(&shared.persisted)
        .topics
        .entry((pubsub.to_owned(), topic.to_owned()))
        .or_default()
        .push(message);
    shared.published.send_modify(|count| *count += 1);
}

// --- subscriptions and delivery (`dapr.md` §1.2, §1.3) ----------------------------------------

/// Waits for the app port, reads `/dapr/subscribe`, then delivers each subscribed topic.
async fn discover(shared: Arc<Shared>, stop: watch::Receiver<bool>) {
    let Some(port) = shared.config.app_port else {
        return;
    };
    while tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .is_err()
    {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let port_open_at = Instant::now();
    let Some(url) = shared.app_url("/dapr/subscribe") else {
        return;
    };
    let mut body = None;
    for attempt in 0..5u32 {
        let called_at = Instant::now();
        let outcome = shared.app_request(reqwest::Method::GET, &url).send().await;
        let status = outcome.as_ref().ok().map(|r| r.status().as_u16());
        lock(&shared.recorded).subscribe_calls.push(SubscribeCall {
            status,
            token: shared.config.app_token.clone(),
            port_open_at,
            called_at,
        });
        match outcome {
            Ok(response) if response.status() == StatusCode::NOT_FOUND => {
                body = Some(Value::Array(Vec::new()));
                break;
            }
            Ok(response) if response.status().is_success() => {
                body = Some(response.json::<Value>().await.unwrap_or(Value::Null));
                break;
            }
            Ok(response) => shared.warn(format!(
                "GET /dapr/subscribe answered {}",
                response.status()
            )),
            Err(error) => shared.warn(format!("GET /dapr/subscribe failed: {error}")),
        }
        tokio::time::sleep(Duration::from_millis(50 << attempt)).await;
    }
    let subscriptions = parse_subscriptions(&shared, body.unwrap_or(Value::Null));
    let mut workers = Vec::new();
    let mut seen = Vec::new();
    for subscription in &subscriptions {
        let key = (subscription.pubsub.clone(), subscription.topic.clone());
        if seen.contains(&key) {
            shared.warn(format!(
                "second subscription to {}/{} ignored",
                key.0, key.1
            ));
            continue;
        }
        seen.push(key);
        workers.push(tokio::spawn(deliver_topic(
            Arc::clone(&shared),
            subscription.clone(),
            stop.clone(),
        )));
    }
    let mut runtime = lock(&shared.runtime);
    if *stop.borrow() {
        for worker in workers {
            worker.abort();
        }
        return;
    }
    runtime.subscriptions = subscriptions;
    runtime.discovered = true;
    runtime.workers.extend(workers);
}

fn parse_subscriptions(shared: &Shared, body: Value) -> Vec<Subscription> {
    let Value::Array(entries) = body else {
        shared.warn("GET /dapr/subscribe did not answer a JSON array".to_owned());
        return Vec::new();
    };
    let mut subscriptions = Vec::new();
    for entry in entries {
        let text = |value: &Value| value.as_str().map(str::to_owned).filter(|s| !s.is_empty());
        let (Some(pubsub), Some(topic)) = (text(&entry["pubsubname"]), text(&entry["topic"]))
        else {
            shared.warn(format!("subscription without pubsubname/topic: {entry}"));
            continue;
        };
        let rules: Vec<(String, String)> = entry["routes"]["rules"]
            .as_array()
            .map(|rules| {
                rules
                    .iter()
                    .filter_map(|rule| Some((text(&rule["match"])?, text(&rule["path"])?)))
                    .collect()
            })
            .unwrap_or_default();
        // `routes.default` wins over `route` (`dapr.md` §1.2).
        let default_route = text(&entry["routes"]["default"]).or_else(|| text(&entry["route"]));
        if default_route.is_none() && rules.is_empty() {
            shared.warn(format!("subscription to {topic} has no route; dropped"));
            continue;
        }
        subscriptions.push(Subscription {
            pubsub,
            topic,
            rules,
            default_route,
            dead_letter_topic: text(&entry["deadLetterTopic"]),
            raw_payload: entry["metadata"]["rawPayload"]
                .as_str()
                .is_some_and(|raw| raw.eq_ignore_ascii_case("true")),
        });
    }
    subscriptions
}

/// The subset of CEL the reference's rules use: `event.<attribute> ==|!= "<text>"`.
fn cel_matches(expression: &str, event: &Value) -> Option<bool> {
    let (left, right, equal) = if let Some((l, r)) = expression.split_once("==") {
        (l, r, true)
    } else {
        let (l, r) = expression.split_once("!=")?;
        (l, r, false)
    };
    let attribute = left.trim().strip_prefix("event.")?;
    let literal = right.trim();
    let literal = literal
        .strip_prefix('"')
        .and_then(|l| l.strip_suffix('"'))
        .or_else(|| {
            literal
                .strip_prefix('\'')
                .and_then(|l| l.strip_suffix('\''))
        })?;
    let actual = event
        .get(attribute)
        .and_then(Value::as_str)
        .unwrap_or_default();
    Some((actual == literal) == equal)
}

fn route_for(shared: &Shared, subscription: &Subscription, event: &Value) -> Option<String> {
    for (expression, path) in &subscription.rules {
        match cel_matches(expression, event) {
            Some(true) => return Some(path.clone()),
            Some(false) => {}
            None => shared.warn(format!(
                "CEL not understood by the test sidecar: {expression}"
            )),
        }
    }
    subscription.default_route.clone()
}

async fn deliver_topic(
    shared: Arc<Shared>,
    subscription: Subscription,
    mut stop: watch::Receiver<bool>,
) {
    let key = (subscription.pubsub.clone(), subscription.topic.clone());
    let mut published = shared.published.subscribe();
    loop {
        if *stop.borrow() {
            return;
        }
        let next = {
            let persisted = lock(&shared.persisted);
            let offset = persisted.offsets.get(&key).copied().unwrap_or(0);
            persisted
                .topics
                .get(&key)
                .and_then(|messages| messages.get(offset).cloned())
        };
        let Some(message) = next else {
            published.mark_unchanged();
            // Re-check after marking, so a publish in between is not slept through.
            let again = {
                let persisted = lock(&shared.persisted);
                let offset = persisted.offsets.get(&key).copied().unwrap_or(0);
                persisted
                    .topics
                    .get(&key)
                    .is_some_and(|messages| messages.len() > offset)
            };
            if !again {
                tokio::select! {
                    changed = published.changed() => if changed.is_err() { return },
                    _ = stop.changed() => {}
                }
            }
            continue;
        };
        deliver_message(&shared, &subscription, &message).await;
        *lock(&shared.persisted)
            .offsets
            .entry(key.clone())
            .or_insert(0) += 1;
    }
}

/// The CloudEvent a message is delivered as, or why it cannot be.
fn delivery_body(
    shared: &Shared,
    subscription: &Subscription,
    message: &[u8],
) -> Result<Value, String> {
    if subscription.raw_payload {
        return Ok(json!({
            "id": uuid::Uuid::new_v4(),
            "source": shared.config.app_id,
            "type": "com.dapr.event.sent",
            "specversion": "1.0",
            "datacontenttype": "application/octet-stream",
            "topic": subscription.topic,
            "pubsubname": subscription.pubsub,
            "data_base64": BASE64.encode(message),
        }));
    }
    match serde_json::from_slice::<Value>(message) {
        Ok(event @ Value::Object(_)) => Ok(event),
        _ => Err("message is not a CloudEvent and the subscription is not rawPayload".to_owned()),
    }
}

fn dead_letter(shared: &Shared, subscription: &Subscription, message: &[u8], reason: String) {
    match &subscription.dead_letter_topic {
        Some(dlq) => {
            lock(&shared.recorded).dead_letters.push(DeadLetter {
                topic: subscription.topic.clone(),
                dead_letter_topic: dlq.clone(),
                message: message.to_vec(),
                reason,
            });
            append(shared, &subscription.pubsub, dlq, message.to_vec());
        }
        None => shared.warn(format!(
            "message on {} given up without a dead-letter topic: {reason}",
            subscription.topic
        )),
    }
}

async fn deliver_message(shared: &Arc<Shared>, subscription: &Subscription, message: &[u8]) {
    let event = match delivery_body(shared, subscription, message) {
        Ok(event) => event,
        Err(reason) => return dead_letter(shared, subscription, message, reason),
    };
    let expired = event
        .get("expiration")
        .and_then(Value::as_str)
        .and_then(|at| DateTime::parse_from_rfc3339(at).ok())
        .is_some_and(|at| at < shared.now());
    if expired {
        return dead_letter(shared, subscription, message, "expired".to_owned());
    }
    let Some(route) = route_for(shared, subscription, &event) else {
        return dead_letter(shared, subscription, message, "no route matched".to_owned());
    };
    let copies = shared.config.redeliveries;
    if shared.config.concurrent_redeliveries && copies > 0 {
        let extra: Vec<JoinHandle<Verdict>> = (0..copies)
            .map(|_| {
                let (shared, subscription) = (Arc::clone(shared), subscription.clone());
                let (route, event) = (route.clone(), event.clone());
                tokio::spawn(async move {
                    post_event(&shared, &subscription, &route, &event, 1, true).await
                })
            })
            .collect();
        let outcome = deliver_with_retries(shared, subscription, &route, &event).await;
        for copy in extra {
            drop(copy.await);
        }
        finish(shared, subscription, message, outcome);
    } else {
        let outcome = deliver_with_retries(shared, subscription, &route, &event).await;
        finish(shared, subscription, message, outcome);
        for _ in 0..copies {
            post_event(shared, subscription, &route, &event, 1, true).await;
        }
    }
}

fn finish(shared: &Shared, subscription: &Subscription, message: &[u8], outcome: Verdict) {
    match outcome {
        Verdict::Success => {}
        Verdict::Drop => dead_letter(
            shared,
            subscription,
            message,
            "app answered DROP".to_owned(),
        ),
        Verdict::NotFound => {
            dead_letter(shared, subscription, message, "app answered 404".to_owned())
        }
        Verdict::Retry | Verdict::Failed(_) => dead_letter(
            shared,
            subscription,
            message,
            format!("retries exhausted: {outcome:?}"),
        ),
    }
}

/// Delivers under the inbound retry policy; returns the final verdict.
async fn deliver_with_retries(
    shared: &Arc<Shared>,
    subscription: &Subscription,
    route: &str,
    event: &Value,
) -> Verdict {
    let attempts = shared.config.delivery_retries + 1;
    let mut verdict = Verdict::Failed("never attempted".to_owned());
    for attempt in 1..=attempts {
        verdict = post_event(shared, subscription, route, event, attempt, false).await;
        match verdict {
            Verdict::Success | Verdict::Drop | Verdict::NotFound => return verdict,
            Verdict::Retry | Verdict::Failed(_) if attempt < attempts => {
                tokio::time::sleep(shared.config.delivery_retry_interval).await;
            }
            _ => {}
        }
    }
    verdict
}

/// One `POST <route>` of a CloudEvent, judged as `dapr.md` §1.3 says.
async fn post_event(
    shared: &Arc<Shared>,
    subscription: &Subscription,
    route: &str,
    event: &Value,
    attempt: u32,
    copy: bool,
) -> Verdict {
    let Some(url) = shared.app_url(route) else {
        return Verdict::Failed("no app channel".to_owned());
    };
    let content_type = "application/cloudevents+json";
    let outcome = shared
        .app_request(reqwest::Method::POST, &url)
        .header("content-type", content_type)
        .body(serde_json::to_vec(event).unwrap_or_default())
        .send()
        .await;
    let (status, reply, verdict) = match outcome {
        Err(error) => (None, None, Verdict::Failed(format!("no answer: {error}"))),
        Ok(response) => {
            let status = response.status();
            let body = response.bytes().await.unwrap_or_default();
            let reply = serde_json::from_slice::<Value>(&body).ok();
            let verdict = if status == StatusCode::NOT_FOUND {
                Verdict::NotFound
            } else if status.is_success() {
                match reply.as_ref().and_then(|reply| reply.as_object()) {
                    // Non-JSON or non-object bodies are a plain ack.
                    None => Verdict::Success,
                    Some(fields) => match fields.get("status") {
                        None | Some(Value::Null) => Verdict::Success,
                        Some(Value::String(text)) => match text.to_ascii_uppercase().as_str() {
                            "" | "SUCCESS" => Verdict::Success,
                            "RETRY" => Verdict::Retry,
                            "DROP" => Verdict::Drop,
                            other => Verdict::Failed(format!("unknown status {other:?}")),
                        },
                        Some(other) => Verdict::Failed(format!("unknown status {other}")),
                    },
                }
            } else {
                Verdict::Failed(format!("HTTP {status}"))
            };
            (Some(status.as_u16()), reply, verdict)
        }
    };
    lock(&shared.recorded).deliveries.push(Delivery {
        topic: subscription.topic.clone(),
        route: route.to_owned(),
        body: event.clone(),
        content_type: content_type.to_owned(),
        token: shared.config.app_token.clone(),
        status,
        reply,
        verdict: verdict.clone(),
        attempt,
        copy,
    });
    verdict
}

// --- state (`dapr.md` §1.4) -------------------------------------------------------------------

fn live(item: &StateItem, now: DateTime<Utc>) -> bool {
    item.expires.is_none_or(|at| at > now)
}

/// Why a state write was refused.
enum StateRefusal {
    Malformed(String),
    /// An ETag that is not a number: daprd's 400 under the operation's own code.
    BadEtag(String),
    Mismatch(String),
    FirstWrite(String),
    Failed(String),
}

impl StateRefusal {
    fn response(&self, shared: &Shared, code: &str) -> Response {
        match self {
            StateRefusal::BadEtag(message) => error(StatusCode::BAD_REQUEST, code, message),
            StateRefusal::Malformed(message) => {
                error(StatusCode::BAD_REQUEST, "ERR_MALFORMED_REQUEST", message)
            }
            StateRefusal::Mismatch(message) => error(StatusCode::CONFLICT, code, message),
            StateRefusal::FirstWrite(message) => error(
                StatusCode::from_u16(shared.config.first_write_conflict_status)
                    .unwrap_or(StatusCode::CONFLICT),
                code,
                message,
            ),
            StateRefusal::Failed(message) => {
                error(StatusCode::INTERNAL_SERVER_ERROR, code, message)
            }
        }
    }
}

fn unknown_store(shared: &Shared, store: &str) -> Option<Response> {
    (!shared
        .config
        .state_stores
        .iter()
        .any(|known| known == store))
    .then(|| {
        error(
            StatusCode::BAD_REQUEST,
            "ERR_STATE_STORE_NOT_FOUND",
            &format!("state store {store} is not found"),
        )
    })
}

fn check_key(key: &str) -> Result<(), StateRefusal> {
    if key.is_empty() {
        return Err(StateRefusal::Malformed("state key is empty".to_owned()));
    }
    if key.contains("||") {
        return Err(StateRefusal::Malformed(format!(
            "input key/keyPrefix '{key}' can't contain '||'"
        )));
    }
    Ok(())
}

fn parse_etag(etag: &str) -> Result<u64, StateRefusal> {
    etag.trim_matches('"')
        .parse::<u64>()
        .map_err(|_| StateRefusal::BadEtag(format!("invalid etag value: {etag}")))
}

/// Applies one save item to `state` (the Redis component's rules).
fn save_item(
    state: &mut HashMap<(String, String), StateItem>,
    store: &str,
    item: &Value,
    now: DateTime<Utc>,
) -> Result<(), StateRefusal> {
    let key = item["key"]
        .as_str()
        .ok_or_else(|| StateRefusal::Malformed("state item without key".to_owned()))?;
    check_key(key)?;
    let etag = match &item["etag"] {
        Value::Null => None,
        Value::String(text) if text.is_empty() => None,
        Value::String(text) => Some(parse_etag(text)?),
        other => Some(parse_etag(&other.to_string())?),
    };
    let first_write = item["options"]["concurrency"].as_str() == Some("first-write");
    let ttl = match &item["metadata"]["ttlInSeconds"] {
        Value::Null => None,
        value => {
            let text = value
                .as_str()
                .map(str::to_owned)
                .unwrap_or_else(|| value.to_string());
            Some(text.trim().parse::<i64>().map_err(|_| {
                StateRefusal::Failed(format!("failed to parse ttl from metadata: {text}"))
            })?)
        }
    };
    let slot = (store.to_owned(), key.to_owned());
    let current = state.get(&slot).filter(|existing| live(existing, now));
    if let Some(expected) = etag {
        if current.map(|existing| existing.version) != Some(expected) {
            return Err(StateRefusal::Mismatch(format!(
                "possible etag mismatch. error from state store: failed to set key {key}"
            )));
        }
    } else if current.is_some_and(|existing| existing.first_written) {
        // state.redis's set script: without an ETag it writes only when the key is absent or
        // was never written with first-write; the failure is a plain error, not an ETag one.
        return Err(StateRefusal::FirstWrite(format!(
            "failed to set key {key}: the key was first written with first-write"
        )));
    }
    let version = current.map_or(1, |existing| existing.version + 1);
    let first_written = first_write || current.is_some_and(|existing| existing.first_written);
    let expires = match ttl {
        Some(seconds) if seconds > 0 => Some(now + chrono::Duration::seconds(seconds)),
        _ => None,
    };
    let value = serde_json::to_vec(&item["value"]).unwrap_or_default();
    state.insert(
        slot,
        StateItem {
            value,
            version,
            expires,
            first_written,
        },
    );
    Ok(())
}

fn delete_item(
    state: &mut HashMap<(String, String), StateItem>,
    store: &str,
    key: &str,
    etag: Option<&str>,
    now: DateTime<Utc>,
) -> Result<(), StateRefusal> {
    check_key(key)?;
    let slot = (store.to_owned(), key.to_owned());
    if let Some(etag) = etag.filter(|etag| !etag.is_empty()) {
        let expected = parse_etag(etag)?;
        if let Some(existing) = state.get(&slot).filter(|existing| live(existing, now))
            && existing.version != expected
        {
            return Err(StateRefusal::Mismatch(format!(
                "possible etag mismatch. error from state store: failed to delete {key}"
            )));
        }
    }
    state.remove(&slot);
    Ok(())
}

async fn state_save(
    State(shared): State<Arc<Shared>>,
    Path(store): Path<String>,
    body: Bytes,
) -> Response {
    if let Some(response) = unknown_store(&shared, &store) {
        return response;
    }
    let Ok(Value::Array(items)) = serde_json::from_slice::<Value>(&body) else {
        return error(
            StatusCode::BAD_REQUEST,
            "ERR_MALFORMED_REQUEST",
            "body must be a JSON array of state items",
        );
    };
    let now = shared.now();
    let mut persisted = lock(&shared.persisted);
    // Items are saved one after another, as daprd's bulk set does: not all-or-nothing.
    for item in &items {
        if let Err(refusal) = save_item(&mut persisted.state, &store, item, now) {
            return refusal.response(&shared, "ERR_STATE_SAVE");
        }
    }
    StatusCode::NO_CONTENT.into_response()
}

async fn state_get(
    State(shared): State<Arc<Shared>>,
    Path((store, key)): Path<(String, String)>,
) -> Response {
    if let Some(response) = unknown_store(&shared, &store) {
        return response;
    }
    if let Err(refusal) = check_key(&key) {
        return refusal.response(&shared, "ERR_STATE_GET");
    }
    let now = shared.now();
    let found = lock(&shared.persisted)
        .state
        .get(&(store, key))
        .filter(|item| live(item, now))
        .cloned();
    match found {
        None => StatusCode::NO_CONTENT.into_response(),
        Some(item) => {
            let mut response = (StatusCode::OK, item.value).into_response();
            let headers = response.headers_mut();
            headers.insert("content-type", HeaderValue::from_static("application/json"));
            if let Ok(etag) = HeaderValue::from_str(&item.version.to_string()) {
                headers.insert("etag", etag);
            }
            response
        }
    }
}

async fn state_delete(
    State(shared): State<Arc<Shared>>,
    Path((store, key)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    if let Some(response) = unknown_store(&shared, &store) {
        return response;
    }
    let etag = headers
        .get("if-match")
        .and_then(|value| value.to_str().ok());
    let now = shared.now();
    let mut persisted = lock(&shared.persisted);
    match delete_item(&mut persisted.state, &store, &key, etag, now) {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(refusal) => refusal.response(&shared, "ERR_STATE_DELETE"),
    }
}

async fn state_bulk(
    State(shared): State<Arc<Shared>>,
    Path(store): Path<String>,
    body: Bytes,
) -> Response {
    if let Some(response) = unknown_store(&shared, &store) {
        return response;
    }
    let Ok(request) = serde_json::from_slice::<Value>(&body) else {
        return error(
            StatusCode::BAD_REQUEST,
            "ERR_MALFORMED_REQUEST",
            "body is not JSON",
        );
    };
    let Some(keys) = request["keys"].as_array() else {
        return error(
            StatusCode::BAD_REQUEST,
            "ERR_MALFORMED_REQUEST",
            "keys is missing",
        );
    };
    let now = shared.now();
    let persisted = lock(&shared.persisted);
    let items: Vec<Value> = keys
        .iter()
        .filter_map(Value::as_str)
        .map(|key| {
            match persisted
                .state
                .get(&(store.clone(), key.to_owned()))
                .filter(|item| live(item, now))
            {
                Some(item) => json!({
                    "key": key,
                    "data": serde_json::from_slice::<Value>(&item.value).unwrap_or(Value::Null),
                    "etag": item.version.to_string(),
                }),
                None => json!({ "key": key }),
            }
        })
        .collect();
    axum::Json(Value::Array(items)).into_response()
}

async fn state_transaction(
    State(shared): State<Arc<Shared>>,
    Path(store): Path<String>,
    body: Bytes,
) -> Response {
    if let Some(response) = unknown_store(&shared, &store) {
        return response;
    }
    let Ok(request) = serde_json::from_slice::<Value>(&body) else {
        return error(
            StatusCode::BAD_REQUEST,
            "ERR_MALFORMED_REQUEST",
            "body is not JSON",
        );
    };
    let Some(operations) = request["operations"].as_array() else {
        return error(
            StatusCode::BAD_REQUEST,
            "ERR_MALFORMED_REQUEST",
            "operations is missing",
        );
    };
    let now = shared.now();
    let mut persisted = lock(&shared.persisted);
    // All or nothing: applied to a copy, which replaces the state only if every one passed.
    let mut draft = persisted.state.clone();
    for operation in operations {
        let request = &operation["request"];
        let applied = match operation["operation"].as_str() {
            Some("upsert") => save_item(&mut draft, &store, request, now),
            Some("delete") => match request["key"].as_str() {
                Some(key) => delete_item(&mut draft, &store, key, request["etag"].as_str(), now),
                None => Err(StateRefusal::Malformed("delete without key".to_owned())),
            },
            other => Err(StateRefusal::Malformed(format!(
                "operation type {other:?} not supported"
            ))),
        };
        if let Err(refusal) = applied {
            return refusal.response(&shared, "ERR_STATE_TRANSACTION");
        }
    }
    persisted.state = draft;
    StatusCode::NO_CONTENT.into_response()
}

// --- secrets (`dapr.md` §1.5) -----------------------------------------------------------------

async fn secret_get(
    State(shared): State<Arc<Shared>>,
    Path((store, name)): Path<(String, String)>,
) -> Response {
    let Some(secrets) = shared.config.secrets.get(&store) else {
        // daprd 1.18.3 answers an unknown secret store with 401 (not the documented 400).
        return error(
            StatusCode::UNAUTHORIZED,
            "ERR_SECRET_STORE_NOT_FOUND",
            &format!("failed finding secret store with key {store}"),
        );
    };
    if let Some(allowed) = &shared.config.allowed_secrets
        && !allowed.contains(&name)
    {
        return error(
            StatusCode::FORBIDDEN,
            "ERR_PERMISSION_DENIED",
            &format!("access denied by policy to get {name:?} from {store:?}"),
        );
    }
    match secrets.get(&name) {
        Some(secret) => axum::Json(secret.clone()).into_response(),
        // secretstores.local.file fails on a missing secret (the Kubernetes store is not run
        // here): daprd's 500, not the documented 204.
        None => error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "ERR_SECRET_GET",
            &format!(
                "failed getting secret with key {name} from secret store {store}: secret {name} not found"
            ),
        ),
    }
}

async fn secrets_bulk(State(shared): State<Arc<Shared>>, Path(store): Path<String>) -> Response {
    match shared.config.secrets.get(&store) {
        Some(secrets) => axum::Json(secrets.clone()).into_response(),
        None => error(
            StatusCode::UNAUTHORIZED,
            "ERR_SECRET_STORE_NOT_FOUND",
            &format!("failed finding secret store with key {store}"),
        ),
    }
}

// --- jobs (`dapr.md` §1.6) --------------------------------------------------------------------

/// A Go duration (`1h30m`, `1.5s`, `500ms`).
fn go_duration(text: &str) -> Option<chrono::Duration> {
    let mut rest = text.trim();
    if rest.is_empty() {
        return None;
    }
    let mut total = 0f64;
    while !rest.is_empty() {
        let number_end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let number: f64 = rest[..number_end].parse().ok()?;
        rest = &rest[number_end..];
        let unit_end = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let unit = match &rest[..unit_end] {
            "ns" => 1e-9,
            "us" | "µs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return None,
        };
        total += number * unit;
        rest = &rest[unit_end..];
    }
    chrono::Duration::from_std(Duration::from_secs_f64(total)).ok()
}

/// A non-repeating ISO 8601 duration (`PT30S`, `P1DT2H`).
fn iso_duration(text: &str) -> Option<chrono::Duration> {
    let body = text.trim().strip_prefix('P')?;
    let (date, time) = body.split_once('T').unwrap_or((body, ""));
    let mut seconds = 0f64;
    for (part, units) in [
        (date, &[('W', 604_800.0), ('D', 86_400.0)][..]),
        (time, &[('H', 3600.0), ('M', 60.0), ('S', 1.0)][..]),
    ] {
        let mut rest = part;
        while !rest.is_empty() {
            let end = rest.find(|c: char| c.is_ascii_alphabetic())?;
            let number: f64 = rest[..end].parse().ok()?;
            let unit = rest[end..].chars().next()?;
            let factor = units.iter().find(|(u, _)| *u == unit)?.1;
            seconds += number * factor;
            rest = &rest[end + unit.len_utf8()..];
        }
    }
    chrono::Duration::from_std(Duration::from_secs_f64(seconds)).ok()
}

/// `dueTime` / `ttl`: an RFC 3339 instant, a Go duration, or an ISO 8601 duration from now.
fn instant_or_delay(text: &str, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    if let Ok(at) = DateTime::parse_from_rfc3339(text.trim()) {
        return Some(at.with_timezone(&Utc));
    }
    go_duration(text)
        .or_else(|| iso_duration(text))
        .map(|delay| now + delay)
}

fn job_error(status: StatusCode, code: &str, message: &str) -> Response {
    error(status, code, message)
}

async fn job_schedule(
    State(shared): State<Arc<Shared>>,
    Path(name): Path<String>,
    body: Bytes,
) -> Response {
    const CODE: &str = "DAPR_SCHEDULER_SCHEDULE_JOB";
    let Ok(Value::Object(spec)) = serde_json::from_slice::<Value>(&body) else {
        return job_error(
            StatusCode::BAD_REQUEST,
            CODE,
            "job body is not a JSON object",
        );
    };
    if name.trim().is_empty() {
        return job_error(
            StatusCode::BAD_REQUEST,
            "DAPR_SCHEDULER_JOB_NAME",
            "job name is empty",
        );
    }
    if spec.contains_key("name") {
        return job_error(
            StatusCode::BAD_REQUEST,
            "DAPR_SCHEDULER_JOB_NAME",
            "the job name comes from the URL only",
        );
    }
    let field = |names: &[&str]| names.iter().find_map(|n| spec.get(*n)).cloned();
    let now = shared.now();
    let schedule = field(&["schedule"]).and_then(|v| v.as_str().map(str::to_owned));
    let due_time = field(&["dueTime", "due_time"]).and_then(|v| v.as_str().map(str::to_owned));
    if schedule.as_deref().is_none_or(str::is_empty)
        && due_time.as_deref().is_none_or(str::is_empty)
    {
        return job_error(
            StatusCode::BAD_REQUEST,
            "DAPR_SCHEDULER_SCHEDULE_EMPTY",
            "job must have a schedule or a dueTime",
        );
    }
    let every = match schedule.as_deref().filter(|s| !s.is_empty()) {
        None => None,
        Some(schedule) => match schedule.strip_prefix("@every ").and_then(go_duration) {
            Some(every) if every > chrono::Duration::zero() => Some(every),
            _ => {
                return job_error(
                    StatusCode::BAD_REQUEST,
                    CODE,
                    &format!(
                        "the test sidecar only runs '@every <duration>' schedules, not {schedule:?}"
                    ),
                );
            }
        },
    };
    let due = match due_time.as_deref().filter(|d| !d.is_empty()) {
        Some(text) => match instant_or_delay(text, now) {
            Some(at) => at,
            None => {
                // The scheduler validates it; daprd maps that gRPC Unknown to a 500.
                return job_error(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    CODE,
                    &format!("job failed validation: due time format not recognized: {text:?}"),
                );
            }
        },
        None => now + every.unwrap_or_else(chrono::Duration::zero),
    };
    let repeats = match field(&["repeats"]) {
        None | Some(Value::Null) => None,
        Some(value) => match value.as_u64().and_then(|n| u32::try_from(n).ok()) {
            Some(0) => {
                return job_error(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    CODE,
                    "job failed validation: defined repeats must be greater than 0",
                );
            }
            Some(n) => Some(n),
            // Not a uint32: the body does not decode, daprd's ERR_MALFORMED_REQUEST.
            None => {
                return job_error(
                    StatusCode::BAD_REQUEST,
                    "ERR_MALFORMED_REQUEST",
                    "failed deserializing HTTP body: repeats must be a uint32",
                );
            }
        },
    };
    let expires = match field(&["ttl"]).and_then(|v| v.as_str().map(str::to_owned)) {
        None => None,
        Some(text) => match instant_or_delay(&text, now) {
            Some(at) => Some(at),
            None => {
                return job_error(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    CODE,
                    "job failed validation: invalid ttl",
                );
            }
        },
    };
    let policy = match field(&["failure_policy", "failurePolicy"]) {
        None | Some(Value::Null) => FailurePolicy::Constant {
            interval: shared.config.job_retry_interval,
            max_retries: Some(shared.config.job_retries),
        },
        Some(policy) if policy.get("drop").is_some() => FailurePolicy::Drop,
        Some(policy) => {
            let constant = &policy["constant"];
            let interval = constant["interval"]
                .as_str()
                .and_then(go_duration)
                .and_then(|d| d.to_std().ok())
                .unwrap_or(shared.config.job_retry_interval);
            let max_retries = constant
                .get("max_retries")
                .or_else(|| constant.get("maxRetries"))
                .and_then(Value::as_u64)
                .and_then(|n| u32::try_from(n).ok());
            FailurePolicy::Constant {
                interval,
                max_retries,
            }
        }
    };
    let overwrite = field(&["overwrite"]).and_then(|v| v.as_bool()) == Some(true);
    let mut persisted = lock(&shared.persisted);
    if persisted.jobs.contains_key(&name) && !overwrite {
        return job_error(
            StatusCode::CONFLICT,
            CODE,
            &format!("job {name} already exists"),
        );
    }
    persisted.next_generation += 1;
    let generation = persisted.next_generation;
    persisted.jobs.insert(
        name,
        Job {
            spec: Value::Object(spec.clone()),
            due,
            every,
            repeats,
            fired: 0,
            expires,
            data: spec.get("data").cloned(),
            policy,
            generation,
            in_flight: false,
        },
    );
    StatusCode::NO_CONTENT.into_response()
}

async fn job_get(State(shared): State<Arc<Shared>>, Path(name): Path<String>) -> Response {
    match lock(&shared.persisted).jobs.get(&name) {
        Some(job) => {
            // As daprd shows it: the request's fields, `data` as a google.protobuf.Value, the
            // failure policy in effect.
            let mut body = job.spec.clone();
            body["name"] = json!(name);
            if let Some(object) = body.as_object_mut() {
                object.remove("overwrite");
                object.remove("failure_policy");
            }
            if let Some(data) = &job.data {
                body["data"] =
                    json!({"@type": "type.googleapis.com/google.protobuf.Value", "value": data});
            }
            body["failurePolicy"] = match &job.policy {
                FailurePolicy::Drop => json!({"drop": {}}),
                FailurePolicy::Constant {
                    interval,
                    max_retries,
                } => {
                    let mut constant = json!({"interval": format!("{}s", interval.as_secs_f64())});
                    if let Some(n) = max_retries {
                        constant["maxRetries"] = json!(n);
                    }
                    json!({"constant": constant})
                }
            };
            axum::Json(body).into_response()
        }
        None => error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "DAPR_SCHEDULER_GET_JOB",
            &format!("failed to get job due to: job not found: {name}"),
        ),
    }
}

async fn job_delete(State(shared): State<Arc<Shared>>, Path(name): Path<String>) -> Response {
    lock(&shared.persisted).jobs.remove(&name);
    StatusCode::NO_CONTENT.into_response()
}

/// Fires due jobs into the app (`dapr.md` §1.6), checking every 10 ms against the clock.
async fn run_jobs(shared: Arc<Shared>, stop: watch::Receiver<bool>) {
    if shared.config.app_port.is_none() {
        return;
    }
    let mut triggers: Vec<JoinHandle<()>> = Vec::new();
    loop {
        if *stop.borrow() {
            break;
        }
        let now = shared.now();
        let due: Vec<(String, u64, Option<Value>, FailurePolicy)> = {
            let mut persisted = lock(&shared.persisted);
            persisted
                .jobs
                .retain(|_, job| job.in_flight || job.expires.is_none_or(|at| at > now));
            persisted
                .jobs
                .iter_mut()
                .filter(|(_, job)| !job.in_flight && job.due <= now)
                .map(|(name, job)| {
                    job.in_flight = true;
                    (name.clone(), job.generation, job.data.clone(), job.policy)
                })
                .collect()
        };
        for (name, generation, data, policy) in due {
            triggers.push(tokio::spawn(trigger_job(
                Arc::clone(&shared),
                name,
                generation,
                data,
                policy,
            )));
        }
        triggers.retain(|trigger| !trigger.is_finished());
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    for trigger in triggers {
        trigger.abort();
    }
}

async fn trigger_job(
    shared: Arc<Shared>,
    name: String,
    generation: u64,
    data: Option<Value>,
    policy: FailurePolicy,
) {
    let Some(url) = shared.app_url(&format!("/job/{name}")) else {
        return;
    };
    // The body is exactly `data`, compact; no data, no body.
    let body = data
        .as_ref()
        .map(|data| serde_json::to_vec(data).unwrap_or_default())
        .unwrap_or_default();
    let (max_attempts, interval) = match policy {
        FailurePolicy::Drop => (Some(1), Duration::ZERO),
        FailurePolicy::Constant {
            interval,
            max_retries,
        } => (max_retries.map(|retries| retries + 1), interval),
    };
    let mut attempt = 1u32;
    loop {
        let outcome = shared
            .app_request(reqwest::Method::POST, &url)
            .header("content-type", "application/json")
            .header("traceparent", trace_parent())
            .body(body.clone())
            .send()
            .await;
        let status = outcome.as_ref().ok().map(|r| r.status().as_u16());
        lock(&shared.recorded).job_triggers.push(JobTrigger {
            name: name.clone(),
            body: body.clone(),
            content_type: "application/json".to_owned(),
            token: shared.config.app_token.clone(),
            status,
            attempt,
            at: shared.now(),
        });
        // 2xx is success and so, with no retry, is 404.
        let done = status.is_some_and(|s| (200..300).contains(&s) || s == 404);
        if done || max_attempts.is_some_and(|max| attempt >= max) {
            break;
        }
        attempt += 1;
        tokio::time::sleep(interval).await;
    }
    let mut persisted = lock(&shared.persisted);
    let Some(job) = persisted.jobs.get_mut(&name) else {
        return;
    };
    if job.generation != generation {
        // Overwritten while firing: the new job stands.
        return;
    }
    job.fired += 1;
    let again = job
        .every
        .is_some_and(|_| job.repeats.is_none_or(|n| job.fired < n));
    match job.every {
        Some(every) if again => {
            job.due += every;
            job.in_flight = false;
        }
        _ => {
            persisted.jobs.remove(&name);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_like_go_and_iso() {
        assert_eq!(go_duration("1h30m"), Some(chrono::Duration::minutes(90)));
        assert_eq!(
            go_duration("1.5s"),
            Some(chrono::Duration::milliseconds(1500))
        );
        assert_eq!(
            go_duration("500ms"),
            Some(chrono::Duration::milliseconds(500))
        );
        assert_eq!(go_duration("5x"), None);
        assert_eq!(iso_duration("PT30S"), Some(chrono::Duration::seconds(30)));
        assert_eq!(iso_duration("P1DT2H"), Some(chrono::Duration::hours(26)));
    }

    #[test]
    fn cel_subset() {
        let event = json!({"type": "task.completed"});
        assert_eq!(
            cel_matches("event.type == \"task.completed\"", &event),
            Some(true)
        );
        assert_eq!(
            cel_matches("event.type == 'task.created'", &event),
            Some(false)
        );
        assert_eq!(
            cel_matches("event.type != 'task.created'", &event),
            Some(true)
        );
        assert_eq!(cel_matches("has(event.data)", &event), None);
    }
}
