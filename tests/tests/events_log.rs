//! Every REST operation produces exactly the contract's events (CONTRACT.md §3), in order, with
//! the contract's payloads, read back from the embedded log after the server has stopped.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;

use serde_json::{Value, json};
use taskstream_tests::{
    CONSUMER_WAIT, ENVELOPE_KEYS, LogRecord, REMINDERS, TASK_EVENTS, TASK_KEYS, TASK_UPDATES,
    TestServer, assert_utc, envelope_of, eventually, id_of, key_of, key_set, keys_of, read_topic,
};

/// What one record of the log is expected to be.
#[derive(Clone, Debug)]
struct Want {
    event_type: &'static str,
    task_id: String,
    user_id: String,
    payload: Value,
}

fn task_event(event_type: &'static str, task: &Value) -> Want {
    let mut payload = task.clone();
    if event_type == "task.deleted" {
        payload["task_id"] = task["id"].clone();
    }
    Want {
        event_type,
        task_id: id_of(task),
        user_id: task["user_id"].as_str().unwrap().to_string(),
        payload,
    }
}

fn sync_event(action: &str, task: &Value) -> Want {
    Want {
        event_type: "task.sync",
        task_id: id_of(task),
        user_id: task["user_id"].as_str().unwrap().to_string(),
        payload: json!({ "task_id": task["id"], "action": action }),
    }
}

fn reminder_event(task: &Value) -> Want {
    assert!(!task["remind_at"].is_null(), "no reminder on {task}");
    Want {
        event_type: "reminder.scheduled",
        task_id: id_of(task),
        user_id: task["user_id"].as_str().unwrap().to_string(),
        payload: json!({
            "task_id": task["id"],
            "task_title": task["title"],
            "user_id": task["user_id"],
            "due_at": task["due_date"],
            "remind_at": task["remind_at"],
        }),
    }
}

/// The events of one operation, split by topic.
#[derive(Default)]
struct Expected {
    task_events: Vec<Want>,
    task_updates: Vec<Want>,
    reminders: Vec<Want>,
}

impl Expected {
    fn change(&mut self, event_type: &'static str, task: &Value) {
        self.task_events.push(task_event(event_type, task));
        let action = event_type.strip_prefix("task.").unwrap();
        self.task_updates.push(sync_event(action, task));
    }

    fn reminder(&mut self, task: &Value) {
        self.reminders.push(reminder_event(task));
    }
}

