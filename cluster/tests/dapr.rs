//! The Dapr adapters against the test sidecar (`taskstream_tests::dapr_sidecar`), with the
//! engine's SQLite store as the task store: publisher, state, delivery routes, jobs, secrets and
//! tokens, as CONTRACT §5 and `docs/reference/dapr.md` describe them.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use base64::Engine as _;
use chrono::Utc;
use serde_json::{Value, json};
use taskstream_cluster::dapr::pubsub::PublishRetry;
use taskstream_cluster::dapr::{
    AppToken, ConsumerDeps, ConsumerRole, DaprClient, DaprClientConfig, DaprError,
    DaprJobScheduler, DaprJobs, DaprPublisher, DaprSecrets, DaprStateStore, JobCallbackDeps,
    SecretRef, consumer_router, job_callback_router,
};
use taskstream_engine::EngineError;
use taskstream_engine::activity::AuditFilter;
use taskstream_engine::consumers::apply::EffectApplier;
use taskstream_engine::embedded::SqliteTaskStore;
use taskstream_engine::event::EventEnvelope;
use taskstream_engine::ports::StateStore;
use taskstream_engine::ports::{
    ActivityStore, EventBus, Outbox, OutboxRecord, ReminderStore, TaskStore,
};
use taskstream_engine::relay::OutboxRelay;
use taskstream_engine::service::TaskService;
use taskstream_engine::task::input::{parse_new_task, parse_task_patch};
use taskstream_engine::task::{Task, TaskQuery};
use taskstream_tests::dapr_sidecar::{DaprSidecar, SidecarConfig, Verdict};
use tokio::sync::watch;

const WAIT: Duration = Duration::from_secs(15);

// --- helpers --------------------------------------------------------------------------------------

struct Store {
    _dir: tempfile::TempDir,
    store: Arc<SqliteTaskStore>,
    service: TaskService,
}

fn sqlite() -> Store {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SqliteTaskStore::open(&dir.path().join("tasks.db")).unwrap());
    let service = TaskService::new(store.clone());
    Store {
        _dir: dir,
        store,
        service,
    }
}

impl Store {
    async fn create(&self, user: &str, body: Value) -> Task {
        self.service
            .create(user, parse_new_task(&body).unwrap())
            .await
            .unwrap()
    }
}

fn client(sidecar: &DaprSidecar) -> DaprClient {
    let token = sidecar.config().api_token.clone();
    DaprClient::new(DaprClientConfig::for_url(&sidecar.base_url()).with_token(token)).unwrap()
}

fn quick_retry() -> PublishRetry {
    PublishRetry {
        attempts: 3,
        first_backoff: Duration::from_millis(10),
    }
}

/// Serves `router` on a free loopback port; returns the port.
async fn serve(router: axum::Router) -> (u16, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = tokio::spawn(async move {
        axum::serve(listener, router).await.unwrap();
    });
    (port, server)
}

