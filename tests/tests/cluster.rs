//! `taskstream serve --mode cluster` against the in-process Dapr test sidecar and a real
//! PostgreSQL: the REST API over the PostgreSQL store, the outbox relayed to Dapr pub/sub, the
//! consumers' routes, reminders as Dapr jobs, secrets and tokens, with every message delivered
//! three times.
//!
//! Needs `TASKSTREAM_TEST_DATABASE_URL` (e.g. `postgres://postgres@127.0.0.1:5432/test`); without
//! it every test prints that it skipped and passes. Each test works in a schema of its own.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::{Value, json};
use taskstream_tests::dapr_sidecar::{DaprSidecar, SidecarConfig};
use taskstream_tests::{
    CONSUMER_WAIT, Launch, PgSchema, TestServer, eventually, free_port, id_of, reminding_in,
};

const API_TOKEN: &str = "sidecar-api-token";
const APP_TOKEN: &str = "app-api-token";

/// A sidecar for an app on `app_port` that redelivers every message twice, holds the database
/// URL as a secret and checks tokens both ways.
async fn sidecar(scratch: &PgSchema, app_port: u16) -> DaprSidecar {
    DaprSidecar::start(
        SidecarConfig::new()
            .app_port(app_port)
            .redeliveries(2)
            .api_token(API_TOKEN)
            .app_token(APP_TOKEN)
            .job_retries(3, Duration::from_millis(200))
            .secret(
                "kubernetes",
                "taskstream",
                &[("database-url", scratch.url())],
            ),
    )
    .await
}

/// `taskstream serve --mode cluster --role <role>` on `port`, talking to `sidecar`.
async fn app(scratch: &PgSchema, sidecar: &DaprSidecar, role: &str, port: u16) -> TestServer {
    let args = [
        "--mode",
        "cluster",
        "--role",
        role,
        "--database-url-secret",
        "taskstream/database-url",
        "--database-schema",
        scratch.name(),
    ];
    let envs = [
        ("DAPR_HTTP_PORT", sidecar.port().to_string()),
        ("DAPR_API_TOKEN", API_TOKEN.to_owned()),
        ("APP_API_TOKEN", APP_TOKEN.to_owned()),
    ];
    TestServer::launch(Launch {
        args: args.iter().map(|arg| (*arg).to_owned()).collect(),
        envs: envs
            .iter()
            .map(|(name, value)| ((*name).to_owned(), value.clone()))
            .collect(),
        port: Some(port),
        // One secret per test, so every replica accepts the same tokens.
        secret: Some(format!("secret-{}", scratch.name())),
        ..Launch::default()
    })
    .await
}

/// Two `api` replicas on one schema, each with its own sidecar.
struct TwoReplicas {
    a: TestServer,
    b: TestServer,
    /// Declared last: the sidecars stop after the apps.
    _sidecars: (DaprSidecar, DaprSidecar),
}

