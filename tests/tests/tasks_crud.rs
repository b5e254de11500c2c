//! CRUD on /api/tasks: TaskResponse shape, defaults, normalisation, datetimes, partial PUT,
//! DELETE's 200 body, PATCH complete on a plain task, unknown routes and methods.
#![allow(clippy::unwrap_used)]

use serde_json::{Value, json};
use taskstream_tests::{TestServer, assert_utc, id_of, utc};

const ZERO: &str = "00000000-0000-4000-8000-000000000000";

async fn create_minimal_has_defaults(srv: TestServer) {
    let alice = srv.user("alice");
    let t = alice.create(json!({ "title": "Buy groceries" })).await;
    assert_eq!(t["title"], "Buy groceries");
    assert_eq!(t["description"], Value::Null);
    assert_eq!(t["status"], "pending");
    assert_eq!(t["priority"], "medium");
    assert_eq!(t["due_date"], Value::Null);
    assert_eq!(t["tags"], json!([]));
    assert_eq!(t["reminder_offset_minutes"], Value::Null);
    assert_eq!(t["remind_at"], Value::Null);
    assert_eq!(t["is_recurring"], false);
    assert_eq!(t["recurrence_rule"], Value::Null);
    assert_eq!(t["parent_task_id"], Value::Null);
    assert_eq!(t["user_id"], "alice");
    let id = uuid::Uuid::parse_str(t["id"].as_str().unwrap()).unwrap();
    // Time-ordered UUIDv7 (a deliberate choice: new rows append to the store's indexes).
    assert_eq!(id.get_version_num(), 7, "id should be a UUIDv7");
    assert_eq!(t["id"], id.hyphenated().to_string(), "lowercase hyphenated");
    let created = assert_utc(&t["created_at"]);
    let updated = assert_utc(&t["updated_at"]);
    assert_eq!(created, updated);
    let age = chrono::Utc::now() - created;
    assert!(
        age < chrono::Duration::minutes(10) && age > chrono::Duration::minutes(-10),
        "created_at is not now: {created}"
    );
}

async fn create_full_body_round_trips(srv: TestServer) {
    let alice = srv.user("alice");
    let body = json!({
        "title": "  Pay rent  ",
        "description": "Before the 5th",
        "status": "in_progress",
        "priority": "high",
        "due_date": "2026-01-20T20:00:00+02:00",
        "tags": ["  Home ", "WORK", "home", "Urgent"],
        "reminder_offset_minutes": 60,
        "is_recurring": true,
        "recurrence_rule": " monthly ",
        "recurrence_from": "due",
        "unknown_key": "ignored",
        "user_id": "mallory",
        "remind_at": "2000-01-01T00:00:00Z",
        "parent_task_id": ZERO,
        "id": ZERO
    });
    let t = alice.create(body).await;
    assert_eq!(t["title"], "Pay rent");
    assert_eq!(t["description"], "Before the 5th");
    assert_eq!(t["status"], "in_progress");
    assert_eq!(t["priority"], "high");
    assert_eq!(t["due_date"], "2026-01-20T18:00:00Z");
    assert_eq!(t["tags"], json!(["home", "work", "urgent"]));
    assert_eq!(t["reminder_offset_minutes"], 60);
    assert_eq!(t["remind_at"], "2026-01-20T17:00:00Z");
    assert_eq!(t["is_recurring"], true);
    assert_eq!(t["recurrence_rule"], "MONTHLY");
    // Client-supplied server-owned fields are ignored.
    assert_eq!(t["user_id"], "alice");
    assert_eq!(t["parent_task_id"], Value::Null);
    assert_ne!(t["id"], ZERO);
    // GET returns the same object.
    let got = alice.get_task(&id_of(&t)).await;
    assert_eq!(got.expect(200), &t);
}