/// Compares the records of one topic with what was expected, in order.
fn check_topic(
    topic: &str,
    records: &[LogRecord],
    want: &[Want],
    event_ids: &mut BTreeSet<String>,
) {
    let got: Vec<(String, String)> = records
        .iter()
        .map(|r| {
            let e = envelope_of(r);
            (
                e["event_type"].as_str().unwrap_or("?").to_string(),
                key_of(r),
            )
        })
        .collect();
    let wanted: Vec<(String, String)> = want
        .iter()
        .map(|w| (w.event_type.to_string(), w.task_id.clone()))
        .collect();
    assert_eq!(got, wanted, "events (type, key) of topic {topic}, in order");

    for (r, w) in records.iter().zip(want) {
        let env = envelope_of(r);
        let at = format!("{topic}@{}", r.offset);
        assert_eq!(
            keys_of(&env),
            key_set(ENVELOPE_KEYS),
            "envelope keys at {at}: {env}"
        );
        assert_eq!(r.topic, topic);
        assert_eq!(r.partition, 0);
        let event_id = env["event_id"]
            .as_str()
            .unwrap_or_else(|| panic!("event_id at {at}"));
        let parsed = uuid::Uuid::parse_str(event_id)
            .unwrap_or_else(|_| panic!("event_id is not a uuid at {at}: {event_id}"));
        assert_eq!(
            parsed.hyphenated().to_string(),
            event_id,
            "event_id form at {at}"
        );
        assert!(
            event_ids.insert(event_id.to_string()),
            "duplicate event_id {event_id} at {at}"
        );
        assert_eq!(env["event_type"], w.event_type, "at {at}");
        assert_utc(&env["timestamp"]);
        assert_eq!(env["user_id"], w.user_id.as_str(), "user_id at {at}");
        assert_eq!(env["source"], "chat-api", "source at {at}");
        assert_eq!(env["specversion"], "1.0", "specversion at {at}");
        assert_eq!(
            r.key.as_deref(),
            Some(w.task_id.as_bytes()),
            "record key at {at}"
        );

        let p = &env["payload"];
        if topic == TASK_EVENTS {
            let mut keys = key_set(TASK_KEYS);
            if w.event_type == "task.deleted" {
                keys.insert("task_id".to_string());
            }
            assert_eq!(keys_of(p), keys, "payload keys at {at}: {p}");
            for k in ["due_date", "created_at", "updated_at", "remind_at"] {
                if !p[k].is_null() {
                    assert_utc(&p[k]);
                }
            }
        } else if topic == REMINDERS {
            assert_utc(&p["remind_at"]);
            if !p["due_at"].is_null() {
                assert_utc(&p["due_at"]);
            }
        }
        assert_eq!(p, &w.payload, "payload at {at} ({})", w.event_type);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_rest_operation_produces_exactly_the_contract_events_in_order() {
    let mut srv = TestServer::start().await;
    let alice = srv.user("alice");
    let bob = srv.user("bob");
    let mut x = Expected::default();

    // Create with a reminder: task.created + task.sync + reminder.scheduled.
    let a = alice
        .create(json!({
            "title": "Pay rent",
            "description": "before the 5th",
            "priority": "high",
            "tags": ["Home", "money"],
            "due_date": "2030-01-10T09:00:00+02:00",
            "reminder_offset_minutes": 30,
        }))
        .await;
    assert!(!a["remind_at"].is_null());
    x.change("task.created", &a);
    x.reminder(&a);
    let a_id = id_of(&a);

    // Update that moves the due date: the reminder is re-armed.
    let a1 = alice
        .put_task(
            &a_id,
            &json!({ "title": "Pay the rent", "due_date": "2030-01-11T09:00:00Z" }),
        )
        .await
        .expect(200)
        .clone();
    assert_ne!(a1["remind_at"], a["remind_at"]);
    x.change("task.updated", &a1);
    x.reminder(&a1);

    // Update that does not touch the reminder: no reminder.scheduled.
    let a2 = alice
        .put_task(&a_id, &json!({ "priority": "low" }))
        .await
        .expect(200)
        .clone();
    assert_eq!(a2["remind_at"], a1["remind_at"]);
    x.change("task.updated", &a2);

    // Update that clears the reminder: no reminder.scheduled.
    let a3 = alice
        .put_task(&a_id, &json!({ "reminder_offset_minutes": null }))
        .await
        .expect(200)
        .clone();
    assert!(a3["remind_at"].is_null());
    x.change("task.updated", &a3);

    // A plain task without due date or reminder.
    let p = alice.create(json!({ "title": "plain" })).await;
    x.change("task.created", &p);

    // A recurring task with a reminder.
    let r = alice
        .create(json!({
            "title": "Water plants",
            "due_date": "2030-02-01T08:00:00Z",
            "reminder_offset_minutes": 15,
            "is_recurring": true,
            "recurrence_rule": "DAILY",
        }))
        .await;
    x.change("task.created", &r);
    x.reminder(&r);
    let r_id = id_of(&r);

    // Completing it: task.completed, then the next occurrence's task.created (+ reminder).
    let done = alice.complete(&r_id).await.expect(200).clone();
    let completed = &done["completed_task"];
    let next = &done["next_task"];
    assert_eq!(completed["status"], "completed");
    assert!(
        next.is_object(),
        "recurring completion without next_task: {done}"
    );
    assert_eq!(next["parent_task_id"], r_id.as_str());
    x.change("task.completed", completed);
    x.change("task.created", next);
    if !next["remind_at"].is_null() {
        x.reminder(next);
    }

    // Completing it again emits nothing.
    let again = alice.complete(&r_id).await.expect(200).clone();
    assert_eq!(again["next_task"], Value::Null);
    assert_eq!(&again["completed_task"], completed);

    // Completing a plain task: task.completed only.
    let p_done = alice.complete(&id_of(&p)).await.expect(200).clone();
    assert_eq!(p_done["next_task"], Value::Null);
    x.change("task.completed", &p_done["completed_task"]);

    // Delete: task.deleted carries the full task plus task_id.
    let del = alice.delete_task(&a_id).await;
    assert_eq!(del.expect(200), &json!({ "id": a_id, "deleted": true }));
    x.change("task.deleted", &a3);

    // Another user's events carry their own user id.
    let b = bob
        .create(json!({
            "title": "bob's",
            "due_date": "2030-03-01T10:00:00Z",
            "reminder_offset_minutes": 60,
        }))
        .await;
    x.change("task.created", &b);
    x.reminder(&b);

    // A failed request emits nothing.
    alice
        .put_task(&id_of(&b), &json!({ "title": "not mine" }))
        .await
        .expect(403);
    alice.delete_task(&a_id).await.expect(404);

    // Wait until the consumers have seen the last events (so the relay has run), then stop.
    // The relay publishes in outbox order and bob's reminder is the last row, so once every
    // task-events and reminders event is audited the outbox has been relayed.
    for u in [&alice, &bob] {
        let n = x
            .task_events
            .iter()
            .chain(&x.reminders)
            .filter(|w| w.user_id == u.sub)
            .count();
        eventually(
            &format!("{n} audit rows for {}", u.sub),
            CONSUMER_WAIT,
            || async {
                let rows = u.audit_all().await;
                if rows.len() >= n {
                    Ok(())
                } else {
                    Err(format!("{} rows", rows.len()))
                }
            },
        )
        .await;
    }
    srv.stop().await;

    let db = srv.data_dir().join("taskstream.db");
    let log = srv.open_log();
    let task_events = read_topic(&log, TASK_EVENTS).await;
    let task_updates = read_topic(&log, TASK_UPDATES).await;
    let reminders = read_topic(&log, REMINDERS).await;
    drop(log);

    let mut event_ids = BTreeSet::new();
    check_topic(TASK_EVENTS, &task_events, &x.task_events, &mut event_ids);
    check_topic(TASK_UPDATES, &task_updates, &x.task_updates, &mut event_ids);
    check_topic(REMINDERS, &reminders, &x.reminders, &mut event_ids);

    // The outbox has been relayed completely.
    let conn = rusqlite::Connection::open_with_flags(
        &db,
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .unwrap();
    let left: i64 = conn
        .query_row("SELECT COUNT(*) FROM outbox", [], |r| r.get(0))
        .unwrap();
    assert_eq!(left, 0, "outbox rows left after a clean stop");
    drop(conn);

    // A restart relays nothing twice.
    srv.restart().await;
    let alice = srv.user("alice");
    assert_eq!(
        alice.list("").await.len(),
        3,
        "plain, completed series, next occurrence"
    );
    srv.stop().await;
    let log = srv.open_log();
    assert_eq!(
        read_topic(&log, TASK_EVENTS).await.len(),
        x.task_events.len()
    );
    assert_eq!(
        read_topic(&log, TASK_UPDATES).await.len(),
        x.task_updates.len()
    );
    assert_eq!(read_topic(&log, REMINDERS).await.len(), x.reminders.len());
}
