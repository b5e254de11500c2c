//! The real Dapr runtime for the end-to-end suite (`tests/tests/real_dapr.rs`): the Dapr
//! scheduler and `daprd` sidecars built from `github.com/dapr/dapr` by `cluster/it/build.sh`,
//! talking to a real Kafka (`cluster/it/kafka.sh`) or Redis. `cluster/it/env.sh` (sourced by
//! `.ci/run`) exports where they are; without those variables the tests say they skip.
//!
//! What lives here: reading that environment, writing the component, Configuration and
//! Resiliency files the way the Helm chart renders them (with a local-file secret store under
//! the chart's `kubernetes` name), starting and killing the scheduler and the sidecars, and a
//! probe app that subscribes to every topic through its own sidecar and records what it gets.

use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path as UrlPath, State};
use axum::routing::{get, post};
use serde_json::{Value, json};
use tempfile::TempDir;

use crate::free_port;

/// `cluster/it/env.sh` sets these.
pub const DAPRD_VAR: &str = "TASKSTREAM_IT_DAPRD";
pub const SCHEDULER_VAR: &str = "TASKSTREAM_IT_SCHEDULER";
pub const KAFKA_VAR: &str = "TASKSTREAM_IT_KAFKA";
pub const REDIS_VAR: &str = "TASKSTREAM_IT_REDIS";

/// The topics the probe app subscribes to.
pub const PROBE_TOPICS: [&str; 5] = [
    "task-events",
    "reminders",
    "task-updates",
    "task-events-dlq",
    "reminders-dlq",
];

/// Where the real runtime and brokers are.
#[derive(Debug, Clone)]
pub struct ItEnv {
    pub daprd: PathBuf,
    pub scheduler: PathBuf,
    /// Kafka bootstrap address.
    pub kafka: String,
    /// Redis address (state store, and the Redis Streams pub/sub variant).
    pub redis: String,
}

impl ItEnv {
    /// The environment `cluster/it/env.sh` exported, or `None` after printing why `test` skips.
    pub fn from_env(test: &str) -> Option<ItEnv> {
        let get = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
        let found = (
            get(DAPRD_VAR),
            get(SCHEDULER_VAR),
            get(KAFKA_VAR),
            get(REDIS_VAR),
        );
        match found {
            (Some(daprd), Some(scheduler), Some(kafka), Some(redis)) => {
                let env = ItEnv {
                    daprd: PathBuf::from(daprd),
                    scheduler: PathBuf::from(scheduler),
                    kafka,
                    redis,
                };
                assert!(
                    env.daprd.is_file(),
                    "{DAPRD_VAR}={:?} is no file",
                    env.daprd
                );
                assert!(
                    env.scheduler.is_file(),
                    "{SCHEDULER_VAR}={:?} is no file",
                    env.scheduler
                );
                Some(env)
            }
            _ => {
                println!(
                    "skipping {test}: {DAPRD_VAR}, {SCHEDULER_VAR}, {KAFKA_VAR} and {REDIS_VAR} \
                     are not all set (set by .ci/run via cluster/it/env.sh)"
                );
                None
            }
        }
    }
}

/// The pub/sub component behind the name `pubsub`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Broker {
    /// `pubsub.kafka`, as the Helm chart renders it.
    Kafka,
    /// `pubsub.redis` (Redis Streams).
    Redis,
}

/// The secrets the local-file store named `kubernetes` holds: secret `taskstream` with the
/// keys the chart's Secret has.
#[derive(Debug, Clone)]
pub struct Secrets {
    pub database_url: String,
    pub jwt_secret: String,
}

/// Resiliency used by the suite: the chart's policy with short intervals, so a delivery the
/// app keeps failing reaches the dead-letter topic within seconds.
pub const INBOUND_RETRIES: u32 = 3;

