//! `GET /api/events`: a Server-Sent Events stream of the caller's own `task.sync` (and
//! `reminder.triggered`) events, each `data:` line an envelope, resumable with `Last-Event-ID`.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use serde_json::{Value, json};
use taskstream_tests::{
    ENVELOPE_KEYS, REMINDERS, Resp, SseEvent, SseStream, TestServer, append, assert_utc, envelope,
    envelope_record, id_of, key_set, keys_of,
};

/// Generous: a frame that should come is waited for this long (never a timing assertion).
const COME: Duration = Duration::from_secs(10);
/// A frame that should not come is given this long to show up.
const QUIET: Duration = Duration::from_millis(500);

async fn next(s: &mut SseStream, what: &str) -> SseEvent {
    s.next(COME)
        .await
        .unwrap_or_else(|| panic!("no SSE event: expected {what}"))
}

/// Checks the envelope of a live event and returns `(event_type, task_id, action)`.
#[track_caller]
fn parts(ev: &SseEvent, user: &str) -> (String, String, String) {
    let env = ev.json();
    assert_eq!(
        keys_of(&env),
        key_set(ENVELOPE_KEYS),
        "envelope keys: {env}"
    );
    assert_eq!(
        env["user_id"], user,
        "another user's event on {user}'s stream: {env}"
    );
    assert_eq!(env["specversion"], "1.0");
    assert_utc(&env["timestamp"]);
    uuid::Uuid::parse_str(env["event_id"].as_str().unwrap()).unwrap();
    assert!(
        ev.id.as_deref().is_some_and(|id| !id.is_empty()),
        "SSE event without id: {ev:?}"
    );
    let ty = env["event_type"].as_str().unwrap().to_string();
    let p = &env["payload"];
    match ty.as_str() {
        "task.sync" => {
            assert_eq!(keys_of(p), key_set(&["task_id", "action"]), "{p}");
            (
                ty,
                p["task_id"].as_str().unwrap().to_string(),
                p["action"].as_str().unwrap().to_string(),
            )
        }
        "reminder.triggered" => (
            ty,
            p["task_id"].as_str().unwrap().to_string(),
            String::new(),
        ),
        other => panic!("unexpected event type on the live stream: {other}"),
    }
}

fn sync(task_id: &str, action: &str) -> (String, String, String) {
    ("task.sync".into(), task_id.into(), action.into())
}

async fn live_stream_shows_only_own_changes_and_resumes_after_last_event_id(srv: TestServer) {
    let alice = srv.user("alice");
    let bob = srv.user("bob");

    // Events already in the log when a stream opens are not replayed. (The relay moves events
    // to the log asynchronously, so wait until one has reached a stream before reconnecting.)
    let mut early = alice.events(None).await;
    let old = alice.create(json!({ "title": "before connecting" })).await;
    let e = next(&mut early, "the early change").await;
    assert_eq!(parts(&e, "alice"), sync(&id_of(&old), "created"));
    drop(early);

    let mut stream = alice.events(None).await;
    let mut bobs = bob.events(None).await;
    let b1 = bob.create(json!({ "title": "bob's" })).await;
    let a1 = alice.create(json!({ "title": "alice's" })).await;
    let a1_id = id_of(&a1);

    let first = next(&mut stream, "alice's task.sync").await;
    assert_eq!(parts(&first, "alice"), sync(&a1_id, "created"));
    let first_id = first.id.clone().unwrap();
    // bob's stream sees bob's own change, not alice's.
    let bf = next(&mut bobs, "bob's task.sync").await;
    assert_eq!(parts(&bf, "bob"), sync(&id_of(&b1), "created"));

    // Updates and completion arrive in order.
    alice
        .put_task(&a1_id, &json!({ "priority": "high" }))
        .await
        .expect(200);
    alice.complete(&a1_id).await.expect(200);
    let e = next(&mut stream, "updated").await;
    assert_eq!(parts(&e, "alice"), sync(&a1_id, "updated"));
    let e2 = next(&mut stream, "completed").await;
    assert_eq!(parts(&e2, "alice"), sync(&a1_id, "completed"));
    let second_id = e2.id.clone().unwrap();
    assert_ne!(first_id, second_id, "event ids must move forward");
    drop(stream);

    // While disconnected: one change of alice's, one of bob's.
    bob.put_task(&id_of(&b1), &json!({ "title": "bob again" }))
        .await
        .expect(200);
    alice
        .put_task(&a1_id, &json!({ "description": "while away" }))
        .await
        .expect(200);

    // Resume after the completion: the change made while away comes first, then new ones;
    // nothing older, nothing of bob's.
    let mut resumed = alice.events(Some(&second_id)).await;
    let e = next(&mut resumed, "the change made while away").await;
    assert_eq!(parts(&e, "alice"), sync(&a1_id, "updated"));
    alice.delete_task(&a1_id).await.expect(200);
    let e = next(&mut resumed, "deleted").await;
    assert_eq!(parts(&e, "alice"), sync(&a1_id, "deleted"));
    let last_id = e.id.clone().unwrap();
    bob.create(json!({ "title": "bob's third" })).await;
    assert!(
        resumed.next(QUIET).await.is_none(),
        "unexpected event on alice's stream"
    );
    drop(resumed);

    // Resuming from the first event replays exactly what came after it, in order.
    let mut replay = alice.events(Some(&first_id)).await;
    let mut got = Vec::new();
    for what in ["updated", "completed", "updated", "deleted"] {
        got.push(parts(&next(&mut replay, what).await, "alice"));
    }
    assert_eq!(
        got,
        vec![
            sync(&a1_id, "updated"),
            sync(&a1_id, "completed"),
            sync(&a1_id, "updated"),
            sync(&a1_id, "deleted"),
        ]
    );
    assert!(replay.next(QUIET).await.is_none(), "replay went too far");
    drop(replay);

    // Resuming from the last id: nothing until the next change.
    let mut tail = alice.events(Some(&last_id)).await;
    let a2 = alice.create(json!({ "title": "newest" })).await;
    let e = next(&mut tail, "newest").await;
    assert_eq!(parts(&e, "alice"), sync(&id_of(&a2), "created"));
    assert_ne!(id_of(&a2), id_of(&old));

    // bob's stream never carried alice's events.
    let e = next(&mut bobs, "bob's update").await;
    assert_eq!(parts(&e, "bob"), sync(&id_of(&b1), "updated"));
    let e = next(&mut bobs, "bob's third").await;
    assert_eq!(parts(&e, "bob").2, "created");
    assert!(bobs.next(QUIET).await.is_none());
}

