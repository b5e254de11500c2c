//! Every validation rule: 422 with pydantic-style items (type + loc), the application 422
//! `Reminder requires a due date`, 413 for oversized bodies, and never a 500.
#![allow(clippy::unwrap_used)]

use serde_json::{Value, json};
use taskstream_tests::{Resp, TestServer, User, id_of};

/// POSTs `body` and expects a 422 item of type `ty` at `["body", field]`.
async fn create_invalid(u: &User, body: Value, ty: &str, field: &str) {
    let r = u.post("/api/tasks", &body).await;
    r.expect_invalid(ty, json!(["body", field]));
}

/// Whether a 422 item's loc starts with `[a, b]`.
fn loc_starts(e: &Value, a: &str, b: &str) -> bool {
    let loc = e["loc"].as_array().cloned().unwrap_or_default();
    loc.len() >= 2 && loc[0] == a && loc[1] == b
}

async fn title_rules(srv: TestServer) {
    let u = srv.user("alice");
    create_invalid(&u, json!({}), "missing", "title").await;
    create_invalid(&u, json!({ "description": "no title" }), "missing", "title").await;
    create_invalid(&u, json!({ "title": 123 }), "string_type", "title").await;
    create_invalid(&u, json!({ "title": ["a"] }), "string_type", "title").await;
    create_invalid(&u, json!({ "title": { "a": 1 } }), "string_type", "title").await;
    create_invalid(&u, json!({ "title": true }), "string_type", "title").await;
    create_invalid(&u, json!({ "title": "" }), "string_too_short", "title").await;
    create_invalid(
        &u,
        json!({ "title": "x".repeat(256) }),
        "string_too_long",
        "title",
    )
    .await;
    create_invalid(
        &u,
        json!({ "title": "é".repeat(256) }),
        "string_too_long",
        "title",
    )
    .await;
    // null for a required string
    let r = u.post("/api/tasks", &json!({ "title": null })).await;
    r.expect_invalid_at(json!(["body", "title"]));
    assert!(u.list("").await.is_empty(), "nothing may have been created");
}

async fn description_rules(srv: TestServer) {
    let u = srv.user("alice");
    create_invalid(
        &u,
        json!({ "title": "t", "description": 5 }),
        "string_type",
        "description",
    )
    .await;
    create_invalid(
        &u,
        json!({ "title": "t", "description": ["x"] }),
        "string_type",
        "description",
    )
    .await;
    create_invalid(
        &u,
        json!({ "title": "t", "description": "x".repeat(2001) }),
        "string_too_long",
        "description",
    )
    .await;
    let t = u.create(json!({ "title": "t", "description": null })).await;
    assert_eq!(t["description"], Value::Null);
}

async fn enum_rules(srv: TestServer) {
    let u = srv.user("alice");
    for bad in [json!("done"), json!("Pending"), json!(""), json!("active")] {
        create_invalid(&u, json!({ "title": "t", "status": bad }), "enum", "status").await;
    }
    for bad in [json!("urgent"), json!("Low"), json!(""), json!("critical")] {
        create_invalid(
            &u,
            json!({ "title": "t", "priority": bad }),
            "enum",
            "priority",
        )
        .await;
    }
    for bad in [json!(1), json!(null), json!(["low"])] {
        let r = u
            .post("/api/tasks", &json!({ "title": "t", "priority": bad }))
            .await;
        r.expect_invalid_at(json!(["body", "priority"]));
        let r = u
            .post("/api/tasks", &json!({ "title": "t", "status": bad }))
            .await;
        r.expect_invalid_at(json!(["body", "status"]));
    }
    let r = u
        .post(
            "/api/tasks",
            &json!({ "title": "t", "recurrence_from": "never" }),
        )
        .await;
    r.expect_invalid_at(json!(["body", "recurrence_from"]));
    let t = u
        .create(json!({ "title": "t", "is_recurring": true, "recurrence_rule": "DAILY", "recurrence_from": "completion" }))
        .await;
    assert_eq!(t["recurrence_rule"], "DAILY");
}