async fn eventually<T>(what: &str, mut probe: impl AsyncFnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + WAIT;
    loop {
        if let Some(value) = probe().await {
            return value;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn http() -> reqwest::Client {
    reqwest::Client::builder().no_proxy().build().unwrap()
}

/// `now + by`, at the precision the store keeps.
fn in_(by: chrono::Duration) -> chrono::DateTime<Utc> {
    taskstream_engine::time::truncate_micros(Utc::now() + by)
}

fn rfc3339(at: chrono::DateTime<Utc>) -> String {
    taskstream_engine::time::format_utc(at)
}

// --- publisher ------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_publisher_sends_cloud_events_keyed_by_task() {
    let sidecar = DaprSidecar::start(SidecarConfig::new()).await;
    let tasks = sqlite();
    let task = tasks
        .create(
            "alice",
            json!({"title": "Pay rent", "due_date": "2030-01-31T09:00:00Z"}),
        )
        .await;
    tasks.service.complete("alice", task.id).await.unwrap();
    let records = tasks.store.pending_events(100).await.unwrap();
    assert_eq!(records.len(), 4, "created + sync, completed + sync");

    let relay = OutboxRelay::new(
        tasks.store.clone(),
        Arc::new(DaprPublisher::new(client(&sidecar))),
    );
    assert_eq!(relay.relay_once().await.unwrap(), 4);
    assert!(tasks.store.pending_events(100).await.unwrap().is_empty());

    let published = sidecar.published();
    assert_eq!(published.len(), 4);
    for (record, published) in records.iter().zip(&published) {
        assert_eq!(published.topic, record.topic, "outbox order is kept");
        assert_eq!(published.pubsub, "pubsub");
        assert_eq!(
            published.partition_key.as_deref(),
            Some(task.id.to_string().as_str())
        );
        assert_eq!(
            published.content_type.as_deref(),
            Some("application/cloudevents+json")
        );
        let event = published.cloud_event.clone().unwrap();
        let envelope = &record.envelope;
        assert_eq!(event["specversion"], "1.0");
        assert_eq!(event["id"], json!(envelope.event_id));
        assert_eq!(event["type"], json!(envelope.event_type));
        assert_eq!(event["source"], "chat-api");
        assert_eq!(event["datacontenttype"], "application/json");
        assert_eq!(event["time"], json!(envelope.timestamp));
        let data: EventEnvelope = serde_json::from_value(event["data"].clone()).unwrap();
        assert_eq!(&data, envelope, "the envelope is the data");
    }
    assert_eq!(
        published[2].cloud_event.as_ref().unwrap()["type"],
        "task.completed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_down_sidecar_fails_the_publish_so_the_outbox_keeps_the_rows() {
    let mut sidecar = DaprSidecar::start(SidecarConfig::new()).await;
    let tasks = sqlite();
    tasks.create("bob", json!({"title": "one"})).await;
    let publisher = DaprPublisher::new(client(&sidecar)).with_retry(quick_retry());
    let relay = OutboxRelay::new(tasks.store.clone(), Arc::new(publisher));

    sidecar.stop().await;
    let error = relay.relay_once().await.unwrap_err();
    assert!(matches!(error, EngineError::Unavailable(_)), "{error}");
    assert_eq!(tasks.store.pending_events(100).await.unwrap().len(), 2);

    sidecar.restart().await;
    assert_eq!(relay.relay_once().await.unwrap(), 2);
    assert!(tasks.store.pending_events(100).await.unwrap().is_empty());
    assert_eq!(sidecar.published().len(), 2);

    // A refusal (unknown component) is no reason to hammer the sidecar: one attempt, an error.
    let record = OutboxRecord {
        seq: 1,
        topic: "task-events".to_owned(),
        key: "k".to_owned(),
        envelope: serde_json::from_value(
            sidecar.published()[0].cloud_event.clone().unwrap()["data"].clone(),
        )
        .unwrap(),
    };
    let wrong = DaprPublisher::new(client(&sidecar)).with_pubsub("kafka-nope");
    let before = sidecar.calls().len();
    let error = wrong.publish(&[record]).await.unwrap_err();
    assert!(matches!(error, EngineError::Store(_)), "{error}");
    assert_eq!(sidecar.calls().len(), before + 1);
}

// --- state ----------------------------------------------------------------------------------------

/// The same [`StateStore`] contract redb passes (`engine/src/conformance/state.rs`), through
/// the test sidecar; `cluster/tests/real_dapr_state.rs` runs it through a real daprd + Redis.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dapr_state_store_passes_the_state_store_conformance_suite() {
    let sidecar = DaprSidecar::start(SidecarConfig::new()).await;
    let state = DaprStateStore::new(client(&sidecar));
    taskstream_engine::conformance::state_store_suite(&state).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_state_store_reads_writes_and_expires_through_the_sidecar() {
    let sidecar = DaprSidecar::start(SidecarConfig::new()).await;
    let state = DaprStateStore::new(client(&sidecar));
    assert_eq!(state.get("missing").await.unwrap(), None);
    let mark = br#"{"event_id":"e1","processed_at":"2030-01-01T00:00:00Z"}"#.to_vec();
    state
        .set(
            "audit-processed:e1",
            mark.clone(),
            Some(Duration::from_secs(86_400)),
        )
        .await
        .unwrap();
    assert_eq!(
        state.get("audit-processed:e1").await.unwrap(),
        Some(mark.clone())
    );
    assert_eq!(
        sidecar.state_value("statestore", "audit-processed:e1"),
        Some(mark.clone()),
        "canonical JSON is stored as JSON"
    );
    let save = sidecar
        .calls()
        .into_iter()
        .find(|call| call.method == "POST" && call.uri == "/v1.0/state/statestore")
        .unwrap();
    let items: Value = serde_json::from_slice(&save.body).unwrap();
    assert_eq!(items[0]["metadata"]["ttlInSeconds"], "86400");

    // Any bytes round-trip.
    for bytes in [
        b"plain".to_vec(),
        vec![0, 255, 7],
        br#"{ "b": 1, "a": 2 }"#.to_vec(),
    ] {
        state.set("bytes", bytes.clone(), None).await.unwrap();
        assert_eq!(state.get("bytes").await.unwrap(), Some(bytes));
    }
    let forever = sidecar
        .calls()
        .into_iter()
        .rev()
        .find(|call| call.method == "POST")
        .unwrap();
    let items: Value = serde_json::from_slice(&forever.body).unwrap();
    assert_eq!(
        items[0]["metadata"]["ttlInSeconds"], "-1",
        "no TTL means never"
    );

    // TTL on the sidecar's clock.
    state
        .set("short", b"1".to_vec(), Some(Duration::from_secs(10)))
        .await
        .unwrap();
    sidecar.advance(Duration::from_secs(9));
    assert!(state.get("short").await.unwrap().is_some());
    sidecar.advance(Duration::from_secs(2));
    assert_eq!(state.get("short").await.unwrap(), None);
    assert!(
        state.get("bytes").await.unwrap().is_some(),
        "no TTL, no expiry"
    );

    state.delete("bytes").await.unwrap();
    state.delete("never-was").await.unwrap();
    assert_eq!(state.get("bytes").await.unwrap(), None);
    assert_eq!(
        state.purge_expired().await.unwrap(),
        0,
        "the component expires keys"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn set_if_absent_has_exactly_one_winner() {
    // 409 is what daprd answers for an ETag error; 500 is what a component answers whose
    // first-write failure is not an ETag error. Both must give one winner.
    for conflict in [409, 500] {
        let sidecar =
            DaprSidecar::start(SidecarConfig::new().first_write_conflict_status(conflict)).await;
        let state = Arc::new(DaprStateStore::new(client(&sidecar)));
        for round in 0..3 {
            let key = format!("audit-processed:{round}");
            let mut racers = tokio::task::JoinSet::new();
            for racer in 0..24u8 {
                let (state, key) = (state.clone(), key.clone());
                racers.spawn(async move {
                    state
                        .set_if_absent(
                            &key,
                            vec![b'0' + racer % 10],
                            Some(Duration::from_secs(86_400)),
                        )
                        .await
                });
            }
            let mut winners = 0;
            while let Some(outcome) = racers.join_next().await {
                winners += usize::from(outcome.unwrap().unwrap());
            }
            assert_eq!(winners, 1, "conflict status {conflict}, round {round}");
        }
        // An expired key is absent again.
        assert!(
            state
                .set_if_absent("ttl", b"1".to_vec(), Some(Duration::from_secs(5)))
                .await
                .unwrap()
        );
        assert!(
            !state
                .set_if_absent("ttl", b"2".to_vec(), Some(Duration::from_secs(5)))
                .await
                .unwrap()
        );
        sidecar.advance(Duration::from_secs(6));
        assert!(
            state
                .set_if_absent("ttl", b"3".to_vec(), Some(Duration::from_secs(5)))
                .await
                .unwrap()
        );
        assert_eq!(state.get("ttl").await.unwrap(), Some(b"3".to_vec()));
    }
    let mut down = DaprSidecar::start(SidecarConfig::new()).await;
    let state = DaprStateStore::new(client(&down));
    down.stop().await;
    assert!(matches!(
        state.set_if_absent("k", b"1".to_vec(), None).await,
        Err(EngineError::Unavailable(_))
    ));
}

// --- delivery routes ------------------------------------------------------------------------------

fn deps(tasks: &Store, state: Arc<dyn StateStore>) -> ConsumerDeps {
    ConsumerDeps::new(state, EffectApplier::new(tasks.service.clone()))
}

async fn audit_rows(tasks: &Store, user: &str) -> Vec<taskstream_engine::activity::AuditEntry> {
    let filter = AuditFilter {
        limit: 1000,
        ..AuditFilter::default()
    };
    tasks.store.list_audit(user, &filter).await.unwrap()
}

async fn deliver(port: u16, path: &str, body: &[u8]) -> (u16, Value) {
    let response = http()
        .post(format!("http://127.0.0.1:{port}{path}"))
        .header("content-type", "application/cloudevents+json")
        .body(body.to_vec())
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delivery_routes_take_the_three_body_shapes() {
    let sidecar = DaprSidecar::start(SidecarConfig::new()).await;
    let tasks = sqlite();
    tasks.create("carol", json!({"title": "a"})).await;
    tasks.create("carol", json!({"title": "b"})).await;
    let records = tasks.store.pending_events(100).await.unwrap();
    let task_events: Vec<&OutboxRecord> = records
        .iter()
        .filter(|r| r.topic == "task-events")
        .collect();
    let state = Arc::new(DaprStateStore::new(client(&sidecar)));
    let (port, _server) = serve(consumer_router(ConsumerRole::Audit, deps(&tasks, state))).await;

    let envelope = |i: usize| serde_json::to_value(&task_events[i].envelope).unwrap();
    let bare = envelope(0).to_string();
    let with_data = json!({"specversion": "1.0", "id": "x", "type": "task.created", "source": "chat-api", "data": envelope(1)}).to_string();
    for body in [&bare, &with_data] {
        let (status, reply) = deliver(port, "/api/v1/handle-event", body.as_bytes()).await;
        assert_eq!((status, reply["status"].as_str()), (200, Some("SUCCESS")));
    }
    // daprd's raw-payload wrapping of our CloudEvent: data_base64 of the whole thing.
    let raw = json!({"specversion": "1.0", "datacontenttype": "application/octet-stream",
        "data_base64": base64::engine::general_purpose::STANDARD.encode(&with_data)});
    let (_, reply) = deliver(port, "/api/v1/handle-event", raw.to_string().as_bytes()).await;
    assert_eq!(reply["status"], "SUCCESS", "a repeat of the second event");
    assert_eq!(
        audit_rows(&tasks, "carol").await.len(),
        2,
        "one row per event"
    );
    assert!(
        sidecar
            .state_value(
                "statestore",
                &format!("audit-processed:{}", task_events[0].envelope.event_id)
            )
            .is_some()
    );

    for garbage in [
        &b"{oops"[..],
        br#"{"data": {"no": "envelope"}}"#,
        br#"{"data_base64": "@@"}"#,
    ] {
        let (status, reply) = deliver(port, "/api/v1/handle-event", garbage).await;
        assert_eq!((status, reply["status"].as_str()), (200, Some("DROP")));
    }
    let (status, _) = deliver(port, "/api/v1/handle-reminder", bare.as_bytes()).await;
    assert_eq!(status, 404, "another role's route");
}

/// A state store that fails its first `failures` reads, as Redis does while failing over.
struct Flaky {
    inner: Arc<dyn StateStore>,
    failures: AtomicUsize,
}

#[async_trait]
impl StateStore for Flaky {
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, EngineError> {
        if self
            .failures
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
        {
            return Err(EngineError::Unavailable("redis failing over".to_owned()));
        }
        self.inner.get(key).await
    }
    async fn set(
        &self,
        key: &str,
        value: Vec<u8>,
        ttl: Option<Duration>,
    ) -> Result<(), EngineError> {
        self.inner.set(key, value, ttl).await
    }
    async fn set_if_absent(
        &self,
        key: &str,
        value: Vec<u8>,
        ttl: Option<Duration>,
    ) -> Result<bool, EngineError> {
        self.inner.set_if_absent(key, value, ttl).await
    }
    async fn delete(&self, key: &str) -> Result<(), EngineError> {
        self.inner.delete(key).await
    }
    async fn purge_expired(&self) -> Result<u64, EngineError> {
        self.inner.purge_expired().await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transient_failures_answer_retry_and_the_sidecar_redelivers() {
    let tasks = sqlite();
    let app_port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let sidecar = DaprSidecar::start(
        SidecarConfig::new()
            .app_port(app_port)
            .delivery_retries(5, Duration::from_millis(10)),
    )
    .await;
    let flaky = Arc::new(Flaky {
        inner: Arc::new(DaprStateStore::new(client(&sidecar))),
        failures: AtomicUsize::new(2),
    });
    let router = consumer_router(ConsumerRole::Audit, deps(&tasks, flaky));
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", app_port))
        .await
        .unwrap();
    let _server = tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });

    tasks.create("dave", json!({"title": "x"})).await;
    DaprPublisher::new(client(&sidecar))
        .publish(&tasks.store.pending_events(100).await.unwrap())
        .await
        .unwrap();
    // A CloudEvent that is no event: the app drops it, daprd dead-letters it.
    http()
        .post(format!("{}/v1.0/publish/pubsub/task-events", sidecar.base_url()))
        .header("content-type", "application/cloudevents+json")
        .body(json!({"specversion": "1.0", "id": "poison", "type": "task.created", "data": {"hello": 1}}).to_string())
        .send()
        .await
        .unwrap();
    sidecar
        .wait_for("the poison in the DLQ", WAIT, |s| {
            (!s.dead_letters().is_empty()).then_some(())
        })
        .await;
    let verdicts: Vec<Verdict> = sidecar
        .deliveries()
        .into_iter()
        .filter(|d| d.topic == "task-events")
        .map(|d| d.verdict)
        .collect();
    assert_eq!(
        verdicts,
        [
            Verdict::Retry,
            Verdict::Retry,
            Verdict::Success,
            Verdict::Drop
        ]
    );
    assert_eq!(
        sidecar.dead_letters()[0].dead_letter_topic,
        "task-events-dlq"
    );
    assert_eq!(audit_rows(&tasks, "dave").await.len(), 1);
}

/// Publishes to every role's sidecar: each consumer app has its own (CONTRACT §5, one consumer
/// group per app), while the fake has no shared broker.
struct FanOut(Vec<DaprPublisher>);

#[async_trait]
impl EventBus for FanOut {
    async fn publish(&self, events: &[OutboxRecord]) -> Result<(), EngineError> {
        for publisher in &self.0 {
            publisher.publish(events).await?;
        }
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn double_delivery_gives_one_audit_row_one_notification_one_next_occurrence() {
    let tasks = sqlite();
    let user = "erin";
    // A recurring task completed, whose next occurrence then went missing (deleted), so the
    // recurring consumer has a repair to make; and a reminder that fired.
    let weekly = tasks
        .create(user, json!({"title": "weekly", "due_date": "2030-03-04T09:00:00Z", "is_recurring": true, "recurrence_rule": "WEEKLY"}))
        .await;
    let done = tasks.service.complete(user, weekly.id).await.unwrap();
    tasks
        .service
        .delete(user, done.next.unwrap().id)
        .await
        .unwrap();
    let soon = in_(chrono::Duration::minutes(30));
    let reminded = tasks
        .create(
            user,
            json!({"title": "call mum", "due_date": rfc3339(soon), "reminder_offset_minutes": 10}),
        )
        .await;
    let fire_at = reminded.remind_at.unwrap();
    tasks
        .store
        .fire_reminder(
            reminded.id,
            fire_at,
            Utc::now(),
            chrono::Duration::hours(24),
        )
        .await
        .unwrap();
    let records = tasks.store.pending_events(1000).await.unwrap();
    let audited = records.iter().filter(|r| r.topic != "task-updates").count();

    let mut sidecars = Vec::new();
    let mut publishers = Vec::new();
    let mut servers = Vec::new();
    for (role, concurrent) in [
        (ConsumerRole::Audit, false),
        (ConsumerRole::Recurring, true),
        (ConsumerRole::Notification, true),
    ] {
        let app_port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut config = SidecarConfig::new()
            .app_port(app_port)
            .app_token("app-secret")
            .redeliveries(1);
        if concurrent {
            config = config.concurrent_redeliveries();
        }
        let sidecar = DaprSidecar::start(config).await;
        let state = Arc::new(DaprStateStore::new(client(&sidecar)));
        let router = consumer_router(
            role,
            deps(&tasks, state).with_app_token(AppToken::new(Some("app-secret".to_owned()))),
        );
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", app_port))
            .await
            .unwrap();
        servers.push(tokio::spawn(async move {
            axum::serve(listener, router).await.unwrap()
        }));
        sidecar
            .wait_for("discovery", WAIT, |s| s.discovered().then_some(()))
            .await;
        publishers.push(DaprPublisher::new(client(&sidecar)));
        sidecars.push(sidecar);
    }
    let audit_subs = sidecars[0].subscriptions();
    assert_eq!(
        audit_subs
            .iter()
            .map(|s| s.dead_letter_topic.clone().unwrap())
            .collect::<Vec<_>>(),
        ["task-events-dlq", "reminders-dlq"]
    );

    OutboxRelay::new(tasks.store.clone(), Arc::new(FanOut(publishers)))
        .relay_once()
        .await
        .unwrap();
    eventually("every event audited", async || {
        (audit_rows(&tasks, user).await.len() >= audited).then_some(())
    })
    .await;
    let expected_deliveries = |sidecar: &DaprSidecar| {
        let topics: Vec<String> = sidecar
            .subscriptions()
            .into_iter()
            .map(|s| s.topic)
            .collect();
        2 * records.iter().filter(|r| topics.contains(&r.topic)).count()
    };
    for sidecar in &sidecars {
        let want = expected_deliveries(sidecar);
        sidecar
            .wait_for("every delivery and its copy", WAIT, |s| {
                (s.deliveries().len() >= want).then_some(())
            })
            .await;
        assert!(
            sidecar
                .deliveries()
                .iter()
                .all(|d| d.verdict == Verdict::Success),
            "{:?}",
            sidecar
                .deliveries()
                .iter()
                .map(|d| (&d.route, &d.verdict))
                .collect::<Vec<_>>()
        );
        assert!(sidecar.dead_letters().is_empty());
    }
    let recurring_routes: Vec<String> = sidecars[1]
        .deliveries()
        .into_iter()
        .map(|d| d.route)
        .collect();
    assert_eq!(
        recurring_routes
            .iter()
            .filter(|r| *r == "/api/v1/handle-completed")
            .count(),
        2,
        "task.completed (and its copy) routed by the rule"
    );

    let rows = audit_rows(&tasks, user).await;
    assert_eq!(rows.len(), audited, "one audit row per event");
    let notifications = tasks.store.list_notifications(user, 100).await.unwrap();
    assert_eq!(notifications.len(), 1, "one notification");
    assert_eq!(notifications[0].kind, "reminder");
    let children: Vec<Task> = tasks
        .store
        .list(user, &TaskQuery::default())
        .await
        .unwrap()
        .into_iter()
        .filter(|t| t.parent_task_id == Some(weekly.id))
        .collect();
    assert_eq!(children.len(), 1, "one (repaired) next occurrence");
    drop(servers);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consumer_routes_refuse_calls_without_the_app_token() {
    let tasks = sqlite();
    let sidecar = DaprSidecar::start(SidecarConfig::new()).await;
    let state = Arc::new(DaprStateStore::new(client(&sidecar)));
    let router = consumer_router(
        ConsumerRole::Notification,
        deps(&tasks, state).with_app_token(AppToken::new(Some("t0k".to_owned()))),
    );
    let (port, _server) = serve(router).await;
    for path in ["/dapr/subscribe", "/dapr/config"] {
        let url = format!("http://127.0.0.1:{port}{path}");
        assert_eq!(http().get(&url).send().await.unwrap().status(), 401);
        let wrong = http()
            .get(&url)
            .header("dapr-api-token", "nope")
            .send()
            .await
            .unwrap();
        assert_eq!(wrong.status(), 401);
        let right = http()
            .get(&url)
            .header("dapr-api-token", "t0k")
            .send()
            .await
            .unwrap();
        assert_eq!(right.status(), 200);
    }
    let (status, _) = deliver(port, "/api/v1/handle-reminder", b"{}").await;
    assert_eq!(status, 401);
    let subs: Value = http()
        .get(format!("http://127.0.0.1:{port}/dapr/subscribe"))
        .header("dapr-api-token", "t0k")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        subs,
        json!([{"pubsubname": "pubsub", "topic": "reminders", "route": "/api/v1/handle-reminder", "deadLetterTopic": "reminders-dlq"}])
    );
}

// --- jobs -----------------------------------------------------------------------------------------

fn job_name(task: &Task) -> String {
    format!("reminder-{}", task.id)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_job_scheduler_keeps_jobs_in_step_with_reminders() {
    let sidecar = DaprSidecar::start(SidecarConfig::new()).await;
    let tasks = sqlite();
    let due = in_(chrono::Duration::hours(3));
    // Before the scheduler starts: it must pick this one up from the store.
    let early = tasks
        .create(
            "frank",
            json!({"title": "early", "due_date": rfc3339(due), "reminder_offset_minutes": 60}),
        )
        .await;
    let jobs = DaprJobs::new(client(&sidecar));
    let (stop, stopped) = watch::channel(false);
    let running = tokio::spawn(DaprJobScheduler::new(tasks.store.clone(), jobs).run(stopped));

    let job = sidecar
        .wait_for("the existing reminder's job", WAIT, |s| {
            s.job(&job_name(&early))
        })
        .await;
    assert_eq!(job.due, early.remind_at.unwrap());
    assert_eq!(job.spec["overwrite"], true);
    assert_eq!(job.spec["dueTime"], rfc3339(early.remind_at.unwrap()));
    let data = job.data.unwrap();
    assert_eq!(data["task_id"], json!(early.id));
    assert_eq!(data["task_title"], "early");
    assert_eq!(data["user_id"], "frank");
    assert_eq!(data["due_at"], rfc3339(due));
    assert_eq!(data["remind_at"], rfc3339(early.remind_at.unwrap()));

    // Several pending times: the job is on the earliest.
    let several = tasks
        .create(
            "frank",
            json!({"title": "several", "due_date": rfc3339(due),
            "reminder_offset_minutes": 30, "reminders": [{"offset_minutes": 120}]}),
        )
        .await;
    let earliest = due - chrono::Duration::minutes(120);
    sidecar
        .wait_for("the earliest time", WAIT, |s| {
            s.job(&job_name(&several)).filter(|j| j.due == earliest)
        })
        .await;

    // A change moves the job; completing the task removes it.
    let patch = parse_task_patch(&json!({"reminder_offset_minutes": 15})).unwrap();
    tasks
        .service
        .update("frank", early.id, patch)
        .await
        .unwrap();
    let moved = due - chrono::Duration::minutes(15);
    sidecar
        .wait_for("the job moved", WAIT, |s| {
            s.job(&job_name(&early)).filter(|j| j.due == moved)
        })
        .await;
    tasks.service.complete("frank", early.id).await.unwrap();
    sidecar
        .wait_for("the job deleted", WAIT, |s| {
            s.job(&job_name(&early)).is_none().then_some(())
        })
        .await;
    tasks.service.delete("frank", several.id).await.unwrap();
    sidecar
        .wait_for("the other job deleted", WAIT, |s| {
            s.jobs().is_empty().then_some(())
        })
        .await;
    stop.send(true).unwrap();
    running.await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_scheduler_catches_up_after_the_sidecar_was_down() {
    let mut sidecar = DaprSidecar::start(SidecarConfig::new()).await;
    let tasks = sqlite();
    let jobs = DaprJobs::new(client(&sidecar));
    sidecar.stop().await;
    let (stop, stopped) = watch::channel(false);
    let running = tokio::spawn(DaprJobScheduler::new(tasks.store.clone(), jobs).run(stopped));
    let due = in_(chrono::Duration::hours(2));
    let task = tasks
        .create(
            "gina",
            json!({"title": "t", "due_date": rfc3339(due), "reminder_offset_minutes": 5}),
        )
        .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    sidecar.restart().await;
    sidecar
        .wait_for("the job once the sidecar is back", WAIT, |s| {
            s.job(&job_name(&task))
        })
        .await;
    stop.send(true).unwrap();
    running.await.unwrap();
}

/// The `reminder.triggered` events in the outbox for `task`.
async fn triggered(tasks: &Store, task: &Task) -> Vec<OutboxRecord> {
    tasks
        .store
        .pending_events(10_000)
        .await
        .unwrap()
        .into_iter()
        .filter(|r| {
            r.envelope.event_type == "reminder.triggered"
                && r.envelope.payload["task_id"] == json!(task.id)
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_fires_its_reminder_once_even_when_delivered_twice() {
    let tasks = sqlite();
    let app_port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let sidecar = DaprSidecar::start(
        SidecarConfig::new()
            .app_port(app_port)
            .app_token("app-t")
            .api_token("api-t"),
    )
    .await;
    let jobs = DaprJobs::new(client(&sidecar));
    let deps = JobCallbackDeps::new(tasks.store.clone(), jobs.clone())
        .with_app_token(AppToken::new(Some("app-t".to_owned())));
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", app_port))
        .await
        .unwrap();
    let router = job_callback_router(deps);
    let _server = tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });

    // Two reminders: one a minute ago (still armed: within the grace), one in an hour.
    let due = in_(chrono::Duration::hours(2));
    let task = tasks
        .create(
            "hana",
            json!({"title": "stretch", "due_date": rfc3339(due),
            "reminder_offset_minutes": 121, "reminders": [{"offset_minutes": 60}]}),
        )
        .await;
    let first = task.remind_at.unwrap();
    let second = due - chrono::Duration::minutes(60);
    assert_eq!(
        jobs.sync_task(tasks.store.as_ref(), task.id).await.unwrap(),
        Some(first)
    );

    // The sidecar fires the overdue job at once.
    sidecar
        .wait_for("the first trigger", WAIT, |s| {
            (!s.job_triggers().is_empty()).then_some(())
        })
        .await;
    let trigger = &sidecar.job_triggers()[0];
    assert_eq!(trigger.name, job_name(&task));
    assert_eq!(trigger.status, Some(200));
    let body: Value = serde_json::from_slice(&trigger.body).unwrap();
    assert_eq!(
        body["remind_at"],
        rfc3339(first),
        "the body is the job's data"
    );
    assert_eq!(triggered(&tasks, &task).await.len(), 1);
    let next = sidecar
        .wait_for("the job on the next time", WAIT, |s| {
            s.job(&job_name(&task)).filter(|j| j.due == second)
        })
        .await;
    assert_eq!(next.data.unwrap()["remind_at"], rfc3339(second));

    // daprd is at least once: the same trigger again, on both routes, fires nothing more.
    for (path, payload) in [
        (format!("/job/{}", job_name(&task)), body.clone()),
        (
            "/api/v1/jobs/reminder-callback".to_owned(),
            json!({"name": job_name(&task), "data": body}),
        ),
    ] {
        let response = http()
            .post(format!("http://127.0.0.1:{app_port}{path}"))
            .header("dapr-api-token", "app-t")
            .json(&payload)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{path}");
        let reply: Value = response.json().await.unwrap();
        assert_eq!(reply["fired"], 0, "{path}");
    }
    assert_eq!(
        triggered(&tasks, &task).await.len(),
        1,
        "still one reminder.triggered"
    );
    let refused = http()
        .post(format!(
            "http://127.0.0.1:{app_port}/job/{}",
            job_name(&task)
        ))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 401, "no app token");

    // The second time comes: it fires, and with nothing pending the job goes.
    sidecar.advance(Duration::from_secs(3600));
    sidecar
        .wait_for("the second trigger", WAIT, |s| {
            (s.job_triggers().len() >= 2).then_some(())
        })
        .await;
    eventually("two reminders fired", async || {
        (triggered(&tasks, &task).await.len() == 2).then_some(())
    })
    .await;
    sidecar
        .wait_for("no job left", WAIT, |s| s.jobs().is_empty().then_some(()))
        .await;
    assert!(
        sidecar
            .calls()
            .iter()
            .all(|c| c.token.as_deref() == Some("api-t")),
        "every call to the sidecar carried DAPR_API_TOKEN"
    );
    let unknown = http()
        .post(format!("http://127.0.0.1:{app_port}/job/cleanup"))
        .header("dapr-api-token", "app-t")
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), 404, "daprd takes 404 as done");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_callback_is_retried_by_the_sidecar_and_fires_once() {
    let tasks = sqlite();
    let app_port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let sidecar = DaprSidecar::start(
        SidecarConfig::new()
            .app_port(app_port)
            .job_retries(3, Duration::from_millis(200)),
    )
    .await;
    let jobs = DaprJobs::new(client(&sidecar));
    let due = in_(chrono::Duration::minutes(20));
    let task = tasks
        .create(
            "ivan",
            json!({"title": "x", "due_date": rfc3339(due), "reminder_offset_minutes": 22}),
        )
        .await;
    jobs.sync_task(tasks.store.as_ref(), task.id).await.unwrap();
    // The app is not up for the first attempt; it comes up before the retries run out.
    sidecar
        .wait_for("a failed attempt", WAIT, |s| {
            (!s.job_triggers().is_empty()).then_some(())
        })
        .await;
    assert_eq!(sidecar.job_triggers()[0].status, None);
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", app_port))
        .await
        .unwrap();
    let router = job_callback_router(JobCallbackDeps::new(tasks.store.clone(), jobs));
    let _server = tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    sidecar
        .wait_for("a successful attempt", WAIT, |s| {
            s.job_triggers()
                .iter()
                .any(|t| t.status == Some(200))
                .then_some(())
        })
        .await;
    assert_eq!(triggered(&tasks, &task).await.len(), 1);
    sidecar
        .wait_for("job done", WAIT, |s| s.jobs().is_empty().then_some(()))
        .await;
}

// --- secrets, client, tokens ----------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_resolve_name_slash_key_references() {
    let sidecar = DaprSidecar::start(SidecarConfig::new().api_token("api").secret(
        "kubernetes",
        "taskstream-db",
        &[("url", "postgres://u:p@db/tasks")],
    ))
    .await;
    let secrets = DaprSecrets::new(client(&sidecar));
    let reference: SecretRef = "taskstream-db/url".parse().unwrap();
    assert_eq!(
        secrets.resolve(&reference).await.unwrap(),
        "postgres://u:p@db/tasks"
    );
    assert_eq!(secrets.get("taskstream-db").await.unwrap().len(), 1);
    assert!(matches!(
        secrets
            .resolve(&"taskstream-db/password".parse().unwrap())
            .await,
        Err(DaprError::SecretKeyMissing { .. })
    ));
    // daprd with the local-file and Kubernetes stores answers a missing secret with a 500.
    assert!(matches!(
        secrets.get("nope").await,
        Err(DaprError::Status { status: 500, .. })
    ));
    assert!(matches!(
        DaprSecrets::new(client(&sidecar))
            .with_store("vault")
            .get("taskstream-db")
            .await,
        Err(DaprError::Status { status: 401, .. })
    ));
    // A secret the Configuration's scope does not allow: 403, named as such.
    let scoped = DaprSidecar::start(
        SidecarConfig::new()
            .secret("kubernetes", "taskstream-db", &[("url", "x")])
            .secret("kubernetes", "other", &[("url", "y")])
            .allowed_secrets(&["taskstream-db"]),
    )
    .await;
    let denied = DaprSecrets::new(client(&scoped)).get("other").await;
    assert!(
        matches!(&denied, Err(DaprError::SecretDenied { name, .. }) if name == "other"),
        "{denied:?}"
    );
    let tokenless = DaprClient::new(DaprClientConfig::for_url(&sidecar.base_url())).unwrap();
    let refused = DaprSecrets::new(tokenless)
        .get("taskstream-db")
        .await
        .unwrap_err();
    assert!(
        matches!(refused, DaprError::Status { status: 401, .. }),
        "{refused}"
    );
    assert!(!refused.is_transient());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_client_waits_for_outbound_health_bounded_and_cancellable() {
    let sidecar = DaprSidecar::start(
        SidecarConfig::new()
            .api_token("api")
            .outbound_ready_after(Duration::from_millis(400)),
    )
    .await;
    let (_keep, mut never) = watch::channel(false);
    let started = Instant::now();
    client(&sidecar)
        .wait_outbound_ready(&mut never)
        .await
        .unwrap();
    assert!(started.elapsed() >= Duration::from_millis(400));
    let outbound_calls = sidecar
        .calls()
        .iter()
        .filter(|c| c.uri == "/v1.0/healthz/outbound")
        .count();
    assert!(outbound_calls >= 2, "polled until ready");

    // Nobody listening: bounded by the health timeout.
    let mut config = DaprClientConfig::for_port(
        std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port(),
    );
    config.health_timeout = Duration::from_millis(300);
    let nowhere = DaprClient::new(config).unwrap();
    let started = Instant::now();
    assert!(matches!(
        nowhere.wait_outbound_ready(&mut never).await,
        Err(DaprError::NotReady(_))
    ));
    assert!(started.elapsed() < Duration::from_secs(3));

    // Cancelled by shutdown.
    let mut config = nowhere.config().clone();
    config.health_timeout = Duration::from_secs(60);
    let patient = DaprClient::new(config).unwrap();
    let (stop, mut stopped) = watch::channel(false);
    let waiting = tokio::spawn(async move { patient.wait_outbound_ready(&mut stopped).await });
    tokio::time::sleep(Duration::from_millis(200)).await;
    stop.send(true).unwrap();
    let outcome = tokio::time::timeout(Duration::from_secs(2), waiting)
        .await
        .unwrap()
        .unwrap();
    assert!(matches!(outcome, Err(DaprError::Cancelled)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dapr_api_token_goes_with_every_adapter_call() {
    let sidecar = DaprSidecar::start(SidecarConfig::new().api_token("api-token")).await;
    let with = client(&sidecar);
    let tasks = sqlite();
    let task = tasks
        .create("jo", json!({"title": "t", "due_date": rfc3339(in_(chrono::Duration::hours(5))), "reminder_offset_minutes": 5}))
        .await;
    DaprPublisher::new(with.clone())
        .publish(&tasks.store.pending_events(10).await.unwrap())
        .await
        .unwrap();
    let state = DaprStateStore::new(with.clone());
    state.set("k", b"1".to_vec(), None).await.unwrap();
    assert!(state.get("k").await.unwrap().is_some());
    state.delete("k").await.unwrap();
    DaprJobs::new(with.clone())
        .sync_task(tasks.store.as_ref(), task.id)
        .await
        .unwrap();
    let calls = sidecar.calls();
    assert!(calls.len() >= 6);
    assert!(
        calls
            .iter()
            .all(|c| c.token.as_deref() == Some("api-token") && c.status < 400)
    );

    let without = DaprClient::new(DaprClientConfig::for_url(&sidecar.base_url())).unwrap();
    let error = DaprStateStore::new(without.clone())
        .get("k")
        .await
        .unwrap_err();
    assert!(
        matches!(error, EngineError::Store(_)),
        "401 is not transient: {error}"
    );
    let error = DaprPublisher::new(without)
        .publish(&tasks.store.pending_events(10).await.unwrap())
        .await
        .unwrap_err();
    assert!(error.to_string().contains("401"), "{error}");
}
