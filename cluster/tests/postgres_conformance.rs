//! The PostgreSQL store against a real server: the engine's conformance suites, and what only
//! several replicas sharing one database need (migration lock, LISTEN/NOTIFY, SKIP LOCKED relay,
//! row locks). Each test works in a schema of its own, dropped when it ends.
//!
//! Needs `TASKSTREAM_TEST_DATABASE_URL` (e.g. `postgres://postgres@127.0.0.1:5432/test`); without
//! it every test prints that it skipped and passes.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::json;
use taskstream_cluster::postgres::{PgError, PostgresStore, RelayRound};
use taskstream_engine::EngineError;
use taskstream_engine::conformance;
use taskstream_engine::ports::{
    ActivityStore, Outbox, OutboxRecord, ProjectStore, ReminderStore, TaskStore,
};
use taskstream_engine::reminder::FireOutcome;
use taskstream_engine::task::input::parse_new_task;
use taskstream_engine::task::{Task, TaskOp, TaskQuery, ops};
use taskstream_engine::time::now;
use tokio_postgres::NoTls;

const URL_VAR: &str = "TASKSTREAM_TEST_DATABASE_URL";

/// A schema of the test's own, dropped (best effort) when the test ends, panics included.
struct Scratch {
    url: String,
    schema: String,
}

impl Scratch {
    /// `None` (after saying so) when no test database is configured.
    fn new() -> Option<Self> {
        match std::env::var(URL_VAR) {
            Ok(url) if !url.trim().is_empty() => Some(Self {
                url,
                schema: format!("ts_test_{}", uuid::Uuid::new_v4().simple()),
            }),
            _ => {
                println!("skipping: {URL_VAR} is not set");
                None
            }
        }
    }

    async fn store(&self) -> PostgresStore {
        PostgresStore::connect_in_schema(&self.url, &self.schema)
            .await
            .expect("connect to the test database")
    }

    /// A plain connection, for looking behind the store's back.
    async fn raw(&self) -> tokio_postgres::Client {
        let (client, connection) = tokio_postgres::connect(&without_tls(&self.url), NoTls)
            .await
            .expect("raw connect");
        tokio::spawn(connection);
        client
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let (url, schema) = (self.url.clone(), self.schema.clone());
        // Its own thread and runtime: this may run inside the test's runtime, or while panicking.
        let _ = std::thread::spawn(move || {
            let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            runtime.block_on(async move {
                if let Ok((client, connection)) =
                    tokio_postgres::connect(&without_tls(&url), NoTls).await
                {
                    tokio::spawn(connection);
                    let drop = format!("DROP SCHEMA IF EXISTS {schema} CASCADE");
                    if let Err(error) = client.batch_execute(&drop).await {
                        eprintln!("could not drop test schema {schema}: {error}");
                    }
                }
            });
        })
        .join();
    }
}

/// The test URL for the helpers' own connections, which have no TLS connector: enough for a
/// local server that also accepts plain connections, when the store itself is tested over TLS
/// (e.g. `postgres://postgres@localhost:5432/test?sslmode=require`).
fn without_tls(url: &str) -> String {
    ["verify-full", "verify-ca", "require"]
        .iter()
        .fold(url.to_owned(), |url, mode| {
            url.replace(&format!("sslmode={mode}"), "sslmode=prefer")
        })
}

