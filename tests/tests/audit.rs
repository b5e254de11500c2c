//! `GET /api/audit`: the audit consumer writes one row per event of `task-events` and
//! `reminders`; the route shows the caller's own rows, newest first, with filters and paging.
#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Value, json};
use taskstream_tests::{
    REMINDERS, TASK_EVENTS, TestServer, User, assert_utc, envelope_of, id_of, query, read_topic,
};

fn event_ids(rows: &[Value]) -> Vec<String> {
    rows.iter()
        .map(|r| r["event_id"].as_str().unwrap().to_string())
        .collect()
}

/// Waits until `u` has exactly `n` audit rows (never more) and returns them.
async fn wait_rows(u: &User, n: usize) -> Vec<Value> {
    let rows = taskstream_tests::eventually(
        &format!("{n} audit rows for {}", u.sub),
        taskstream_tests::CONSUMER_WAIT,
        || async {
            let rows = u.audit_all().await;
            if rows.len() >= n {
                Ok(rows)
            } else {
                Err(format!("{} rows: {:?}", rows.len(), event_types(&rows)))
            }
        },
    )
    .await;
    assert_eq!(
        rows.len(),
        n,
        "audit rows of {}: {:?}",
        u.sub,
        event_types(&rows)
    );
    rows
}

fn event_types(rows: &[Value]) -> Vec<String> {
    rows.iter()
        .map(|r| format!("{}:{}", r["event_type"], r["task_id"]))
        .collect()
}