async fn due_date_input_formats_are_normalised_to_utc_z(srv: TestServer) {
    let alice = srv.user("alice");
    let cases = [
        ("2026-01-20T18:00:00Z", "2026-01-20T18:00:00Z"),
        ("2026-01-20T18:00:00.000Z", "2026-01-20T18:00:00Z"),
        ("2026-01-20T18:00:00+00:00", "2026-01-20T18:00:00Z"),
        ("2026-01-20T13:00:00-05:00", "2026-01-20T18:00:00Z"),
        ("2026-01-21T03:30:00+09:30", "2026-01-20T18:00:00Z"),
        ("2026-01-20T18:00:00", "2026-01-20T18:00:00Z"),
        ("2026-01-20", "2026-01-20T00:00:00Z"),
        ("2026-01-01T00:30:00+01:00", "2025-12-31T23:30:00Z"),
        ("2026-01-20t18:00:00z", "2026-01-20T18:00:00Z"),
    ];
    for (input, want) in cases {
        let t = alice
            .create(json!({ "title": input, "due_date": input }))
            .await;
        assert_eq!(t["due_date"], want, "due_date input {input}");
    }
    // Fractions are kept (at most microseconds) and still end in Z.
    let t = alice
        .create(json!({ "title": "frac", "due_date": "2026-01-20T18:00:00.123Z" }))
        .await;
    let due = assert_utc(&t["due_date"]);
    assert_eq!(due, utc("2026-01-20T18:00:00.123Z"));
    let t = alice
        .create(json!({ "title": "frac6", "due_date": "2026-01-20T18:00:00.123456+00:00" }))
        .await;
    assert_eq!(
        assert_utc(&t["due_date"]),
        utc("2026-01-20T18:00:00.123456Z")
    );
    // Nanoseconds are cut to at most microseconds on output.
    let t = alice
        .create(json!({ "title": "nanos", "due_date": "2026-01-20T18:00:00.123456789Z" }))
        .await;
    let due = assert_utc(&t["due_date"]);
    let diff = (due - utc("2026-01-20T18:00:00.123456Z"))
        .num_microseconds()
        .unwrap();
    assert!(diff.abs() <= 1, "nanosecond input came back as {due}");
}

async fn remind_at_is_due_minus_offset(srv: TestServer) {
    let alice = srv.user("alice");
    let cases = [
        ("2026-01-20T18:00:00Z", 1, "2026-01-20T17:59:00Z"),
        ("2026-01-20T18:00:00Z", 1440, "2026-01-19T18:00:00Z"),
        ("2026-03-01T00:10:00Z", 10080, "2026-02-22T00:10:00Z"),
        ("2028-03-01T00:00:00Z", 1440, "2028-02-29T00:00:00Z"),
        ("2026-01-01T00:05:00Z", 10, "2025-12-31T23:55:00Z"),
    ];
    for (due, off, want) in cases {
        let t = alice
            .create(json!({ "title": "r", "due_date": due, "reminder_offset_minutes": off }))
            .await;
        assert_eq!(t["remind_at"], want, "{due} - {off} min");
    }
    // A remind_at in the past is stored anyway.
    let t = alice
        .create(json!({ "title": "past", "due_date": "2001-01-01T00:00:00Z", "reminder_offset_minutes": 30 }))
        .await;
    assert_eq!(t["remind_at"], "2000-12-31T23:30:00Z");
}

async fn tags_are_trimmed_lowercased_deduplicated_in_order(srv: TestServer) {
    let alice = srv.user("alice");
    let t = alice
        .create(json!({ "title": "t", "tags": ["B", "a", " b ", "A", "c d", "ÉTÉ", "été"] }))
        .await;
    assert_eq!(t["tags"], json!(["b", "a", "c d", "été"]));
    // 20 distinct tags is the limit; 20 raw tags that collapse are fine too.
    let twenty: Vec<String> = (0..20).map(|i| format!("tag{i}")).collect();
    let t = alice.create(json!({ "title": "t", "tags": twenty })).await;
    assert_eq!(t["tags"].as_array().unwrap().len(), 20);
    // A 50-character tag is accepted (after trimming).
    let fifty = "x".repeat(50);
    let t = alice
        .create(json!({ "title": "t", "tags": [format!("  {fifty}  ")] }))
        .await;
    assert_eq!(t["tags"], json!([fifty]));
    // PUT normalises the same way.
    let r = alice
        .put_task(&id_of(&t), &json!({ "tags": ["Work", "WORK", " home"] }))
        .await;
    assert_eq!(r.expect(200)["tags"], json!(["work", "home"]));
}

async fn title_limits_count_characters(srv: TestServer) {
    let alice = srv.user("alice");
    let t = alice.create(json!({ "title": "é".repeat(255) })).await;
    assert_eq!(t["title"].as_str().unwrap().chars().count(), 255);
    let t = alice.create(json!({ "title": "a" })).await;
    assert_eq!(t["title"], "a");
    let d = "ü".repeat(2000);
    let t = alice
        .create(json!({ "title": "d", "description": d }))
        .await;
    assert_eq!(t["description"], d);
}

