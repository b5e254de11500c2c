//! Durability: every change that got a 2xx survives SIGKILL with its last acknowledged state, and
//! the events (event log plus what is still in the outbox) hold exactly one well-formed task.* event (topic task-events) per acknowledged change.
#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Duration;

use serde_json::{Value, json};
use taskstream_tests::{Resp, TASK_KEYS, TestServer, User, assert_task, assert_utc, id_of};

/// What the clients were told, and therefore what must be there after a crash.
#[derive(Default)]
struct Ledger {
    /// id -> last acknowledged state (`None` once deleted).
    state: BTreeMap<String, Option<Value>>,
    owner: HashMap<String, String>,
    /// (event_type, task_id) for every acknowledged change.
    events: Vec<(String, String)>,
    /// task_id -> expected number of reminder.scheduled events.
    reminders: BTreeMap<String, usize>,
}

impl Ledger {
    fn created(&mut self, t: &Value) {
        assert_task(t);
        let id = id_of(t);
        assert!(self.state.insert(id.clone(), Some(t.clone())).is_none());
        self.owner
            .insert(id.clone(), t["user_id"].as_str().unwrap().to_string());
        self.events.push(("task.created".into(), id.clone()));
        if !t["remind_at"].is_null() {
            *self.reminders.entry(id).or_default() += 1;
        }
    }

    fn updated(&mut self, after: &Value) {
        assert_task(after);
        let id = id_of(after);
        let before = self.state[&id].clone().expect("update of a deleted task");
        if !after["remind_at"].is_null() && after["remind_at"] != before["remind_at"] {
            *self.reminders.entry(id.clone()).or_default() += 1;
        }
        self.events.push(("task.updated".into(), id.clone()));
        self.state.insert(id, Some(after.clone()));
    }

    fn completed(&mut self, body: &Value) {
        let done = &body["completed_task"];
        assert_task(done);
        assert_eq!(done["status"], "completed");
        let id = id_of(done);
        self.events.push(("task.completed".into(), id.clone()));
        self.state.insert(id, Some(done.clone()));
        if !body["next_task"].is_null() {
            self.created(&body["next_task"]);
        }
    }

    fn deleted(&mut self, id: &str) {
        self.events.push(("task.deleted".into(), id.to_string()));
        self.state.insert(id.to_string(), None);
    }

    fn alive(&self) -> Vec<&Value> {
        self.state.values().flatten().collect()
    }
}

const PRIORITIES: [&str; 3] = ["low", "medium", "high"];

fn body_for(prefix: &str, i: usize) -> Value {
    let mut b = json!({
        "title": format!("{prefix}-{i}"),
        "description": format!("task number {i}"),
        "priority": PRIORITIES[i % 3],
        "tags": ["batch", format!("t{}", i % 5)],
    });
    if i.is_multiple_of(3) || i.is_multiple_of(4) {
        b["due_date"] = json!(format!("2030-01-{:02}T09:00:00Z", 1 + i % 28));
    }
    if i.is_multiple_of(3) {
        b["reminder_offset_minutes"] = json!(30 + i);
    }
    if i.is_multiple_of(4) {
        b["is_recurring"] = json!(true);
        b["recurrence_rule"] = json!(if i.is_multiple_of(8) {
            "DAILY"
        } else {
            "MONTHLY"
        });
    }
    if i.is_multiple_of(7) {
        b["is_recurring"] = json!(true);
        b["recurrence_rule"] = json!("WEEKLY");
    }
    b
}

/// Runs `f(user, arg)` for every item concurrently and returns the results in input order.
async fn concurrently<A, F, Fut>(items: Vec<(User, A)>, f: F) -> Vec<Resp>
where
    A: Send + 'static,
    F: Fn(User, A) -> Fut,
    Fut: std::future::Future<Output = Resp> + Send + 'static,
{
    let mut set = tokio::task::JoinSet::new();
    for (n, (u, a)) in items.into_iter().enumerate() {
        let fut = f(u, a);
        set.spawn(async move { (n, fut.await) });
    }
    let mut out: Vec<(usize, Resp)> = Vec::new();
    while let Some(r) = set.join_next().await {
        out.push(r.unwrap());
    }
    out.sort_by_key(|(n, _)| *n);
    out.into_iter().map(|(_, r)| r).collect()
}

struct Row {
    event_id: String,
    topic: String,
    partition_key: String,
    event_type: String,
    envelope: Value,
}