async fn due_date_rules(srv: TestServer) {
    let u = srv.user("alice");
    for bad in [
        "tomorrow",
        "2026-13-01T00:00:00Z",
        "2026-02-30T00:00:00Z",
        "2026-01-20T25:00:00Z",
        "20/01/2026",
        "",
        "2026-01-20T18:00:00+25:00",
    ] {
        let r = u
            .post("/api/tasks", &json!({ "title": "t", "due_date": bad }))
            .await;
        let items = r.validation_items();
        assert!(
            items.iter().any(|e| e["loc"] == json!(["body", "due_date"])
                && e["type"].as_str().unwrap().starts_with("datetime")),
            "due_date {bad:?}: {}",
            r.text
        );
    }
    for bad in [json!(true), json!(["2026-01-20"]), json!({ "d": 1 })] {
        let r = u
            .post("/api/tasks", &json!({ "title": "t", "due_date": bad }))
            .await;
        r.expect_invalid_at(json!(["body", "due_date"]));
    }
}

async fn tags_rules(srv: TestServer) {
    let u = srv.user("alice");
    create_invalid(
        &u,
        json!({ "title": "t", "tags": "work" }),
        "list_type",
        "tags",
    )
    .await;
    create_invalid(
        &u,
        json!({ "title": "t", "tags": { "a": 1 } }),
        "list_type",
        "tags",
    )
    .await;
    let many: Vec<String> = (0..21).map(|i| format!("t{i}")).collect();
    create_invalid(
        &u,
        json!({ "title": "t", "tags": many }),
        "too_long",
        "tags",
    )
    .await;
    for bad in [
        json!(""),
        json!("   "),
        json!("x".repeat(51)),
        json!(format!(" {} ", "y".repeat(51))),
    ] {
        let r = u
            .post("/api/tasks", &json!({ "title": "t", "tags": ["ok", bad] }))
            .await;
        let items = r.validation_items();
        assert!(
            items
                .iter()
                .any(|e| e["type"] == "value_error" && loc_starts(e, "body", "tags")),
            "tag {bad}: {}",
            r.text
        );
    }
    let r = u
        .post("/api/tasks", &json!({ "title": "t", "tags": [1] }))
        .await;
    let items = r.validation_items();
    assert!(
        items
            .iter()
            .any(|e| e["type"] == "string_type" && loc_starts(e, "body", "tags")),
        "{}",
        r.text
    );
    let r = u
        .post("/api/tasks", &json!({ "title": "t", "tags": null }))
        .await;
    assert_eq!(r.status, 422, "tags null on create: {}", r.text);
}

async fn reminder_offset_rules(srv: TestServer) {
    let u = srv.user("alice");
    let due = "2026-05-01T12:00:00Z";
    for bad in [0, -1, -60] {
        create_invalid(
            &u,
            json!({ "title": "t", "due_date": due, "reminder_offset_minutes": bad }),
            "greater_than_equal",
            "reminder_offset_minutes",
        )
        .await;
    }
    create_invalid(
        &u,
        json!({ "title": "t", "due_date": due, "reminder_offset_minutes": "soon" }),
        // pydantic says int_parsing for a non-numeric string; int_type is tolerated.
        "int_parsing|int_type",
        "reminder_offset_minutes",
    )
    .await;
    for bad in [json!([10]), json!({ "m": 10 }), json!(1.5)] {
        let r = u
            .post(
                "/api/tasks",
                &json!({ "title": "t", "due_date": due, "reminder_offset_minutes": bad }),
            )
            .await;
        r.expect_invalid_at(json!(["body", "reminder_offset_minutes"]));
    }
    // Offset without due date on create: the application 422.
    u.post(
        "/api/tasks",
        &json!({ "title": "t", "reminder_offset_minutes": 10 }),
    )
    .await
    .expect_detail(422, "Reminder requires a due date");
    u.post(
        "/api/tasks",
        &json!({ "title": "t", "reminder_offset_minutes": 10, "due_date": null }),
    )
    .await
    .expect_detail(422, "Reminder requires a due date");
    assert!(u.list("").await.is_empty());
}

async fn bool_rules(srv: TestServer) {
    let u = srv.user("alice");
    create_invalid(
        &u,
        json!({ "title": "t", "is_recurring": "maybe" }),
        // pydantic says bool_parsing for an uninterpretable string; bool_type is tolerated.
        "bool_parsing|bool_type",
        "is_recurring",
    )
    .await;
    create_invalid(
        &u,
        json!({ "title": "t", "is_recurring": [] }),
        "bool_type",
        "is_recurring",
    )
    .await;
    create_invalid(
        &u,
        json!({ "title": "t", "is_recurring": { "a": 1 } }),
        "bool_type",
        "is_recurring",
    )
    .await;
}

