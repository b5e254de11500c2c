//! Completion and recurrence: next occurrences per rule (month-end clamping without drift, leap
//! years, INTERVAL:N, RRULE), idempotent completion, PUT-as-completion, deleting parents.
#![allow(clippy::unwrap_used)]

use serde_json::{Value, json};
use taskstream_tests::{TestServer, User, assert_task, assert_utc, id_of};

/// Completes `id`, asserting 200, and returns `(completed_task, next_task)`.
async fn complete(u: &User, id: &str) -> (Value, Value) {
    let r = u.complete(id).await;
    let body = r.expect(200).clone();
    assert_eq!(
        body.as_object().unwrap().len(),
        2,
        "complete body has exactly completed_task and next_task: {body}"
    );
    assert_task(&body["completed_task"]);
    assert_eq!(body["completed_task"]["status"], "completed");
    assert_eq!(body["completed_task"]["id"], id);
    if !body["next_task"].is_null() {
        assert_task(&body["next_task"]);
    }
    (body["completed_task"].clone(), body["next_task"].clone())
}

/// Creates a recurring task and completes the chain, returning every due date seen.
async fn chain(u: &User, rule: &str, first_due: &str, steps: usize) -> Vec<String> {
    let t = u
        .create(
            json!({ "title": format!("chain {rule}"), "is_recurring": true,
                        "recurrence_rule": rule, "due_date": first_due }),
        )
        .await;
    let mut dues = vec![t["due_date"].as_str().unwrap().to_string()];
    let mut id = id_of(&t);
    for _ in 0..steps {
        let (_, next) = complete(u, &id).await;
        assert!(!next.is_null(), "{rule}: no next occurrence after {dues:?}");
        assert_eq!(next["parent_task_id"], id.as_str());
        dues.push(next["due_date"].as_str().unwrap().to_string());
        id = id_of(&next);
    }
    dues
}

async fn monthly_from_jan_31_clamps_without_drift(srv: TestServer) {
    let u = srv.user("alice");
    assert_eq!(
        chain(&u, "MONTHLY", "2027-01-31T09:30:00Z", 5).await,
        [
            "2027-01-31T09:30:00Z",
            "2027-02-28T09:30:00Z",
            "2027-03-31T09:30:00Z",
            "2027-04-30T09:30:00Z",
            "2027-05-31T09:30:00Z",
            "2027-06-30T09:30:00Z",
        ]
    );
    // Leap year.
    assert_eq!(
        chain(&u, "monthly", "2028-01-31T00:00:00Z", 3).await,
        [
            "2028-01-31T00:00:00Z",
            "2028-02-29T00:00:00Z",
            "2028-03-31T00:00:00Z",
            "2028-04-30T00:00:00Z",
        ]
    );
    // Across a year end.
    assert_eq!(
        chain(&u, "MONTHLY", "2026-11-30T23:59:59Z", 3).await,
        [
            "2026-11-30T23:59:59Z",
            "2026-12-30T23:59:59Z",
            "2027-01-30T23:59:59Z",
            "2027-02-28T23:59:59Z",
        ]
    );
}

async fn yearly_from_feb_29(srv: TestServer) {
    let u = srv.user("alice");
    assert_eq!(
        chain(&u, "YEARLY", "2028-02-29T12:00:00Z", 4).await,
        [
            "2028-02-29T12:00:00Z",
            "2029-02-28T12:00:00Z",
            "2030-02-28T12:00:00Z",
            "2031-02-28T12:00:00Z",
            "2032-02-29T12:00:00Z",
        ]
    );
}

