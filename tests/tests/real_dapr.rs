//! `taskstream serve --mode cluster` against the REAL Dapr runtime: each role (api,
//! notification, recurring, audit) beside its own `daprd` built from `github.com/dapr/dapr`
//! v1.18.3, the Dapr scheduler for the Jobs API, pub/sub on a real Kafka broker (and on Redis
//! Streams), state on Redis, secrets from a local-file store named `kubernetes`, components,
//! Configuration and Resiliency as the Helm chart renders them. A probe app of our own, beside
//! a daprd too, subscribes to every topic and records what went through the broker.
//!
//! Needs what `cluster/it/env.sh` exports (`.ci/run` sources it) and
//! `TASKSTREAM_TEST_DATABASE_URL`; without them each test says it skips. By hand:
//! `. .ci/services.sh && . cluster/it/env.sh && cargo test -p taskstream-tests --test real_dapr`
//! (`TASKSTREAM_IT_KEEP=1` keeps every daprd's, the scheduler's and the apps' logs).
//!
//! The benchmark (real Dapr + Kafka vs the embedded shape, same run) is
//! `TASKSTREAM_BIN=target/release/taskstream cargo test -p taskstream-tests --test real_dapr --
//! --ignored --nocapture bench` (after `cargo build --release -p taskstream`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use taskstream_tests::real_dapr::{
    Broker, Daprd, DaprdSpec, ItEnv, Probe, Scheduler, Scratch, Secrets, write_resources,
};
use taskstream_tests::{
    Launch, PgSchema, TestServer, User, eventually, free_port, id_of, reminding_in,
};

const API_TOKEN: &str = "it-sidecar-api-token";
const APP_TOKEN: &str = "it-app-api-token";
/// How long an effect may take to travel through daprd, the broker and a consumer app.
const WAIT: Duration = Duration::from_secs(90);
const ROLES: [&str; 4] = ["api", "notification", "recurring", "audit"];

/// The tests run one at a time: each starts a scheduler, five sidecars and four apps, which
/// is all two cores can take.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// One deployment: the four roles, each beside its daprd, a probe beside its own, the
/// scheduler. Fields drop in order: apps, sidecars, scheduler, then the schema.
struct Cluster {
    /// Extra replicas (app, its sidecar), see [`Cluster::add_replica`].
    replicas: Vec<(TestServer, Daprd)>,
    apps: BTreeMap<&'static str, TestServer>,
    sidecars: BTreeMap<&'static str, Daprd>,
    probe_sidecar: Daprd,
    probe: Probe,
    scheduler: Scheduler,
    schema: PgSchema,
    scratch: Scratch,
    jwt_secret: String,
    /// What every sidecar of the deployment is started with (app id and port aside).
    spec: DaprdSpec,
    /// Unique per test: app ids (so consumer groups) and user names.
    suffix: String,
}

impl Cluster {
    async fn start(env: &ItEnv, broker: Broker, test: &str) -> Option<Cluster> {
        let schema = PgSchema::new("realdapr")?;
        let scratch = Scratch::new(test);
        let dir = scratch.path().to_owned();
        let suffix = uuid::Uuid::new_v4().simple().to_string()[..8].to_owned();
        let jwt_secret = format!("it-jwt-{suffix}");
        let config = write_resources(
            &dir,
            env,
            broker,
            &Secrets {
                database_url: schema.url().to_owned(),
                jwt_secret: jwt_secret.clone(),
            },
        );
        let scheduler = Scheduler::start(env, &dir).await;
        let spec = |app_id: String, app_port: u16| DaprdSpec {
            app_id,
            app_port,
            resources: dir.join("resources"),
            config: config.clone(),
            scheduler: scheduler.address(),
            api_token: Some(API_TOKEN.to_owned()),
            app_token: Some(APP_TOKEN.to_owned()),
        };

        let probe = Probe::start().await;
        let mut probe_spec = spec(format!("probe-{suffix}"), probe.port());
        probe_spec.app_token = None;
        let probe_sidecar = Daprd::start(env, probe_spec, &dir).await;
        probe_sidecar
            .wait_subscribed(taskstream_tests::real_dapr::PROBE_TOPICS.len())
            .await;

        let mut sidecars = BTreeMap::new();
        let mut apps = BTreeMap::new();
        for role in ROLES {
            let port = free_port();
            let daprd = Daprd::launch(env, spec(format!("{role}-{suffix}"), port), &dir);
            let app = launch_app(&schema, &daprd, role, port, &jwt_secret).await;
            let mut daprd = daprd;
            daprd.wait_ready().await;
            let subscriptions = match role {
                "api" => 0,
                "audit" => 2,
                _ => 1,
            };
            daprd.wait_subscribed(subscriptions).await;
            sidecars.insert(role, daprd);
            apps.insert(role, app);
        }
        let spec = spec(String::new(), 0);
        Some(Cluster {
            replicas: Vec::new(),
            apps,
            sidecars,
            probe_sidecar,
            probe,
            scheduler,
            schema,
            scratch,
            jwt_secret,
            spec,
            suffix,
        })
    }