async fn recurrence_rules_are_stored_upper_case(srv: TestServer) {
    let alice = srv.user("alice");
    for (input, want) in [
        ("daily", "DAILY"),
        ("Weekly", "WEEKLY"),
        ("MONTHLY", "MONTHLY"),
        ("yearly", "YEARLY"),
        ("interval:3", "INTERVAL:3"),
        ("INTERVAL:1", "INTERVAL:1"),
        (
            "rrule:freq=weekly;byday=mo,we",
            "RRULE:FREQ=WEEKLY;BYDAY=MO,WE",
        ),
    ] {
        let t = alice
            .create(json!({ "title": "r", "is_recurring": true, "recurrence_rule": input, "due_date": "2026-03-02T09:00:00Z" }))
            .await;
        assert_eq!(t["recurrence_rule"], want, "{input}");
    }
    // No cross-check between is_recurring and recurrence_rule.
    let t = alice
        .create(json!({ "title": "r", "is_recurring": true, "recurrence_rule": null }))
        .await;
    assert_eq!(t["is_recurring"], true);
    assert_eq!(t["recurrence_rule"], Value::Null);
    let t = alice
        .create(json!({ "title": "r", "is_recurring": false, "recurrence_rule": "DAILY" }))
        .await;
    assert_eq!(t["is_recurring"], false);
    assert_eq!(t["recurrence_rule"], "DAILY");
}

async fn get_list_and_not_found(srv: TestServer) {
    let alice = srv.user("alice");
    let a = alice.create(json!({ "title": "a" })).await;
    let b = alice.create(json!({ "title": "b" })).await;
    let list = alice.list("").await;
    assert_eq!(list.len(), 2);
    assert!(list.contains(&a) && list.contains(&b));
    assert_eq!(alice.get_task(&id_of(&b)).await.expect(200), &b);

    let missing = uuid::Uuid::new_v4().to_string();
    alice
        .get_task(&missing)
        .await
        .expect_detail(404, "Task not found");
    alice
        .put_task(&missing, &json!({ "title": "x" }))
        .await
        .expect_detail(404, "Task not found");
    alice
        .delete_task(&missing)
        .await
        .expect_detail(404, "Task not found");
    alice
        .complete(&missing)
        .await
        .expect_detail(404, "Task not found");
    // Upper-case UUIDs are UUIDs too.
    let upper = id_of(&a).to_uppercase();
    let r = alice.get_task(&upper).await;
    assert_eq!(r.expect(200)["id"], a["id"]);
}

async fn put_is_partial(srv: TestServer) {
    let alice = srv.user("alice");
    let t = alice
        .create(json!({
            "title": "orig", "description": "desc", "priority": "low",
            "due_date": "2026-05-01T12:00:00Z", "tags": ["a"], "reminder_offset_minutes": 30,
            "is_recurring": true, "recurrence_rule": "DAILY"
        }))
        .await;
    let id = id_of(&t);

    let u = alice.put_task(&id, &json!({ "title": "  new  " })).await;
    let u = u.expect(200).clone();
    taskstream_tests::assert_task(&u);
    for k in [
        "id",
        "description",
        "status",
        "priority",
        "due_date",
        "created_at",
        "tags",
        "reminder_offset_minutes",
        "remind_at",
        "is_recurring",
        "recurrence_rule",
        "parent_task_id",
        "user_id",
    ] {
        assert_eq!(u[k], t[k], "{k} changed by a title-only PUT");
    }
    assert_eq!(u["title"], "new");
    assert!(assert_utc(&u["updated_at"]) >= assert_utc(&t["updated_at"]));

    // An empty body changes nothing but is fine.
    let e = alice.put_task(&id, &json!({})).await;
    let e = e.expect(200);
    for k in ["title", "description", "due_date", "tags", "remind_at"] {
        assert_eq!(e[k], u[k]);
    }

    // Each field alone.
    let r = alice
        .put_task(&id, &json!({ "status": "in_progress" }))
        .await;
    assert_eq!(r.expect(200)["status"], "in_progress");
    let r = alice.put_task(&id, &json!({ "priority": "high" })).await;
    assert_eq!(r.expect(200)["priority"], "high");
    let r = alice
        .put_task(&id, &json!({ "description": "other" }))
        .await;
    assert_eq!(r.expect(200)["description"], "other");
    let r = alice.put_task(&id, &json!({ "is_recurring": false })).await;
    assert_eq!(r.expect(200)["is_recurring"], false);
    let r = alice
        .put_task(&id, &json!({ "recurrence_rule": "interval:2" }))
        .await;
    assert_eq!(r.expect(200)["recurrence_rule"], "INTERVAL:2");

    // Moving the due date moves remind_at.
    let r = alice
        .put_task(&id, &json!({ "due_date": "2026-06-01T08:00:00+02:00" }))
        .await;
    let v = r.expect(200);
    assert_eq!(v["due_date"], "2026-06-01T06:00:00Z");
    assert_eq!(v["remind_at"], "2026-06-01T05:30:00Z");
    // Changing the offset moves remind_at.
    let r = alice
        .put_task(&id, &json!({ "reminder_offset_minutes": 120 }))
        .await;
    let v = r.expect(200);
    assert_eq!(v["reminder_offset_minutes"], 120);
    assert_eq!(v["remind_at"], "2026-06-01T04:00:00Z");

    // The stored state is what PUT answered.
    let got = alice.get_task(&id).await;
    assert_eq!(got.expect(200), v);
}