async fn daily_weekly_interval(srv: TestServer) {
    let u = srv.user("alice");
    assert_eq!(
        chain(&u, "DAILY", "2026-02-27T08:00:00Z", 3).await,
        [
            "2026-02-27T08:00:00Z",
            "2026-02-28T08:00:00Z",
            "2026-03-01T08:00:00Z",
            "2026-03-02T08:00:00Z",
        ]
    );
    assert_eq!(
        chain(&u, "WEEKLY", "2026-12-24T18:15:00Z", 2).await,
        [
            "2026-12-24T18:15:00Z",
            "2026-12-31T18:15:00Z",
            "2027-01-07T18:15:00Z",
        ]
    );
    assert_eq!(
        chain(&u, "INTERVAL:3", "2026-01-30T07:00:00Z", 3).await,
        [
            "2026-01-30T07:00:00Z",
            "2026-02-02T07:00:00Z",
            "2026-02-05T07:00:00Z",
            "2026-02-08T07:00:00Z",
        ]
    );
    assert_eq!(
        chain(&u, "interval:1", "2026-01-01T00:00:00Z", 1).await,
        ["2026-01-01T00:00:00Z", "2026-01-02T00:00:00Z"]
    );
    // An overdue task's next occurrence is computed from its due date, not from now.
    assert_eq!(
        chain(&u, "DAILY", "2020-01-01T10:00:00Z", 1).await,
        ["2020-01-01T10:00:00Z", "2020-01-02T10:00:00Z"]
    );
}

async fn rrule_weekly_byday(srv: TestServer) {
    let u = srv.user("alice");
    // 2026-03-02 is a Monday.
    assert_eq!(
        chain(
            &u,
            "RRULE:FREQ=WEEKLY;BYDAY=MO,WE",
            "2026-03-02T09:00:00Z",
            4
        )
        .await,
        [
            "2026-03-02T09:00:00Z",
            "2026-03-04T09:00:00Z",
            "2026-03-09T09:00:00Z",
            "2026-03-11T09:00:00Z",
            "2026-03-16T09:00:00Z",
        ]
    );
    assert_eq!(
        chain(&u, "rrule:freq=daily;interval=2", "2026-03-02T09:00:00Z", 2).await,
        [
            "2026-03-02T09:00:00Z",
            "2026-03-04T09:00:00Z",
            "2026-03-06T09:00:00Z",
        ]
    );
}

async fn next_task_copies_the_series(srv: TestServer) {
    let u = srv.user("alice");
    let t = u
        .create(json!({
            "title": "water plants", "description": "balcony", "priority": "high",
            "status": "in_progress", "tags": ["Home", "garden"], "due_date": "2026-05-10T07:00:00Z",
            "reminder_offset_minutes": 45, "is_recurring": true, "recurrence_rule": "weekly"
        }))
        .await;
    let (done, next) = complete(&u, &id_of(&t)).await;
    assert_eq!(done["id"], t["id"]);
    for k in [
        "title",
        "description",
        "priority",
        "due_date",
        "tags",
        "reminder_offset_minutes",
        "remind_at",
        "recurrence_rule",
        "is_recurring",
        "created_at",
    ] {
        assert_eq!(done[k], t[k], "completed task's {k} changed");
    }
    assert_ne!(next["id"], t["id"]);
    assert_eq!(next["title"], "water plants");
    assert_eq!(next["description"], "balcony");
    assert_eq!(next["priority"], "high");
    assert_eq!(next["status"], "pending");
    assert_eq!(next["tags"], json!(["home", "garden"]));
    assert_eq!(next["reminder_offset_minutes"], 45);
    assert_eq!(next["due_date"], "2026-05-17T07:00:00Z");
    assert_eq!(next["remind_at"], "2026-05-17T06:15:00Z");
    assert_eq!(next["is_recurring"], true);
    assert_eq!(next["recurrence_rule"], "WEEKLY");
    assert_eq!(next["parent_task_id"], t["id"]);
    assert_eq!(next["user_id"], "alice");
    // Both are stored as answered.
    assert_eq!(u.get_task(&id_of(&t)).await.expect(200), &done);
    assert_eq!(u.get_task(&id_of(&next)).await.expect(200), &next);
    assert_eq!(u.list("").await.len(), 2);
}

async fn null_due_date_still_recurs(srv: TestServer) {
    let u = srv.user("alice");
    let t = u
        .create(json!({ "title": "someday", "is_recurring": true, "recurrence_rule": "DAILY" }))
        .await;
    let (_, next) = complete(&u, &id_of(&t)).await;
    assert!(
        !next.is_null(),
        "a recurring task without a due date recurs"
    );
    assert_eq!(next["due_date"], Value::Null);
    assert_eq!(next["remind_at"], Value::Null);
    assert_eq!(next["parent_task_id"], t["id"]);
    assert_eq!(next["recurrence_rule"], "DAILY");
}