    /// Another replica of `role`: same app id (so the same consumer group and the same jobs),
    /// its own sidecar and port. Returns its index in `replicas`.
    async fn add_replica(&mut self, env: &ItEnv, role: &str) -> usize {
        let port = free_port();
        let spec = DaprdSpec {
            app_id: format!("{role}-{}", self.suffix),
            app_port: port,
            ..self.spec.clone()
        };
        let mut daprd = Daprd::launch(env, spec, self.scratch.path());
        let app = launch_app(&self.schema, &daprd, role, port, &self.jwt_secret).await;
        daprd.wait_ready().await;
        self.replicas.push((app, daprd));
        self.replicas.len() - 1
    }

    fn api(&self) -> &TestServer {
        &self.apps["api"]
    }

    fn user(&self, name: &str) -> User {
        self.api().user(&format!("{name}-{}", self.suffix))
    }

    fn sidecar(&mut self, role: &str) -> &mut Daprd {
        self.sidecars.get_mut(role).expect("role")
    }

    /// Every log, for a failure message.
    fn logs(&self) -> String {
        let mut out = String::new();
        for (role, daprd) in &self.sidecars {
            out.push_str(&format!("--- daprd {role}\n{}\n", daprd.log(25)));
        }
        for (role, app) in &self.apps {
            let stderr = app.stderr();
            let lines: Vec<&str> = stderr.lines().collect();
            let tail = lines[lines.len().saturating_sub(25)..].join("\n");
            out.push_str(&format!("--- app {role}\n{tail}\n"));
        }
        out.push_str(&format!("--- scheduler\n{}\n", self.scheduler.log()));
        if !self.scratch.kept() {
            out.push_str("(TASKSTREAM_IT_KEEP=1 keeps every log)\n");
        }
        out
    }
}

/// `taskstream serve --mode cluster --role <role>` on `port`, beside `daprd`: the database URL
/// and the JWT secret come from the secret store, as in the chart.
async fn launch_app(
    schema: &PgSchema,
    daprd: &Daprd,
    role: &str,
    port: u16,
    jwt_secret: &str,
) -> TestServer {
    let args = [
        "--mode",
        "cluster",
        "--role",
        role,
        "--database-url-secret",
        "taskstream/database-url",
        "--jwt-secret-secret",
        "taskstream/jwt-secret",
        "--database-schema",
        schema.name(),
    ];
    let envs = [
        ("DAPR_HTTP_PORT", daprd.http_port().to_string()),
        ("DAPR_API_TOKEN", API_TOKEN.to_owned()),
        ("APP_API_TOKEN", APP_TOKEN.to_owned()),
        ("RUST_LOG", "info".to_owned()),
    ];
    TestServer::launch(Launch {
        args: args.iter().map(|arg| (*arg).to_owned()).collect(),
        envs: envs
            .iter()
            .map(|(name, value)| ((*name).to_owned(), value.clone()))
            .collect(),
        port: Some(port),
        secret_flag: false,
        secret: Some(jwt_secret.to_owned()),
        ..Launch::default()
    })
    .await
}

fn counts(pairs: &[(&str, usize)]) -> BTreeMap<String, usize> {
    pairs.iter().map(|(k, n)| ((*k).to_owned(), *n)).collect()
}

