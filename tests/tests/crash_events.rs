//! Crash safety of the event backbone: SIGKILL the server at random moments under a concurrent
//! write load, restart it, repeat; then check that every acknowledged write is in the store,
//! every acknowledged change has its event in the log (at least once), the audit holds exactly
//! one row per event id, each completed recurring task has exactly one next occurrence, and each
//! triggered reminder exactly one notification.
//!
//! The kill moments come from a small PRNG seeded from the clock; the seed is printed, and
//! `CRASH_SEED=<n>` replays a run.
#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};
use taskstream_tests::{
    CONSUMER_WAIT, REMINDERS, Resp, TASK_EVENTS, TestServer, User, append, envelope, envelope_of,
    envelope_record, eventually, id_of, key_of, read_topic,
};

/// xorshift64*: small, deterministic, good enough to pick moments and operations.
#[derive(Clone)]
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Rng(seed.max(1))
    }

    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

const USERS: [&str; 3] = ["alice", "bob", "carol"];
const WORKERS: usize = 6;
const ROUNDS: usize = 5;

/// An acknowledged change: the log must hold a `task.*` event with this task id, type, status
/// and title (titles are unique per write).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Change {
    task_id: String,
    event_type: String,
    status: String,
    title: String,
}

impl Change {
    fn of(event_type: &str, task: &Value) -> Self {
        Change {
            task_id: id_of(task),
            event_type: event_type.to_string(),
            status: task["status"].as_str().unwrap().to_string(),
            title: task["title"].as_str().unwrap().to_string(),
        }
    }
}

/// A write whose answer was lost in a kill: it may or may not have happened.
#[derive(Clone, Debug)]
enum Doubt {
    Create { title: String },
    Update { id: String, title: String },
    Complete { id: String },
    Delete { id: String },
}

#[derive(Default)]
struct Ledger {
    /// task id -> last acknowledged state (`None` once deleted).
    state: BTreeMap<String, Option<Value>>,
    /// task id -> the worker that writes it (so that no two workers race on one task).
    worker: BTreeMap<String, usize>,
    changes: Vec<Change>,
    doubts: Vec<Doubt>,
    /// Tasks with a doubtful write are left alone from then on.
    frozen: BTreeSet<String>,
}

impl Ledger {
    fn created(&mut self, t: &Value, worker: usize) {
        let id = id_of(t);
        self.worker.insert(id.clone(), worker);
        self.changes.push(Change::of("task.created", t));
        self.state.insert(id, Some(t.clone()));
    }

    fn updated(&mut self, t: &Value) {
        self.changes.push(Change::of("task.updated", t));
        self.state.insert(id_of(t), Some(t.clone()));
    }

    fn completed(&mut self, body: &Value, worker: usize) {
        let done = &body["completed_task"];
        self.changes.push(Change::of("task.completed", done));
        self.state.insert(id_of(done), Some(done.clone()));
        if body["next_task"].is_object() {
            self.created(&body["next_task"], worker);
        }
    }

    fn deleted(&mut self, before: &Value) {
        self.changes.push(Change::of("task.deleted", before));
        self.state.insert(id_of(before), None);
    }

    fn doubt(&mut self, d: Doubt) {
        match &d {
            Doubt::Create { .. } => {}
            Doubt::Update { id, .. } | Doubt::Complete { id } | Doubt::Delete { id } => {
                self.frozen.insert(id.clone());
            }
        }
        self.doubts.push(d);
    }

    /// A live task of `worker` nobody has doubts about.
    fn pick(&self, worker: usize, rng: &mut Rng, want: &dyn Fn(&Value) -> bool) -> Option<Value> {
        let candidates: Vec<&Value> = self
            .state
            .iter()
            .filter(|(id, _)| !self.frozen.contains(*id) && self.worker[*id] == worker)
            .filter_map(|(_, t)| t.as_ref())
            .filter(|t| want(t))
            .collect();
        if candidates.is_empty() {
            return None;
        }
        Some(candidates[rng.below(candidates.len() as u64) as usize].clone())
    }
}