/// Writes the components (pub/sub `pubsub`, state store `statestore`, secret store
/// `kubernetes`), the Resiliency and the Configuration into `dir`; returns the Configuration
/// file (the resources path is `dir/resources`).
pub fn write_resources(dir: &Path, env: &ItEnv, broker: Broker, secrets: &Secrets) -> PathBuf {
    let resources = dir.join("resources");
    std::fs::create_dir_all(&resources).expect("resources dir");
    let secrets_file = dir.join("secrets.json");
    let body = json!({ "taskstream": {
        "database-url": secrets.database_url,
        "jwt-secret": secrets.jwt_secret,
    }});
    std::fs::write(&secrets_file, body.to_string()).expect("secrets file");

    let pubsub = match broker {
        // The chart's metadata (templates/dapr-components.yaml), brokers on loopback.
        Broker::Kafka => format!(
            r#"apiVersion: dapr.io/v1alpha1
kind: Component
metadata:
  name: pubsub
spec:
  type: pubsub.kafka
  version: v1
  metadata:
    - {{ name: brokers, value: "{brokers}" }}
    - {{ name: authType, value: "none" }}
    - {{ name: disableTls, value: "true" }}
    - {{ name: clientID, value: "taskstream-it" }}
    - {{ name: initialOffset, value: "oldest" }}
    - {{ name: version, value: "3.9.0" }}
    - {{ name: maxMessageBytes, value: "1048576" }}
    - {{ name: producerRequiredAcks, value: "all" }}
    - {{ name: consumeRetryEnabled, value: "false" }}
"#,
            brokers = env.kafka
        ),
        Broker::Redis => format!(
            r#"apiVersion: dapr.io/v1alpha1
kind: Component
metadata:
  name: pubsub
spec:
  type: pubsub.redis
  version: v1
  metadata:
    - {{ name: redisHost, value: "{redis}" }}
    - {{ name: maxLenApprox, value: "5000" }}
    - {{ name: processingTimeout, value: "5s" }}
    - {{ name: redeliverInterval, value: "2s" }}
"#,
            redis = env.redis
        ),
    };
    let state = format!(
        r#"apiVersion: dapr.io/v1alpha1
kind: Component
metadata:
  name: statestore
spec:
  type: state.redis
  version: v1
  metadata:
    - {{ name: redisHost, value: "{redis}" }}
    - {{ name: enableTLS, value: "false" }}
    - {{ name: keyPrefix, value: appid }}
    - {{ name: actorStateStore, value: "false" }}
"#,
        redis = env.redis
    );
    let secret_store = format!(
        r#"apiVersion: dapr.io/v1alpha1
kind: Component
metadata:
  name: kubernetes
spec:
  type: secretstores.local.file
  version: v1
  metadata:
    - {{ name: secretsFile, value: "{file}" }}
    - {{ name: multiValued, value: "true" }}
"#,
        file = secrets_file.display()
    );
    let resiliency = format!(
        r#"apiVersion: dapr.io/v1alpha1
kind: Resiliency
metadata:
  name: taskstream-resiliency
spec:
  policies:
    retries:
      pubsubInbound:
        policy: constant
        duration: 200ms
        maxRetries: {INBOUND_RETRIES}
      sidecarOutbound:
        policy: constant
        duration: 1s
        maxRetries: 3
    timeouts:
      stateCall: 5s
  targets:
    components:
      pubsub:
        inbound:
          retry: pubsubInbound
        outbound:
          retry: sidecarOutbound
      statestore:
        outbound:
          retry: sidecarOutbound
          timeout: stateCall
"#
    );
    for (name, text) in [
        ("pubsub.yaml", pubsub),
        ("statestore.yaml", state),
        ("secretstore.yaml", secret_store),
        ("resiliency.yaml", resiliency),
    ] {
        std::fs::write(resources.join(name), text).expect("component file");
    }
    // The chart's Configuration (templates/dapr-config.yaml): the allowed APIs and the secret
    // scope. Name resolution: nameformat, so no mDNS traffic leaves the machine.
    let config = dir.join("config.yaml");
    std::fs::write(
        &config,
        r#"apiVersion: dapr.io/v1alpha1
kind: Configuration
metadata:
  name: taskstream-dapr
spec:
  metrics:
    enabled: true
  nameResolution:
    component: nameformat
    configuration:
      format: "{appid}.invalid"
  api:
    allowed:
      - { name: publish, version: v1.0, protocol: http }
      - { name: state, version: v1.0, protocol: http }
      - { name: secrets, version: v1.0, protocol: http }
      - { name: jobs, version: v1.0, protocol: http }
      - { name: healthz, version: v1.0, protocol: http }
      - { name: metadata, version: v1.0, protocol: http }
  secrets:
    scopes:
      - storeName: kubernetes
        defaultAccess: deny
        allowedSecrets: ["taskstream"]
"#,
    )
    .expect("configuration file");
    config
}

fn spawn_logged(cmd: &mut Command, log: &Path) -> Child {
    let out = File::create(log).expect("log file");
    let err = out.try_clone().expect("log file");
    cmd.stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .spawn()
        .unwrap_or_else(|error| panic!("cannot start {cmd:?}: {error}"))
}

fn kill(child: &mut Option<Child>) {
    if let Some(mut child) = child.take() {
        let _ = child.kill();
        let _ = child.wait();
    }
}