/// Waits until `user`'s audit trail has at least `expected` rows of each type.
async fn wait_audited(cluster: &Cluster, user: &User, expected: &BTreeMap<String, usize>) {
    let deadline = Instant::now() + WAIT;
    loop {
        let have = user.audit_counts().await;
        if expected
            .iter()
            .all(|(kind, n)| have.get(kind).copied().unwrap_or(0) >= *n)
        {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "audit after {WAIT:?}: {have:?}, expected {expected:?}\n{}",
            cluster.logs()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// A counter of the app's Prometheus text, summed over its label sets.
async fn metric(srv: &TestServer, name: &str) -> f64 {
    let text = srv
        .client()
        .get(srv.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .filter(|line| line.starts_with(name))
        .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// create/update/complete/delete, a recurring task, a reminder through the Jobs API, poison on
/// both topics: what every broker variant must get right.
async fn core_flow(env: &ItEnv, broker: Broker, test: &str) {
    let Some(cluster) = Cluster::start(env, broker, test).await else {
        return;
    };
    let alice = cluster.user("alice");
    let api_sidecar = &cluster.sidecars["api"];

    let plain = alice.create(json!({"title": "plain"})).await;
    let plain_id = id_of(&plain);
    alice
        .put_task(&plain_id, &json!({"title": "plain, renamed"}))
        .await
        .expect(200);
    alice.delete_task(&plain_id).await.expect(200);
    let done = alice.create(json!({"title": "done"})).await;
    alice.complete(&id_of(&done)).await.expect(200);
    let recurring = alice
        .create(json!({"title": "water the plants", "is_recurring": true,
                        "recurrence_rule": "RRULE:FREQ=DAILY",
                        "due_date": reminding_in(86_400.0)}))
        .await;
    let completed = alice.complete(&id_of(&recurring)).await;
    let next_id = id_of(&completed.expect(200)["next_task"].clone());

    // A reminder due in about eight seconds: a job in the real scheduler (the api role
    // schedules it after the commit), whose data is the reminder payload.
    let reminded = alice
        .create(json!({"title": "call back", "due_date": reminding_in(8.0),
                        "reminder_offset_minutes": 1}))
        .await;
    let reminded_id = id_of(&reminded);
    let job = eventually(
        "the reminder job in the scheduler",
        Duration::from_secs(6),
        || async {
            let response = api_sidecar
                .request(
                    reqwest::Method::GET,
                    &format!("/v1.0/jobs/reminder-{reminded_id}"),
                )
                .send()
                .await
                .map_err(|e| e.to_string())?;
            let status = response.status().as_u16();
            let body: Value = response.json().await.unwrap_or(Value::Null);
            if status == 200 {
                Ok(body)
            } else {
                Err(format!("{status} {body}"))
            }
        },
    )
    .await;
    let data = &job["data"]["value"];
    assert_eq!(data["task_id"], reminded_id.as_str(), "job data: {job}");
    assert_eq!(data["user_id"], alice.sub.as_str(), "job data: {job}");
    assert_eq!(data["task_title"], "call back", "job data: {job}");
    assert!(
        data["remind_at"].is_string() && data["due_at"].is_string(),
        "{job}"
    );
    assert!(job["dueTime"].is_string(), "job: {job}");

    // Poison on both topics, published by the probe's sidecar: the consumers answer DROP and
    // their sidecars move it to the dead-letter topics.
    let marker = format!("poison-{}", cluster.suffix);
    for topic in ["task-events", "reminders"] {
        let status = cluster
            .probe_sidecar
            .publish(topic, &json!({"marker": marker, "not": "an envelope"}))
            .await;
        assert_eq!(status.as_u16(), 204, "publish poison to {topic}");
    }

    let expected = counts(&[
        // plain, done, the recurring task, its next occurrence, the reminded task.
        ("task.created", 5),
        ("task.updated", 1),
        ("task.deleted", 1),
        ("task.completed", 2),
        ("reminder.scheduled", 1),
        ("reminder.triggered", 1),
    ]);
    wait_audited(&cluster, &alice, &expected).await;
    // Seconds after the due time, so through the job callback: the api role's own sweep of
    // overdue reminders runs every five minutes, for reminders a minute late.
    let notes = eventually("the reminder notification", WAIT, || async {
        let notes = alice.notifications().await;
        if notes.iter().any(|n| n["task_id"] == reminded_id.as_str()) {
            Ok(notes)
        } else {
            Err(format!(
                "{} notifications, none for the reminder",
                notes.len()
            ))
        }
    })
    .await;
    let dead = |topic: &'static str| {
        let marker = marker.clone();
        let probe = &cluster.probe;
        async move {
            let n = probe
                .on(topic)
                .iter()
                .filter(|r| r.cloud_event["data"]["marker"] == marker.as_str())
                .count();
            // Two consumer apps read each topic (task-events: recurring and audit; reminders:
            // notification and audit); each one's sidecar dead-letters its copy.
            if n >= 2 {
                Ok(n)
            } else {
                Err(format!("{n} copies of the poison on {topic}"))
            }
        }
    };
    eventually("poison on task-events-dlq", WAIT, || {
        dead("task-events-dlq")
    })
    .await;
    eventually("poison on reminders-dlq", WAIT, || dead("reminders-dlq")).await;

    // Give late duplicates a moment, then count exactly.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        alice.audit_counts().await,
        expected,
        "each event audited once"
    );
    let for_reminder = alice
        .notifications()
        .await
        .into_iter()
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

    // What went through the broker: every audited event, as our CloudEvent (`type` is the
    // event type, `id` the event id), on its topic; nothing of alice's dead-lettered.
    let rows = alice.audit_all().await;
    let sub = alice.sub.clone();
    for (topic, kinds) in [
        (
            "task-events",
            &[
                "task.created",
                "task.updated",
                "task.deleted",
                "task.completed",
            ][..],
        ),
        (
            "reminders",
            &["reminder.scheduled", "reminder.triggered"][..],
        ),
    ] {
        let seen = cluster.probe.envelopes_of(topic, &sub);
        let audited: BTreeSet<String> = rows
            .iter()
            .filter(|r| kinds.contains(&r["event_type"].as_str().unwrap_or_default()))
            .map(|r| r["event_id"].as_str().unwrap_or_default().to_owned())
            .collect();
        let seen_ids: BTreeSet<String> = seen.keys().cloned().collect();
        assert_eq!(
            seen_ids, audited,
            "{topic}: the probe saw what audit recorded"
        );
    }
    for received in cluster.probe.on("task-events") {
        let Some(envelope) = received.envelope() else {
            continue;
        };
        if envelope["user_id"] != sub.as_str() {
            continue;
        }
        let ce = &received.cloud_event;
        assert_eq!(ce["type"], envelope["event_type"], "{ce}");
        assert_eq!(ce["id"], envelope["event_id"], "{ce}");
        assert_eq!(ce["topic"], "task-events", "{ce}");
        assert_eq!(ce["pubsubname"], "pubsub", "{ce}");
        assert_eq!(ce["specversion"], "1.0", "{ce}");
    }
    for topic in ["task-events-dlq", "reminders-dlq"] {
        assert!(
            cluster.probe.envelopes_of(topic, &sub).is_empty(),
            "an event of alice's was dead-lettered on {topic}"
        );
    }
    // Each consumer app counted the poison it dropped.
    for role in ["notification", "recurring", "audit"] {
        let dead = metric(&cluster.apps[role], "consumer_dead_lettered_total").await;
        assert!(dead >= 1.0, "{role} counted {dead} dead letters");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kafka_every_role_beside_real_daprd_gives_exactly_once_effects() {
    let Some(env) =
        ItEnv::from_env("kafka_every_role_beside_real_daprd_gives_exactly_once_effects")
    else {
        return;
    };
    let _serial = SERIAL.lock().await;
    core_flow(&env, Broker::Kafka, "kafka").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_streams_every_role_beside_real_daprd_gives_exactly_once_effects() {
    let Some(env) =
        ItEnv::from_env("redis_streams_every_role_beside_real_daprd_gives_exactly_once_effects")
    else {
        return;
    };
    let _serial = SERIAL.lock().await;
    core_flow(&env, Broker::Redis, "redis").await;
}

/// kill -9 of sidecars mid-delivery: the audit app's (its delivery in flight, unacknowledged),
/// the probe's (proving Kafka redelivers what was not acknowledged) and the api's (events
/// committed while it is down wait in the outbox). Every effect stays exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kafka_sidecars_killed_mid_delivery_redeliver_with_exactly_once_effects() {
    let test = "kafka_sidecars_killed_mid_delivery_redeliver_with_exactly_once_effects";
    let Some(env) = ItEnv::from_env(test) else {
        return;
    };
    let _serial = SERIAL.lock().await;
    let Some(mut cluster) = Cluster::start(&env, Broker::Kafka, "restart").await else {
        return;
    };
    let bob = cluster.user("bob");
    let sub = bob.sub.clone();
    for n in 0..3 {
        bob.create(json!({"title": format!("before {n}")})).await;
    }
    wait_audited(&cluster, &bob, &counts(&[("task.created", 3)])).await;

    // The audit app stops answering (SIGSTOP) and the probe hangs on task-events: the next
    // deliveries are in flight, unacknowledged, when their sidecars are killed.
    cluster.probe.hang("task-events");
    cluster.apps["audit"].signal("STOP");
    let mut during = Vec::new();
    for n in 0..3 {
        during.push(id_of(
            &bob.create(json!({"title": format!("during {n}")})).await,
        ));
    }
    let first = during[0].clone();
    let hung = eventually("the probe holding a delivery", WAIT, || async {
        let held: Vec<String> = cluster
            .probe
            .envelopes_of("task-events", &sub)
            .values()
            .filter(|e| e["payload"]["id"] == first.as_str())
            .map(|e| e["event_id"].as_str().unwrap_or_default().to_owned())
            .collect();
        held.into_iter()
            .next()
            .ok_or_else(|| "not delivered yet".to_owned())
    })
    .await;
    // The audit sidecar's delivery to the stopped app is under way by now.
    tokio::time::sleep(Duration::from_secs(2)).await;
    cluster.sidecar("audit").kill9();
    cluster.probe_sidecar.kill9();
    cluster.apps["audit"].signal("CONT");
    cluster.probe.answer_all();

    // The api's sidecar goes too: tasks created meanwhile are committed, their events wait in
    // the outbox.
    cluster.sidecar("api").kill9();
    let mut offline = Vec::new();
    for n in 0..2 {
        offline.push(id_of(
            &bob.create(json!({"title": format!("offline {n}")})).await,
        ));
    }
    tokio::time::sleep(Duration::from_secs(1)).await;

    cluster.sidecar("api").restart().await;
    cluster.sidecar("audit").restart().await;
    cluster.sidecar("audit").wait_subscribed(2).await;
    cluster.probe_sidecar.restart().await;

    wait_audited(&cluster, &bob, &counts(&[("task.created", 8)])).await;
    // The probe got the held event again: Kafka redelivered what was never acknowledged.
    eventually("the held event redelivered", WAIT, || async {
        let copies = cluster
            .probe
            .on("task-events")
            .iter()
            .filter(|r| r.cloud_event["id"] == hung.as_str())
            .count();
        if copies >= 2 {
            Ok(())
        } else {
            Err(format!("{copies} deliveries of {hung}"))
        }
    })
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        bob.audit_counts().await,
        counts(&[("task.created", 8)]),
        "each creation audited exactly once"
    );
    let tasks = bob.list_all("").await;
    assert_eq!(tasks.len(), 8, "no task lost or doubled: {tasks:?}");
    let duplicates = metric(&cluster.apps["audit"], "consumer_duplicates_total").await;
    println!(
        "{test}: the audit app skipped {} redelivered events",
        duplicates.max(0.0)
    );
    for id in offline.iter().chain(&during) {
        assert!(
            tasks.iter().any(|t| t["id"] == id.as_str()),
            "task {id} missing"
        );
    }
}

/// Creates/s and commit-to-audit latency through real Dapr + Kafka and through the embedded
/// shape, same run. `TASKSTREAM_BENCH_TASKS` (default 300) tasks, 8 clients at a time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark: cargo test -p taskstream-tests --test real_dapr -- --ignored --nocapture bench"]
async fn bench_real_dapr_kafka_vs_embedded() {
    let Some(env) = ItEnv::from_env("bench_real_dapr_kafka_vs_embedded") else {
        return;
    };
    let _serial = SERIAL.lock().await;
    let tasks: usize = std::env::var("TASKSTREAM_BENCH_TASKS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(300);

    let embedded = TestServer::start().await;
    let user = embedded.user("bench-embedded");
    let (rate, p50, p99) = bench(&user, tasks).await;
    let (one_p50, one_max) = one_at_a_time(&user, 20).await;
    println!(
        "bench embedded (SQLite + embedded log): {tasks} creates by 8 clients, {rate:.1} creates/s, \
         commit-to-audit p50 {p50:.1} ms, p99 {p99:.1} ms; one at a time: 201-to-audit-row p50 \
         {one_p50:.1} ms, max {one_max:.1} ms"
    );
    drop(embedded);

    let Some(cluster) = Cluster::start(&env, Broker::Kafka, "bench").await else {
        return;
    };
    let user = cluster.user("bench");
    let (rate, p50, p99) = bench(&user, tasks).await;
    let (one_p50, one_max) = one_at_a_time(&user, 20).await;
    println!(
        "bench cluster (PostgreSQL + real daprd 1.18.3 + Kafka 4.1): {tasks} creates by 8 clients, \
         {rate:.1} creates/s, commit-to-audit p50 {p50:.1} ms, p99 {p99:.1} ms; one at a time: \
         201-to-audit-row p50 {one_p50:.1} ms, max {one_max:.1} ms"
    );
}

/// `n` creates one after another, each waited for until its audit row is readable; returns
/// the p50 and max of the time from the 201 to that.
async fn one_at_a_time(user: &User, n: usize) -> (f64, f64) {
    let mut latencies = Vec::new();
    for i in 0..n {
        let id = id_of(&user.create(json!({"title": format!("one {i}")})).await);
        let committed = Instant::now();
        eventually("the audit row", Duration::from_secs(60), || async {
            let rows = user
                .audit(&format!("task_id={id}&event_type=task.created"))
                .await;
            if rows.is_empty() {
                Err("not yet".to_owned())
            } else {
                Ok(())
            }
        })
        .await;
        latencies.push(committed.elapsed().as_secs_f64() * 1e3);
    }
    latencies.sort_by(f64::total_cmp);
    (
        latencies[latencies.len() / 2],
        latencies[latencies.len() - 1],
    )
}

/// `tasks` creates by 8 concurrent clients; returns creates/s and the p50/p99 of audit
/// `received_at` minus the event `timestamp` (the commit).
async fn bench(user: &User, tasks: usize) -> (f64, f64, f64) {
    let started = Instant::now();
    let mut ids = BTreeSet::new();
    let per_client = tasks.div_ceil(8);
    let mut clients = tokio::task::JoinSet::new();
    for c in 0..8 {
        let user = user.clone();
        let n = per_client.min(tasks.saturating_sub(c * per_client));
        clients.spawn(async move {
            let mut out = Vec::new();
            for i in 0..n {
                out.push(id_of(
                    &user
                        .create(json!({"title": format!("bench {c}/{i}")}))
                        .await,
                ));
            }
            out
        });
    }
    while let Some(done) = clients.join_next().await {
        ids.extend(done.unwrap());
    }
    let rate = ids.len() as f64 / started.elapsed().as_secs_f64();
    let rows = eventually(
        "every bench task audited",
        Duration::from_secs(600),
        || async {
            let rows: Vec<Value> = user
                .audit_all()
                .await
                .into_iter()
                .filter(|r| r["event_type"] == "task.created")
                .collect();
            if rows.len() >= ids.len() {
                Ok(rows)
            } else {
                Err(format!("{} of {} audited", rows.len(), ids.len()))
            }
        },
    )
    .await;
    let mut latencies: Vec<f64> = rows
        .iter()
        .filter_map(|r| {
            let at = chrono::DateTime::parse_from_rfc3339(r["timestamp"].as_str()?).ok()?;
            let got = chrono::DateTime::parse_from_rfc3339(r["received_at"].as_str()?).ok()?;
            Some((got - at).num_microseconds()? as f64 / 1000.0)
        })
        .collect();
    latencies.sort_by(f64::total_cmp);
    let pick = |q: f64| {
        let i = ((latencies.len() as f64 - 1.0) * q).round() as usize;
        latencies.get(i).copied().unwrap_or(f64::NAN)
    };
    (rate, pick(0.5), pick(0.99))
}

/// One request of the conformance comparison.
struct Step {
    what: &'static str,
    method: reqwest::Method,
    path: String,
    body: Option<Value>,
    token: bool,
    headers: Vec<(&'static str, &'static str)>,
}

fn step(what: &'static str, method: &str, path: &str, body: Option<Value>) -> Step {
    Step {
        what,
        method: method.parse().unwrap(),
        path: path.to_owned(),
        body,
        token: true,
        headers: Vec::new(),
    }
}

/// Sends `steps` to the sidecar at `base`; returns (status, errorCode or "") per step.
async fn answers(base: &str, steps: &[Step]) -> Vec<(u16, String)> {
    let http = reqwest::Client::new();
    let mut out = Vec::new();
    for s in steps {
        let mut request = http
            .request(s.method.clone(), format!("{base}{}", s.path))
            .timeout(Duration::from_secs(10));
        if s.token {
            request = request.header("dapr-api-token", API_TOKEN);
        }
        for (name, value) in &s.headers {
            request = request.header(*name, *value);
        }
        if let Some(body) = &s.body {
            request = request.json(body);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let etag = response.headers().contains_key("etag");
        let body: Value = response.json().await.unwrap_or(Value::Null);
        let code = body["errorCode"].as_str().unwrap_or_default().to_owned();
        // A read of a state key also compares whether an ETag came back.
        let code = if status == 200 && s.path.contains("/state/") {
            format!("etag={etag}")
        } else {
            code
        };
        out.push((status, code));
    }
    out
}

/// The in-process test sidecar (`tests/src/dapr_sidecar.rs`, what the rest of the cluster
/// tests run against) and a real daprd 1.18.3 (state.redis, secretstores.local.file named
/// `kubernetes` under the chart's secret scope, the scheduler) get the same requests, every
/// call the app makes and the failures around them; they must answer with the same status
/// and error code.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_test_sidecar_answers_like_real_daprd() {
    use taskstream_tests::dapr_sidecar::{DaprSidecar, SidecarConfig};
    let test = "the_test_sidecar_answers_like_real_daprd";
    let Some(env) = ItEnv::from_env(test) else {
        return;
    };
    let _serial = SERIAL.lock().await;
    let scratch = Scratch::new("conformance");
    let dir = scratch.path().to_owned();
    let secrets = Secrets {
        database_url: "postgres://db.invalid/tasks".to_owned(),
        jwt_secret: "conformance-secret".to_owned(),
    };
    let config = write_resources(&dir, &env, Broker::Kafka, &secrets);
    // One more allowed name, to see a missing-but-allowed secret.
    let text = std::fs::read_to_string(&config).unwrap().replace(
        r#"allowedSecrets: ["taskstream"]"#,
        r#"allowedSecrets: ["taskstream", "missing"]"#,
    );
    std::fs::write(&config, text).unwrap();
    let scheduler = Scheduler::start(&env, &dir).await;
    let suffix = uuid::Uuid::new_v4().simple().to_string()[..8].to_owned();
    // An app port where nothing listens, for both: `healthz` waits for the app.
    let app_port = free_port();
    let real = Daprd::start(
        &env,
        DaprdSpec {
            app_id: format!("conformance-{suffix}"),
            app_port,
            resources: dir.join("resources"),
            config,
            scheduler: scheduler.address(),
            api_token: Some(API_TOKEN.to_owned()),
            app_token: None,
        },
        &dir,
    )
    .await;
    let fake = DaprSidecar::start(
        SidecarConfig::new()
            .app_port(app_port)
            .api_token(API_TOKEN)
            .secret(
                "kubernetes",
                "taskstream",
                &[
                    ("database-url", secrets.database_url.as_str()),
                    ("jwt-secret", secrets.jwt_secret.as_str()),
                ],
            )
            .allowed_secrets(&["taskstream", "missing"]),
    )
    .await;

    let k = |name: &str| format!("/v1.0/state/statestore/{name}-{suffix}");
    let save = |items: Value| Some(items);
    let key = |name: &str| format!("{name}-{suffix}");
    let job = |name: &str| format!("/v1.0/jobs/{name}-{suffix}");
    let mut steps = vec![
        Step {
            token: false,
            ..step("healthz without token", "GET", "/v1.0/healthz", None)
        },
        Step {
            token: false,
            ..step(
                "outbound without token",
                "GET",
                "/v1.0/healthz/outbound",
                None,
            )
        },
        Step {
            token: false,
            ..step(
                "publish without token",
                "POST",
                "/v1.0/publish/pubsub/conformance",
                Some(json!({})),
            )
        },
        step(
            "publish",
            "POST",
            &format!("/v1.0/publish/pubsub/conformance-{suffix}"),
            Some(json!({"a": 1})),
        ),
        step(
            "publish, unknown pubsub",
            "POST",
            "/v1.0/publish/nopubsub/t",
            Some(json!({})),
        ),
        step("state get, missing", "GET", &k("mark"), None),
        step(
            "state save with TTL",
            "POST",
            "/v1.0/state/statestore",
            save(
                json!([{"key": key("mark"), "value": {"event_id": "e"}, "metadata": {"ttlInSeconds": "60"}}]),
            ),
        ),
        step("state get", "GET", &k("mark"), None),
        step(
            "state save, wrong etag",
            "POST",
            "/v1.0/state/statestore",
            save(json!([{"key": key("mark"), "value": 1, "etag": "999"}])),
        ),
        step(
            "state save, bad etag",
            "POST",
            "/v1.0/state/statestore",
            save(json!([{"key": key("mark"), "value": 1, "etag": "not-a-number"}])),
        ),
        step(
            "first-write over a plain key",
            "POST",
            "/v1.0/state/statestore",
            save(
                json!([{"key": key("mark"), "value": 2, "options": {"concurrency": "first-write"}}]),
            ),
        ),
        step(
            "first-write, new key",
            "POST",
            "/v1.0/state/statestore",
            save(
                json!([{"key": key("claim"), "value": 1, "options": {"concurrency": "first-write"}}]),
            ),
        ),
        step(
            "first-write, taken key",
            "POST",
            "/v1.0/state/statestore",
            save(
                json!([{"key": key("claim"), "value": 2, "options": {"concurrency": "first-write"}}]),
            ),
        ),
        step(
            "plain save over a first-written key",
            "POST",
            "/v1.0/state/statestore",
            save(json!([{"key": key("claim"), "value": 3}])),
        ),
        Step {
            headers: vec![("if-match", "999")],
            ..step("state delete, wrong etag", "DELETE", &k("mark"), None)
        },
        step("state delete", "DELETE", &k("mark"), None),
        step("state delete, missing", "DELETE", &k("never"), None),
        step(
            "state save, key with ||",
            "POST",
            "/v1.0/state/statestore",
            save(json!([{"key": "a||b", "value": 1}])),
        ),
        step("state, unknown store", "GET", "/v1.0/state/nostore/x", None),
        step("secret", "GET", "/v1.0/secrets/kubernetes/taskstream", None),
        step(
            "secret, allowed but missing",
            "GET",
            "/v1.0/secrets/kubernetes/missing",
            None,
        ),
        step(
            "secret, outside the scope",
            "GET",
            "/v1.0/secrets/kubernetes/other",
            None,
        ),
        step(
            "secret, unknown store",
            "GET",
            "/v1.0/secrets/nostore/taskstream",
            None,
        ),
        step(
            "job schedule",
            "POST",
            &job("reminder"),
            Some(
                json!({"dueTime": "2099-01-01T00:00:00Z", "data": {"task_id": "t"}, "overwrite": true}),
            ),
        ),
        step(
            "job schedule again, no overwrite",
            "POST",
            &job("reminder"),
            Some(json!({"dueTime": "2099-01-01T00:00:00Z", "data": {"task_id": "t"}})),
        ),
        step("job get", "GET", &job("reminder"), None),
        step("job get, missing", "GET", &job("never"), None),
        step("job, empty body", "POST", &job("bad"), Some(json!({}))),
        step(
            "job, name in body",
            "POST",
            &job("bad"),
            Some(json!({"name": "x", "dueTime": "1s"})),
        ),
        step(
            "job, bad dueTime",
            "POST",
            &job("bad"),
            Some(json!({"dueTime": "bogus"})),
        ),
        step(
            "job, repeats 0",
            "POST",
            &job("bad"),
            Some(json!({"dueTime": "1h", "repeats": 0})),
        ),
        step(
            "job, repeats -1",
            "POST",
            &job("bad"),
            Some(json!({"dueTime": "1h", "repeats": -1})),
        ),
        step(
            "job, alpha path",
            "POST",
            &format!("/v1.0-alpha1/jobs/alpha-{suffix}"),
            Some(json!({"dueTime": "1h"})),
        ),
        step("job delete", "DELETE", &job("reminder"), None),
        step("job delete, missing", "DELETE", &job("never"), None),
    ];
    steps.push(step(
        "job delete, alpha",
        "DELETE",
        &format!("/v1.0/jobs/alpha-{suffix}"),
        None,
    ));

    let real_answers = answers(&real.url(""), &steps).await;
    let fake_answers = answers(&fake.base_url(), &steps).await;
    let mut differences = Vec::new();
    for ((s, r), f) in steps.iter().zip(&real_answers).zip(&fake_answers) {
        println!("{:<40} real {:?}  test sidecar {:?}", s.what, r, f);
        if r != f {
            differences.push(format!("{}: real daprd {r:?}, test sidecar {f:?}", s.what));
        }
    }
    assert!(
        differences.is_empty(),
        "the test sidecar differs from daprd 1.18.3:\n{}",
        differences.join("\n")
    );
    // The job as daprd shows it, on both.
    for base in [real.url(""), fake.base_url()] {
        let _ = reqwest::Client::new()
            .post(format!("{base}{}", job("shown")))
            .header("dapr-api-token", API_TOKEN)
            .json(&json!({"dueTime": "2099-01-01T00:00:00Z", "data": {"task_id": "t"}, "overwrite": true}))
            .send()
            .await
            .unwrap();
        let shown: Value = reqwest::Client::new()
            .get(format!("{base}{}", job("shown")))
            .header("dapr-api-token", API_TOKEN)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(
            shown["data"]["value"],
            json!({"task_id": "t"}),
            "{base}: {shown}"
        );
        assert_eq!(
            shown["data"]["@type"], "type.googleapis.com/google.protobuf.Value",
            "{base}: {shown}"
        );
        assert_eq!(
            shown["failurePolicy"]["constant"]["maxRetries"], 3,
            "{base}: {shown}"
        );
    }
    drop(scheduler);
}

/// A secret reference the chart's Configuration does not allow: real daprd refuses it (403)
/// and the app stops at once, naming the setting to change instead of retrying.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_secret_outside_the_configuration_scope_stops_the_app_with_a_clear_message() {
    let test = "a_secret_outside_the_configuration_scope_stops_the_app_with_a_clear_message";
    let Some(env) = ItEnv::from_env(test) else {
        return;
    };
    let _serial = SERIAL.lock().await;
    let scratch = Scratch::new("scope");
    let dir = scratch.path().to_owned();
    let secrets = Secrets {
        database_url: "postgres://db.invalid/tasks".to_owned(),
        jwt_secret: "scope-secret".to_owned(),
    };
    let config = write_resources(&dir, &env, Broker::Kafka, &secrets);
    let suffix = uuid::Uuid::new_v4().simple().to_string()[..8].to_owned();
    let app_port = free_port();
    let daprd = Daprd::start(
        &env,
        DaprdSpec {
            app_id: format!("scope-{suffix}"),
            app_port,
            resources: dir.join("resources"),
            config,
            scheduler: "127.0.0.1:1".to_owned(),
            api_token: Some(API_TOKEN.to_owned()),
            app_token: None,
        },
        &dir,
    )
    .await;
    let mut cmd = taskstream_tests::command();
    cmd.args(["serve", "--mode", "cluster", "--role", "api"])
        .args(["--http-addr", &format!("127.0.0.1:{app_port}")])
        .args(["--database-url-secret", "other/database-url"])
        .args(["--jwt-secret", "s3cret"])
        .env("DAPR_HTTP_PORT", daprd.http_port().to_string())
        .env("DAPR_API_TOKEN", API_TOKEN);
    let out = taskstream_tests::run(cmd, Duration::from_secs(60));
    assert!(
        out.status.is_some_and(|s| !s.success()),
        "the app must stop: {:?}\n{}",
        out.status,
        out.stderr
    );
    assert!(
        out.stderr.contains("allowedSecrets") && out.stderr.contains("\"other\""),
        "{}",
        out.stderr
    );
    assert!(
        !out.stderr.contains("postgres://"),
        "no secret value in the log"
    );
}

/// The chart runs two api replicas, each beside its own daprd with the same app id: they share
/// the outbox (each event published once) and the reminder jobs (the scheduler triggers one
/// connected sidecar per firing), whichever replica took the write.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kafka_two_api_replicas_publish_and_remind_exactly_once() {
    let test = "kafka_two_api_replicas_publish_and_remind_exactly_once";
    let Some(env) = ItEnv::from_env(test) else {
        return;
    };
    let _serial = SERIAL.lock().await;
    let Some(mut cluster) = Cluster::start(&env, Broker::Kafka, "replicas").await else {
        return;
    };
    let second = cluster.add_replica(&env, "api").await;
    let on_first = cluster.user("carol");
    let on_second = cluster.replicas[second].0.user(&on_first.sub);
    let mut reminded = Vec::new();
    for (n, user) in [&on_first, &on_second].into_iter().enumerate() {
        for i in 0..2 {
            user.create(json!({"title": format!("replica {n} task {i}")}))
                .await;
        }
        let task = user
            .create(json!({"title": format!("replica {n} reminder"),
                            "due_date": reminding_in(6.0), "reminder_offset_minutes": 1}))
            .await;
        reminded.push(id_of(&task));
    }
    let expected = counts(&[
        ("task.created", 6),
        ("reminder.scheduled", 2),
        ("reminder.triggered", 2),
    ]);
    wait_audited(&cluster, &on_first, &expected).await;
    eventually("both reminder notifications", WAIT, || async {
        let notes = on_second.notifications().await;
        let have = reminded
            .iter()
            .filter(|id| notes.iter().any(|n| n["task_id"] == id.as_str()))
            .count();
        if have == reminded.len() {
            Ok(())
        } else {
            Err(format!("{have} of {} reminders notified", reminded.len()))
        }
    })
    .await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        on_first.audit_counts().await,
        expected,
        "each event audited once"
    );
    let notes = on_first.notifications().await;
    for id in &reminded {
        let n = notes.iter().filter(|n| n["task_id"] == id.as_str()).count();
        assert_eq!(n, 1, "one notification for {id}: {notes:?}");
    }
    // What went through Kafka (the probe's own group sees every event): the six creations,
    // whichever relay published them.
    let published = cluster.probe.envelopes_of("task-events", &on_first.sub);
    assert_eq!(published.len(), 6, "{published:?}");
}