fn create_body(title: &str, rng: &mut Rng) -> Value {
    let priority = ["low", "medium", "high"][rng.below(3) as usize];
    let mut b = json!({ "title": title, "priority": priority });
    let kind = rng.below(4);
    if kind >= 1 {
        b["due_date"] = json!(format!(
            "2031-0{}-1{}T09:00:00Z",
            1 + rng.below(9),
            rng.below(10)
        ));
    }
    if kind >= 2 {
        b["reminder_offset_minutes"] = json!(5 + rng.below(100));
    }
    if kind == 3 || (kind >= 1 && rng.below(3) == 0) {
        b["is_recurring"] = json!(true);
        let rule = ["DAILY", "WEEKLY", "MONTHLY"][rng.below(3) as usize];
        b["recurrence_rule"] = json!(rule);
    }
    b
}

/// `None` when the request failed or its answer could not be read (the server died).
async fn send(u: &User, method: &str, path: &str, body: Option<&Value>) -> Option<Resp> {
    let m = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
    let mut rb = u.req(m, path).timeout(Duration::from_secs(20));
    if let Some(b) = body {
        rb = rb.json(b);
    }
    let r = rb.send().await.ok()?;
    Resp::from_lenient(r).await
}

/// One worker: a user issuing writes one after another until a request fails.
async fn worker(u: User, w: usize, ledger: Arc<Mutex<Ledger>>, mut rng: Rng, tag: String) {
    for n in 0.. {
        let title = format!("{tag}-{n}");
        let op = rng.below(10);
        let pick = |want: &dyn Fn(&Value) -> bool, rng: &mut Rng| {
            ledger.lock().unwrap().pick(w, rng, want)
        };
        // 0-3 create, 4-5 update, 6-8 complete, 9 delete (non-recurring only).
        let target = match op {
            4 | 5 => pick(&|_| true, &mut rng),
            6..=8 => pick(&|t| t["status"] != "completed", &mut rng),
            9 => pick(&|t| t["is_recurring"] == false, &mut rng),
            _ => None,
        };
        match (op, target) {
            (4 | 5, Some(t)) => {
                let id = id_of(&t);
                let body = json!({ "title": title, "description": format!("update {n}") });
                match send(&u, "PUT", &format!("/api/tasks/{id}"), Some(&body)).await {
                    Some(r) => ledger.lock().unwrap().updated(r.expect(200)),
                    None => {
                        ledger.lock().unwrap().doubt(Doubt::Update { id, title });
                        return;
                    }
                }
            }
            (6..=8, Some(t)) => {
                let id = id_of(&t);
                match send(&u, "PATCH", &format!("/api/tasks/{id}/complete"), None).await {
                    Some(r) => ledger.lock().unwrap().completed(r.expect(200), w),
                    None => {
                        ledger.lock().unwrap().doubt(Doubt::Complete { id });
                        return;
                    }
                }
            }
            (9, Some(t)) => {
                let id = id_of(&t);
                match send(&u, "DELETE", &format!("/api/tasks/{id}"), None).await {
                    Some(r) => {
                        assert_eq!(r.expect(200), &json!({ "id": id, "deleted": true }));
                        ledger.lock().unwrap().deleted(&t);
                    }
                    None => {
                        ledger.lock().unwrap().doubt(Doubt::Delete { id });
                        return;
                    }
                }
            }
            _ => {
                let body = create_body(&title, &mut rng);
                match send(&u, "POST", "/api/tasks", Some(&body)).await {
                    Some(r) => ledger.lock().unwrap().created(r.expect(201), w),
                    None => {
                        ledger.lock().unwrap().doubt(Doubt::Create { title });
                        return;
                    }
                }
            }
        }
    }
}