async fn non_recurring_gives_no_next_task(srv: TestServer) {
    let u = srv.user("alice");
    for body in [
        json!({ "title": "plain", "due_date": "2026-01-01T00:00:00Z" }),
        json!({ "title": "flag only", "is_recurring": true, "due_date": "2026-01-01T00:00:00Z" }),
        json!({ "title": "rule only", "is_recurring": false, "recurrence_rule": "DAILY", "due_date": "2026-01-01T00:00:00Z" }),
    ] {
        let t = u.create(body).await;
        let (_, next) = complete(&u, &id_of(&t)).await;
        assert_eq!(next, Value::Null, "{t}");
    }
    assert_eq!(u.list("").await.len(), 3);
}

async fn completing_twice_changes_nothing(srv: TestServer) {
    let u = srv.user("alice");
    let t = u
        .create(
            json!({ "title": "once", "is_recurring": true, "recurrence_rule": "DAILY",
                        "due_date": "2026-01-01T09:00:00Z" }),
        )
        .await;
    let id = id_of(&t);
    let (done1, next1) = complete(&u, &id).await;
    assert!(!next1.is_null());
    let (done2, next2) = complete(&u, &id).await;
    assert_eq!(
        next2,
        Value::Null,
        "second completion must not create a next task"
    );
    assert_eq!(done2["status"], "completed");
    assert_eq!(done2, done1, "second completion changed the task");
    let (_, next3) = complete(&u, &id).await;
    assert_eq!(next3, Value::Null);
    let all = u.list("").await;
    assert_eq!(all.len(), 2, "exactly one next occurrence: {all:?}");
    let children: Vec<_> = all
        .iter()
        .filter(|x| x["parent_task_id"] == id.as_str())
        .collect();
    assert_eq!(children.len(), 1);
}

async fn concurrent_completions_create_one_next_task(srv: TestServer) {
    let u = srv.user("alice");
    let t = u
        .create(
            json!({ "title": "race", "is_recurring": true, "recurrence_rule": "DAILY",
                        "due_date": "2026-01-01T09:00:00Z" }),
        )
        .await;
    let id = id_of(&t);
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..8 {
        let u = u.clone();
        let id = id.clone();
        set.spawn(async move { u.complete(&id).await });
    }
    let mut nexts = 0;
    while let Some(r) = set.join_next().await {
        let r = r.unwrap();
        let body = r.expect(200);
        assert_eq!(body["completed_task"]["status"], "completed");
        if !body["next_task"].is_null() {
            nexts += 1;
        }
    }
    assert_eq!(nexts, 1, "exactly one response carries the next task");
    assert_eq!(u.list("").await.len(), 2);
}

async fn put_status_completed_is_a_completion(srv: TestServer) {
    let u = srv.user("alice");
    let t = u
        .create(
            json!({ "title": "via put", "is_recurring": true, "recurrence_rule": "WEEKLY",
                        "due_date": "2026-01-05T09:00:00Z" }),
        )
        .await;
    let id = id_of(&t);
    let r = u.put_task(&id, &json!({ "status": "completed" })).await;
    let v = r.expect(200).clone();
    assert_task(&v);
    assert_eq!(v["status"], "completed");
    let children = |all: Vec<Value>| {
        all.into_iter()
            .filter(|x| x["parent_task_id"] == id.as_str())
            .collect::<Vec<_>>()
    };
    let kids = children(u.list("").await);
    assert_eq!(kids.len(), 1, "PUT completed creates the next occurrence");
    assert_eq!(kids[0]["due_date"], "2026-01-12T09:00:00Z");
    assert_eq!(kids[0]["status"], "pending");

    // Again through every door: nothing more.
    let r = u.put_task(&id, &json!({ "status": "completed" })).await;
    assert_eq!(r.expect(200)["status"], "completed");
    let (_, next) = complete(&u, &id).await;
    assert_eq!(next, Value::Null);
    // Reopen and complete again: still at most one next occurrence per task.
    u.put_task(&id, &json!({ "status": "pending" }))
        .await
        .expect(200);
    let (_, next) = complete(&u, &id).await;
    assert_eq!(
        next,
        Value::Null,
        "a task has at most one next occurrence ever"
    );
    u.put_task(&id, &json!({ "status": "in_progress" }))
        .await
        .expect(200);
    u.put_task(&id, &json!({ "status": "completed", "title": "renamed" }))
        .await
        .expect(200);
    assert_eq!(children(u.list("").await).len(), 1);
    assert_eq!(u.list("").await.len(), 2);
}