async fn put_explicit_null_clears_nullable_fields(srv: TestServer) {
    let alice = srv.user("alice");
    let t = alice
        .create(json!({
            "title": "t", "description": "d", "due_date": "2026-05-01T12:00:00Z",
            "reminder_offset_minutes": 30, "is_recurring": true, "recurrence_rule": "WEEKLY"
        }))
        .await;
    let id = id_of(&t);
    let r = alice
        .put_task(
            &id,
            &json!({ "description": null, "recurrence_rule": null }),
        )
        .await;
    let v = r.expect(200);
    assert_eq!(v["description"], Value::Null);
    assert_eq!(v["recurrence_rule"], Value::Null);
    assert_eq!(v["due_date"], "2026-05-01T12:00:00Z");

    let r = alice
        .put_task(&id, &json!({ "reminder_offset_minutes": null }))
        .await;
    let v = r.expect(200);
    assert_eq!(v["reminder_offset_minutes"], Value::Null);
    assert_eq!(v["remind_at"], Value::Null);
    assert_eq!(v["due_date"], "2026-05-01T12:00:00Z");

    let r = alice.put_task(&id, &json!({ "due_date": null })).await;
    let v = r.expect(200);
    assert_eq!(v["due_date"], Value::Null);
    assert_eq!(v["remind_at"], Value::Null);

    // Clearing both at once on a task that has both.
    let t = alice
        .create(json!({ "title": "t2", "due_date": "2026-05-01T12:00:00Z", "reminder_offset_minutes": 30 }))
        .await;
    let r = alice
        .put_task(
            &id_of(&t),
            &json!({ "due_date": null, "reminder_offset_minutes": null }),
        )
        .await;
    let v = r.expect(200);
    assert_eq!(v["due_date"], Value::Null);
    assert_eq!(v["reminder_offset_minutes"], Value::Null);
    assert_eq!(v["remind_at"], Value::Null);
}

async fn put_adding_offset_and_due_date_together(srv: TestServer) {
    let alice = srv.user("alice");
    let t = alice.create(json!({ "title": "t" })).await;
    let r = alice
        .put_task(
            &id_of(&t),
            &json!({ "due_date": "2026-07-04T10:00:00Z", "reminder_offset_minutes": 15 }),
        )
        .await;
    let v = r.expect(200);
    assert_eq!(v["remind_at"], "2026-07-04T09:45:00Z");
}

async fn delete_answers_200_with_id_and_deleted(srv: TestServer) {
    let alice = srv.user("alice");
    let t = alice.create(json!({ "title": "gone" })).await;
    let keep = alice.create(json!({ "title": "kept" })).await;
    let id = id_of(&t);
    let r = alice.delete_task(&id).await;
    assert_eq!(r.expect(200), &json!({ "id": id, "deleted": true }));
    assert!(
        r.header("content-type")
            .unwrap_or_default()
            .starts_with("application/json")
    );
    alice
        .get_task(&id)
        .await
        .expect_detail(404, "Task not found");
    alice
        .delete_task(&id)
        .await
        .expect_detail(404, "Task not found");
    assert_eq!(alice.list("").await, vec![keep]);
}

async fn complete_plain_task(srv: TestServer) {
    let alice = srv.user("alice");
    let t = alice
        .create(json!({ "title": "once", "due_date": "2026-01-20T18:00:00Z" }))
        .await;
    let r = alice.complete(&id_of(&t)).await;
    let body = r.expect(200).clone();
    let keys: Vec<&String> = body.as_object().unwrap().keys().collect();
    assert_eq!(keys.len(), 2, "{body}");
    taskstream_tests::assert_task(&body["completed_task"]);
    assert_eq!(body["completed_task"]["status"], "completed");
    assert_eq!(body["completed_task"]["id"], t["id"]);
    assert_eq!(body["completed_task"]["title"], "once");
    assert_eq!(body["next_task"], Value::Null);
    assert_eq!(
        alice.get_task(&id_of(&t)).await.expect(200)["status"],
        "completed"
    );
    assert_eq!(alice.list("").await.len(), 1);

    // The frontend sends Content-Type: application/json with an empty body.
    let t2 = alice.create(json!({ "title": "fe" })).await;
    let r = alice
        .send_raw("PATCH", &format!("/api/tasks/{}/complete", id_of(&t2)), "")
        .await;
    assert_eq!(r.expect(200)["completed_task"]["status"], "completed");
}