/// Appends `n` `reminder.triggered` events (round-robin over the users) to the stopped server's
/// log, as the reminder scheduler would.
async fn fire_reminders(srv: &TestServer, triggered: &mut Vec<Value>, n: usize) {
    let log = srv.open_log();
    let mut records = Vec::new();
    for _ in 0..n {
        let i = triggered.len();
        let user = USERS[i % USERS.len()];
        let task_id = uuid::Uuid::new_v4().to_string();
        let env = envelope(
            "reminder.triggered",
            user,
            json!({ "task_id": task_id, "task_title": format!("fired-{i}"), "user_id": user,
                    "due_at": "2030-01-01T10:00:00Z", "remind_at": "2030-01-01T09:00:00Z" }),
        );
        records.push(envelope_record(&task_id, &env));
        triggered.push(env);
    }
    append(&log, REMINDERS, records).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_under_write_load_loses_nothing_and_duplicates_no_effect() {
    let seed = std::env::var("CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
        });
    println!("crash test seed: CRASH_SEED={seed}");
    let mut rng = Rng::new(seed);

    let mut srv = TestServer::start().await;
    // Reminders fired while the server was down (appended before every start): each must give
    // exactly one notification, however often the notification consumer is killed.
    srv.stop().await;
    let mut triggered: Vec<Value> = Vec::new();
    fire_reminders(&srv, &mut triggered, 30).await;
    srv.restart().await;

    let ledger = Arc::new(Mutex::new(Ledger::default()));
    for round in 0..ROUNDS {
        let mut set = tokio::task::JoinSet::new();
        for w in 0..WORKERS {
            let u = srv.user(USERS[w % USERS.len()]);
            let wrng = Rng::new(rng.next());
            // Worker slots carry over rounds, so tasks keep being updated and completed.
            set.spawn(worker(
                u,
                w,
                Arc::clone(&ledger),
                wrng,
                format!("r{round}w{w}"),
            ));
        }
        let wait = 150 + rng.below(850);
        println!("round {round}: SIGKILL after {wait} ms");
        tokio::time::sleep(Duration::from_millis(wait)).await;
        srv.sigkill();
        while let Some(r) = set.join_next().await {
            r.unwrap();
        }
        fire_reminders(&srv, &mut triggered, 12).await;
        srv.restart().await;
    }

    // Resolve the doubts against the store, then compare everything acknowledged.
    let l = Arc::try_unwrap(ledger).ok().unwrap().into_inner().unwrap();
    let users: Vec<User> = USERS.iter().map(|u| srv.user(u)).collect();
    let mut listed: BTreeMap<String, Value> = BTreeMap::new();
    for u in &users {
        for t in u.list_all("").await {
            assert_eq!(t["user_id"], u.sub.as_str());
            listed.insert(id_of(&t), t);
        }
    }
    let doubtful_titles: BTreeSet<String> = l
        .doubts
        .iter()
        .filter_map(|d| match d {
            Doubt::Create { title } => Some(title.clone()),
            _ => None,
        })
        .collect();
    let doubtful_ids: BTreeSet<String> = l.frozen.clone();
    for (id, t) in &listed {
        if l.state.contains_key(id) {
            continue;
        }
        // Unknown: a create whose answer was lost, or the next occurrence of a completion
        // whose answer was lost.
        let title = t["title"].as_str().unwrap();
        let parent = t["parent_task_id"].as_str().unwrap_or_default();
        assert!(
            doubtful_titles.contains(title) || doubtful_ids.contains(parent),
            "unknown task in the store: {t}"
        );
    }
    let mut acked = 0;
    for (id, want) in &l.state {
        let got = listed.get(id);
        if doubtful_ids.contains(id) {
            continue;
        }
        acked += 1;
        match want {
            Some(t) => assert_eq!(got, Some(t), "acknowledged state of {id}"),
            None => assert!(got.is_none(), "deleted task {id} is back: {got:?}"),
        }
    }
    for d in &l.doubts {
        match d {
            Doubt::Create { .. } => {}
            Doubt::Update { id, title } => {
                let before = l.state[id].as_ref().unwrap();
                let got = &listed[id];
                assert!(
                    got == before || got["title"] == title.as_str(),
                    "doubtful update of {id} half applied: {got}"
                );
            }
            Doubt::Complete { id } => {
                let got = &listed[id];
                assert!(
                    Some(got) == l.state[id].as_ref() || got["status"] == "completed",
                    "doubtful completion of {id}: {got}"
                );
            }
            Doubt::Delete { id } => {
                if let Some(got) = listed.get(id) {
                    assert_eq!(Some(got), l.state[id].as_ref(), "doubtful delete of {id}");
                }
            }
        }
    }
    println!(
        "{} acknowledged changes over {acked} tasks, {} doubtful writes",
        l.changes.len(),
        l.doubts.len()
    );
    assert!(l.changes.len() >= 20, "too little load to mean anything");

    // Each completed recurring task has exactly one next occurrence.
    let mut children: BTreeMap<String, usize> = BTreeMap::new();
    for t in listed.values() {
        if let Some(p) = t["parent_task_id"].as_str() {
            *children.entry(p.to_string()).or_default() += 1;
        }
    }
    let mut completed_series = 0;
    for (id, t) in &listed {
        if t["status"] == "completed"
            && t["is_recurring"] == true
            && !t["recurrence_rule"].is_null()
        {
            completed_series += 1;
            assert_eq!(children.get(id), Some(&1), "next occurrences of {id}");
        }
    }
    assert!(children.values().all(|n| *n == 1), "{children:?}");
    println!("{completed_series} completed recurring tasks");

    // Let the consumers catch up: every triggered reminder has exactly one notification.
    for u in &users {
        let want: BTreeSet<String> = triggered
            .iter()
            .filter(|e| e["user_id"] == u.sub.as_str())
            .map(|e| e["payload"]["task_title"].as_str().unwrap().to_string())
            .collect();
        let notes = eventually(
            &format!("notifications of {}", u.sub),
            CONSUMER_WAIT,
            || async {
                let n = u.notifications().await;
                if n.len() >= want.len() {
                    Ok(n)
                } else {
                    Err(format!("{} of {}", n.len(), want.len()))
                }
            },
        )
        .await;
        let mut titles: Vec<String> = notes
            .iter()
            .map(|n| n["title"].as_str().unwrap().to_string())
            .collect();
        titles.sort();
        assert_eq!(
            titles,
            want.into_iter().collect::<Vec<_>>(),
            "notifications of {}",
            u.sub
        );
    }

    // Stop and read the log.
    srv.stop().await;
    let log = srv.open_log();
    let task_events = read_topic(&log, TASK_EVENTS).await;
    let reminders = read_topic(&log, REMINDERS).await;
    drop(log);

    // Every acknowledged change has its event (at least once).
    let mut in_log: BTreeMap<Change, usize> = BTreeMap::new();
    let mut per_user: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for r in task_events.iter().chain(&reminders) {
        let env = envelope_of(r);
        per_user
            .entry(env["user_id"].as_str().unwrap().to_string())
            .or_default()
            .insert(env["event_id"].as_str().unwrap().to_string());
        if r.topic == TASK_EVENTS {
            let p = &env["payload"];
            assert_eq!(key_of(r), id_of(p), "record key of {env}");
            *in_log
                .entry(Change::of(env["event_type"].as_str().unwrap(), p))
                .or_default() += 1;
        }
    }
    let mut want: BTreeMap<Change, usize> = BTreeMap::new();
    for c in &l.changes {
        *want.entry(c.clone()).or_default() += 1;
    }
    let missing: Vec<_> = want
        .iter()
        .filter(|(c, n)| in_log.get(*c).copied().unwrap_or(0) < **n)
        .take(10)
        .collect();
    assert!(
        missing.is_empty(),
        "acknowledged changes without their event (first 10 of {}): {missing:?}",
        want.len()
    );

    // The audit: exactly one row per distinct event id, for every user.
    srv.restart().await;
    for sub in USERS {
        let u = srv.user(sub);
        let ids = per_user.remove(sub).unwrap_or_default();
        let rows = u.wait_audited_within(&ids, Duration::from_secs(60)).await;
        let got: Vec<String> = rows
            .iter()
            .map(|r| r["event_id"].as_str().unwrap().to_string())
            .collect();
        let set: BTreeSet<String> = got.iter().cloned().collect();
        assert_eq!(set.len(), got.len(), "duplicate audit rows for {sub}");
        assert_eq!(set, ids, "audit event ids of {sub}");
    }
    assert!(
        per_user.is_empty(),
        "events of unexpected users: {per_user:?}"
    );
    srv.stop().await;
}