async fn put_completed_with_other_fields_uses_the_new_values(srv: TestServer) {
    let u = srv.user("alice");
    let t = u
        .create(
            json!({ "title": "old", "is_recurring": true, "recurrence_rule": "DAILY",
                        "due_date": "2026-01-05T09:00:00Z" }),
        )
        .await;
    let id = id_of(&t);
    let r = u
        .put_task(&id, &json!({ "status": "completed", "title": "new" }))
        .await;
    assert_eq!(r.expect(200)["title"], "new");
    let all = u.list("").await;
    let kid = all
        .iter()
        .find(|x| x["parent_task_id"] == id.as_str())
        .expect("next occurrence");
    assert_eq!(kid["title"], "new");
    assert_eq!(kid["due_date"], "2026-01-06T09:00:00Z");
}

async fn deleting_a_completed_recurring_parent(srv: TestServer) {
    let u = srv.user("alice");
    let t = u
        .create(
            json!({ "title": "series", "is_recurring": true, "recurrence_rule": "DAILY",
                        "due_date": "2026-01-01T09:00:00Z" }),
        )
        .await;
    let (_, next) = complete(&u, &id_of(&t)).await;
    let (_, next2) = complete(&u, &id_of(&next)).await;
    assert_eq!(next2["parent_task_id"], next["id"]);
    let r = u.delete_task(&id_of(&t)).await;
    assert_eq!(r.expect(200), &json!({ "id": id_of(&t), "deleted": true }));
    let child = u.get_task(&id_of(&next)).await;
    let child = child.expect(200);
    assert_eq!(child["parent_task_id"], Value::Null);
    assert_eq!(child["title"], "series");
    // The grandchild still points at its own parent.
    assert_eq!(
        u.get_task(&id_of(&next2)).await.expect(200)["parent_task_id"],
        next["id"]
    );
    // The middle one can go too.
    u.delete_task(&id_of(&next)).await.expect(200);
    assert_eq!(
        u.get_task(&id_of(&next2)).await.expect(200)["parent_task_id"],
        Value::Null
    );
    assert_eq!(u.list("").await.len(), 1);
    // And the chain goes on from the survivor.
    let (_, next3) = complete(&u, &id_of(&next2)).await;
    assert_eq!(next3["due_date"], "2026-01-04T09:00:00Z");
}

async fn recurrence_from_completion_uses_the_completion_time(srv: TestServer) {
    let u = srv.user("alice");
    let t = u
        .create(
            json!({ "title": "from completion", "is_recurring": true, "recurrence_rule": "DAILY",
                        "recurrence_from": "completion", "due_date": "2020-01-01T10:00:00Z" }),
        )
        .await;
    let before = chrono::Utc::now();
    let (_, next) = complete(&u, &id_of(&t)).await;
    let after = chrono::Utc::now();
    let due = assert_utc(&next["due_date"]);
    assert!(
        due > before && due <= after + chrono::Duration::days(2),
        "next due {due} should be within a day or so after completion ({before})"
    );
    // The default ("due") would have given 2020-01-02.
    let t = u
        .create(
            json!({ "title": "from due", "is_recurring": true, "recurrence_rule": "DAILY",
                        "recurrence_from": "due", "due_date": "2020-01-01T10:00:00Z" }),
        )
        .await;
    let (_, next) = complete(&u, &id_of(&t)).await;
    assert_eq!(next["due_date"], "2020-01-02T10:00:00Z");
}