fn read_outbox(db: &std::path::Path) -> Vec<Row> {
    let conn = rusqlite::Connection::open_with_flags(
        db,
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .unwrap_or_else(|e| panic!("open {} read-only: {e}", db.display()));
    let mut stmt = conn
        .prepare(
            "SELECT event_id, topic, partition_key, event_type, envelope FROM outbox ORDER BY seq",
        )
        .unwrap();
    stmt.query_map([], |r| {
        let envelope: String = r.get(4)?;
        Ok(Row {
            event_id: r.get(0)?,
            topic: r.get(1)?,
            partition_key: r.get(2)?,
            event_type: r.get(3)?,
            envelope: serde_json::from_str(&envelope).unwrap_or(Value::Null),
        })
    })
    .unwrap()
    .map(Result::unwrap)
    .collect()
}

/// Every event of a stopped server, in commit order per topic: what the relay already moved to
/// the event log, then what still waits in the outbox. The relay is at-least-once (a kill between
/// publish and outbox delete repeats events), so repeats of an event id are dropped here.
async fn read_events(data_dir: &std::path::Path) -> Vec<Row> {
    use taskstream_engine::embedded::log::{EventLog, LogConfig};
    let mut rows = Vec::new();
    {
        let log = EventLog::open(&data_dir.join("events.redb"), LogConfig::default())
            .unwrap_or_else(|e| panic!("open the event log: {e}"));
        for topic in ["task-events", "reminders", "task-updates"] {
            for record in log.read(topic, 0, 0, 10_000_000).await.unwrap() {
                let envelope: Value = serde_json::from_slice(&record.value).unwrap_or(Value::Null);
                rows.push(Row {
                    event_id: envelope["event_id"].as_str().unwrap_or_default().to_owned(),
                    topic: record.topic.clone(),
                    partition_key: String::from_utf8_lossy(
                        record.key.as_deref().unwrap_or_default(),
                    )
                    .into_owned(),
                    event_type: envelope["event_type"]
                        .as_str()
                        .unwrap_or_default()
                        .to_owned(),
                    envelope,
                });
            }
        }
    }
    rows.extend(read_outbox(&data_dir.join("taskstream.db")));
    let mut seen = BTreeSet::new();
    rows.retain(|row| seen.insert(row.event_id.clone()));
    rows
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_changes_survive_sigkill_with_one_event_each() {
    let mut srv = TestServer::start().await;
    let users = [srv.user("alice"), srv.user("bob")];
    let user = |i: usize| users[i % 2].clone();
    let by_owner = |l: &Ledger, id: &str| -> User {
        users.iter().find(|u| u.sub == l.owner[id]).unwrap().clone()
    };
    let mut l = Ledger::default();

    // 100 sequential creates.
    for i in 0..100 {
        let t = user(i).create(body_for("seq", i)).await;
        l.created(&t);
    }
    // 100 concurrent creates.
    let rs = concurrently(
        (0..100).map(|i| (user(i), i)).collect(),
        |u, i| async move { u.post("/api/tasks", &body_for("con", i)).await },
    )
    .await;
    for r in &rs {
        l.created(r.expect(201));
    }
    let ids: Vec<String> = l.state.keys().cloned().collect();
    assert_eq!(ids.len(), 200);

    // Updates: 40 concurrent title/priority changes.
    let items: Vec<(User, String)> = ids[0..40]
        .iter()
        .map(|id| (by_owner(&l, id), id.clone()))
        .collect();
    let rs = concurrently(items, |u, id| async move {
        u.put_task(
            &id,
            &json!({ "title": format!("upd-{id}"), "priority": "high" }),
        )
        .await
    })
    .await;
    for r in &rs {
        l.updated(r.expect(200));
    }
    // Moving the due date of tasks with a reminder re-schedules it.
    let with_offset: Vec<String> = l
        .alive()
        .into_iter()
        .filter(|t| !t["reminder_offset_minutes"].is_null())
        .map(id_of)
        .take(10)
        .collect();
    for id in &with_offset {
        let r = by_owner(&l, id)
            .put_task(id, &json!({ "due_date": "2031-06-15T12:00:00+02:00" }))
            .await;
        l.updated(r.expect(200));
    }

    // Completions: 30 concurrent (recurring ones create next occurrences).
    let to_complete: Vec<String> = ids[40..70].to_vec();
    let items: Vec<(User, String)> = to_complete
        .iter()
        .map(|id| (by_owner(&l, id), id.clone()))
        .collect();
    let rs = concurrently(items, |u, id| async move { u.complete(&id).await }).await;
    for r in &rs {
        l.completed(r.expect(200));
    }
    // Completing again changes nothing and emits nothing.
    for id in &to_complete[0..5] {
        let r = by_owner(&l, id).complete(id).await;
        let body = r.expect(200);
        assert_eq!(body["next_task"], Value::Null);
        assert_eq!(Some(&body["completed_task"]), l.state[id].as_ref());
    }
    // Update some completed tasks afterwards.
    for id in &to_complete[5..10] {
        let r = by_owner(&l, id)
            .put_task(id, &json!({ "description": "after completion" }))
            .await;
        l.updated(r.expect(200));
    }

    // Deletes: 30 concurrent, of tasks that are nobody's parent.
    let to_delete: Vec<String> = ids[100..130].to_vec();
    let items: Vec<(User, String)> = to_delete
        .iter()
        .map(|id| (by_owner(&l, id), id.clone()))
        .collect();
    let rs = concurrently(items, |u, id| async move { u.delete_task(&id).await }).await;
    for (r, id) in rs.iter().zip(&to_delete) {
        assert_eq!(r.expect(200), &json!({ "id": id, "deleted": true }));
        l.deleted(id);
    }

    // A last burst that is fully acknowledged ...
    let rs = concurrently((0..20).map(|i| (user(i), i)).collect(), |u, i| async move {
        u.post("/api/tasks", &body_for("last", i)).await
    })
    .await;
    for r in &rs {
        l.created(r.expect(201));
    }
    // ... and one still in flight when the process is killed.
    let mut inflight = tokio::task::JoinSet::new();
    for i in 0..20 {
        let u = user(i);
        inflight.spawn(async move {
            u.req(reqwest::Method::POST, "/api/tasks")
                .json(&body_for("inflight", i))
                .send()
                .await
        });
    }
    tokio::time::sleep(Duration::from_millis(3)).await;
    srv.sigkill();
    while let Some(r) = inflight.join_next().await {
        if let Ok(resp) = r.unwrap() {
            let r = Resp::from_lenient(resp).await;
            if let Some(r) = r {
                assert_eq!(
                    r.status, 201,
                    "in-flight create answered {}: {}",
                    r.status, r.text
                );
                l.created(&r.json);
            }
        }
    }

    // Read the events of the killed process (event log + outbox).
    let rows = read_events(srv.data_dir()).await;

    srv.restart().await;
    let users = [srv.user("alice"), srv.user("bob")];

    // Creates that committed but whose answer was lost in the kill are legitimately there.
    let mut listed: BTreeMap<String, Value> = BTreeMap::new();
    for u in &users {
        for t in u.list_all("").await {
            listed.insert(id_of(&t), t);
        }
    }
    for (id, t) in &listed {
        if !l.state.contains_key(id) {
            assert!(
                t["title"].as_str().unwrap().starts_with("inflight-"),
                "unknown task after restart: {t}"
            );
            l.created(t);
        }
    }

    // Every acknowledged state is there, exactly.
    for (id, want) in &l.state {
        let u = users.iter().find(|u| u.sub == l.owner[id]).unwrap();
        let r = u.get_task(id).await;
        match want {
            Some(t) => assert_eq!(r.expect(200), t, "task {id} after SIGKILL"),
            None => r.expect_detail(404, "Task not found"),
        }
    }
    assert_eq!(listed.len(), l.alive().len());

    check_outbox(&rows, &l);
}

fn check_outbox(rows: &[Row], l: &Ledger) {
    assert!(!rows.is_empty(), "no events at all");
    let mut event_ids = BTreeSet::new();
    let mut task_events: Vec<(String, String)> = Vec::new();
    let mut sync_events: Vec<(String, String)> = Vec::new();
    let mut reminders: BTreeMap<String, usize> = BTreeMap::new();
    let mut last_payload: BTreeMap<String, Value> = BTreeMap::new();
    let want_keys: BTreeSet<&str> = [
        "event_id",
        "event_type",
        "timestamp",
        "user_id",
        "payload",
        "source",
        "specversion",
    ]
    .into_iter()
    .collect();
    for row in rows {
        let env = &row.envelope;
        let keys: BTreeSet<&str> = env
            .as_object()
            .unwrap_or_else(|| panic!("envelope is not a JSON object: {env}"))
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(keys, want_keys, "envelope keys of {env}");
        assert_eq!(env["specversion"], "1.0");
        assert_eq!(env["event_id"], row.event_id.as_str());
        assert_eq!(env["event_type"], row.event_type.as_str());
        uuid::Uuid::parse_str(&row.event_id)
            .unwrap_or_else(|_| panic!("event_id is not a uuid: {}", row.event_id));
        assert!(
            event_ids.insert(row.event_id.clone()),
            "duplicate event_id {}",
            row.event_id
        );
        assert_utc(&env["timestamp"]);
        assert!(
            env["source"].as_str().is_some_and(|s| !s.is_empty()),
            "{env}"
        );
        let payload = &env["payload"];
        assert!(payload.is_object(), "{env}");
        match row.topic.as_str() {
            "task-events" => {
                assert!(
                    [
                        "task.created",
                        "task.updated",
                        "task.completed",
                        "task.deleted"
                    ]
                    .contains(&row.event_type.as_str()),
                    "{} in task-events",
                    row.event_type
                );
                let task_keys: BTreeSet<&str> = payload
                    .as_object()
                    .unwrap()
                    .keys()
                    .map(String::as_str)
                    .collect();
                for k in TASK_KEYS {
                    assert!(task_keys.contains(k), "payload lacks {k}: {env}");
                }
                for k in ["due_date", "created_at", "updated_at", "remind_at"] {
                    if !payload[k].is_null() {
                        assert_utc(&payload[k]);
                    }
                }
                let id = id_of(payload);
                if row.event_type == "task.deleted" {
                    assert_eq!(payload["task_id"], id.as_str(), "{env}");
                }
                assert_eq!(row.partition_key, id, "partition key of {env}");
                assert_eq!(env["user_id"], l.owner[&id].as_str());
                task_events.push((row.event_type.clone(), id.clone()));
                last_payload.insert(id, payload.clone());
            }
            "task-updates" => {
                assert_eq!(row.event_type, "task.sync");
                let obj = payload.as_object().unwrap();
                assert_eq!(obj.len(), 2, "task.sync payload {payload}");
                let action = payload["action"].as_str().unwrap().to_string();
                assert!(
                    ["created", "updated", "completed", "deleted"].contains(&action.as_str()),
                    "{payload}"
                );
                sync_events.push((
                    format!("task.{action}"),
                    payload["task_id"].as_str().unwrap().to_string(),
                ));
            }
            "reminders" => {
                if row.event_type == "reminder.scheduled" {
                    let keys: BTreeSet<&str> = payload
                        .as_object()
                        .unwrap()
                        .keys()
                        .map(String::as_str)
                        .collect();
                    assert_eq!(
                        keys,
                        ["task_id", "task_title", "user_id", "due_at", "remind_at"]
                            .into_iter()
                            .collect(),
                        "reminder payload {payload}"
                    );
                    assert_utc(&payload["remind_at"]);
                    if !payload["due_at"].is_null() {
                        assert_utc(&payload["due_at"]);
                    }
                    *reminders
                        .entry(payload["task_id"].as_str().unwrap().to_string())
                        .or_default() += 1;
                } else {
                    assert_eq!(row.event_type, "reminder.triggered");
                }
            }
            other => panic!("unexpected topic {other}"),
        }
    }

    // Exactly one task.* event per acknowledged change.
    let multiset = |v: &[(String, String)]| {
        let mut m: BTreeMap<(String, String), usize> = BTreeMap::new();
        for e in v {
            *m.entry(e.clone()).or_default() += 1;
        }
        m
    };
    let want = multiset(&l.events);
    let got = multiset(&task_events);
    if want != got {
        let missing: Vec<_> = want
            .iter()
            .filter(|(k, n)| got.get(*k) != Some(n))
            .take(10)
            .collect();
        let extra: Vec<_> = got
            .iter()
            .filter(|(k, n)| want.get(*k) != Some(n))
            .take(10)
            .collect();
        panic!(
            "task-events differ from acknowledged changes ({} expected, {} found)\n\
             expected but not found (first 10): {missing:?}\nfound but not expected (first 10): {extra:?}",
            l.events.len(),
            task_events.len()
        );
    }
    assert_eq!(multiset(&sync_events), want, "one task.sync per change");
    assert_eq!(reminders, l.reminders, "reminder.scheduled per task");

    // Per task: created first, deleted last; the last payload is the last acknowledged state.
    let mut per_task: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (ty, id) in &task_events {
        per_task.entry(id).or_default().push(ty);
    }
    for (id, types) in &per_task {
        assert_eq!(types[0], "task.created", "first event of {id}: {types:?}");
        let deleted = l.state[*id].is_none();
        assert_eq!(
            types.last() == Some(&"task.deleted"),
            deleted,
            "events of {id}: {types:?}"
        );
        if let Some(t) = &l.state[*id] {
            let p = &last_payload[*id];
            for k in TASK_KEYS {
                assert_eq!(&p[*k], &t[*k], "last event payload of {id}, key {k}");
            }
        }
    }
}

/// Event types in topic task-events for `task_id`, in outbox order.
fn task_event_types(rows: &[Row], task_id: &str) -> Vec<String> {
    rows.iter()
        .filter(|r| r.topic == "task-events" && r.partition_key == task_id)
        .map(|r| r.event_type.clone())
        .collect()
}

#[tokio::test]
async fn completion_emits_task_completed_once_whichever_door() {
    let mut srv = TestServer::start().await;
    let u = srv.user("alice");
    let t = u
        .create(
            json!({ "title": "series", "is_recurring": true, "recurrence_rule": "DAILY",
                        "due_date": "2030-01-01T09:00:00Z" }),
        )
        .await;
    let id = id_of(&t);
    u.put_task(&id, &json!({ "status": "completed" }))
        .await
        .expect(200);
    u.put_task(&id, &json!({ "status": "completed" }))
        .await
        .expect(200);
    let r = u.complete(&id).await;
    assert_eq!(r.expect(200)["next_task"], Value::Null);
    let plain = u.create(json!({ "title": "plain" })).await;
    let pid = id_of(&plain);
    u.put_task(&pid, &json!({ "priority": "high" }))
        .await
        .expect(200);
    u.complete(&pid).await.expect(200);
    u.complete(&pid).await.expect(200);
    u.put_task(&pid, &json!({ "description": "after" }))
        .await
        .expect(200);
    u.delete_task(&pid).await.expect(200);

    let all = u.list("").await;
    let child = all
        .iter()
        .find(|x| x["parent_task_id"] == id.as_str())
        .expect("next occurrence");
    let cid = id_of(child);
    assert_eq!(all.len(), 2);

    srv.sigterm();
    let st = srv.wait_exit(Duration::from_secs(30)).await;
    assert_eq!(st.and_then(|s| s.code()), Some(0));
    let rows = read_events(srv.data_dir()).await;

    // The first PUT completed is the completion; the second PUT is an ordinary update of a
    // completed task; the PATCH on a completed task emits nothing.
    assert_eq!(
        task_event_types(&rows, &id),
        ["task.created", "task.completed", "task.updated"]
    );
    assert_eq!(task_event_types(&rows, &cid), ["task.created"]);
    assert_eq!(
        task_event_types(&rows, &pid),
        [
            "task.created",
            "task.updated",
            "task.completed",
            "task.updated",
            "task.deleted"
        ]
    );
    let completed = rows
        .iter()
        .find(|r| r.event_type == "task.completed" && r.partition_key == id)
        .unwrap();
    assert_eq!(completed.envelope["payload"]["status"], "completed");
    let deleted = rows
        .iter()
        .find(|r| r.event_type == "task.deleted")
        .unwrap();
    assert_eq!(deleted.envelope["payload"]["task_id"], pid.as_str());
    assert_eq!(deleted.envelope["payload"]["id"], pid.as_str());
    assert_eq!(deleted.envelope["payload"]["title"], "plain");
    assert_eq!(deleted.envelope["payload"]["description"], "after");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_under_load_answers_or_refuses_but_never_fails() {
    let mut srv = TestServer::start().await;
    let u = srv.user("alice");
    let mut set = tokio::task::JoinSet::new();
    for i in 0..40 {
        let u = u.clone();
        set.spawn(async move {
            u.req(reqwest::Method::POST, "/api/tasks")
                .json(&json!({ "title": format!("load-{i}") }))
                .send()
                .await
        });
    }
    tokio::time::sleep(Duration::from_millis(5)).await;
    srv.sigterm();
    let mut acked = Vec::new();
    while let Some(r) = set.join_next().await {
        if let Ok(resp) = r.unwrap()
            && let Some(r) = Resp::from_lenient(resp).await
        {
            assert_eq!(r.status, 201, "during shutdown: {} {}", r.status, r.text);
            acked.push(r.json);
        }
    }
    let st = srv.wait_exit(Duration::from_secs(30)).await;
    assert_eq!(st.and_then(|s| s.code()), Some(0), "{}", srv.stderr());
    srv.restart().await;
    let u = srv.user("alice");
    let listed = u.list_all("").await;
    for t in &acked {
        assert!(listed.contains(t), "acknowledged {t} lost after SIGTERM");
    }
}