async fn recurrence_rule_rules(srv: TestServer) {
    let u = srv.user("alice");
    for bad in [
        "FORTNIGHTLY",
        "INTERVAL:0",
        "INTERVAL:-2",
        "INTERVAL:x",
        "INTERVAL:",
        "INTERVAL",
        "EVERY DAY",
        "RRULE:FREQ=SOMETIMES",
        "RRULE:",
        "RRULE:BYDAY=MO",
    ] {
        create_invalid(
            &u,
            json!({ "title": "t", "is_recurring": true, "recurrence_rule": bad }),
            "value_error",
            "recurrence_rule",
        )
        .await;
    }
    create_invalid(
        &u,
        json!({ "title": "t", "is_recurring": true, "recurrence_rule": 7 }),
        "string_type",
        "recurrence_rule",
    )
    .await;
    assert!(u.list("").await.is_empty());
}

async fn body_shape_rules(srv: TestServer) {
    let u = srv.user("alice");
    for bad in [
        "{",
        "{\"title\": }",
        "not json",
        "{\"title\":\"a\",}",
        "\u{0}",
    ] {
        let r = u.send_raw("POST", "/api/tasks", bad).await;
        let items = r.validation_items();
        assert!(
            items.iter().any(|e| e["type"] == "json_invalid"),
            "{bad:?}: {}",
            r.text
        );
    }
    for bad in [
        "[]",
        "[{\"title\":\"a\"}]",
        "\"title\"",
        "42",
        "null",
        "true",
    ] {
        let r = u.send_raw("POST", "/api/tasks", bad).await;
        let items = r.validation_items();
        assert!(
            items.iter().any(|e| e["type"] == "model_attributes_type"),
            "{bad:?}: {}",
            r.text
        );
    }
    assert!(u.list("").await.is_empty());
}

async fn several_errors_are_all_reported(srv: TestServer) {
    let u = srv.user("alice");
    let r = u
        .post("/api/tasks", &json!({ "title": "", "priority": "urgent" }))
        .await;
    r.expect_invalid("string_too_short", json!(["body", "title"]));
    r.expect_invalid("enum", json!(["body", "priority"]));
    assert!(u.list("").await.is_empty());
}

async fn oversized_body_is_413(srv: TestServer) {
    let u = srv.user("alice");
    let big = json!({ "title": "t", "description": "x".repeat(70 * 1024) });
    u.post("/api/tasks", &big)
        .await
        .expect_detail(413, "Request body too large");
    let t = u.create(json!({ "title": "small" })).await;
    u.put_task(&id_of(&t), &big)
        .await
        .expect_detail(413, "Request body too large");
    // Just under the limit but invalid: an ordinary 422, not a 413.
    let r = u
        .post(
            "/api/tasks",
            &json!({ "title": "t", "description": "x".repeat(60 * 1024) }),
        )
        .await;
    r.expect_invalid("string_too_long", json!(["body", "description"]));
    assert_eq!(u.list("").await.len(), 1);
}

async fn bad_uuid_in_path(srv: TestServer) {
    let u = srv.user("alice");
    for bad in [
        "abc",
        "123",
        "00000000-0000-0000-0000-00000000000g",
        "not-a-uuid-at-all-x",
    ] {
        let loc = json!(["path", "task_id"]);
        u.get(&format!("/api/tasks/{bad}"))
            .await
            .expect_invalid("uuid_parsing", loc.clone());
        u.put(&format!("/api/tasks/{bad}"), &json!({ "title": "x" }))
            .await
            .expect_invalid("uuid_parsing", loc.clone());
        u.delete(&format!("/api/tasks/{bad}"))
            .await
            .expect_invalid("uuid_parsing", loc.clone());
        u.patch(&format!("/api/tasks/{bad}/complete"))
            .await
            .expect_invalid("uuid_parsing", loc.clone());
    }
}