/// The last `lines` lines of a log file, for failure messages.
pub fn tail(path: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// The Dapr scheduler (Jobs API) with its embedded etcd, on loopback.
pub struct Scheduler {
    child: Option<Child>,
    port: u16,
    log: PathBuf,
}

impl Scheduler {
    /// Starts a scheduler with its data in `dir` and waits for its health endpoint.
    pub async fn start(env: &ItEnv, dir: &Path) -> Scheduler {
        let (port, healthz, metrics, client, peer) = (
            free_port(),
            free_port(),
            free_port(),
            free_port(),
            free_port(),
        );
        let log = dir.join("scheduler.log");
        let mut cmd = Command::new(&env.scheduler);
        cmd.args(["--listen-address", "127.0.0.1", "--port", &port.to_string()])
            .args(["--healthz-listen-address", "127.0.0.1"])
            .args(["--healthz-port", &healthz.to_string()])
            .args(["--metrics-listen-address", "127.0.0.1"])
            .args(["--metrics-port", &metrics.to_string()])
            .args(["--etcd-data-dir", &dir.join("etcd").display().to_string()])
            .args(["--etcd-client-listen-address", "127.0.0.1"])
            .args(["--etcd-client-port", &client.to_string()])
            .args(["--id", "scheduler0"])
            .args([
                "--etcd-initial-cluster",
                &format!("scheduler0=http://127.0.0.1:{peer}"),
            ])
            .args(["--mode", "standalone", "--log-level", "info"]);
        let child = spawn_logged(&mut cmd, &log);
        let mut scheduler = Scheduler {
            child: Some(child),
            port,
            log,
        };
        let url = format!("http://127.0.0.1:{healthz}/healthz");
        let http = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(child) = scheduler.child.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                panic!(
                    "the Dapr scheduler exited with {status}:\n{}",
                    tail(&scheduler.log, 40)
                );
            }
            let ready = http.get(&url).timeout(Duration::from_secs(2)).send().await;
            if matches!(ready, Ok(ref r) if r.status().is_success()) {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "the Dapr scheduler is not healthy after 60 s:\n{}",
                tail(&scheduler.log, 40)
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        scheduler
    }

    /// `host:port` for daprd's `--scheduler-host-address`.
    pub fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Its log, for failure messages.
    pub fn log(&self) -> String {
        tail(&self.log, 60)
    }
}

impl Drop for Scheduler {
    fn drop(&mut self) {
        kill(&mut self.child);
    }
}

/// How one sidecar is run.
#[derive(Debug, Clone)]
pub struct DaprdSpec {
    pub app_id: String,
    /// The app beside it (on 127.0.0.1).
    pub app_port: u16,
    /// `--resources-path`.
    pub resources: PathBuf,
    /// `--config`.
    pub config: PathBuf,
    /// `--scheduler-host-address`.
    pub scheduler: String,
    /// `DAPR_API_TOKEN`: required from the app on every API call.
    pub api_token: Option<String>,
    /// `APP_API_TOKEN`: sent to the app on every call.
    pub app_token: Option<String>,
}

/// One real `daprd`, restartable on the same ports (so the app beside it needs no change).
pub struct Daprd {
    child: Option<Child>,
    binary: PathBuf,
    spec: DaprdSpec,
    http_port: u16,
    grpc_port: u16,
    internal_port: u16,
    metrics_port: u16,
    dir: PathBuf,
    runs: usize,
}

impl Daprd {
    /// Starts `daprd` for `spec` (logs in `dir`) and waits until `healthz/outbound` is 204.
    pub async fn start(env: &ItEnv, spec: DaprdSpec, dir: &Path) -> Daprd {
        let mut daprd = Self::launch(env, spec, dir);
        daprd.wait_ready().await;
        daprd
    }

    /// Starts `daprd` for `spec` without waiting for it (the app beside it waits itself).
    pub fn launch(env: &ItEnv, spec: DaprdSpec, dir: &Path) -> Daprd {
        let mut daprd = Daprd {
            child: None,
            binary: env.daprd.clone(),
            spec,
            http_port: free_port(),
            grpc_port: free_port(),
            internal_port: free_port(),
            metrics_port: free_port(),
            dir: dir.to_owned(),
            runs: 0,
        };
        daprd.spawn();
        daprd
    }

    fn log_path(&self) -> PathBuf {
        self.dir
            .join(format!("daprd-{}.{}.log", self.spec.app_id, self.runs))
    }

    fn spawn(&mut self) {
        self.runs += 1;
        let spec = &self.spec;
        let mut cmd = Command::new(&self.binary);
        cmd.args(["--mode", "standalone", "--app-id", &spec.app_id])
            .args(["--app-port", &spec.app_port.to_string()])
            .args([
                "--app-protocol",
                "http",
                "--app-channel-address",
                "127.0.0.1",
            ])
            .args(["--dapr-listen-addresses", "127.0.0.1"])
            .args(["--dapr-http-port", &self.http_port.to_string()])
            .args(["--dapr-grpc-port", &self.grpc_port.to_string()])
            .args(["--dapr-internal-grpc-port", &self.internal_port.to_string()])
            .args(["--dapr-internal-grpc-listen-address", "127.0.0.1"])
            .args(["--metrics-listen-address", "127.0.0.1"])
            .args(["--metrics-port", &self.metrics_port.to_string()])
            .args(["--resources-path", &spec.resources.display().to_string()])
            .args(["--config", &spec.config.display().to_string()])
            .args(["--scheduler-host-address", &spec.scheduler])
            .args(["--placement-host-address", ""])
            .args(["--dapr-graceful-shutdown-seconds", "1"])
            .args(["--log-level", "info"]);
        cmd.env_remove("DAPR_API_TOKEN").env_remove("APP_API_TOKEN");
        if let Some(token) = &spec.api_token {
            cmd.env("DAPR_API_TOKEN", token);
        }
        if let Some(token) = &spec.app_token {
            cmd.env("APP_API_TOKEN", token);
        }
        let log = self.log_path();
        self.child = Some(spawn_logged(&mut cmd, &log));
    }

    /// Waits until `healthz/outbound` answers 204 (components ready), failing with its log
    /// when it exits or takes over 60 s.
    pub async fn wait_ready(&mut self) {
        let log = self.log_path();
        let url = self.url("/v1.0/healthz/outbound");
        let http = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(child) = self.child.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                panic!(
                    "daprd {} exited with {status}:\n{}",
                    self.spec.app_id,
                    tail(&log, 40)
                );
            }
            let ready = http.get(&url).timeout(Duration::from_secs(2)).send().await;
            if matches!(ready, Ok(ref r) if r.status().as_u16() == 204) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "daprd {} not ready after 60 s:\n{}",
                self.spec.app_id,
                tail(&log, 40)
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// `DAPR_HTTP_PORT` for the app.
    pub fn http_port(&self) -> u16 {
        self.http_port
    }

    pub fn app_id(&self) -> &str {
        &self.spec.app_id
    }

    /// A URL of its HTTP API.
    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.http_port)
    }

    /// A request to its HTTP API with the API token.
    pub fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        let mut request = reqwest::Client::new()
            .request(method, self.url(path))
            .timeout(Duration::from_secs(10));
        if let Some(token) = &self.spec.api_token {
            request = request.header("dapr-api-token", token);
        }
        request
    }

    /// `GET /v1.0/metadata`.
    pub async fn metadata(&self) -> Value {
        let response = self
            .request(reqwest::Method::GET, "/v1.0/metadata")
            .send()
            .await
            .expect("daprd metadata");
        response.json().await.expect("metadata JSON")
    }

    /// Waits until the sidecar lists `count` subscriptions (it asked the app's
    /// `/dapr/subscribe` and subscribed).
    pub async fn wait_subscribed(&self, count: usize) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let metadata = self.metadata().await;
            let have = metadata["subscriptions"].as_array().map_or(0, Vec::len);
            if have >= count {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "daprd {} has {have} of {count} subscriptions after 60 s: {metadata}\n{}",
                self.spec.app_id,
                self.log(60)
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Publishes `body` (JSON) to `topic` on `pubsub`.
    pub async fn publish(&self, topic: &str, body: &Value) -> reqwest::StatusCode {
        self.request(
            reqwest::Method::POST,
            &format!("/v1.0/publish/pubsub/{topic}"),
        )
        .json(body)
        .send()
        .await
        .expect("publish")
        .status()
    }

    /// `kill -9`: no goodbye to the broker, in-flight deliveries unacknowledged.
    pub fn kill9(&mut self) {
        kill(&mut self.child);
    }

    /// Starts it again on the same ports after [`kill9`](Self::kill9).
    pub async fn restart(&mut self) {
        kill(&mut self.child);
        self.spawn();
        self.wait_ready().await;
    }

    /// The current run's last `lines` log lines.
    pub fn log(&self, lines: usize) -> String {
        tail(&self.log_path(), lines)
    }

    /// Every run's log, joined.
    pub fn all_logs(&self) -> String {
        (1..=self.runs)
            .map(|run| {
                std::fs::read_to_string(
                    self.dir
                        .join(format!("daprd-{}.{run}.log", self.spec.app_id)),
                )
                .unwrap_or_default()
            })
            .collect::<Vec<_>>()
            .join("\n")
    }
}