async fn live_stream_requires_a_token(srv: TestServer) {
    let r = srv
        .client()
        .get(srv.url("/api/events"))
        .send()
        .await
        .unwrap();
    let r = Resp::from(r).await;
    r.expect_detail(401, "Not authenticated");
    assert_eq!(r.header("www-authenticate").as_deref(), Some("Bearer"));
    let r = srv
        .client()
        .get(srv.url("/api/events"))
        .bearer_auth("not-a-jwt")
        .send()
        .await
        .unwrap();
    Resp::from(r).await.expect_detail(401, "Invalid token");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn triggered_reminders_reach_the_owners_live_stream() {
    let mut srv = TestServer::start().await;
    let alice = srv.user("alice");
    let t = alice
        .create(
            json!({ "title": "Pay rent", "due_date": "2030-01-05T09:00:00Z",
                        "reminder_offset_minutes": 60 }),
        )
        .await;
    // An id to resume from, taken before the reminder fires.
    let mut s = alice.events(None).await;
    alice
        .put_task(&id_of(&t), &json!({ "priority": "high" }))
        .await
        .expect(200);
    // The create may reach the stream first if the relay had not moved it when we connected.
    let mut e = next(&mut s, "update").await;
    if parts(&e, "alice") == sync(&id_of(&t), "created") {
        e = next(&mut s, "update").await;
    }
    assert_eq!(parts(&e, "alice"), sync(&id_of(&t), "updated"));
    let resume = e.id.clone().unwrap();
    drop(s);
    srv.stop().await;

    let fired = envelope(
        "reminder.triggered",
        "alice",
        json!({ "task_id": t["id"], "task_title": "Pay rent", "user_id": "alice",
                "due_at": t["due_date"], "remind_at": t["remind_at"] }),
    );
    let for_bob = envelope(
        "reminder.triggered",
        "bob",
        json!({ "task_id": uuid::Uuid::new_v4().to_string(), "task_title": "bob's",
                "user_id": "bob", "due_at": null, "remind_at": "2030-01-01T00:00:00Z" }),
    );
    let log = srv.open_log();
    append(
        &log,
        REMINDERS,
        vec![
            envelope_record("bob-task", &for_bob),
            envelope_record(&id_of(&t), &fired),
        ],
    )
    .await;
    drop(log);

    srv.restart().await;
    let alice = srv.user("alice");
    let mut s = alice.events(Some(&resume)).await;
    let e = next(&mut s, "reminder.triggered").await;
    let env: Value = e.json();
    assert_eq!(parts(&e, "alice").0, "reminder.triggered");
    assert_eq!(env, fired, "the envelope as published");
    assert!(s.next(QUIET).await.is_none(), "bob's reminder leaked");
}

taskstream_tests::api_tests!(
    live_stream_shows_only_own_changes_and_resumes_after_last_event_id,
    live_stream_requires_a_token,
);