async fn put_rules(srv: TestServer) {
    let u = srv.user("alice");
    let t = u.create(json!({ "title": "keep", "tags": ["a"] })).await;
    let id = id_of(&t);
    let path = format!("/api/tasks/{id}");

    // Explicit null for non-nullable fields.
    for f in ["title", "status", "priority", "is_recurring", "tags"] {
        let r = u.put(&path, &json!({ f: null })).await;
        r.expect_invalid_at(json!(["body", f]));
    }
    let cases = [
        (json!({ "title": "" }), "string_too_short", "title"),
        (
            json!({ "title": "x".repeat(256) }),
            "string_too_long",
            "title",
        ),
        (json!({ "title": 5 }), "string_type", "title"),
        (
            json!({ "description": "x".repeat(2001) }),
            "string_too_long",
            "description",
        ),
        (json!({ "status": "done" }), "enum", "status"),
        (json!({ "priority": "urgent" }), "enum", "priority"),
        (
            json!({ "due_date": "nope" }),
            "datetime_parsing",
            "due_date",
        ),
        (json!({ "tags": "a" }), "list_type", "tags"),
        (
            json!({ "tags": (0..21).map(|i| i.to_string()).collect::<Vec<_>>() }),
            "too_long",
            "tags",
        ),
        (
            json!({ "reminder_offset_minutes": 0 }),
            "greater_than_equal",
            "reminder_offset_minutes",
        ),
        (
            json!({ "reminder_offset_minutes": -5 }),
            "greater_than_equal",
            "reminder_offset_minutes",
        ),
        (
            json!({ "reminder_offset_minutes": "x" }),
            "int_parsing|int_type",
            "reminder_offset_minutes",
        ),
        (
            json!({ "is_recurring": "maybe" }),
            "bool_parsing|bool_type",
            "is_recurring",
        ),
        (
            json!({ "recurrence_rule": "SOMETIMES" }),
            "value_error",
            "recurrence_rule",
        ),
        (
            json!({ "recurrence_rule": "INTERVAL:0" }),
            "value_error",
            "recurrence_rule",
        ),
    ];
    for (body, ty, field) in cases {
        let r = u.put(&path, &body).await;
        r.expect_invalid(ty, json!(["body", field]));
    }
    let r = u.put(&path, &json!({ "tags": [""] })).await;
    assert!(
        r.validation_items()
            .iter()
            .any(|e| e["type"] == "value_error"),
        "{}",
        r.text
    );
    let r = u.send_raw("PUT", &path, "{oops").await;
    assert!(
        r.validation_items()
            .iter()
            .any(|e| e["type"] == "json_invalid")
    );
    let r = u.send_raw("PUT", &path, "[1,2]").await;
    assert!(
        r.validation_items()
            .iter()
            .any(|e| e["type"] == "model_attributes_type")
    );

    // Offset without a due date after the merge.
    u.put(&path, &json!({ "reminder_offset_minutes": 10 }))
        .await
        .expect_detail(422, "Reminder requires a due date");
    u.put(
        &path,
        &json!({ "reminder_offset_minutes": 10, "due_date": null }),
    )
    .await
    .expect_detail(422, "Reminder requires a due date");

    // Nothing above changed the task.
    assert_eq!(u.get_task(&id).await.expect(200), &t);

    // With a due date the offset is fine; then clearing only the due date is refused.
    let r = u
        .put(
            &path,
            &json!({ "due_date": "2026-05-01T12:00:00Z", "reminder_offset_minutes": 10 }),
        )
        .await;
    let with = r.expect(200).clone();
    u.put(&path, &json!({ "due_date": null }))
        .await
        .expect_detail(422, "Reminder requires a due date");
    assert_eq!(u.get_task(&id).await.expect(200), &with);
}

/// Sends a request and describes anything that is not a 2xx or a well-formed 4xx.
async fn problem(u: &User, m: &str, p: &str, body: Option<&Value>) -> Option<String> {
    let method = reqwest::Method::from_bytes(m.as_bytes()).unwrap();
    let mut rb = u.req(method, p);
    if let Some(b) = body {
        rb = rb.json(b);
    }
    let what = format!("{m} {p} {}", body.map(Value::to_string).unwrap_or_default());
    let resp = match rb.send().await {
        Ok(r) => r,
        Err(e) => return Some(format!("{what}: no response ({e})")),
    };
    let r = Resp::from(resp).await;
    if (200..300).contains(&r.status) {
        return None;
    }
    if r.status == 422 && (r.json["detail"].is_array() || r.json["detail"].is_string()) {
        return None;
    }
    Some(format!("{what}: {} {}", r.status, r.text))
}