async fn status_transitions_are_free(srv: TestServer) {
    let alice = srv.user("alice");
    let t = alice
        .create(json!({ "title": "t", "status": "completed" }))
        .await;
    assert_eq!(t["status"], "completed");
    let id = id_of(&t);
    for s in ["pending", "in_progress", "completed", "in_progress"] {
        let r = alice.put_task(&id, &json!({ "status": s })).await;
        assert_eq!(r.expect(200)["status"], s);
    }
}

async fn unknown_routes_and_methods(srv: TestServer) {
    let alice = srv.user("alice");
    let t = alice.create(json!({ "title": "t" })).await;
    let id = id_of(&t);
    for p in ["/nope", "/api/task", "/api/tasks/x/y/z", "/api"] {
        alice.get(p).await.expect_detail(404, "Not Found");
        let r = srv.client().get(srv.url(p)).send().await.unwrap();
        taskstream_tests::Resp::from(r)
            .await
            .expect_detail(404, "Not Found");
    }
    alice
        .send("POST", &format!("/api/tasks/{id}"), Some(&json!({})))
        .await
        .expect_detail(405, "Method Not Allowed");
    alice
        .send("PATCH", "/api/tasks", None)
        .await
        .expect_detail(405, "Method Not Allowed");
    alice
        .send("DELETE", "/api/tasks", None)
        .await
        .expect_detail(405, "Method Not Allowed");
    alice
        .send("GET", &format!("/api/tasks/{id}/complete"), None)
        .await
        .expect_detail(405, "Method Not Allowed");
    alice
        .send("POST", "/health", None)
        .await
        .expect_detail(405, "Method Not Allowed");
}

async fn frontend_style_requests_with_json_content_type_and_no_body(srv: TestServer) {
    let alice = srv.user("alice");
    let t = alice.create(json!({ "title": "fe" })).await;
    let id = id_of(&t);
    // The frontend sends Content-Type: application/json on GET and DELETE too.
    let r = alice.send_raw("GET", "/api/tasks?status=active", "").await;
    assert_eq!(r.expect(200), &json!([t.clone()]));
    let r = alice.send_raw("GET", &format!("/api/tasks/{id}"), "").await;
    assert_eq!(r.expect(200), &t);
    let r = alice
        .send_raw("DELETE", &format!("/api/tasks/{id}"), "")
        .await;
    assert_eq!(r.expect(200), &json!({ "id": id, "deleted": true }));
}

async fn concurrent_updates_leave_one_acknowledged_state(srv: TestServer) {
    let alice = srv.user("alice");
    let t = alice
        .create(json!({ "title": "race", "due_date": "2026-01-01T00:00:00Z" }))
        .await;
    let id = id_of(&t);
    let mut set = tokio::task::JoinSet::new();
    for i in 0..10 {
        let u = alice.clone();
        let id = id.clone();
        set.spawn(async move {
            u.put_task(
                &id,
                &json!({ "title": format!("title {i}"), "reminder_offset_minutes": i + 1 }),
            )
            .await
        });
    }
    let mut answers = Vec::new();
    while let Some(r) = set.join_next().await {
        let r = r.unwrap();
        let v = r.expect(200).clone();
        // Each answer is internally consistent (title and offset from the same request).
        let n: i64 = v["title"].as_str().unwrap()[6..].parse().unwrap();
        assert_eq!(v["reminder_offset_minutes"], n + 1, "{v}");
        answers.push(v);
    }
    let last = alice.get_task(&id).await.expect(200).clone();
    assert!(
        answers.contains(&last),
        "final state {last} is none of the acknowledged answers"
    );
}

taskstream_tests::api_tests!(
    create_minimal_has_defaults,
    create_full_body_round_trips,
    due_date_input_formats_are_normalised_to_utc_z,
    remind_at_is_due_minus_offset,
    tags_are_trimmed_lowercased_deduplicated_in_order,
    title_limits_count_characters,
    recurrence_rules_are_stored_upper_case,
    get_list_and_not_found,
    put_is_partial,
    put_explicit_null_clears_nullable_fields,
    put_adding_offset_and_due_date_together,
    delete_answers_200_with_id_and_deleted,
    complete_plain_task,
    status_transitions_are_free,
    unknown_routes_and_methods,
    frontend_style_requests_with_json_content_type_and_no_body,
    concurrent_updates_leave_one_acknowledged_state,
);