async fn create(store: &PostgresStore, user: &str, body: serde_json::Value) -> Task {
    let draft = parse_new_task(&body).expect("valid body");
    let (task, events) = ops::create(user, draft, now()).expect("valid draft");
    store.insert(task, events).await.expect("insert")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn passes_the_task_store_conformance_suite() {
    let Some(scratch) = Scratch::new() else {
        return;
    };
    let store = scratch.store().await;
    conformance::task_store_suite(&store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn passes_the_project_store_conformance_suite() {
    let Some(scratch) = Scratch::new() else {
        return;
    };
    let store = scratch.store().await;
    conformance::project_store_suite(&store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn passes_the_conversation_store_conformance_suite() {
    let Some(scratch) = Scratch::new() else {
        return;
    };
    let store = scratch.store().await;
    conformance::conversation_store_suite(&store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn passes_the_settings_store_conformance_suite() {
    let Some(scratch) = Scratch::new() else {
        return;
    };
    let store = scratch.store().await;
    conformance::settings_store_suite(&store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn passes_the_account_store_conformance_suite() {
    let Some(scratch) = Scratch::new() else {
        return;
    };
    let store = scratch.store().await;
    conformance::account_store_suite(&store).await;
}

#[tokio::test]
async fn counts_failed_log_ins_as_the_in_memory_limiter_does() {
    let Some(scratch) = Scratch::new() else {
        return;
    };
    let store = scratch.store().await;
    conformance::login_attempts_suite(&store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_starting_together_migrate_once() {
    let Some(scratch) = Scratch::new() else {
        return;
    };
    let (first, second) = tokio::join!(
        PostgresStore::connect_in_schema(&scratch.url, &scratch.schema),
        PostgresStore::connect_in_schema(&scratch.url, &scratch.schema),
    );
    let (first, second) = (first.expect("first start"), second.expect("second start"));
    let version = first.schema_version().await.expect("version");
    assert!(version >= 1);
    assert_eq!(second.schema_version().await.expect("version"), version);
    let applied: i64 = scratch
        .raw()
        .await
        .query_one(
            &format!("SELECT count(*) FROM {}.schema_migrations", scratch.schema),
            &[],
        )
        .await
        .expect("count")
        .get(0);
    assert_eq!(applied, version, "every version applied exactly once");
    // Both work on the same tables.
    let task = create(&first, "alice", json!({"title": "shared"})).await;
    assert_eq!(second.get(task.id).await.expect("get"), Some(task));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_from_the_future_is_refused() {
    let Some(scratch) = Scratch::new() else {
        return;
    };
    drop(scratch.store().await);
    scratch
        .raw()
        .await
        .execute(
            &format!(
                "INSERT INTO {}.schema_migrations (version) VALUES (99)",
                scratch.schema
            ),
            &[],
        )
        .await
        .expect("bump version");
    let refused = PostgresStore::connect_in_schema(&scratch.url, &scratch.schema).await;
    match refused {
        Err(error @ PgError::SchemaTooNew { found: 99, .. }) => {
            assert!(error.to_string().contains("newer"), "{error}");
        }
        Err(other) => panic!("wrong error: {other}"),
        Ok(_) => panic!("a newer schema must be refused"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_schema_name_is_refused_before_connecting() {
    let Some(scratch) = Scratch::new() else {
        return;
    };
    let refused = PostgresStore::connect_in_schema(&scratch.url, "x; DROP TABLE tasks").await;
    assert!(matches!(refused, Err(PgError::SchemaName(_))));
}

/// What a test's publish closure returns.
type Publishing = std::pin::Pin<Box<dyn Future<Output = Result<(), EngineError>> + Send>>;

/// Publishes into a shared log after a pause, so two claims overlap in time.
fn recorder(
    log: &Arc<Mutex<Vec<OutboxRecord>>>,
    pause: Duration,
) -> impl FnOnce(Vec<OutboxRecord>) -> Publishing {
    let log = Arc::clone(log);
    move |batch| {
        Box::pin(async move {
            tokio::time::sleep(pause).await;
            log.lock().expect("log").extend(batch);
            Ok(())
        })
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_relays_never_claim_the_same_event() {
    let Some(scratch) = Scratch::new() else {
        return;
    };
    let (one, two) = (scratch.store().await, scratch.store().await);
    for i in 0..20 {
        create(&one, "relay", json!({"title": format!("t{i}")})).await;
    }
    let total = one.pending_events(1000).await.expect("outbox").len();
    assert_eq!(total, 40, "two events per task");

    let (log_one, log_two) = (Arc::default(), Arc::default());
    // The second relay claims while the first still holds its batch (publishing slowly).
    let (holding, held) = tokio::sync::oneshot::channel::<()>();
    let slow = recorder(&log_one, Duration::from_millis(300));
    let (first, second) = tokio::join!(
        one.relay_batch(10, |batch| {
            holding.send(()).expect("report the claim");
            slow(batch)
        }),
        async {
            held.await.expect("first claimed");
            two.relay_batch(10, recorder(&log_two, Duration::ZERO))
                .await
        },
    );
    let (first, second) = (first.expect("relay one"), second.expect("relay two"));
    assert_eq!(
        first,
        RelayRound {
            published: 10,
            deferred: 0
        }
    );
    assert_eq!(
        second,
        RelayRound {
            published: 10,
            deferred: 0
        },
        "the next ten, not the held ones"
    );
    let seqs = |log: &Arc<Mutex<Vec<OutboxRecord>>>| -> HashSet<i64> {
        log.lock().expect("log").iter().map(|r| r.seq).collect()
    };
    let (seen_one, seen_two) = (seqs(&log_one), seqs(&log_two));
    assert!(!seen_one.is_empty() && !seen_two.is_empty(), "both relayed");
    assert!(seen_one.is_disjoint(&seen_two), "no event claimed twice");

    // Drain with both; every event goes exactly once, each key's events in order.
    let all = Arc::new(Mutex::new(Vec::new()));
    all.lock()
        .expect("log")
        .extend(log_one.lock().expect("log").drain(..));
    all.lock()
        .expect("log")
        .extend(log_two.lock().expect("log").drain(..));
    for _ in 0..50 {
        let (a, b) = tokio::join!(
            one.relay_batch(7, recorder(&all, Duration::from_millis(20))),
            two.relay_batch(7, recorder(&all, Duration::from_millis(20))),
        );
        let (a, b) = (a.expect("relay"), b.expect("relay"));
        if a == RelayRound::default() && b == RelayRound::default() {
            break;
        }
    }
    assert!(
        one.pending_events(10).await.expect("outbox").is_empty(),
        "drained"
    );
    let published = all.lock().expect("log").clone();
    let unique: HashSet<i64> = published.iter().map(|r| r.seq).collect();
    assert_eq!(
        (published.len(), unique.len()),
        (total, total),
        "each event once"
    );
    let mut by_key: HashMap<&str, Vec<&str>> = HashMap::new();
    for record in &published {
        by_key
            .entry(record.key.as_str())
            .or_default()
            .push(record.envelope.event_type.as_str());
    }
    assert!(
        by_key
            .values()
            .all(|types| types == &["task.created", "task.sync"]),
        "per-key order kept: {by_key:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_later_event_of_a_key_waits_while_another_relay_holds_the_older() {
    let Some(scratch) = Scratch::new() else {
        return;
    };
    let (one, two) = (scratch.store().await, scratch.store().await);
    let first = create(&one, "order", json!({"title": "first"})).await;
    let second = create(&one, "order", json!({"title": "second"})).await;

    let (release, released) = tokio::sync::oneshot::channel::<()>();
    let (claimed, is_claimed) = tokio::sync::oneshot::channel::<Vec<OutboxRecord>>();
    let holder = async {
        one.relay_batch(1, |batch| async move {
            claimed.send(batch).expect("report claim");
            released.await.expect("release");
            Ok(())
        })
        .await
    };
    let other = async {
        let held = is_claimed.await.expect("claimed");
        assert_eq!(held[0].envelope.event_type, "task.created");
        assert_eq!(held[0].key, first.id.to_string());
        let log = Arc::default();
        let round = two
            .relay_batch(100, recorder(&log, Duration::ZERO))
            .await
            .expect("relay");
        release.send(()).expect("release");
        (round, log)
    };
    let (held, (round, log)) = tokio::join!(holder, other);
    assert_eq!(held.expect("holder").published, 1);
    assert_eq!(
        round,
        RelayRound {
            published: 2,
            deferred: 1
        },
        "the first task's task.sync waits; the second task's events go"
    );
    let keys: Vec<String> = log
        .lock()
        .expect("log")
        .iter()
        .map(|r| r.key.clone())
        .collect();
    assert_eq!(keys, [second.id.to_string(), second.id.to_string()]);
    let rest = one.pending_events(10).await.expect("outbox");
    assert_eq!(rest.len(), 1);
    assert_eq!(
        (rest[0].key.clone(), rest[0].envelope.event_type.as_str()),
        (first.id.to_string(), "task.sync")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_publish_releases_the_claim() {
    let Some(scratch) = Scratch::new() else {
        return;
    };
    let store = scratch.store().await;
    create(&store, "bus-down", json!({"title": "retry me"})).await;
    let failed = store
        .relay_batch(10, |_| async {
            Err(EngineError::Unavailable("bus down".to_owned()))
        })
        .await;
    assert!(matches!(failed, Err(EngineError::Unavailable(_))));
    assert_eq!(store.pending_events(10).await.expect("outbox").len(), 2);
    let log = Arc::default();
    let round = store
        .relay_batch(10, recorder(&log, Duration::ZERO))
        .await
        .expect("relay");
    assert_eq!(round.published, 2);
    assert!(store.pending_events(10).await.expect("outbox").is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_replicas_commit_wakes_this_one() {
    let Some(scratch) = Scratch::new() else {
        return;
    };
    let (writer, watcher) = (scratch.store().await, scratch.store().await);
    // A store on another schema of the same database must not be woken.
    let elsewhere_scratch = Scratch {
        url: scratch.url.clone(),
        schema: format!("{}_x", scratch.schema),
    };
    let elsewhere = elsewhere_scratch.store().await;

    let mut own = writer.foreign_commits();
    let mut foreign = watcher.foreign_commits();
    let mut unrelated = elsewhere.foreign_commits();
    own.mark_unchanged();
    foreign.mark_unchanged();
    unrelated.mark_unchanged();
    let signal = watcher.commit_signal();
    let woken = signal.notified();

    create(&writer, "replica", json!({"title": "written by the other"})).await;
    tokio::time::timeout(Duration::from_secs(5), foreign.changed())
        .await
        .expect("the other replica's commit is noticed in time")
        .expect("listener alive");
    tokio::time::timeout(Duration::from_secs(5), woken)
        .await
        .expect("the relay is woken");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        !own.has_changed().expect("listener alive"),
        "a store's own commits are not foreign"
    );
    assert!(
        !unrelated.has_changed().expect("listener alive"),
        "commits in another schema are not this store's"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_completing_one_task_together_make_one_next_occurrence() {
    let Some(scratch) = Scratch::new() else {
        return;
    };
    let (one, two) = (scratch.store().await, scratch.store().await);
    for round in 0..5 {
        let task = create(
            &one,
            "racer",
            json!({"title": format!("daily {round}"), "due_date": "2031-01-01T09:00:00Z",
                   "is_recurring": true, "recurrence_rule": "DAILY"}),
        )
        .await;
        let (a, b) = tokio::join!(
            one.modify(task.id, "racer", TaskOp::Complete, now()),
            two.modify(task.id, "racer", TaskOp::Complete, now()),
        );
        let nexts = [a.expect("complete"), b.expect("complete")]
            .into_iter()
            .filter(|change| change.next.is_some())
            .count();
        assert_eq!(nexts, 1, "exactly one replica creates the next occurrence");
    }
    let children = one
        .list("racer", &TaskQuery::default())
        .await
        .expect("list")
        .into_iter()
        .filter(|task| task.parent_task_id.is_some())
        .count();
    assert_eq!(children, 5);
}

/// Two replicas racing over one user's links: subtasks added to a parent while another
/// replica completes its recurring subtasks and deletes it, projects deleted while tasks are
/// moved into them. Every change either lands whole or is refused as the rules say (never a
/// deadlock or a store failure), the subtask limit holds, and every deleted subtask is
/// announced.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_changing_one_users_links_together_stay_consistent() {
    use taskstream_engine::project::{Project, SUBTASKS_MAX};
    let Some(scratch) = Scratch::new() else {
        return;
    };
    let (one, two) = (scratch.store().await, scratch.store().await);
    let user = "linker";
    for round in 0..5 {
        let parent = create(&one, user, json!({"title": format!("parent {round}")})).await;
        let steps: Vec<Task> = futures_join_all((0..4).map(|n| {
            create(
                &two,
                user,
                json!({"title": format!("step {n}"), "subtask_of": parent.id,
                       "due_date": "2031-01-01T09:00:00Z", "is_recurring": true, "recurrence_rule": "DAILY"}),
            )
        }))
        .await;
        let adds = (0..6).map(|n| {
            let draft =
                parse_new_task(&json!({"title": format!("late {n}"), "subtask_of": parent.id}))
                    .expect("valid");
            let (task, events) = ops::create(user, draft, now()).expect("draft");
            one.insert(task, events)
        });
        let completes = steps
            .iter()
            .map(|step| two.modify(step.id, user, TaskOp::Complete, now()));
        let (added, completed, deleted) = tokio::join!(
            futures_join_all(adds),
            futures_join_all(completes),
            one.modify(parent.id, user, TaskOp::Delete, now()),
        );
        for outcome in added {
            assert!(
                matches!(outcome, Ok(_) | Err(EngineError::ParentNotFound)),
                "an add lands or finds the parent gone: {outcome:?}"
            );
        }
        for outcome in completed {
            assert!(
                matches!(outcome, Ok(_) | Err(EngineError::NotFound)),
                "a completion lands or finds the subtask gone: {outcome:?}"
            );
        }
        let deleted = deleted.expect("the parent's deletion lands");
        let left = one
            .list(
                user,
                &TaskQuery {
                    subtask_of: Some(parent.id),
                    ..TaskQuery::default()
                },
            )
            .await
            .expect("list");
        assert!(left.is_empty(), "no subtask outlives its parent: {left:?}");
        let announced: HashSet<String> = one
            .pending_events(1_000_000)
            .await
            .expect("outbox")
            .into_iter()
            .filter(|r| r.envelope.event_type == "task.deleted")
            .map(|r| r.key)
            .collect();
        for subtask in &deleted.subtasks {
            assert!(announced.contains(&subtask.id.to_string()));
        }
    }

    let full = create(&one, user, json!({"title": "full"})).await;
    let adds = (0..SUBTASKS_MAX + 10).map(|n| {
        let store = if n % 2 == 0 { &one } else { &two };
        let draft = parse_new_task(&json!({"title": format!("s{n}"), "subtask_of": full.id}))
            .expect("valid");
        let (task, events) = ops::create(user, draft, now()).expect("draft");
        store.insert(task, events)
    });
    let outcomes = futures_join_all(adds).await;
    let landed = outcomes.iter().filter(|o| o.is_ok()).count() as u64;
    assert!(
        outcomes
            .iter()
            .all(|o| matches!(o, Ok(_) | Err(EngineError::Conflict(_)))),
        "{outcomes:?}"
    );
    assert_eq!(landed, SUBTASKS_MAX, "the limit holds across replicas");

    for round in 0..5 {
        let project = one
            .insert_project(Project::new(user, format!("list {round}"), now()))
            .await
            .expect("project");
        let tasks: Vec<Task> =
            futures_join_all((0..4).map(|n| create(&one, user, json!({"title": format!("t{n}")}))))
                .await;
        let moves = tasks
            .iter()
            .map(|task| two.modify(task.id, user, TaskOp::SetProject(Some(project.id)), now()));
        let (moved, removed) = tokio::join!(
            futures_join_all(moves),
            one.delete_project(user, project.id, now()),
        );
        removed.expect("the project's deletion lands");
        for outcome in moved {
            assert!(
                matches!(outcome, Ok(_) | Err(EngineError::ProjectNotFound)),
                "{outcome:?}"
            );
        }
        for task in &tasks {
            let stored = one.get(task.id).await.expect("get").expect("task");
            assert_eq!(
                stored.project_id, None,
                "no task is left in a deleted project"
            );
        }
    }
}

async fn futures_join_all<F: std::future::Future>(
    futures: impl Iterator<Item = F>,
) -> Vec<F::Output> {
    futures_util::future::join_all(futures).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_firing_one_reminder_together_fire_it_once() {
    let Some(scratch) = Scratch::new() else {
        return;
    };
    let (one, two) = (scratch.store().await, scratch.store().await);
    let task = create(
        &one,
        "ringer",
        json!({"title": "ring", "due_date": "2031-06-01T10:00:00Z", "reminder_offset_minutes": 10}),
    )
    .await;
    let fire_at = taskstream_engine::time::parse_datetime("2031-06-01T09:50:00Z").expect("date");
    let window = chrono::Duration::hours(24);
    let (a, b) = tokio::join!(
        one.fire_reminder(task.id, fire_at, fire_at, window),
        two.fire_reminder(task.id, fire_at, fire_at, window),
    );
    let outcomes = [a.expect("fire"), b.expect("fire")];
    assert_eq!(
        outcomes
            .iter()
            .filter(|o| matches!(o, FireOutcome::Fired { .. }))
            .count(),
        1,
        "{outcomes:?}"
    );
    assert!(outcomes.contains(&FireOutcome::NotArmed));
}

/// One replica's tick of the daily digest for `period`, counting runs of the job body.
async fn digest_tick(
    store: &PostgresStore,
    period: &str,
    at: chrono::DateTime<chrono::Utc>,
    runs: &AtomicUsize,
) -> Result<Option<u64>, EngineError> {
    store
        .run_once("daily-digest", period, || async {
            runs.fetch_add(1, Ordering::SeqCst);
            // Long enough for the other replica to arrive while this one runs.
            tokio::time::sleep(Duration::from_millis(200)).await;
            taskstream_engine::jobs::daily_digest(store, store, at).await
        })
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_run_a_periodic_job_once_per_period() {
    use chrono::Timelike;
    use taskstream_cluster::postgres::JobPeriod;
    use taskstream_engine::ports::SettingsStore;
    use taskstream_engine::settings::UserSettings;

    let Some(scratch) = Scratch::new() else {
        return;
    };
    let (first, second) = (scratch.store().await, scratch.store().await);
    let at = now();
    let subscribed = UserSettings {
        time_zone: chrono_tz::UTC,
        daily_digest: true,
        digest_hour: u8::try_from(at.hour()).unwrap(),
    };
    first.save_settings("dora", subscribed, at).await.unwrap();
    create(
        &first,
        "dora",
        json!({"title": "overdue", "due_date": "2020-01-01T00:00:00Z"}),
    )
    .await;

    // Both replicas' ticks for one hour, at the same time: the real digest runs once.
    let runs = AtomicUsize::new(0);
    let period = JobPeriod::Hour.key(at);
    let (one, two) = tokio::join!(
        digest_tick(&first, &period, at, &runs),
        digest_tick(&second, &period, at, &runs)
    );
    let outcomes = [one.unwrap(), two.unwrap()];
    assert!(
        outcomes.contains(&Some(1)) && outcomes.contains(&None),
        "one replica sends the digest, the other skips: {outcomes:?}"
    );
    assert_eq!(runs.load(Ordering::SeqCst), 1, "the job body ran once");
    let notes = first.list_notifications("dora", 100).await.unwrap();
    assert_eq!(notes.len(), 1, "one digest: {notes:?}");
    assert_eq!(notes[0].kind, "daily_digest");
    // A later tick in the same hour (a replica whose clock lags) skips too.
    let late = digest_tick(&second, &period, at, &runs).await;
    assert_eq!(late.unwrap(), None);
    assert_eq!(runs.load(Ordering::SeqCst), 1);

    // The next period runs again.
    let next = JobPeriod::Hour.key(at + chrono::Duration::hours(1));
    let again = second
        .run_once("daily-digest", &next, || async { Ok(0) })
        .await
        .unwrap();
    assert_eq!(again, Some(0));

    // A failed run leaves its period to whichever replica ticks next.
    let failed = first
        .run_once("notification-retention", "2026-11-27", || async {
            Err(EngineError::Store("disk on fire".to_owned()))
        })
        .await;
    assert!(failed.is_err(), "{failed:?}");
    let retried = second
        .run_once("notification-retention", "2026-11-27", || async { Ok(3) })
        .await
        .unwrap();
    assert_eq!(retried, Some(3));
    let skipped = first
        .run_once("notification-retention", "2026-11-27", || async { Ok(5) })
        .await
        .unwrap();
    assert_eq!(skipped, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_live_feed_sees_every_replicas_commits_for_its_user() {
    use taskstream_engine::ports::LiveFeed;

    let Some(scratch) = Scratch::new() else {
        return;
    };
    let (writer, reader) = (scratch.store().await, scratch.store().await);
    let feed = reader.live_feed();
    let start = feed.position_now().await.unwrap();

    // Waiting on the reader replica while the other one commits.
    let waiting = tokio::spawn({
        let (feed, start) = (feed.clone(), start.clone());
        async move { feed.next_events("erin", &start).await }
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    create(&writer, "frank", json!({"title": "not erin's"})).await;
    let task = create(&writer, "erin", json!({"title": "erin's"})).await;
    let events = tokio::time::timeout(Duration::from_secs(10), waiting)
        .await
        .expect("woken by the other replica's commit")
        .unwrap()
        .unwrap();
    assert_eq!(events.len(), 1, "only erin's task.sync: {events:?}");
    let envelope = &events[0].envelope;
    assert_eq!(envelope.event_type, "task.sync");
    assert_eq!(envelope.user_id, "erin");
    assert_eq!(envelope.payload["task_id"], task.id.to_string());
    assert_eq!(envelope.payload["action"], "created");

    // Its own commits too, and a position resumes after it.
    let after = events[0].id.clone();
    let own = create(&reader, "erin", json!({"title": "erin's second"})).await;
    let events = feed.next_events("erin", &after).await.unwrap();
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0].envelope.payload["task_id"], own.id.to_string());
    let replay = feed.next_events("erin", &start).await.unwrap();
    assert_eq!(replay.len(), 2, "both after the start: {replay:?}");

    // Retention drops old rows; a stream then starts afresh from now.
    let purged = reader
        .purge_live_events(now() + chrono::Duration::seconds(1))
        .await
        .unwrap();
    assert_eq!(purged, 3, "frank's and erin's two");
}