async fn rrule_from_a_non_matching_day_and_exhausted_rules(srv: TestServer) {
    let u = srv.user("alice");
    // 2026-03-03 is a Tuesday: the next MO/WE occurrence strictly after it is Wednesday.
    assert_eq!(
        chain(
            &u,
            "RRULE:FREQ=WEEKLY;BYDAY=MO,WE",
            "2026-03-03T09:00:00Z",
            2
        )
        .await,
        [
            "2026-03-03T09:00:00Z",
            "2026-03-04T09:00:00Z",
            "2026-03-09T09:00:00Z",
        ]
    );
    // COUNT=2: Mar 2 and Mar 3, then no more.
    let t = u
        .create(json!({ "title": "twice", "is_recurring": true,
                        "recurrence_rule": "RRULE:FREQ=DAILY;COUNT=2", "due_date": "2026-03-02T09:00:00Z" }))
        .await;
    let (_, next) = complete(&u, &id_of(&t)).await;
    assert_eq!(next["due_date"], "2026-03-03T09:00:00Z");
    let (_, last) = complete(&u, &id_of(&next)).await;
    assert_eq!(last, Value::Null, "COUNT=2 is exhausted");
    // UNTIL in the past: no next occurrence.
    let t = u
        .create(json!({ "title": "over", "is_recurring": true,
                        "recurrence_rule": "RRULE:FREQ=DAILY;UNTIL=20260301T000000Z", "due_date": "2026-03-02T09:00:00Z" }))
        .await;
    let (_, next) = complete(&u, &id_of(&t)).await;
    assert_eq!(next, Value::Null, "UNTIL has passed");
}

async fn created_completed_is_already_complete(srv: TestServer) {
    let u = srv.user("alice");
    let t = u
        .create(
            json!({ "title": "born done", "status": "completed", "is_recurring": true,
                        "recurrence_rule": "DAILY", "due_date": "2026-01-01T09:00:00Z" }),
        )
        .await;
    assert_eq!(u.list("").await.len(), 1, "creating is not completing");
    let (done, next) = complete(&u, &id_of(&t)).await;
    assert_eq!(
        next,
        Value::Null,
        "completing a completed task changes nothing"
    );
    assert_eq!(done, t);
    assert_eq!(u.list("").await.len(), 1);
}

async fn x_timezone_keeps_the_local_time_across_dst(srv: TestServer) {
    let alice = srv.user("alice");
    // 2026-03-07 09:00 in New York (EST, UTC-5); clocks spring forward on 2026-03-08.
    let body = json!({"title": "standup", "due_date": "2026-03-07T14:00:00Z",
                      "is_recurring": true, "recurrence_rule": "DAILY"});
    let zoned = alice
        .req(reqwest::Method::POST, "/api/tasks")
        .header("X-Timezone", "America/New_York")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(zoned.status().as_u16(), 201);
    let zoned: Value = zoned.json().await.unwrap();
    let next = alice.complete(&id_of(&zoned)).await.expect(200)["next_task"].clone();
    assert_eq!(
        next["due_date"], "2026-03-08T13:00:00Z",
        "09:00 EDT the next day"
    );

    // Without the header the zone is UTC: exactly 24 hours later.
    let plain = alice.create(body.clone()).await;
    let next = alice.complete(&id_of(&plain)).await.expect(200)["next_task"].clone();
    assert_eq!(next["due_date"], "2026-03-08T14:00:00Z");

    // An unknown zone is a 422 located at the header.
    let bad = alice
        .req(reqwest::Method::POST, "/api/tasks")
        .header("X-Timezone", "Mars/Olympus_Mons")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status().as_u16(), 422);
    let detail: Value = bad.json().await.unwrap();
    assert_eq!(detail["detail"][0]["loc"], json!(["header", "x-timezone"]));
}

taskstream_tests::api_tests!(
    monthly_from_jan_31_clamps_without_drift,
    yearly_from_feb_29,
    daily_weekly_interval,
    rrule_weekly_byday,
    next_task_copies_the_series,
    null_due_date_still_recurs,
    non_recurring_gives_no_next_task,
    completing_twice_changes_nothing,
    concurrent_completions_create_one_next_task,
    put_status_completed_is_a_completion,
    put_completed_with_other_fields_uses_the_new_values,
    deleting_a_completed_recurring_parent,
    recurrence_from_completion_uses_the_completion_time,
    rrule_from_a_non_matching_day_and_exhausted_rules,
    created_completed_is_already_complete,
    x_timezone_keeps_the_local_time_across_dst,
);