impl Drop for Daprd {
    fn drop(&mut self) {
        kill(&mut self.child);
    }
}

/// One delivery the probe app received.
#[derive(Debug, Clone)]
pub struct Received {
    pub topic: String,
    /// The CloudEvent daprd delivered.
    pub cloud_event: Value,
}

impl Received {
    /// The taskstream envelope inside (the CloudEvent's `data`), if it is one.
    pub fn envelope(&self) -> Option<&Value> {
        let data = &self.cloud_event["data"];
        data.get("event_id").map(|_| data)
    }
}

#[derive(Default)]
struct ProbeState {
    received: Vec<Received>,
    /// Deliveries on these topics are recorded and then never answered.
    hang: Vec<String>,
}

/// A subscriber app of our own beside a real daprd: subscribes to every topic (its own consumer
/// group) and records what it receives, so the tests see what went through the broker.
pub struct Probe {
    state: Arc<Mutex<ProbeState>>,
    port: u16,
    server: tokio::task::JoinHandle<()>,
}

impl Probe {
    /// Starts the probe app on a free port.
    pub async fn start() -> Probe {
        let state = Arc::new(Mutex::new(ProbeState::default()));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("probe listener");
        let port = listener.local_addr().expect("probe address").port();
        let subscriptions: Vec<Value> = PROBE_TOPICS
            .iter()
            .map(|topic| json!({"pubsubname": "pubsub", "topic": topic, "route": format!("/probe/{topic}")}))
            .collect();
        let app = Router::new()
            .route(
                "/dapr/subscribe",
                get(move || async move { axum::Json(Value::Array(subscriptions)) }),
            )
            .route("/probe/{topic}", post(receive))
            .with_state(Arc::clone(&state));
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Probe {
            state,
            port,
            server,
        }
    }