/// Every datetime in every stored task must still be RFC 3339 (years 0000-9999).
fn bad_datetimes(tasks: &Value) -> Vec<String> {
    let mut out = Vec::new();
    for t in tasks.as_array().into_iter().flatten() {
        for k in ["due_date", "remind_at", "created_at", "updated_at"] {
            if let Some(s) = t[k].as_str()
                && chrono::DateTime::parse_from_rfc3339(s).is_err()
            {
                out.push(format!("{k} {s:?} of task {}", t["id"]));
            }
        }
    }
    out
}

async fn never_a_500_for_client_input(srv: TestServer) {
    let u = srv.user("alice");
    let t = u
        .create(json!({ "title": "t", "due_date": "2026-01-01T00:00:00Z" }))
        .await;
    let path = format!("/api/tasks/{}", id_of(&t));
    let weird = [
        json!({ "title": "t", "due_date": 1e300 }),
        json!({ "title": "t", "due_date": -1 }),
        json!({ "title": "t", "due_date": "9999-12-31T23:59:59Z", "reminder_offset_minutes": 1 }),
        json!({ "title": "t", "due_date": "0001-01-01T00:00:00Z", "reminder_offset_minutes": 1 }),
        json!({ "title": "t", "due_date": "2026-01-01T00:00:00Z", "reminder_offset_minutes": 1e20 }),
        json!({ "title": "t", "due_date": "2026-01-01T00:00:00Z", "reminder_offset_minutes": 2_000_000_000 }),
        json!({ "title": "t", "due_date": "2026-01-01T00:00:00Z", "reminder_offset_minutes": 4_294_967_296i64 }),
        json!({ "title": "t", "is_recurring": true, "recurrence_rule": "INTERVAL:99999999999999999999" }),
        json!({ "title": "t", "is_recurring": true, "recurrence_rule": "INTERVAL:2147483648" }),
        json!({ "title": "t", "is_recurring": true, "recurrence_rule": "RRULE:FREQ=DAILY;COUNT=0" }),
        json!({ "title": "t", "is_recurring": true, "recurrence_rule": "RRULE:FREQ=DAILY;UNTIL=20000101T000000Z", "due_date": "2026-01-01T00:00:00Z" }),
        json!({ "title": "t", "is_recurring": true, "recurrence_rule": "YEARLY", "due_date": "9999-12-31T00:00:00Z" }),
        json!({ "title": "t", "is_recurring": true, "recurrence_rule": "INTERVAL:36500", "due_date": "9999-06-01T00:00:00Z" }),
        json!({ "title": "t", "is_recurring": true, "recurrence_rule": "x".repeat(500) }),
        json!({ "title": "\u{0}" }),
        json!({ "title": "t", "tags": [null] }),
        json!({ "title": "t", "tags": [[]] }),
        json!({ "title": "t", "status": { "x": 1 } }),
    ];
    let mut problems = Vec::new();
    for body in &weird {
        for (m, p) in [("POST", "/api/tasks"), ("PUT", path.as_str())] {
            problems.extend(problem(&u, m, p, Some(body)).await);
        }
    }
    // Every task that did get created can be listed and completed without a 500.
    let list = u.get("/api/tasks").await;
    assert_eq!(list.status, 200, "{}", list.text);
    problems.extend(bad_datetimes(&list.json));
    for t in list.json.as_array().unwrap() {
        let p = format!("/api/tasks/{}/complete", id_of(t));
        problems.extend(problem(&u, "PATCH", &p, None).await);
    }
    let after = u.get("/api/tasks?sort=due_date&order=asc").await;
    assert_eq!(after.status, 200, "{}", after.text);
    problems.extend(bad_datetimes(&after.json));
    problems.dedup();
    let problems: Vec<String> = problems
        .into_iter()
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    assert!(
        problems.is_empty(),
        "{} problems:\n{}",
        problems.len(),
        problems.join("\n")
    );
}

