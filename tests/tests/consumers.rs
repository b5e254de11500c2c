//! Consumers on the embedded log: durable offsets across restarts, catching up after downtime,
//! poison records dead-lettered without blocking the partition, and notifications made exactly
//! once from `reminder.triggered`.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;

use serde_json::{Value, json};
use taskstream_tests::{
    CONSUMER_WAIT, REMINDERS, REMINDERS_DLQ, TASK_EVENTS, TASK_EVENTS_DLQ, TestServer, User,
    append, assert_utc, envelope, envelope_record, eventually, fake_task, id_of, key_of, query,
    read_topic, record,
};

fn event_id(env: &Value) -> String {
    env["event_id"].as_str().unwrap().to_string()
}

fn ids_of(rows: &[Value]) -> Vec<String> {
    rows.iter()
        .map(|r| r["event_id"].as_str().unwrap().to_string())
        .collect()
}

/// Panics if an event id appears in more than one audit row.
#[track_caller]
fn assert_unique(rows: &[Value]) -> BTreeSet<String> {
    let ids = ids_of(rows);
    let set: BTreeSet<String> = ids.iter().cloned().collect();
    assert_eq!(set.len(), ids.len(), "duplicate audit rows: {ids:?}");
    set
}

/// The audit event ids of `u` once `want` rows are there (asserting there are not more).
async fn audited_exactly(u: &User, want: usize) -> BTreeSet<String> {
    let rows = eventually(
        &format!("{want} audit rows for {}", u.sub),
        CONSUMER_WAIT,
        || async {
            let rows = u.audit_all().await;
            if rows.len() >= want {
                Ok(rows)
            } else {
                Err(format!("{} rows", rows.len()))
            }
        },
    )
    .await;
    assert_eq!(rows.len(), want, "audit rows of {}", u.sub);
    assert_unique(&rows)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consumer_offsets_survive_restart_and_new_events_are_audited() {
    let mut srv = TestServer::start().await;
    let alice = srv.user("alice");
    for i in 0..3 {
        alice.create(json!({ "title": format!("t{i}") })).await;
    }
    alice
        .create(
            json!({ "title": "remind", "due_date": "2030-01-01T00:00:00Z",
                        "reminder_offset_minutes": 5 }),
        )
        .await;
    let before = audited_exactly(&alice, 5).await;

    // Restart twice (SIGTERM, then SIGKILL) and make a change touching both audited topics:
    // when its rows are there, anything re-read from an old offset would be there too.
    let mut expected = before.clone();
    for (round, kill) in [(0, false), (1, true)] {
        if kill {
            srv.sigkill();
        }
        srv.restart().await;
        let alice = srv.user("alice");
        let t = alice
            .create(
                json!({ "title": format!("after-{round}"), "due_date": "2030-02-01T00:00:00Z",
                            "reminder_offset_minutes": 5 }),
            )
            .await;
        let now = audited_exactly(&alice, expected.len() + 2).await;
        assert!(now.is_superset(&expected), "audit rows lost across restart");
        let new: Vec<&String> = now.difference(&expected).collect();
        assert_eq!(new.len(), 2);
        let rows = alice.audit(&query(&[("task_id", &id_of(&t))])).await;
        let mut types: Vec<&str> = rows
            .iter()
            .map(|r| r["event_type"].as_str().unwrap())
            .collect();
        types.sort_unstable();
        assert_eq!(types, ["reminder.scheduled", "task.created"]);
        expected = now;
    }

    // After catching up, the audit group's committed offsets are the end offsets.
    srv.stop().await;
    let log = srv.open_log();
    for topic in [TASK_EVENTS, REMINDERS] {
        let end = log.end_offset(topic, 0).unwrap();
        let committed = log.committed_offset("audit", topic, 0).await.unwrap();
        assert_eq!(committed, Some(end), "audit offset of {topic}");
    }
    // At least once: a kill between publishing and clearing the outbox may repeat events.
    assert!(log.end_offset(TASK_EVENTS, 0).unwrap() >= 6);
    assert!(log.end_offset(REMINDERS, 0).unwrap() >= 3);
    drop(log);

    // A third start with nothing new: still exactly the same rows.
    srv.restart().await;
    let alice = srv.user("alice");
    let rows = alice.audit_all().await;
    assert_eq!(assert_unique(&rows), expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_consumer_that_was_down_catches_up() {
    let mut srv = TestServer::start().await;
    let dave = srv.user("dave");
    assert!(dave.audit_all().await.is_empty());
    srv.stop().await;

    // While the server is down, events arrive in the log.
    let log = srv.open_log();
    let mut envs = Vec::new();
    for i in 0..25 {
        let task = fake_task("dave", &format!("offline-{i}"));
        let env = envelope("task.created", "dave", task.clone());
        append(
            &log,
            TASK_EVENTS,
            vec![envelope_record(&id_of(&task), &env)],
        )
        .await;
        envs.push(env);
    }
    let end = log.end_offset(TASK_EVENTS, 0).unwrap();
    drop(log);

    srv.restart().await;
    let dave = srv.user("dave");
    let want: BTreeSet<String> = envs.iter().map(event_id).collect();
    let rows = dave.wait_audited(&want).await;
    assert_eq!(assert_unique(&rows), want);
    for env in &envs {
        let row = rows
            .iter()
            .find(|r| r["event_id"] == env["event_id"])
            .unwrap();
        assert_eq!(row["event_type"], "task.created");
        assert_eq!(row["timestamp"], env["timestamp"]);
        assert_eq!(row["user_id"], "dave");
        assert_eq!(row["source"], "chat-api");
        assert_eq!(row["task_id"], env["payload"]["id"]);
        assert_eq!(row["payload"], env["payload"]);
        assert_utc(&row["received_at"]);
    }
    // Events that exist only in the log create no tasks.
    assert!(dave.list("").await.is_empty());

    srv.stop().await;
    let log = srv.open_log();
    assert_eq!(
        log.committed_offset("audit", TASK_EVENTS, 0).await.unwrap(),
        Some(end)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn poison_records_go_to_the_dlq_and_do_not_block_the_partition() {
    let mut srv = TestServer::start().await;
    let alice = srv.user("alice");
    let t = alice.create(json!({ "title": "before" })).await;
    audited_exactly(&alice, 1).await;
    srv.stop().await;

    let poison: Vec<(&str, &[u8])> = vec![
        ("poison-1", b"not json {"),
        ("poison-2", br#"{"hello":"world"}"#),
        ("poison-3", &[0xff, 0xfe, 0x00, 0x01]),
    ];
    let log = srv.open_log();
    let after_task = fake_task("alice", "after poison");
    let valid_task = envelope("task.created", "alice", after_task.clone());
    let mut records: Vec<_> = poison.iter().map(|(k, v)| record(k, v.to_vec())).collect();
    records.push(envelope_record(&id_of(&after_task), &valid_task));
    append(&log, TASK_EVENTS, records).await;
    let valid_reminder = envelope(
        "reminder.triggered",
        "alice",
        json!({ "task_id": id_of(&t), "task_title": "before", "user_id": "alice",
                "due_at": "2030-01-01T10:00:00Z", "remind_at": "2030-01-01T09:00:00Z" }),
    );
    append(
        &log,
        REMINDERS,
        vec![
            record("poison-r", b"{\"event_id\": 42}".to_vec()),
            envelope_record(&id_of(&t), &valid_reminder),
        ],
    )
    .await;
    drop(log);

    srv.restart().await;
    let alice = srv.user("alice");
    let want: BTreeSet<String> = [event_id(&valid_task), event_id(&valid_reminder)].into();
    let rows = alice.wait_audited(&want).await;
    assert_eq!(rows.len(), 3, "{:?}", ids_of(&rows));
    assert_unique(&rows);
    // The notification consumer got past the poison too.
    let notes = eventually("a notification after the poison", CONSUMER_WAIT, || async {
        let n = alice.notifications().await;
        if n.is_empty() {
            Err("none".to_string())
        } else {
            Ok(n)
        }
    })
    .await;
    assert_eq!(notes.len(), 1);
    assert_eq!(notes[0]["title"], "before");
    // New REST events still flow.
    let later = alice.create(json!({ "title": "later" })).await;
    let rows = eventually("the later task audited", CONSUMER_WAIT, || async {
        let rows = alice.audit(&query(&[("task_id", &id_of(&later))])).await;
        if rows.is_empty() {
            Err("none".to_string())
        } else {
            Ok(rows)
        }
    })
    .await;
    assert_eq!(rows.len(), 1);

    srv.stop().await;
    let log = srv.open_log();
    let dlq = read_topic(&log, TASK_EVENTS_DLQ).await;
    for (k, v) in &poison {
        assert!(
            dlq.iter().any(|r| r.value == *v && key_of(r) == *k),
            "{k} ({:?}) not in {TASK_EVENTS_DLQ}: {:?}",
            String::from_utf8_lossy(v),
            dlq.iter()
                .map(|r| String::from_utf8_lossy(&r.value).into_owned())
                .collect::<Vec<_>>()
        );
    }
    let valid: Vec<u8> = serde_json::to_vec(&valid_task).unwrap();
    assert!(
        dlq.iter()
            .all(|r| poison.iter().any(|(_, v)| r.value == *v) && r.value != valid),
        "only poison in {TASK_EVENTS_DLQ}"
    );
    let rdlq = read_topic(&log, REMINDERS_DLQ).await;
    assert!(
        rdlq.iter()
            .any(|r| r.value == b"{\"event_id\": 42}" && key_of(r) == "poison-r"),
        "poison not in {REMINDERS_DLQ}"
    );
    assert!(rdlq.iter().all(|r| r.value == b"{\"event_id\": 42}"));
    // The consumers whose effects we saw moved past the poison to the end.
    for (group, topic) in [
        ("audit", TASK_EVENTS),
        ("audit", REMINDERS),
        ("notification", REMINDERS),
    ] {
        let committed = log.committed_offset(group, topic, 0).await.unwrap();
        let end = log.end_offset(topic, 0).unwrap();
        assert_eq!(committed, Some(end), "{group} on {topic}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reminder_triggered_makes_exactly_one_notification() {
    let mut srv = TestServer::start().await;
    let alice = srv.user("alice");
    let t = alice
        .create(
            json!({ "title": "Pay rent", "due_date": "2030-01-05T09:00:00Z",
                        "reminder_offset_minutes": 60 }),
        )
        .await;
    assert!(alice.notifications().await.is_empty());
    // reminder.scheduled makes no notification; wait until it is audited to be sure it was read.
    audited_exactly(&alice, 2).await;
    assert!(alice.notifications().await.is_empty());
    srv.stop().await;

    let triggered = |task: &Value, title: &str| {
        envelope(
            "reminder.triggered",
            "alice",
            json!({ "task_id": task["id"], "task_title": title, "user_id": "alice",
                    "due_at": task["due_date"], "remind_at": task["remind_at"] }),
        )
    };
    let first = triggered(&t, "Pay rent");
    let log = srv.open_log();
    append(&log, REMINDERS, vec![envelope_record(&id_of(&t), &first)]).await;
    drop(log);

    srv.restart().await;
    let alice = srv.user("alice");
    let bob_now = srv.user("bob");
    let notes = eventually("alice's notification", CONSUMER_WAIT, || async {
        let n = alice.notifications().await;
        if n.is_empty() {
            Err("none".to_string())
        } else {
            Ok(n)
        }
    })
    .await;
    assert_eq!(notes.len(), 1, "{notes:?}");
    let n = &notes[0];
    assert_eq!(n["kind"], "reminder");
    assert_eq!(n["title"], "Pay rent");
    assert_eq!(n["task_id"], t["id"]);
    assert!(n["message"].as_str().is_some_and(|m| !m.is_empty()), "{n}");
    assert_utc(&n["created_at"]);
    assert_eq!(n["read_at"], Value::Null);
    assert_eq!(n["payload"], first["payload"]);
    let nid = n["id"].as_str().unwrap().to_string();
    uuid::Uuid::parse_str(&nid).unwrap();
    assert!(bob_now.notifications().await.is_empty());

    // Mark read: only the owner can.
    bob_now
        .post(&format!("/api/notifications/{nid}/read"), &json!({}))
        .await
        .expect_detail(404, "Notification not found");
    alice
        .post(
            &format!("/api/notifications/{}/read", uuid::Uuid::new_v4()),
            &json!({}),
        )
        .await
        .expect_detail(404, "Notification not found");
    let read = alice
        .post(&format!("/api/notifications/{nid}/read"), &json!({}))
        .await
        .expect(200)
        .clone();
    assert_eq!(read["id"], nid.as_str());
    let read_at = assert_utc(&read["read_at"]);
    for k in [
        "kind",
        "task_id",
        "title",
        "message",
        "created_at",
        "payload",
    ] {
        assert_eq!(read[k], n[k], "{k} after mark read");
    }
    let listed = alice.notifications().await;
    assert_eq!(listed, vec![read.clone()]);
    assert!(bob_now.notifications().await.is_empty());
    assert_eq!(assert_utc(&listed[0]["read_at"]), read_at);
    let anon = srv
        .client()
        .get(srv.url("/api/notifications"))
        .send()
        .await
        .unwrap();
    taskstream_tests::Resp::from(anon)
        .await
        .expect_detail(401, "Not authenticated");

    // Redelivery of the same event (same event_id) and a new one for another task, after a
    // restart: the duplicate makes nothing, the new one one notification, the read state stays.
    srv.stop().await;
    let t2 = json!({ "id": uuid::Uuid::new_v4().to_string(), "due_date": null,
                     "remind_at": "2030-01-06T09:00:00Z" });
    let second = triggered(&t2, "Call mom");
    let log = srv.open_log();
    append(
        &log,
        REMINDERS,
        vec![
            envelope_record(&id_of(&t), &first),
            envelope_record(&id_of(&t2), &second),
        ],
    )
    .await;
    drop(log);
    srv.restart().await;
    let alice = srv.user("alice");
    let notes = eventually("alice's second notification", CONSUMER_WAIT, || async {
        let n = alice.notifications().await;
        if n.iter().any(|x| x["title"] == "Call mom") {
            Ok(n)
        } else {
            Err(format!("{n:?}"))
        }
    })
    .await;
    assert_eq!(notes.len(), 2, "{notes:?}");
    assert_eq!(notes[0]["title"], "Call mom", "newest first");
    assert_eq!(notes[0]["read_at"], Value::Null);
    assert_eq!(notes[1], read, "the first notification, still read");
    assert!(srv.user("bob").notifications().await.is_empty());

    // The audit has one row per triggered event id too.
    let want: BTreeSet<String> = [event_id(&first), event_id(&second)].into();
    let audited = eventually("both triggers audited", CONSUMER_WAIT, || async {
        let rows = alice.audit("event_type=reminder.triggered").await;
        let have: BTreeSet<String> = ids_of(&rows).into_iter().collect();
        if have == want {
            Ok(rows)
        } else {
            Err(format!("{have:?}"))
        }
    })
    .await;
    assert_eq!(audited.len(), 2);

    // The notification consumer has committed everything, so one more start changes nothing.
    srv.stop().await;
    let log = srv.open_log();
    let end = log.end_offset(REMINDERS, 0).unwrap();
    assert_eq!(
        log.committed_offset("notification", REMINDERS, 0)
            .await
            .unwrap(),
        Some(end)
    );
    drop(log);
    srv.restart().await;
    let alice = srv.user("alice");
    assert_eq!(alice.notifications().await, notes);
}