    fn lock(&self) -> MutexGuard<'_, ProbeState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Everything received so far.
    pub fn received(&self) -> Vec<Received> {
        self.lock().received.clone()
    }

    /// What arrived on `topic`.
    pub fn on(&self, topic: &str) -> Vec<Received> {
        self.received()
            .into_iter()
            .filter(|r| r.topic == topic)
            .collect()
    }

    /// From now on, deliveries on `topic` are recorded but never answered.
    pub fn hang(&self, topic: &str) {
        self.lock().hang.push(topic.to_owned());
    }

    /// Answers every topic again.
    pub fn answer_all(&self) {
        self.lock().hang.clear();
    }

    /// The envelopes of `user` seen on `topic`, by event id (a redelivered event once).
    pub fn envelopes_of(&self, topic: &str, user: &str) -> BTreeMap<String, Value> {
        self.on(topic)
            .iter()
            .filter_map(Received::envelope)
            .filter(|e| e["user_id"] == user)
            .map(|e| {
                (
                    e["event_id"].as_str().unwrap_or_default().to_owned(),
                    e.clone(),
                )
            })
            .collect()
    }
}

impl Drop for Probe {
    fn drop(&mut self) {
        self.server.abort();
    }
}

async fn receive(
    State(state): State<Arc<Mutex<ProbeState>>>,
    UrlPath(topic): UrlPath<String>,
    body: Bytes,
) -> axum::Json<Value> {
    let cloud_event = serde_json::from_slice(&body)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&body).into_owned()));
    let hang = {
        let mut state = state.lock().unwrap_or_else(PoisonError::into_inner);
        state.received.push(Received {
            topic: topic.clone(),
            cloud_event,
        });
        state.hang.contains(&topic)
    };
    if hang {
        std::future::pending::<()>().await;
    }
    axum::Json(json!({"status": "SUCCESS"}))
}

/// A scratch directory for one test's logs, components and scheduler data; kept (and named
/// in the output) when `TASKSTREAM_IT_KEEP` is set, else removed at drop.
pub struct Scratch {
    dir: Option<TempDir>,
    path: PathBuf,
}

impl Scratch {
    pub fn new(test: &str) -> Scratch {
        let dir = tempfile::Builder::new()
            .prefix(&format!("taskstream-it-{test}-"))
            .tempdir()
            .expect("tempdir");
        let path = dir.path().to_owned();
        if std::env::var_os("TASKSTREAM_IT_KEEP").is_some() {
            println!("{test}: logs in {}", path.display());
            let _ = dir.keep();
            return Scratch { dir: None, path };
        }
        Scratch {
            dir: Some(dir),
            path,
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether the directory stays after the test.
    pub fn kept(&self) -> bool {
        self.dir.is_none()
    }
}
