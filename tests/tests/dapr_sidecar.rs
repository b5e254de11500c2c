//! The test sidecar itself against `docs/reference/dapr.md` §5, one test per conformance point
//! (and a few per point where daprd's behaviour has several sides), so the adapters' tests in
//! `cluster/` stand on a sidecar whose behaviour is pinned.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use taskstream_tests::dapr_sidecar::{DaprSidecar, SidecarConfig, Verdict};
use tokio::task::JoinHandle;

const WAIT: Duration = Duration::from_secs(10);

/// One request the app received.
#[derive(Debug, Clone)]
struct AppRequest {
    method: Method,
    path: String,
    headers: HeaderMap,
    body: Bytes,
}

#[derive(Default)]
struct AppScript {
    /// path → replies, used up in order; the last one repeats.
    replies: HashMap<String, VecDeque<(u16, String)>>,
    log: Vec<AppRequest>,
}

/// A scriptable app for the sidecar to call: every request is logged; a path without a
/// script answers 404.
struct TestApp {
    port: u16,
    script: Arc<Mutex<AppScript>>,
    server: JoinHandle<()>,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.server.abort();
    }
}

async fn app_handler(
    State(script): State<Arc<Mutex<AppScript>>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri.path().to_owned();
    let mut script = script.lock().unwrap();
    script.log.push(AppRequest {
        method,
        path: path.clone(),
        headers,
        body,
    });
    let reply = script.replies.get_mut(&path).and_then(|replies| {
        if replies.len() > 1 {
            replies.pop_front()
        } else {
            replies.front().cloned()
        }
    });
    match reply {
        Some((status, body)) => (
            StatusCode::from_u16(status).unwrap(),
            [("content-type", "application/json")],
            body,
        )
            .into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

impl TestApp {
    async fn start() -> TestApp {
        Self::start_on(0).await
    }

    async fn start_on(port: u16) -> TestApp {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
            .await
            .unwrap();
        let port = listener.local_addr().unwrap().port();
        let script = Arc::new(Mutex::new(AppScript::default()));
        let app = axum::Router::new()
            .fallback(app_handler)
            .with_state(Arc::clone(&script));
        let server = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        TestApp {
            port,
            script,
            server,
        }
    }

    /// Answers `path` with these replies in order (the last repeats).
    fn reply(&self, path: &str, replies: &[(u16, &str)]) {
        self.script.lock().unwrap().replies.insert(
            path.to_owned(),
            replies
                .iter()
                .map(|(status, body)| (*status, (*body).to_owned()))
                .collect(),
        );
    }

    fn subscribe(&self, subscriptions: Value) {
        self.reply("/dapr/subscribe", &[(200, &subscriptions.to_string())]);
    }

    fn requests(&self, path: &str) -> Vec<AppRequest> {
        let script = self.script.lock().unwrap();
        script
            .log
            .iter()
            .filter(|request| request.path == path)
            .cloned()
            .collect()
    }

    fn all_requests(&self) -> Vec<AppRequest> {
        self.script.lock().unwrap().log.clone()
    }
}

/// A port nobody listens on right now.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn http() -> reqwest::Client {
    reqwest::Client::builder().no_proxy().build().unwrap()
}

async fn post_json(url: &str, content_type: &str, body: &str) -> reqwest::Response {
    http()
        .post(url)
        .header("content-type", content_type)
        .body(body.to_owned())
        .send()
        .await
        .unwrap()
}

fn sub(topic: &str, route: &str) -> Value {
    json!({"pubsubname": "pubsub", "topic": topic, "route": route, "deadLetterTopic": format!("{topic}-dlq")})
}

// 1. Publish ------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publish_wraps_the_body_in_a_cloud_event() {
    let sidecar = DaprSidecar::start(SidecarConfig::new()).await;
    let base = sidecar.base_url();
    let response = post_json(
        &format!("{base}/v1.0/publish/pubsub/orders?metadata.partitionKey=k1"),
        "application/json",
        r#"{"n": 12345678901234567890}"#,
    )
    .await;
    assert_eq!(response.status(), 204);
    let published = sidecar.published_to("orders");
    assert_eq!(published.len(), 1);
    assert_eq!(published[0].partition_key.as_deref(), Some("k1"));
    let event = published[0].cloud_event.clone().unwrap();
    assert!(uuid::Uuid::parse_str(event["id"].as_str().unwrap()).is_ok());
    assert_eq!(event["source"], "taskstream", "source is the app id");
    assert_eq!(event["type"], "com.dapr.event.sent");
    assert_eq!(event["specversion"], "1.0");
    assert_eq!(event["datacontenttype"], "application/json");
    assert_eq!(event["topic"], "orders");
    assert_eq!(event["pubsubname"], "pubsub");
    assert!(chrono::DateTime::parse_from_rfc3339(event["time"].as_str().unwrap()).is_ok());
    assert_eq!(event["traceid"], event["traceparent"]);
    assert!(event["data"].is_object(), "JSON bodies become JSON data");

    // No content type: text/plain, data as a string; binary: data_base64.
    let plain = http()
        .post(format!("{base}/v1.0/publish/pubsub/orders"))
        .body("hello")
        .send()
        .await
        .unwrap();
    assert_eq!(plain.status(), 204);
    post_json(
        &format!("{base}/v1.0/publish/pubsub/orders"),
        "application/octet-stream",
        "\u{1}\u{2}",
    )
    .await;
    post_json(
        &format!("{base}/v1.0/publish/pubsub/orders"),
        "application/json",
        "{not json",
    )
    .await;
    let published = sidecar.published_to("orders");
    let plain = published[1].cloud_event.clone().unwrap();
    assert_eq!(plain["datacontenttype"], "text/plain");
    assert_eq!(plain["data"], "hello");
    let binary = published[2].cloud_event.clone().unwrap();
    assert_eq!(binary["data_base64"], "AQI=");
    assert!(binary.get("data").is_none());
    let broken = published[3].cloud_event.clone().unwrap();
    assert_eq!(
        broken["data"], "{not json",
        "unparsable JSON goes in as a string"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publish_passes_cloud_events_through_and_honours_metadata() {
    let sidecar = DaprSidecar::start(SidecarConfig::new()).await;
    let base = sidecar.base_url();
    let ours = json!({"specversion": "1.0", "id": "evt-1", "type": "task.completed",
        "datacontenttype": "application/json", "data": {"a": 1}, "topic": "elsewhere"});
    let response = post_json(
        &format!("{base}/v1.0/publish/pubsub/task-events"),
        "application/cloudevents+json",
        &ours.to_string(),
    )
    .await;
    assert_eq!(response.status(), 204);
    let event = sidecar.published_to("task-events")[0]
        .cloud_event
        .clone()
        .unwrap();
    assert_eq!(event["id"], "evt-1", "the CloudEvent's id is kept");
    assert_eq!(event["type"], "task.completed");
    assert_eq!(event["source"], "Dapr", "a missing source is filled");
    assert_eq!(event["topic"], "task-events", "topic is overwritten");
    assert_eq!(event["pubsubname"], "pubsub");
    assert!(event.get("time").is_some());

    post_json(
        &format!("{base}/v1.0/publish/pubsub/t?metadata.cloudevent.id=fixed&metadata.cloudevent.type=my.type"),
        "application/json",
        "{}",
    )
    .await;
    let event = sidecar.published_to("t")[0].cloud_event.clone().unwrap();
    assert_eq!(
        (event["id"].as_str(), event["type"].as_str()),
        (Some("fixed"), Some("my.type"))
    );

    post_json(
        &format!("{base}/v1.0/publish/pubsub/raw?metadata.rawPayload=true"),
        "application/json",
        r#"{"bare":true}"#,
    )
    .await;
    let raw = &sidecar.published_to("raw")[0];
    assert!(raw.raw_payload && raw.cloud_event.is_none());
    assert_eq!(raw.message, br#"{"bare":true}"#, "no envelope");

    let unknown = post_json(
        &format!("{base}/v1.0/publish/nope/t"),
        "application/json",
        "{}",
    )
    .await;
    assert_eq!(unknown.status(), 404);
    let body: Value = unknown.json().await.unwrap();
    assert_eq!(body["errorCode"], "ERR_PUBSUB_NOT_FOUND");
}

// 2. Startup ------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscriptions_are_read_once_the_app_port_is_open() {
    let app_port = free_port();
    let sidecar = DaprSidecar::start(SidecarConfig::new().app_port(app_port)).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        sidecar.subscribe_calls().is_empty(),
        "nothing is called before the app listens"
    );
    let app_started = Instant::now();
    let app = TestApp::start_on(app_port).await;
    app.subscribe(json!([
        sub("a", "/a"),
        {"pubsubname": "pubsub", "topic": "b", "route": "/b-v1",
         "routes": {"rules": [{"match": "event.type == \"x\"", "path": "/b-x"}], "default": "/b-default"}},
        {"pubsubname": "pubsub", "topic": "c"},
    ]));
    sidecar
        .wait_for("discovery", WAIT, |s| s.discovered().then_some(()))
        .await;
    let calls = sidecar.subscribe_calls();
    assert!(calls[0].called_at >= calls[0].port_open_at);
    assert!(calls[0].port_open_at >= app_started);
    let subscriptions = sidecar.subscriptions();
    assert_eq!(
        subscriptions.len(),
        2,
        "the entry without a route is dropped"
    );
    assert_eq!(subscriptions[0].default_route.as_deref(), Some("/a"));
    assert_eq!(subscriptions[0].dead_letter_topic.as_deref(), Some("a-dlq"));
    assert_eq!(
        subscriptions[1].default_route.as_deref(),
        Some("/b-default"),
        "routes.default wins over route"
    );
    assert_eq!(
        subscriptions[1].rules,
        [("event.type == \"x\"".to_owned(), "/b-x".to_owned())]
    );
    assert!(sidecar.warnings().iter().any(|w| w.contains("no route")));
}

// 3. Delivery -----------------------------------------------------------------------------------

async fn publish(sidecar: &DaprSidecar, topic: &str, body: Value) {
    let response = post_json(
        &format!("{}/v1.0/publish/pubsub/{topic}", sidecar.base_url()),
        "application/json",
        &body.to_string(),
    )
    .await;
    assert_eq!(response.status(), 204);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replies_are_judged_as_daprd_does() {
    let app = TestApp::start().await;
    let topics = [
        ("ok", vec![(200, r#"{"status":"SUCCESS"}"#)]),
        ("empty", vec![(200, "")]),
        ("nostatus", vec![(200, r#"{"message":"fine"}"#)]),
        (
            "retry",
            vec![
                (200, r#"{"status":"RETRY"}"#),
                (200, r#"{"status":"RETRY"}"#),
                (200, r#"{"status":"SUCCESS"}"#),
            ],
        ),
        ("drop", vec![(200, r#"{"status":"DROP"}"#)]),
        ("missing", vec![]),
        ("boom", vec![(500, "{}")]),
        ("weird", vec![(200, r#"{"status":"MAYBE"}"#)]),
    ];
    let mut subscriptions = Vec::new();
    for (topic, replies) in &topics {
        if !replies.is_empty() {
            app.reply(&format!("/{topic}"), replies);
        }
        subscriptions.push(sub(topic, &format!("/{topic}")));
    }
    app.subscribe(Value::Array(subscriptions));
    let sidecar = DaprSidecar::start(
        SidecarConfig::new()
            .app_port(app.port)
            .delivery_retries(3, Duration::from_millis(10)),
    )
    .await;
    sidecar
        .wait_for("discovery", WAIT, |s| s.discovered().then_some(()))
        .await;
    for (topic, _) in &topics {
        publish(&sidecar, topic, json!({"topic": topic})).await;
    }
    // 1 + 1 + 1 + 3 + 1 + 1 + 4 + 4 attempts.
    sidecar
        .wait_for("every delivery", WAIT, |s| {
            (s.deliveries().len() >= 16).then_some(())
        })
        .await;
    sidecar
        .wait_for("dead letters", WAIT, |s| {
            (s.dead_letters().len() >= 4).then_some(())
        })
        .await;
    let verdicts = |topic: &str| -> Vec<Verdict> {
        sidecar
            .deliveries()
            .into_iter()
            .filter(|d| d.topic == topic)
            .map(|d| d.verdict)
            .collect()
    };
    assert_eq!(verdicts("ok"), [Verdict::Success]);
    assert_eq!(
        verdicts("empty"),
        [Verdict::Success],
        "an empty 2xx is an ack"
    );
    assert_eq!(verdicts("nostatus"), [Verdict::Success]);
    assert_eq!(
        verdicts("retry"),
        [Verdict::Retry, Verdict::Retry, Verdict::Success]
    );
    assert_eq!(verdicts("drop"), [Verdict::Drop], "DROP is not retried");
    assert_eq!(
        verdicts("missing"),
        [Verdict::NotFound],
        "404 is not retried"
    );
    assert_eq!(verdicts("boom").len(), 4, "5xx is retried per policy");
    assert_eq!(verdicts("weird").len(), 4, "an unknown status is an error");
    let mut dead: Vec<String> = sidecar
        .dead_letters()
        .into_iter()
        .map(|d| d.dead_letter_topic)
        .collect();
    dead.sort();
    assert_eq!(dead, ["boom-dlq", "drop-dlq", "missing-dlq", "weird-dlq"]);
    let dlq = sidecar.topic_messages("pubsub", "drop-dlq");
    assert_eq!(
        dlq,
        sidecar.topic_messages("pubsub", "drop"),
        "the original message is republished"
    );
    let delivery = &sidecar.deliveries()[0];
    assert_eq!(delivery.content_type, "application/cloudevents+json");
    let request = &app.requests("/ok")[0];
    assert_eq!(
        request.headers["content-type"],
        "application/cloudevents+json"
    );
    let body: Value = serde_json::from_slice(&request.body).unwrap();
    assert_eq!(body["data"]["topic"], "ok", "the CloudEvent is delivered");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rules_route_by_cloud_event_type_and_raw_subscriptions_get_data_base64() {
    let app = TestApp::start().await;
    app.reply("/completed", &[(200, "")]);
    app.reply("/other", &[(200, "")]);
    app.reply("/raw", &[(200, "")]);
    app.subscribe(json!([
        {"pubsubname": "pubsub", "topic": "task-events",
         "routes": {"rules": [{"match": "event.type == \"task.completed\"", "path": "/completed"}], "default": "/other"}},
        {"pubsubname": "pubsub", "topic": "raw", "route": "/raw", "metadata": {"rawPayload": "true"}},
    ]));
    let sidecar = DaprSidecar::start(SidecarConfig::new().app_port(app.port)).await;
    for event_type in ["task.completed", "task.created"] {
        post_json(
            &format!("{}/v1.0/publish/pubsub/task-events", sidecar.base_url()),
            "application/cloudevents+json",
            &json!({"specversion": "1.0", "id": event_type, "type": event_type, "source": "s", "data": {}}).to_string(),
        )
        .await;
    }
    publish(&sidecar, "raw", json!({"x": 1})).await;
    sidecar
        .wait_for("deliveries", WAIT, |s| {
            (s.deliveries().len() >= 3).then_some(())
        })
        .await;
    let completed = app.requests("/completed");
    assert_eq!(completed.len(), 1);
    let body: Value = serde_json::from_slice(&completed[0].body).unwrap();
    assert_eq!(body["type"], "task.completed");
    assert_eq!(app.requests("/other").len(), 1);
    let raw: Value = serde_json::from_slice(&app.requests("/raw")[0].body).unwrap();
    assert_eq!(raw["datacontenttype"], "application/octet-stream");
    use base64::Engine as _;
    let inner = base64::engine::general_purpose::STANDARD
        .decode(raw["data_base64"].as_str().unwrap())
        .unwrap();
    let inner: Value = serde_json::from_slice(&inner).unwrap();
    assert_eq!(
        inner["data"],
        json!({"x": 1}),
        "the stored CloudEvent, wrapped once more"
    );
}

/// An app that applies each CloudEvent id once, however often it comes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_message_is_redelivered_n_times_to_an_idempotent_app() {
    for concurrent in [false, true] {
        let app = TestApp::start().await;
        app.reply("/in", &[(200, r#"{"status":"SUCCESS"}"#)]);
        app.subscribe(json!([sub("in", "/in")]));
        let mut config = SidecarConfig::new().app_port(app.port).redeliveries(2);
        if concurrent {
            config = config.concurrent_redeliveries();
        }
        let sidecar = DaprSidecar::start(config).await;
        for n in 0..3 {
            publish(&sidecar, "in", json!({"n": n})).await;
        }
        sidecar
            .wait_for("9 deliveries", WAIT, |s| {
                (s.deliveries().len() >= 9).then_some(())
            })
            .await;
        let requests = app.requests("/in");
        assert_eq!(requests.len(), 9, "each of 3 messages 1 + 2 times");
        let ids: HashSet<String> = requests
            .iter()
            .map(|r| {
                let body: Value = serde_json::from_slice(&r.body).unwrap();
                body["id"].as_str().unwrap().to_owned()
            })
            .collect();
        assert_eq!(ids.len(), 3, "copies carry the same CloudEvent id");
        assert_eq!(sidecar.deliveries().iter().filter(|d| d.copy).count(), 6);
    }
}

// 4. State --------------------------------------------------------------------------------------

async fn save(base: &str, items: Value) -> reqwest::Response {
    http()
        .post(format!("{base}/v1.0/state/statestore"))
        .json(&items)
        .send()
        .await
        .unwrap()
}

async fn get_state(base: &str, key: &str) -> reqwest::Response {
    http()
        .get(format!("{base}/v1.0/state/statestore/{key}"))
        .send()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn state_saves_reads_and_deletes_with_etags() {
    let sidecar = DaprSidecar::start(SidecarConfig::new()).await;
    let base = sidecar.base_url();
    assert_eq!(get_state(&base, "k").await.status(), 204, "missing is 204");
    assert_eq!(
        save(&base, json!([{"key": "k", "value": {"v": 1}}]))
            .await
            .status(),
        204
    );
    let got = get_state(&base, "k").await;
    assert_eq!(got.status(), 200);
    assert_eq!(got.headers()["etag"], "1");
    assert_eq!(got.json::<Value>().await.unwrap(), json!({"v": 1}));
    assert_eq!(
        save(&base, json!([{"key": "k", "value": "two"}]))
            .await
            .status(),
        204
    );
    let got = get_state(&base, "k").await;
    assert_eq!(got.headers()["etag"], "2", "every write makes a new etag");
    assert_eq!(got.text().await.unwrap(), r#""two""#);
    let stale = save(&base, json!([{"key": "k", "value": 3, "etag": "1"}])).await;
    assert_eq!(stale.status(), 409);
    let fresh = save(&base, json!([{"key": "k", "value": 3, "etag": "2"}])).await;
    assert_eq!(fresh.status(), 204);
    let malformed = save(&base, json!([{"key": "k", "value": 4, "etag": "abc"}])).await;
    assert_eq!(malformed.status(), 400);
    let delete = |etag: &'static str| {
        let url = format!("{base}/v1.0/state/statestore/k");
        async move {
            http()
                .delete(url)
                .header("if-match", etag)
                .send()
                .await
                .unwrap()
        }
    };
    assert_eq!(delete("1").await.status(), 409, "stale If-Match");
    assert_eq!(delete("x").await.status(), 400);
    assert_eq!(delete("3").await.status(), 204);
    assert_eq!(get_state(&base, "k").await.status(), 204);
    let piped = save(&base, json!([{"key": "a||b", "value": 1}])).await;
    assert_eq!(piped.status(), 400, "keys may not contain ||");
    let unknown = http()
        .get(format!("{base}/v1.0/state/nostore/k"))
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), 400);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn state_first_write_without_etag_follows_state_redis() {
    let sidecar = DaprSidecar::start(SidecarConfig::new()).await;
    let base = sidecar.base_url();
    let item = |key: &str, v: u32| json!([{"key": key, "value": v, "options": {"concurrency": "first-write"}}]);
    assert_eq!(save(&base, item("once", 1)).await.status(), 204);
    // A key first written with first-write refuses saves without its ETag, plain ones too,
    // with a 500 ERR_STATE_SAVE (what real daprd answers with state.redis).
    let again = save(&base, item("once", 2)).await;
    assert_eq!(again.status(), 500);
    assert_eq!(
        again.json::<Value>().await.unwrap()["errorCode"],
        "ERR_STATE_SAVE"
    );
    assert_eq!(
        save(&base, json!([{"key": "once", "value": 3}]))
            .await
            .status(),
        500
    );
    assert_eq!(get_state(&base, "once").await.text().await.unwrap(), "1");
    // first-write over a key written without it just writes.
    assert_eq!(
        save(&base, json!([{"key": "plain", "value": 1}]))
            .await
            .status(),
        204
    );
    assert_eq!(save(&base, item("plain", 2)).await.status(), 204);
    assert_eq!(get_state(&base, "plain").await.text().await.unwrap(), "2");
    let mimic = DaprSidecar::start(SidecarConfig::new().first_write_conflict_status(409)).await;
    assert_eq!(save(&mimic.base_url(), item("once", 1)).await.status(), 204);
    assert_eq!(save(&mimic.base_url(), item("once", 2)).await.status(), 409);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn state_ttl_runs_on_the_sidecar_clock() {
    let sidecar = DaprSidecar::start(SidecarConfig::new()).await;
    let base = sidecar.base_url();
    save(
        &base,
        json!([
            {"key": "short", "value": 1, "metadata": {"ttlInSeconds": "60"}},
            {"key": "forever", "value": 2, "metadata": {"ttlInSeconds": "-1"}},
        ]),
    )
    .await;
    assert_eq!(get_state(&base, "short").await.status(), 200);
    sidecar.advance(Duration::from_secs(61));
    assert_eq!(get_state(&base, "short").await.status(), 204, "expired");
    assert_eq!(get_state(&base, "forever").await.status(), 200);
    let first_write =
        json!([{"key": "short", "value": 3, "options": {"concurrency": "first-write"}}]);
    assert_eq!(
        save(&base, first_write).await.status(),
        204,
        "an expired key is absent"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn state_bulk_reads_and_transactions_are_all_or_nothing() {
    let sidecar = DaprSidecar::start(SidecarConfig::new()).await;
    let base = sidecar.base_url();
    save(
        &base,
        json!([{"key": "a", "value": {"x": 1}}, {"key": "b", "value": 2}]),
    )
    .await;
    let bulk: Value = http()
        .post(format!("{base}/v1.0/state/statestore/bulk"))
        .json(&json!({"keys": ["a", "b", "c"], "parallelism": 10}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        bulk,
        json!([{"key": "a", "data": {"x": 1}, "etag": "1"}, {"key": "b", "data": 2, "etag": "1"}, {"key": "c"}])
    );
    let transaction = |operations: Value| {
        let url = format!("{base}/v1.0/state/statestore/transaction");
        async move {
            http()
                .post(url)
                .json(&json!({ "operations": operations }))
                .send()
                .await
                .unwrap()
                .status()
        }
    };
    let failed = transaction(json!([
        {"operation": "upsert", "request": {"key": "c", "value": 3}},
        {"operation": "delete", "request": {"key": "a", "etag": "9"}},
    ]))
    .await;
    assert_eq!(failed, 409);
    assert_eq!(
        get_state(&base, "c").await.status(),
        204,
        "nothing of a failed transaction"
    );
    let passed = transaction(json!([
        {"operation": "upsert", "request": {"key": "c", "value": 3}},
        {"operation": "delete", "request": {"key": "a", "etag": "1"}},
    ]))
    .await;
    assert_eq!(passed, 204);
    assert_eq!(get_state(&base, "c").await.status(), 200);
    assert_eq!(get_state(&base, "a").await.status(), 204);
}

// 5. Secrets ------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_come_from_the_map_given_at_start() {
    let sidecar = DaprSidecar::start(SidecarConfig::new().secret(
        "kubernetes",
        "taskstream-db",
        &[("url", "postgres://db"), ("user", "app")],
    ))
    .await;
    let base = sidecar.base_url();
    let get = |path: &str| {
        let url = format!("{base}{path}");
        async move { http().get(url).send().await.unwrap() }
    };
    let secret = get("/v1.0/secrets/kubernetes/taskstream-db").await;
    assert_eq!(secret.status(), 200);
    assert_eq!(
        secret.json::<Value>().await.unwrap(),
        json!({"url": "postgres://db", "user": "app"})
    );
    // As real daprd with secretstores.local.file / kubernetes: a missing secret is a 500, an
    // unknown store a 401.
    let missing = get("/v1.0/secrets/kubernetes/nope").await;
    assert_eq!(missing.status(), 500);
    assert_eq!(
        missing.json::<Value>().await.unwrap()["errorCode"],
        "ERR_SECRET_GET"
    );
    assert_eq!(get("/v1.0/secrets/vault/taskstream-db").await.status(), 401);
    let bulk: Value = get("/v1.0/secrets/kubernetes/bulk")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(bulk["taskstream-db"]["user"], "app");
}

// 6. Jobs ---------------------------------------------------------------------------------------

async fn job(base: &str, method: Method, name: &str, body: Option<Value>) -> reqwest::Response {
    let mut request = http().request(method, format!("{base}/v1.0/jobs/{name}"));
    if let Some(body) = body {
        request = request.json(&body);
    }
    request.send().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_are_validated_as_daprd_does() {
    let sidecar = DaprSidecar::start(SidecarConfig::new()).await;
    let base = sidecar.base_url();
    let due = json!({"dueTime": "2099-01-01T00:00:00Z", "data": {"k": "v"}});
    assert_eq!(
        job(&base, Method::POST, "j", Some(due.clone()))
            .await
            .status(),
        204
    );
    for bad in [
        json!({}),
        json!({"name": "j2", "dueTime": "1s"}),
        json!({"dueTime": "1s", "repeats": -1}),
    ] {
        assert_eq!(
            job(&base, Method::POST, "j2", Some(bad.clone()))
                .await
                .status(),
            400,
            "{bad}"
        );
    }
    assert_eq!(
        job(&base, Method::POST, "j", Some(due.clone()))
            .await
            .status(),
        409,
        "a duplicate without overwrite"
    );
    let mut overwrite = due.clone();
    overwrite["overwrite"] = json!(true);
    assert_eq!(
        job(&base, Method::POST, "j", Some(overwrite))
            .await
            .status(),
        204
    );
    let got = job(&base, Method::GET, "j", None).await;
    assert_eq!(got.status(), 200);
    let got: Value = got.json().await.unwrap();
    // As daprd shows it: data as a google.protobuf.Value, the default failure policy.
    assert_eq!(got["data"]["value"], json!({"k": "v"}), "{got}");
    assert_eq!(
        got["data"]["@type"],
        "type.googleapis.com/google.protobuf.Value"
    );
    assert_eq!(got["failurePolicy"]["constant"]["maxRetries"], 3, "{got}");
    for invalid in [
        json!({"dueTime": "bogus"}),
        json!({"dueTime": "1s", "repeats": 0}),
    ] {
        let refused = job(&base, Method::POST, "j3", Some(invalid.clone())).await;
        assert_eq!(
            refused.status(),
            500,
            "the scheduler's validation: {invalid}"
        );
        assert_eq!(
            refused.json::<Value>().await.unwrap()["errorCode"],
            "DAPR_SCHEDULER_SCHEDULE_JOB"
        );
    }
    let missing = job(&base, Method::GET, "nope", None).await;
    assert_eq!(missing.status(), 500);
    assert_eq!(
        missing.json::<Value>().await.unwrap()["errorCode"],
        "DAPR_SCHEDULER_GET_JOB"
    );
    assert_eq!(job(&base, Method::DELETE, "nope", None).await.status(), 204);
    assert_eq!(job(&base, Method::DELETE, "j", None).await.status(), 204);
    assert!(sidecar.jobs().is_empty());
    let alpha = http()
        .post(format!("{base}/v1.0-alpha1/jobs/old"))
        .json(&json!({"dueTime": "1h"}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        alpha.status(),
        404,
        "daprd 1.18.3 no longer serves the alpha path"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_fire_at_their_due_time_with_data_as_the_body() {
    let app = TestApp::start().await;
    app.reply("/job/with-data", &[(200, "")]);
    app.reply("/job/no-data", &[(204, "")]);
    let sidecar = DaprSidecar::start(SidecarConfig::new().app_port(app.port)).await;
    let base = sidecar.base_url();
    let due = (sidecar.now() + chrono::Duration::hours(1)).to_rfc3339();
    job(
        &base,
        Method::POST,
        "with-data",
        Some(json!({"dueTime": due, "data": {"expression": "val"}})),
    )
    .await;
    job(
        &base,
        Method::POST,
        "no-data",
        Some(json!({"dueTime": "PT1H"})),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        sidecar.job_triggers().is_empty(),
        "never before the due time"
    );
    sidecar.advance(Duration::from_secs(3600));
    sidecar
        .wait_for("both triggers", WAIT, |s| {
            (s.job_triggers().len() >= 2).then_some(())
        })
        .await;
    let with_data = &app.requests("/job/with-data")[0];
    assert_eq!(with_data.method, Method::POST);
    assert_eq!(with_data.headers["content-type"], "application/json");
    assert_eq!(&with_data.body[..], br#"{"expression":"val"}"#);
    assert!(app.requests("/job/no-data")[0].body.is_empty());
    sidecar
        .wait_for("one-shot jobs removed", WAIT, |s| {
            s.jobs().is_empty().then_some(())
        })
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn job_failures_are_retried_per_failure_policy() {
    let app = TestApp::start().await;
    for name in ["fails", "gone", "dropped", "twice", "heals"] {
        app.reply(&format!("/job/{name}"), &[(500, "")]);
    }
    app.reply("/job/gone", &[(404, "")]);
    app.reply("/job/heals", &[(503, ""), (200, "")]);
    let sidecar = DaprSidecar::start(
        SidecarConfig::new()
            .app_port(app.port)
            .job_retries(3, Duration::from_millis(20)),
    )
    .await;
    let base = sidecar.base_url();
    job(&base, Method::POST, "fails", Some(json!({"dueTime": "0s"}))).await;
    job(&base, Method::POST, "gone", Some(json!({"dueTime": "0s"}))).await;
    job(&base, Method::POST, "heals", Some(json!({"dueTime": "0s"}))).await;
    job(
        &base,
        Method::POST,
        "dropped",
        Some(json!({"dueTime": "0s", "failure_policy": {"drop": {}}})),
    )
    .await;
    job(&base, Method::POST, "twice", Some(json!({"dueTime": "0s", "failure_policy": {"constant": {"interval": "10ms", "max_retries": 1}}}))).await;
    sidecar
        .wait_for("all jobs done", WAIT, |s| s.jobs().is_empty().then_some(()))
        .await;
    let attempts = |name: &str| app.requests(&format!("/job/{name}")).len();
    assert_eq!(
        attempts("fails"),
        4,
        "default policy: 3 retries, 4 attempts"
    );
    assert_eq!(attempts("gone"), 1, "404 counts as done");
    assert_eq!(attempts("heals"), 2);
    assert_eq!(attempts("dropped"), 1);
    assert_eq!(attempts("twice"), 2);
}

// 7. Health -------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn healthz_outbound_waits_for_components_and_healthz_for_the_app() {
    let app_port = free_port();
    let sidecar = DaprSidecar::start(
        SidecarConfig::new()
            .app_port(app_port)
            .outbound_ready_after(Duration::from_millis(300))
            .api_token("t"),
    )
    .await;
    let status = |path: &'static str| {
        let url = format!("{}{path}", sidecar.base_url());
        async move { http().get(url).send().await.unwrap().status().as_u16() }
    };
    assert_eq!(status("/v1.0/healthz/outbound").await, 500);
    tokio::time::sleep(Duration::from_millis(350)).await;
    assert_eq!(
        status("/v1.0/healthz/outbound").await,
        204,
        "without waiting for the app, and without a token"
    );
    assert_eq!(status("/v1.0/healthz").await, 500, "the app is not up yet");
    let app = TestApp::start_on(app_port).await;
    app.subscribe(json!([]));
    sidecar
        .wait_for("discovery", WAIT, |s| s.discovered().then_some(()))
        .await;
    assert_eq!(status("/v1.0/healthz").await, 204);
}

// 8. Auth ---------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_token_is_required_except_on_healthz() {
    let sidecar = DaprSidecar::start(SidecarConfig::new().api_token("s3cret")).await;
    let base = sidecar.base_url();
    let refused = post_json(
        &format!("{base}/v1.0/publish/pubsub/t"),
        "application/json",
        "{}",
    )
    .await;
    assert_eq!(refused.status(), 401);
    assert_eq!(refused.text().await.unwrap(), "invalid api token");
    let wrong = http()
        .get(format!("{base}/v1.0/state/statestore/k"))
        .header("dapr-api-token", "nope")
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 401);
    let accepted = http()
        .post(format!("{base}/v1.0/publish/pubsub/t"))
        .header("dapr-api-token", "s3cret")
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(accepted.status(), 204);
    let health = http()
        .get(format!("{base}/v1.0/healthz/outbound"))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 204);
    assert!(
        sidecar
            .calls()
            .iter()
            .any(|c| c.status == 401 && c.token.is_none())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_app_token_goes_with_every_call_to_the_app() {
    let app = TestApp::start().await;
    app.subscribe(json!([sub("t", "/t")]));
    app.reply("/t", &[(200, "")]);
    app.reply("/job/j", &[(200, "")]);
    let sidecar =
        DaprSidecar::start(SidecarConfig::new().app_port(app.port).app_token("to-app")).await;
    publish(&sidecar, "t", json!({})).await;
    job(
        &sidecar.base_url(),
        Method::POST,
        "j",
        Some(json!({"dueTime": "0s"})),
    )
    .await;
    sidecar
        .wait_for("delivery and trigger", WAIT, |s| {
            (!s.deliveries().is_empty() && !s.job_triggers().is_empty()).then_some(())
        })
        .await;
    let requests = app.all_requests();
    assert!(requests.len() >= 3);
    for request in requests {
        assert_eq!(
            request.headers["dapr-api-token"], "to-app",
            "{}",
            request.path
        );
    }
}

// Restart ---------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_keeps_state_jobs_and_offsets() {
    let app = TestApp::start().await;
    app.subscribe(json!([sub("t", "/t")]));
    app.reply("/t", &[(200, "")]);
    app.reply("/job/later", &[(200, "")]);
    let mut sidecar = DaprSidecar::start(SidecarConfig::new().app_port(app.port)).await;
    let base = sidecar.base_url();
    save(&base, json!([{"key": "k", "value": 1}])).await;
    job(
        &base,
        Method::POST,
        "later",
        Some(json!({"dueTime": "1h", "data": 7})),
    )
    .await;
    publish(&sidecar, "t", json!({"n": 1})).await;
    sidecar
        .wait_for("first delivery", WAIT, |s| {
            (!s.deliveries().is_empty()).then_some(())
        })
        .await;

    sidecar.stop().await;
    assert!(
        http()
            .get(format!("{base}/v1.0/healthz"))
            .send()
            .await
            .is_err(),
        "a stopped sidecar does not answer"
    );
    sidecar.restart().await;
    assert_eq!(sidecar.base_url(), base, "same port after a restart");
    sidecar
        .wait_for("rediscovery", WAIT, |s| s.discovered().then_some(()))
        .await;
    assert_eq!(
        app.requests("/dapr/subscribe").len(),
        2,
        "subscriptions are read again"
    );
    assert_eq!(get_state(&base, "k").await.text().await.unwrap(), "1");
    assert!(sidecar.job("later").is_some());
    publish(&sidecar, "t", json!({"n": 2})).await;
    sidecar
        .wait_for("second delivery", WAIT, |s| {
            (s.deliveries().len() >= 2).then_some(())
        })
        .await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(
        app.requests("/t").len(),
        2,
        "the acknowledged message is not delivered again"
    );
    sidecar.advance(Duration::from_secs(3600));
    sidecar
        .wait_for("the job fires after the restart", WAIT, |s| {
            (!s.job_triggers().is_empty()).then_some(())
        })
        .await;
    assert_eq!(&app.requests("/job/later")[0].body[..], b"7");
}