async fn two_api_replicas(scratch: &PgSchema) -> TwoReplicas {
    let (port_a, port_b) = (free_port(), free_port());
    let sidecar_a = sidecar(scratch, port_a).await;
    let a = app(scratch, &sidecar_a, "api", port_a).await;
    let sidecar_b = sidecar(scratch, port_b).await;
    let b = app(scratch, &sidecar_b, "api", port_b).await;
    TwoReplicas {
        a,
        b,
        _sidecars: (sidecar_a, sidecar_b),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_process_with_every_role_handles_each_event_exactly_once() {
    let Some(scratch) = PgSchema::new("cluster") else {
        return;
    };
    let port = free_port();
    let sidecar = sidecar(&scratch, port).await;
    let srv = app(&scratch, &sidecar, "all", port).await;
    sidecar
        .wait_for("the app's subscriptions", Duration::from_secs(10), |s| {
            s.discovered().then_some(())
        })
        .await;

    // Ops routes, and the sidecar-facing routes behind the app token.
    let http = srv.client();
    for path in ["/health", "/ready", "/metrics"] {
        let status = http.get(srv.url(path)).send().await.unwrap().status();
        assert_eq!(status, 200, "{path}");
    }
    let refused = http.get(srv.url("/dapr/subscribe")).send().await.unwrap();
    assert_eq!(refused.status(), 401, "no app token");
    let subscriptions: Value = http
        .get(srv.url("/dapr/subscribe"))
        .header("dapr-api-token", APP_TOKEN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let topics: Vec<&str> = subscriptions
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|s| s["topic"].as_str())
        .collect();
    assert_eq!(topics, ["task-events", "reminders"]);
    assert_eq!(subscriptions[0]["deadLetterTopic"], "task-events-dlq");

    let alice = srv.user("alice");
    // Create, update, delete.
    let plain = alice.create(json!({"title": "plain"})).await;
    let plain_id = id_of(&plain);
    alice
        .put_task(&plain_id, &json!({"title": "plain, renamed"}))
        .await
        .expect(200);
    assert_eq!(alice.get_task(&plain_id).await.status, 200);
    assert_eq!(alice.delete_task(&plain_id).await.status, 200);
    assert_eq!(alice.get_task(&plain_id).await.status, 404);

    // A recurring task completed: one next occurrence, kept by the recurring consumer's repair
    // from being doubled.
    let recurring = alice
        .create(json!({"title": "water the plants", "is_recurring": true,
                        "recurrence_rule": "RRULE:FREQ=DAILY",
                        "due_date": reminding_in(86_400.0)}))
        .await;
    let done = alice.complete(&id_of(&recurring)).await;
    let next_id = id_of(&done.expect(200)["next_task"].clone());

    // A reminder due in about two seconds: a Dapr job, then one notification.
    let reminded = alice
        .create(json!({"title": "call back", "due_date": reminding_in(2.0),
                        "reminder_offset_minutes": 1}))
        .await;
    let reminded_id = id_of(&reminded);
    let wait = CONSUMER_WAIT + Duration::from_secs(10);
    eventually("the reminder notification", wait, || async {
        let notes = alice.notifications().await;
        if notes.iter().any(|n| n["task_id"] == reminded_id.as_str()) {
            Ok(())
        } else {
            Err(format!(
                "{} notifications, none for the reminder",
                notes.len()
            ))
        }
    })
    .await;

    let expected: BTreeMap<String, usize> = [
        // plain, the recurring task, its next occurrence, the reminded task.
        ("task.created", 4),
        ("task.updated", 1),
        ("task.deleted", 1),
        ("task.completed", 1),
        ("reminder.scheduled", 1),
        ("reminder.triggered", 1),
    ]
    .into_iter()
    .map(|(kind, n)| (kind.to_owned(), n))
    .collect();
    eventually("every event audited", CONSUMER_WAIT, || async {
        let counts = alice.audit_counts().await;
        let done = expected
            .iter()
            .all(|(kind, n)| counts.get(kind).copied().unwrap_or(0) >= *n);
        if done {
            Ok(())
        } else {
            Err(format!("audited so far: {counts:?}"))
        }
    })
    .await;
    // Let the redeliveries (two more of every message) arrive, then count again.
    sidecar
        .wait_for("the redeliveries", Duration::from_secs(10), |s| {
            // task-updates (the UI's sync topic) has no subscriber in the cluster.
            let subscribed =
                s.published_to("task-events").len() + s.published_to("reminders").len();
            let copies = s.deliveries().iter().filter(|d| d.copy).count();
            (copies >= 2 * subscribed).then_some(())
        })
        .await;
    tokio::time::sleep(Duration::from_millis(500)).await;

    assert_eq!(
        alice.audit_counts().await,
        expected,
        "each event audited once"
    );
    let notes = alice.notifications().await;
    let for_reminder = notes
        .iter()
        .filter(|n| n["task_id"] == reminded_id.as_str())
        .count();
    assert_eq!(for_reminder, 1, "one notification: {notes:?}");
    let occurrences: Vec<Value> = alice
        .list("")
        .await
        .into_iter()
        .filter(|t| t["title"] == "water the plants" && t["status"] == "pending")
        .collect();
    assert_eq!(occurrences.len(), 1, "one next occurrence: {occurrences:?}");
    assert_eq!(id_of(&occurrences[0]), next_id);
    assert!(
        sidecar.dead_letters().is_empty(),
        "nothing dead-lettered: {:?}",
        sidecar.dead_letters()
    );
    // Every call to the sidecar carried the API token.
    assert!(
        sidecar
            .calls()
            .iter()
            .filter(|c| !c.uri.starts_with("/v1.0/healthz"))
            .all(|c| c.token.as_deref() == Some(API_TOKEN)),
        "a call without the API token"
    );

    let mut srv = srv;
    srv.sigterm();
    let status = srv.wait_exit(Duration::from_secs(15)).await;
    assert!(
        status.is_some_and(|s| s.success()),
        "SIGTERM exits 0: {status:?}"
    );
}

/// The `/dapr/subscribe` answer of the app on `srv`, with the app token.
async fn subscriptions(srv: &TestServer) -> Value {
    let response = srv
        .client()
        .get(srv.url("/dapr/subscribe"))
        .header("dapr-api-token", APP_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_role_serves_its_own_routes() {
    let Some(scratch) = PgSchema::new("cluster") else {
        return;
    };
    let mut running = Vec::new();
    for role in ["api", "notification", "recurring", "audit"] {
        let port = free_port();
        let sidecar = sidecar(&scratch, port).await;
        let srv = app(&scratch, &sidecar, role, port).await;
        running.push((role, sidecar, srv));
    }
    for (role, sidecar, srv) in &running {
        sidecar
            .wait_for("the app's subscriptions", Duration::from_secs(10), |s| {
                s.discovered().then_some(())
            })
            .await;
        let http = srv.client();
        for path in ["/health", "/ready", "/metrics"] {
            let status = http.get(srv.url(path)).send().await.unwrap().status();
            assert_eq!(status, 200, "{role} {path}");
        }
        let routes: Vec<(String, String)> = subscriptions(srv)
            .await
            .as_array()
            .unwrap()
            .iter()
            .map(|s| {
                let route = s["route"]
                    .as_str()
                    .map(str::to_owned)
                    .unwrap_or_else(|| s["routes"]["default"].to_string());
                (s["topic"].as_str().unwrap_or_default().to_owned(), route)
            })
            .collect();
        let expected: Vec<(&str, &str)> = match *role {
            "api" => vec![],
            "notification" => vec![("reminders", "/api/v1/handle-reminder")],
            "recurring" => vec![("task-events", "\"/api/v1/ignore\"")],
            _ => vec![
                ("task-events", "/api/v1/handle-event"),
                ("reminders", "/api/v1/handle-event"),
            ],
        };
        let expected: Vec<(String, String)> = expected
            .into_iter()
            .map(|(topic, route)| (topic.to_owned(), route.to_owned()))
            .collect();
        assert_eq!(routes, expected, "{role}");
        // Only the api role serves the REST API.
        let tasks = http
            .get(srv.url("/api/tasks"))
            .bearer_auth(srv.token("alice"))
            .send()
            .await
            .unwrap()
            .status();
        if *role == "api" {
            assert_eq!(tasks, 200, "{role} REST API");
        } else {
            // Not served: 404, or 401 from the app-token check in front of the Dapr routes.
            assert!(
                matches!(tasks.as_u16(), 401 | 404),
                "{role} REST API: {tasks}"
            );
        }
        if *role == "api" {
            // The live stream is served from PostgreSQL (see the replica test below).
            let live = http
                .get(srv.url("/api/events"))
                .bearer_auth(srv.token("alice"))
                .send()
                .await
                .unwrap()
                .status();
            assert_eq!(live, 200, "GET /api/events in cluster mode");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_committed_while_the_sidecar_is_down_are_relayed_once_it_is_back() {
    let Some(scratch) = PgSchema::new("cluster") else {
        return;
    };
    let port = free_port();
    let mut sidecar = sidecar(&scratch, port).await;
    let srv = app(&scratch, &sidecar, "all", port).await;
    let alice = srv.user("alice");
    let before = alice.create(json!({"title": "before"})).await;
    eventually("the first event published", CONSUMER_WAIT, || async {
        if sidecar.published_to("task-events").is_empty() {
            Err("nothing published yet".to_owned())
        } else {
            Ok(())
        }
    })
    .await;

    sidecar.stop().await;
    // The REST API keeps working on PostgreSQL; the events wait in the outbox.
    let during = alice.create(json!({"title": "during"})).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    sidecar.restart().await;

    let ids = [id_of(&before), id_of(&during)];
    eventually(
        "both creations audited",
        CONSUMER_WAIT + Duration::from_secs(10),
        || async {
            let rows = alice.audit("event_type=task.created").await;
            let audited: Vec<&str> = rows.iter().filter_map(|r| r["task_id"].as_str()).collect();
            if ids.iter().all(|id| audited.contains(&id.as_str())) {
                Ok(())
            } else {
                Err(format!("audited so far: {audited:?}"))
            }
        },
    )
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let counts = alice.audit_counts().await;
    assert_eq!(counts.get("task.created"), Some(&2), "{counts:?}");
}

#[test]
fn cluster_mode_without_a_database_url_says_what_to_set() {
    let mut cmd = taskstream_tests::command();
    cmd.args(["serve", "--mode", "cluster", "--jwt-secret", "s3cret"]);
    let out = taskstream_tests::run(cmd, Duration::from_secs(20));
    assert!(out.status.is_some_and(|s| !s.success()), "{}", out.stderr);
    assert!(
        out.stderr.contains("--database-url") && out.stderr.contains("DATABASE_URL"),
        "{}",
        out.stderr
    );

    let mut cmd = taskstream_tests::command();
    cmd.args([
        "serve",
        "--mode",
        "cluster",
        "--database-url",
        "postgres://x@127.0.0.1/db",
    ]);
    let out = taskstream_tests::run(cmd, Duration::from_secs(20));
    assert!(out.status.is_some_and(|s| !s.success()), "{}", out.stderr);
    assert!(out.stderr.contains("JWT secret"), "{}", out.stderr);
}

#[test]
fn sigterm_ends_the_wait_for_a_sidecar_that_never_answers() {
    let mut cmd = taskstream_tests::command();
    cmd.args(["serve", "--mode", "cluster", "--jwt-secret", "s3cret"])
        .args(["--http-addr", "127.0.0.1:0"])
        .args(["--database-url", "postgres://x@127.0.0.1:1/db"])
        .env("DAPR_HTTP_PORT", free_port().to_string())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    let mut child = cmd.spawn().expect("spawn taskstream serve");
    std::thread::sleep(Duration::from_millis(700));
    assert!(
        child.try_wait().unwrap().is_none(),
        "still waiting for the sidecar"
    );
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("still running 5 s after SIGTERM");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success(), "{status}");
}

/// The test sidecars keep their broker in memory, one per sidecar; real daprd apps share one
/// (Kafka, Redis). This stands in for it: every message the `from` sidecar accepted is
/// published, as the same CloudEvent, on each sidecar listening on `to` (ports survive a
/// restart; a sidecar that is down gets it once it is back).
fn share_broker(from: std::sync::Arc<DaprSidecar>, to: Vec<u16>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let http = reqwest::Client::new();
        let mut sent = vec![0usize; to.len()];
        loop {
            let published = from.published();
            for (target, port) in to.iter().enumerate() {
                while let Some(message) = published.get(sent[target]) {
                    let url = format!(
                        "http://127.0.0.1:{port}/v1.0/publish/{}/{}",
                        message.pubsub, message.topic
                    );
                    let posted = http
                        .post(url)
                        .header("content-type", "application/cloudevents+json")
                        .header("dapr-api-token", API_TOKEN)
                        .body(message.message.clone())
                        .send()
                        .await;
                    match posted {
                        Ok(response) if response.status().is_success() => sent[target] += 1,
                        _ => break,
                    }
                }
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_roles_with_four_sidecars_handle_each_event_exactly_once() {
    let Some(scratch) = PgSchema::new("cluster") else {
        return;
    };
    let api_port = free_port();
    let api_sidecar = std::sync::Arc::new(sidecar(&scratch, api_port).await);
    let api = app(&scratch, &api_sidecar, "api", api_port).await;
    let mut consumers = Vec::new();
    for role in ["notification", "recurring", "audit"] {
        let port = free_port();
        let sidecar = sidecar(&scratch, port).await;
        let srv = app(&scratch, &sidecar, role, port).await;
        sidecar
            .wait_for("the app's subscriptions", Duration::from_secs(10), |s| {
                s.discovered().then_some(())
            })
            .await;
        consumers.push((role, sidecar, srv));
    }
    let bridge = share_broker(
        std::sync::Arc::clone(&api_sidecar),
        consumers
            .iter()
            .map(|(_, sidecar, _)| sidecar.port())
            .collect(),
    );

    let alice = api.user("alice");
    let plain = alice.create(json!({"title": "plain"})).await;
    let plain_id = id_of(&plain);
    alice
        .put_task(&plain_id, &json!({"title": "plain, renamed"}))
        .await
        .expect(200);
    alice.delete_task(&plain_id).await.expect(200);
    let recurring = alice
        .create(json!({"title": "water the plants", "is_recurring": true,
                        "recurrence_rule": "RRULE:FREQ=DAILY",
                        "due_date": reminding_in(86_400.0)}))
        .await;
    let done = alice.complete(&id_of(&recurring)).await;
    let next_id = id_of(&done.expect(200)["next_task"].clone());
    let reminded = alice
        .create(json!({"title": "call back", "due_date": reminding_in(2.0),
                        "reminder_offset_minutes": 1}))
        .await;
    let reminded_id = id_of(&reminded);

    // The notification role's sidecar goes away and comes back before the reminder is due.
    consumers[0].1.restart().await;

    let wait = CONSUMER_WAIT + Duration::from_secs(10);
    eventually("the reminder notification", wait, || async {
        let notes = alice.notifications().await;
        if notes.iter().any(|n| n["task_id"] == reminded_id.as_str()) {
            Ok(())
        } else {
            Err(format!(
                "{} notifications, none for the reminder",
                notes.len()
            ))
        }
    })
    .await;
    let expected: BTreeMap<String, usize> = [
        ("task.created", 4),
        ("task.updated", 1),
        ("task.deleted", 1),
        ("task.completed", 1),
        ("reminder.scheduled", 1),
        ("reminder.triggered", 1),
    ]
    .into_iter()
    .map(|(kind, n)| (kind.to_owned(), n))
    .collect();
    eventually("every event audited", wait, || async {
        let counts = alice.audit_counts().await;
        if counts == expected {
            Ok(())
        } else {
            Err(format!("audited so far: {counts:?}"))
        }
    })
    .await;
    // Every consumer sidecar delivered each of its messages three times.
    for (role, sidecar, _) in &consumers {
        sidecar
            .wait_for(&format!("{role}'s redeliveries"), wait, |s| {
                let originals = s.deliveries().iter().filter(|d| !d.copy).count();
                let copies = s.deliveries().iter().filter(|d| d.copy).count();
                (originals > 0 && copies >= 2 * originals).then_some(())
            })
            .await;
        assert!(
            sidecar.dead_letters().is_empty(),
            "{role} dead-lettered: {:?}",
            sidecar.dead_letters()
        );
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    bridge.abort();

    assert_eq!(
        alice.audit_counts().await,
        expected,
        "each event audited once"
    );
    let notes = alice.notifications().await;
    let for_reminder = notes
        .iter()
        .filter(|n| n["task_id"] == reminded_id.as_str())
        .count();
    assert_eq!(for_reminder, 1, "one notification: {notes:?}");
    let occurrences: Vec<Value> = alice
        .list("")
        .await
        .into_iter()
        .filter(|t| t["title"] == "water the plants" && t["status"] == "pending")
        .collect();
    assert_eq!(occurrences.len(), 1, "one next occurrence: {occurrences:?}");
    assert_eq!(id_of(&occurrences[0]), next_id);
}

/// Figures for the cluster-mode benchmark (issue: creates/s and p99 through the api role on
/// PostgreSQL, commit-to-audit latency through the sidecar, compared with embedded mode in the
/// same run). Run: `TASKSTREAM_TEST_DATABASE_URL=postgres://postgres@127.0.0.1:5432/test
/// cargo test --release -p taskstream-tests --test cluster -- --ignored --nocapture bench_`
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark: prints figures"]
async fn bench_cluster_against_embedded() {
    use futures_util::StreamExt;
    use std::time::Instant;

    let Some(scratch) = PgSchema::new("cluster") else {
        return;
    };
    let port = free_port();
    // One delivery per message, as daprd does without failures.
    let sidecar = DaprSidecar::start(
        SidecarConfig::new()
            .app_port(port)
            .api_token(API_TOKEN)
            .app_token(APP_TOKEN)
            .secret(
                "kubernetes",
                "taskstream",
                &[("database-url", scratch.url())],
            ),
    )
    .await;
    let cluster = app(&scratch, &sidecar, "all", port).await;
    let embedded = TestServer::start().await;
    const CREATES: usize = 2000;
    const CONCURRENCY: usize = 32;
    const AUDITED: usize = 100;
    let percentile =
        |sorted: &[f64], p: f64| sorted[((sorted.len() as f64 - 1.0) * p).round() as usize];
    for (name, server) in [
        ("embedded (SQLite, embedded log)", &embedded),
        (
            "cluster --role all (PostgreSQL, Dapr test sidecar)",
            &cluster,
        ),
    ] {
        let user = server.user(&format!("bench-{}", uuid::Uuid::new_v4().simple()));
        for n in 0..50 {
            user.create(json!({"title": format!("warm-up {n}")})).await;
        }
        let started = Instant::now();
        let mut latencies: Vec<f64> = futures_util::stream::iter(0..CREATES)
            .map(|n| {
                let user = user.clone();
                async move {
                    let sent = Instant::now();
                    let r = user
                        .post("/api/tasks", &json!({"title": format!("task {n}"), "priority": "high", "tags": ["bench"]}))
                        .await;
                    r.expect(201);
                    sent.elapsed().as_secs_f64() * 1e3
                }
            })
            .buffer_unordered(CONCURRENCY)
            .collect()
            .await;
        let elapsed = started.elapsed().as_secs_f64();
        latencies.sort_by(f64::total_cmp);

        let mut to_audit = Vec::with_capacity(AUDITED);
        for n in 0..AUDITED {
            let task = user.create(json!({"title": format!("audited {n}")})).await;
            let committed = Instant::now();
            let id = id_of(&task);
            loop {
                let rows = user
                    .audit(&format!("task_id={id}&event_type=task.created"))
                    .await;
                if !rows.is_empty() {
                    break;
                }
                assert!(committed.elapsed() < CONSUMER_WAIT, "never audited");
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            to_audit.push(committed.elapsed().as_secs_f64() * 1e3);
        }
        to_audit.sort_by(f64::total_cmp);
        println!(
            "{name}: {CREATES} creates at concurrency {CONCURRENCY}: {:.0} creates/s, p50 {:.2} ms, p99 {:.2} ms; commit-to-audit ({AUDITED} sequential, 1 ms polling): p50 {:.1} ms, p99 {:.1} ms",
            CREATES as f64 / elapsed,
            percentile(&latencies, 0.5),
            percentile(&latencies, 0.99),
            percentile(&to_audit, 0.5),
            percentile(&to_audit, 0.99),
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_api_replica_streams_every_change_of_its_users() {
    let Some(scratch) = PgSchema::new("cluster") else {
        return;
    };
    let replicas = two_api_replicas(&scratch).await;
    let (replica_a, replica_b) = (&replicas.a, &replicas.b);
    let come = Duration::from_secs(10);

    let mut alice_on_a = replica_a.user("alice").events(None).await;
    let mut alice_on_b = replica_b.user("alice").events(None).await;
    let mut bob_on_b = replica_b.user("bob").events(None).await;

    // Written through replica a: both of alice's streams see it, bob's does not.
    let task = replica_a
        .user("alice")
        .create(json!({"title": "written on a"}))
        .await;
    let task_id = id_of(&task);
    for (replica, stream) in [("a", &mut alice_on_a), ("b", &mut alice_on_b)] {
        let event = stream
            .next(come)
            .await
            .unwrap_or_else(|| panic!("no live event on replica {replica}"));
        let envelope = event.json();
        assert_eq!(envelope["event_type"], "task.sync", "{envelope}");
        assert_eq!(envelope["user_id"], "alice");
        assert_eq!(envelope["payload"]["task_id"], task_id.as_str());
        assert_eq!(envelope["payload"]["action"], "created");
    }

    // Written through replica b: replica a's stream sees it too, and a stream resumed with
    // `Last-Event-ID` on the other replica replays it.
    let before = alice_on_a.next(Duration::from_millis(300)).await;
    assert!(before.is_none(), "nothing else yet: {before:?}");
    replica_b.user("alice").complete(&task_id).await.expect(200);
    let completed = alice_on_a.next(come).await.expect("the completion on a");
    assert_eq!(completed.json()["payload"]["action"], "completed");
    let on_b = alice_on_b.next(come).await.expect("the completion on b");
    assert_eq!(
        on_b.id, completed.id,
        "one position space for every replica"
    );
    drop(alice_on_b);
    let created_id = {
        let mut resumed = replica_b.user("alice").events(Some("0")).await;
        let first = resumed.next(come).await.expect("replayed from the start");
        assert_eq!(first.json()["payload"]["action"], "created");
        first.id.expect("an id")
    };
    let mut resumed = replica_a.user("alice").events(Some(&created_id)).await;
    let replayed = resumed
        .next(come)
        .await
        .expect("replayed after the creation");
    assert_eq!(replayed.json()["payload"]["action"], "completed");

    let stray = bob_on_b.next(Duration::from_millis(300)).await;
    assert!(stray.is_none(), "alice's events on bob's stream: {stray:?}");
}

/// Failed log-ins are counted in PostgreSQL: guesses spread over two api replicas use up one
/// allowance, and the account is then refused on both.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_log_ins_count_across_api_replicas() {
    let Some(scratch) = PgSchema::new("cluster") else {
        return;
    };
    let replicas = two_api_replicas(&scratch).await;
    let (replica_a, replica_b) = (&replicas.a, &replicas.b);
    let password = "correct horse battery";
    let mut web = taskstream_tests::web::WebClient::new(replica_a).await;
    web.sign_up("kim@example.com", password).await;

    let log_in = |srv: &TestServer, password: &str| {
        let request = srv
            .client()
            .post(srv.url("/api/auth/token"))
            .json(&json!({"email": "kim@example.com", "password": password}));
        async move { request.send().await.unwrap() }
    };
    for (n, replica) in [replica_a, replica_a, replica_a, replica_b, replica_b]
        .into_iter()
        .enumerate()
    {
        let response = log_in(replica, "wrong guess").await;
        assert_eq!(response.status(), 401, "guess {n}");
    }
    for (name, replica) in [("a", replica_a), ("b", replica_b)] {
        let response = log_in(replica, password).await;
        assert_eq!(
            response.status(),
            429,
            "five failures across the replicas: refused on {name}"
        );
        assert!(response.headers().contains_key("retry-after"));
    }
}