async fn overflowing_reminder_offset_is_not_fatal(srv: TestServer) {
    let u = srv.user("alice");
    let t = u
        .create(json!({ "title": "t", "due_date": "2026-01-01T00:00:00Z" }))
        .await;
    let body = json!({ "title": "t", "due_date": "2026-01-01T00:00:00Z",
                       "reminder_offset_minutes": i64::MAX });
    let mut problems = Vec::new();
    problems.extend(problem(&u, "POST", "/api/tasks", Some(&body)).await);
    let path = format!("/api/tasks/{}", id_of(&t));
    problems.extend(problem(&u, "PUT", &path, Some(&body)).await);
    // The server keeps working afterwards.
    let r = u.post("/api/tasks", &json!({ "title": "after" })).await;
    if r.status != 201 {
        problems.push(format!(
            "create after the overflow: {} {}",
            r.status, r.text
        ));
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

async fn body_limit_is_64_kib(srv: TestServer) {
    let u = srv.user("alice");
    // A syntactically valid body of exactly `n` bytes (its description is too long, so 422).
    let body_of = |n: usize| {
        let skeleton = r#"{"title":"t","description":""}"#;
        let pad = "x".repeat(n - skeleton.len());
        let b = format!(r#"{{"title":"t","description":"{pad}"}}"#);
        assert_eq!(b.len(), n);
        b
    };
    let r = u.send_raw("POST", "/api/tasks", body_of(64 * 1024)).await;
    r.expect_invalid("string_too_long", json!(["body", "description"]));
    u.send_raw("POST", "/api/tasks", body_of(64 * 1024 + 1))
        .await
        .expect_detail(413, "Request body too large");
    // A body far over the limit: the server answers 413 and may close the connection before the
    // client has written everything, so a broken pipe is an acceptable outcome too. Either way
    // nothing is stored and the server keeps serving.
    match u
        .try_send_raw("POST", "/api/tasks", body_of(1024 * 1024))
        .await
    {
        Ok(r) => {
            r.expect_detail(413, "Request body too large");
        }
        Err(error) => assert!(
            error.is_request() || error.is_body(),
            "unexpected transport error: {error:?}"
        ),
    }
    // The refused connection may still sit in the shared client's pool: check with a new one.
    let u = taskstream_tests::User {
        client: reqwest::Client::builder().no_proxy().build().unwrap(),
        ..srv.user("alice")
    };
    assert!(
        u.list("").await.is_empty(),
        "an oversized body stores nothing"
    );
    u.create(json!({ "title": "still serving" })).await;
}

async fn blank_title_is_a_value_error(srv: TestServer) {
    let u = srv.user("alice");
    create_invalid(&u, json!({ "title": "   " }), "value_error", "title").await;
    create_invalid(&u, json!({ "title": "\t\n " }), "value_error", "title").await;
    let t = u.create(json!({ "title": "keep" })).await;
    u.put_task(&id_of(&t), &json!({ "title": "   " }))
        .await
        .expect_invalid("value_error", json!(["body", "title"]));
    assert_eq!(u.list("").await, vec![t]);
}

/// NUL cannot be stored by PostgreSQL (cluster mode), so no store accepts it: a 422, never a 500.
async fn nul_characters_are_a_value_error_everywhere(srv: TestServer) {
    let u = srv.user("alice");
    create_invalid(&u, json!({ "title": "a\u{0}b" }), "value_error", "title").await;
    create_invalid(
        &u,
        json!({ "title": "ok", "description": "x\u{0}" }),
        "value_error",
        "description",
    )
    .await;
    let tags = u
        .post("/api/tasks", &json!({ "title": "ok", "tags": ["a\u{0}"] }))
        .await;
    tags.expect_invalid_at(json!(["body", "tags", 0]));
    let search = u.get("/api/tasks?search=a%00b").await;
    search.expect_invalid("value_error", json!(["query", "search"]));
    let chat = u
        .post(
            &format!("/api/{}/chat", u.sub),
            &json!({ "message": "add a\u{0}b" }),
        )
        .await;
    chat.expect_invalid("value_error", json!(["body", "message"]));
    assert!(u.list("").await.is_empty());
}

taskstream_tests::api_tests!(
    title_rules,
    description_rules,
    enum_rules,
    due_date_rules,
    tags_rules,
    reminder_offset_rules,
    bool_rules,
    recurrence_rule_rules,
    body_shape_rules,
    several_errors_are_all_reported,
    oversized_body_is_413,
    bad_uuid_in_path,
    put_rules,
    never_a_500_for_client_input,
    overflowing_reminder_offset_is_not_fatal,
    body_limit_is_64_kib,
    blank_title_is_a_value_error,
    nul_characters_are_a_value_error_everywhere,
);