async fn audit_has_one_row_per_event_filters_pages_and_is_private(mut srv: TestServer) {
    let alice = srv.user("alice");
    let bob = srv.user("bob");

    // alice: 6 audited events (task.sync is not audited).
    let t1 = alice
        .create(json!({ "title": "one", "due_date": "2030-05-01T10:00:00Z",
                        "reminder_offset_minutes": 10 }))
        .await; // task.created + reminder.scheduled
    let t1_id = id_of(&t1);
    let t2 = alice.create(json!({ "title": "two" })).await; // task.created
    let t2_id = id_of(&t2);
    alice
        .put_task(&t1_id, &json!({ "title": "one!" }))
        .await
        .expect(200); // task.updated
    alice.complete(&t2_id).await.expect(200); // task.completed
    alice.delete_task(&t1_id).await.expect(200); // task.deleted
    // bob: 2 events.
    let b = bob.create(json!({ "title": "bob's" })).await;
    bob.complete(&id_of(&b)).await.expect(200);

    let all = wait_rows(&alice, 6).await;
    let bob_rows = wait_rows(&bob, 2).await;

    // One row per event id.
    let ids: BTreeSet<String> = event_ids(&all).into_iter().collect();
    assert_eq!(ids.len(), 6, "duplicate event ids in {:?}", event_ids(&all));

    // Row fields.
    for r in all.iter().chain(&bob_rows) {
        uuid::Uuid::parse_str(r["id"].as_str().unwrap()).unwrap();
        uuid::Uuid::parse_str(r["event_id"].as_str().unwrap()).unwrap();
        assert_utc(&r["timestamp"]);
        assert_utc(&r["received_at"]);
        assert_eq!(r["source"], "chat-api", "{r}");
        assert!(r["payload"].is_object(), "{r}");
    }

    // Newest first.
    let received: Vec<_> = all.iter().map(|r| assert_utc(&r["received_at"])).collect();
    assert!(
        received.windows(2).all(|w| w[0] >= w[1]),
        "audit not newest first: {:?}",
        event_types(&all)
    );
    // Within one topic events are consumed in order, so task-events rows read newest first are
    // exactly alice's changes in reverse.
    let task_rows: Vec<(String, String)> = all
        .iter()
        .filter(|r| r["event_type"].as_str().unwrap().starts_with("task."))
        .map(|r| {
            (
                r["event_type"].as_str().unwrap().to_string(),
                r["task_id"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let s = |a: &str, b: &str| (a.to_string(), b.to_string());
    assert_eq!(
        task_rows,
        vec![
            s("task.deleted", &t1_id),
            s("task.completed", &t2_id),
            s("task.updated", &t1_id),
            s("task.created", &t2_id),
            s("task.created", &t1_id),
        ]
    );

    // Filter by task id.
    let only_t1 = alice.audit(&query(&[("task_id", &t1_id)])).await;
    let mut types: Vec<&str> = only_t1
        .iter()
        .map(|r| r["event_type"].as_str().unwrap())
        .collect();
    assert!(only_t1.iter().all(|r| r["task_id"] == t1_id.as_str()));
    types.sort_unstable();
    assert_eq!(
        types,
        [
            "reminder.scheduled",
            "task.created",
            "task.deleted",
            "task.updated"
        ]
    );
    // Filter by event type.
    let created = alice.audit("event_type=task.created").await;
    assert_eq!(created.len(), 2);
    assert!(created.iter().all(|r| r["event_type"] == "task.created"));
    let reminders = alice.audit("event_type=reminder.scheduled").await;
    assert_eq!(reminders.len(), 1);
    assert_eq!(reminders[0]["task_id"], t1_id.as_str());
    assert_eq!(reminders[0]["payload"]["task_title"], "one");
    // Both filters.
    let both = alice
        .audit(&query(&[
            ("task_id", &t2_id),
            ("event_type", "task.completed"),
        ]))
        .await;
    assert_eq!(both.len(), 1);
    assert_eq!(both[0]["payload"]["status"], "completed");
    assert!(alice.audit("event_type=task.sync").await.is_empty());
    assert!(alice.audit("event_type=nope").await.is_empty());

    // Paging.
    assert_eq!(alice.audit("").await, all, "default limit covers 6 rows");
    assert_eq!(alice.audit("limit=2").await, all[0..2].to_vec());
    assert_eq!(alice.audit("limit=2&offset=2").await, all[2..4].to_vec());
    assert_eq!(alice.audit("limit=100&offset=5").await, all[5..].to_vec());
    assert!(alice.audit("offset=6").await.is_empty());
    assert_eq!(alice.audit("limit=1000").await, all);
    assert_eq!(alice.audit("limit=1").await, all[0..1].to_vec());

    // Privacy: bob sees only his own rows, even filtering by alice's task.
    assert!(bob_rows.iter().all(|r| r["user_id"] == "bob"));
    let bob_ids: BTreeSet<String> = event_ids(&bob_rows).into_iter().collect();
    assert!(bob_ids.is_disjoint(&ids));
    assert!(bob.audit(&query(&[("task_id", &t1_id)])).await.is_empty());
    assert!(srv.user("carol").audit("").await.is_empty());

    // Authentication and validation.
    let anon = srv
        .client()
        .get(srv.url("/api/audit"))
        .send()
        .await
        .unwrap();
    let anon = taskstream_tests::Resp::from(anon).await;
    anon.expect_detail(401, "Not authenticated");
    for bad in [
        "limit=0",
        "limit=1001",
        "limit=abc",
        "limit=-1",
        "offset=-1",
        "offset=x",
    ] {
        let r = alice.get(&format!("/api/audit?{bad}")).await;
        let field = bad.split('=').next().unwrap();
        r.expect_invalid_at(json!(["query", field]));
    }

    // The rows are exactly the events that left the server: its log (embedded, read after a
    // stop) or what it published to the Dapr sidecar (cluster).
    let mut envelopes: Vec<Value> = Vec::new();
    if let Some(sidecar) = srv.sidecar() {
        for topic in [TASK_EVENTS, REMINDERS] {
            for published in sidecar.published_to(topic) {
                let event = published.cloud_event.expect("published as a CloudEvent");
                envelopes.push(event["data"].clone());
            }
        }
    } else {
        srv.stop().await;
        let log = srv.open_log();
        for topic in [TASK_EVENTS, REMINDERS] {
            for rec in read_topic(&log, topic).await {
                envelopes.push(envelope_of(&rec));
            }
        }
    }
    let mut by_id: BTreeMap<String, Value> = BTreeMap::new();
    for env in envelopes {
        by_id.insert(env["event_id"].as_str().unwrap().to_string(), env);
    }
    let alice_events: BTreeSet<String> = by_id
        .iter()
        .filter(|(_, e)| e["user_id"] == "alice")
        .map(|(k, _)| k.clone())
        .collect();
    assert_eq!(ids, alice_events, "alice's audit event ids vs the log");
    for r in all.iter().chain(&bob_rows) {
        let env = &by_id[r["event_id"].as_str().unwrap()];
        for k in ["event_type", "timestamp", "user_id", "source", "payload"] {
            assert_eq!(r[k], env[k], "audit {k} of {r}");
        }
        let p = &env["payload"];
        let task_id = if p["id"].is_string() {
            &p["id"]
        } else {
            &p["task_id"]
        };
        assert_eq!(&r["task_id"], task_id, "audit task_id of {r}");
    }
}

taskstream_tests::api_tests!(audit_has_one_row_per_event_filters_pages_and_is_private,);
