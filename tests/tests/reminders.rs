//! Reminders fire on time, exactly once, across restarts and crashes, in real time against the
//! binary. Reminder offsets are at least one minute, so a task due in 60 s + N s reminds in N s.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use serde_json::{Value, json};
use taskstream_tests::{CONSUMER_WAIT, TestServer, User, eventually, id_of, reminding_in};

async fn task_reminding_in(user: &User, title: &str, seconds: f64) -> Value {
    user.create(
        json!({"title": title, "due_date": reminding_in(seconds), "reminder_offset_minutes": 1}),
    )
    .await
}

/// Waits until `user` has a reminder notification for `task_id`; returns all of them.
async fn wait_notified(user: &User, task_id: &str) -> Vec<Value> {
    let wait = CONSUMER_WAIT + Duration::from_secs(5);
    eventually("a reminder notification", wait, || async {
        let all = user.notifications().await;
        if all.iter().any(|n| n["task_id"] == task_id) {
            Ok(all)
        } else {
            Err(format!("{} notifications, none for {task_id}", all.len()))
        }
    })
    .await
}

fn count_for(notifications: &[Value], task_id: &str) -> usize {
    notifications
        .iter()
        .filter(|n| n["task_id"] == task_id)
        .count()
}

/// The reminder.triggered audit rows of a task (the audit consumer reads the reminders topic).
async fn triggered(user: &User, task_id: &str) -> Vec<Value> {
    user.audit(&format!("task_id={task_id}&event_type=reminder.triggered"))
        .await
}

async fn a_reminder_fires_once_and_becomes_a_notification(srv: TestServer) {
    let alice = srv.user("alice");
    let task = task_reminding_in(&alice, "Call the plumber", 1.0).await;
    let id = id_of(&task);
    let notes = wait_notified(&alice, &id).await;
    let note = notes.iter().find(|n| n["task_id"] == id.as_str()).unwrap();
    assert_eq!(note["kind"], "reminder");
    assert_eq!(note["title"], "Call the plumber");
    assert_eq!(note["payload"]["remind_at"], task["remind_at"]);

    // A later reminder firing proves the scheduler moved on without firing the first twice.
    let later = task_reminding_in(&alice, "sentinel", 0.5).await;
    let notes = wait_notified(&alice, &id_of(&later)).await;
    assert_eq!(count_for(&notes, &id), 1);
    let events = triggered(&alice, &id).await;
    assert_eq!(events.len(), 1, "one reminder.triggered: {events:?}");
    assert_eq!(events[0]["payload"]["task_title"], "Call the plumber");
    assert!(
        srv.user("bob").notifications().await.is_empty(),
        "nobody else is notified"
    );
}

async fn updates_rearm_and_deletes_cancel(srv: TestServer) {
    let alice = srv.user("alice");
    // Re-armed from an hour away to a second away.
    let moved = alice
        .create(json!({"title": "moved", "due_date": reminding_in(3600.0), "reminder_offset_minutes": 1}))
        .await;
    let moved_id = id_of(&moved);
    alice
        .put_task(&moved_id, &json!({"due_date": reminding_in(1.0)}))
        .await
        .expect(200);
    // Deleted before it fires.
    let gone = task_reminding_in(&alice, "deleted", 1.0).await;
    alice.delete_task(&id_of(&gone)).await.expect(200);
    // Its reminder removed by clearing the offset.
    let cleared = task_reminding_in(&alice, "cleared", 1.0).await;
    alice
        .put_task(&id_of(&cleared), &json!({"reminder_offset_minutes": null}))
        .await
        .expect(200);
    let sentinel = task_reminding_in(&alice, "sentinel", 2.5).await;

    let notes = wait_notified(&alice, &id_of(&sentinel)).await;
    assert_eq!(
        count_for(&notes, &moved_id),
        1,
        "the re-armed reminder fired"
    );
    assert_eq!(
        count_for(&notes, &id_of(&gone)),
        0,
        "a deleted task's reminder never fires"
    );
    assert_eq!(
        count_for(&notes, &id_of(&cleared)),
        0,
        "a cleared reminder never fires"
    );
}

async fn completion_cancels_and_the_next_occurrence_reminds(srv: TestServer) {
    let alice = srv.user("alice");
    // Rules fire at most hourly, so the next occurrence is made to come soon by counting from
    // completion: an hourly series whose time of day is an hour minus a minute ago has its
    // next occurrence a minute from now, and its one-minute reminder in two seconds. The task's
    // zone puts the local time near noon, so "today at that time" never crosses midnight.
    let now = chrono::Utc::now();
    let utc_hour = i32::try_from(chrono::Timelike::hour(&now)).unwrap();
    let offset = 12 - utc_hour;
    let zone = match offset {
        0 => "Etc/UTC".to_owned(),
        east if east > 0 => format!("Etc/GMT-{east}"),
        west => format!("Etc/GMT+{}", -west),
    };
    let due = now + chrono::Duration::days(1) - chrono::Duration::hours(1)
        + chrono::Duration::seconds(62);
    let soon = now + chrono::Duration::seconds(2);
    let fmt =
        |at: chrono::DateTime<chrono::Utc>| at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let created = alice
        .req(reqwest::Method::POST, "/api/tasks")
        .header("x-timezone", zone.as_str())
        .json(
            &json!({"title": "drink water", "due_date": fmt(due), "reminder_offset_minutes": 1,
                      // This occurrence's own reminder, due in two seconds unless cancelled.
                      "reminders": [{"at": fmt(soon)}],
                      "is_recurring": true, "recurrence_rule": "RRULE:FREQ=HOURLY",
                      "recurrence_from": "completion"}),
        )
        .send()
        .await
        .unwrap();
    let task = taskstream_tests::Resp::from(created)
        .await
        .expect(201)
        .clone();
    let id = id_of(&task);
    let done = alice.complete(&id).await;
    let next = done.expect(200)["next_task"].clone();
    let next_id = id_of(&next);
    assert_ne!(
        next["remind_at"],
        Value::Null,
        "the next occurrence has a reminder"
    );
    let next_remind = taskstream_tests::utc(next["remind_at"].as_str().unwrap());
    assert!(
        next_remind < now + chrono::Duration::seconds(10),
        "the next occurrence reminds within seconds: {next_remind} ({zone})"
    );

    let notes = wait_notified(&alice, &next_id).await;
    assert_eq!(count_for(&notes, &next_id), 1);
    assert_eq!(
        count_for(&notes, &id),
        0,
        "the completed occurrence's reminder was cancelled"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reminder_due_while_down_fires_once_after_restart_marked_late() {
    let mut srv = TestServer::start().await;
    let alice = srv.user("alice");
    let task = task_reminding_in(&alice, "while down", 0.5).await;
    let id = id_of(&task);
    srv.sigkill();
    tokio::time::sleep(Duration::from_millis(2500)).await;
    srv.restart().await;
    let alice = srv.user("alice");
    let notes = wait_notified(&alice, &id).await;
    assert_eq!(count_for(&notes, &id), 1);
    let events = eventually("the audited reminder.triggered", CONSUMER_WAIT, || async {
        let rows = triggered(&alice, &id).await;
        if rows.is_empty() {
            Err("not audited yet".to_owned())
        } else {
            Ok(rows)
        }
    })
    .await;
    assert_eq!(events.len(), 1);
    let late = events[0]["payload"]["late_by_seconds"]
        .as_i64()
        .unwrap_or(0);
    assert!(late >= 1, "marked late: {}", events[0]["payload"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repeated_kills_around_the_fire_moment_never_duplicate() {
    let mut srv = TestServer::start().await;
    let alice = srv.user("alice");
    let mut ids = Vec::new();
    for i in 0..6 {
        let task = task_reminding_in(&alice, &format!("burst {i}"), 0.6 + 0.3 * f64::from(i)).await;
        ids.push(id_of(&task));
    }
    // Kill and restart around the fire moments.
    for _ in 0..6 {
        tokio::time::sleep(Duration::from_millis(350)).await;
        srv.sigkill();
        srv.restart().await;
    }
    let alice = srv.user("alice");
    let sentinel = task_reminding_in(&alice, "sentinel", 0.5).await;
    let notes = wait_notified(&alice, &id_of(&sentinel)).await;
    for id in &ids {
        assert_eq!(
            count_for(&notes, id),
            1,
            "exactly one notification for {id}: {notes:?}"
        );
    }
    for id in &ids {
        let rows = eventually("one audited reminder.triggered", CONSUMER_WAIT, || async {
            let rows = triggered(&alice, id).await;
            if rows.is_empty() {
                Err("not audited yet".to_owned())
            } else {
                Ok(rows)
            }
        })
        .await;
        assert_eq!(rows.len(), 1, "one reminder.triggered for {id}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reminder_older_than_the_missed_window_is_recorded_as_missed() {
    let mut srv = TestServer::start_with(&["--missed-reminder-window-secs", "1"], &[]).await;
    let alice = srv.user("alice");
    let task = task_reminding_in(&alice, "too late", 0.3).await;
    let id = id_of(&task);
    srv.sigkill();
    tokio::time::sleep(Duration::from_millis(2500)).await;
    srv.restart().await;
    let alice = srv.user("alice");
    let notes = wait_notified(&alice, &id).await;
    let mine: Vec<&Value> = notes
        .iter()
        .filter(|n| n["task_id"] == id.as_str())
        .collect();
    assert_eq!(mine.len(), 1);
    assert_eq!(mine[0]["kind"], "missed_reminder");
    assert_eq!(mine[0]["title"], "too late");
    // A later reminder fires normally, and the missed one never produced reminder.triggered.
    let sentinel = task_reminding_in(&alice, "sentinel", 0.5).await;
    wait_notified(&alice, &id_of(&sentinel)).await;
    assert!(
        triggered(&alice, &id).await.is_empty(),
        "a missed reminder does not fire"
    );
}

fn in_seconds(seconds: f64) -> String {
    (chrono::Utc::now() + chrono::Duration::milliseconds((seconds * 1000.0) as i64))
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

async fn several_reminders_fire_each_once_and_a_notification_snoozes(srv: TestServer) {
    let carol = srv.user("carol");
    let first = in_seconds(1.0);
    let second = in_seconds(2.0);
    let task = carol
        .create(
            json!({"title": "Board meeting", "due_date": in_seconds(7200.0),
                       "reminders": [{"at": first}, {"at": second}, {"offset_minutes": 60}]}),
        )
        .await;
    let id = id_of(&task);
    assert_eq!(
        task["remind_at"],
        Value::Null,
        "TaskResponse keeps its contract keys"
    );

    let notes = eventually(
        "two reminder notifications",
        CONSUMER_WAIT + Duration::from_secs(5),
        || async {
            let notes: Vec<Value> = carol
                .notifications()
                .await
                .into_iter()
                .filter(|n| n["task_id"] == id.as_str() && n["kind"] == "reminder")
                .collect();
            if notes.len() >= 2 {
                Ok(notes)
            } else {
                Err(format!("{} so far", notes.len()))
            }
        },
    )
    .await;
    let mut fired: Vec<String> = notes
        .iter()
        .map(|n| n["payload"]["remind_at"].as_str().unwrap().to_owned())
        .collect();
    fired.sort();
    assert_eq!(fired.len(), 2, "each fixed reminder once: {fired:?}");

    let schedule = carol.get(&format!("/api/tasks/{id}/reminders")).await;
    let schedule = schedule.expect(200).clone();
    assert_eq!(schedule["reminders"][2], json!({"offset_minutes": 60}));
    let states: Vec<(&str, &str)> = schedule["schedule"]
        .as_array()
        .unwrap()
        .iter()
        .map(|row| {
            (
                row["kind"].as_str().unwrap(),
                row["state"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        states,
        [("task", "fired"), ("task", "fired"), ("task", "pending")]
    );

    // Snooze the first notification: a one-off ten minutes out, and the notification is read.
    let note_id = notes[0]["id"].as_str().unwrap().to_owned();
    let before = chrono::Utc::now();
    let snoozed = carol
        .post(
            &format!("/api/notifications/{note_id}/snooze"),
            &json!({"minutes": 10}),
        )
        .await;
    let snoozed = snoozed.expect(200).clone();
    assert_eq!(snoozed["task_id"], id.as_str());
    let remind_at = taskstream_tests::utc(snoozed["remind_at"].as_str().unwrap());
    let ahead = (remind_at - before).num_seconds();
    assert!(
        (599..=601).contains(&ahead),
        "ten minutes from now: {ahead} s"
    );
    let schedule = carol.get(&format!("/api/tasks/{id}/reminders")).await;
    assert!(
        schedule.expect(200)["schedule"]
            .as_array()
            .unwrap()
            .iter()
            .any(|row| row["kind"] == "snooze" && row["state"] == "pending"),
        "the snooze is armed"
    );
    let read = carol.notifications().await;
    assert!(
        read.iter()
            .any(|n| n["id"] == note_id.as_str() && !n["read_at"].is_null())
    );

    // Only the owner can snooze; bad bodies are 422; a completed task cannot be snoozed.
    srv.user("mallory")
        .post(
            &format!("/api/notifications/{note_id}/snooze"),
            &json!({"minutes": 10}),
        )
        .await
        .expect_detail(404, "Notification not found");
    carol
        .post(
            &format!("/api/notifications/{note_id}/snooze"),
            &json!({"minutes": 0}),
        )
        .await
        .expect_invalid("int_range", json!(["body", "minutes"]));
    carol
        .post(&format!("/api/notifications/{note_id}/snooze"), &json!({}))
        .await
        .expect_invalid("missing", json!(["body", "minutes"]));
    carol.complete(&id).await.expect(200);
    let conflict = carol
        .post(
            &format!("/api/notifications/{note_id}/snooze"),
            &json!({"minutes": 5}),
        )
        .await;
    conflict.expect_detail(409, "The task is already completed");
    let schedule = carol.get(&format!("/api/tasks/{id}/reminders")).await;
    assert!(
        schedule.expect(200)["schedule"]
            .as_array()
            .unwrap()
            .iter()
            .all(|row| row["state"] != "pending"),
        "completion cancelled every pending reminder, the snooze too"
    );
}

async fn the_reminders_field_is_validated(srv: TestServer) {
    let dan = srv.user("dan");
    dan.post("/api/tasks", &json!({"title": "t", "due_date": "2031-01-01T00:00:00Z", "reminders": [{"offset_minutes": 0}]}))
        .await
        .expect_invalid("int_range", json!(["body", "reminders", 0, "offset_minutes"]));
    dan.post(
        "/api/tasks",
        &json!({"title": "t", "reminders": [{"at": "tomorrow"}]}),
    )
    .await
    .expect_invalid("datetime_parsing", json!(["body", "reminders", 0, "at"]));
    dan.post(
        "/api/tasks",
        &json!({"title": "t", "reminders": [{"minutes": 5}]}),
    )
    .await
    .expect_invalid("value_error", json!(["body", "reminders", 0]));
    dan.post("/api/tasks", &json!({"title": "t", "reminders": "soon"}))
        .await
        .expect_invalid("list_type", json!(["body", "reminders"]));
    let eleven: Vec<Value> = (1..=11).map(|n| json!({"offset_minutes": n})).collect();
    dan.post(
        "/api/tasks",
        &json!({"title": "t", "due_date": "2031-01-01T00:00:00Z", "reminders": eleven}),
    )
    .await
    .expect_invalid("too_long", json!(["body", "reminders"]));
    dan.post(
        "/api/tasks",
        &json!({"title": "t", "reminders": [{"offset_minutes": 5}]}),
    )
    .await
    .expect_detail(422, "Reminder requires a due date");
    let ok = dan
        .create(json!({"title": "t", "reminders": [{"at": "2031-01-01T09:00:00+01:00"}]}))
        .await;
    let shown = dan
        .get(&format!("/api/tasks/{}/reminders", id_of(&ok)))
        .await;
    assert_eq!(
        shown.expect(200)["reminders"],
        json!([{"at": "2031-01-01T08:00:00Z"}])
    );
    let cleared = dan.put_task(&id_of(&ok), &json!({"reminders": null})).await;
    cleared.expect(200);
    let shown = dan
        .get(&format!("/api/tasks/{}/reminders", id_of(&ok)))
        .await;
    assert_eq!(shown.expect(200)["reminders"], json!([]));
    assert_eq!(shown.expect(200)["schedule"], json!([]), "clearing disarms");
    srv.user("eve")
        .get(&format!("/api/tasks/{}/reminders", id_of(&ok)))
        .await
        .expect_detail(403, "Not authorized to access this resource");
}

async fn on_due_recurrence_creates_the_next_occurrence_when_the_due_date_passes(srv: TestServer) {
    let fay = srv.user("fay");
    let task = fay
        .create(json!({"title": "Water the plants", "due_date": in_seconds(1.5),
                       "is_recurring": true, "recurrence_rule": "DAILY", "recurrence_trigger": "on_due"}))
        .await;
    let id = id_of(&task);
    let next = eventually("the next occurrence", CONSUMER_WAIT, || async {
        let all = fay.list("").await;
        all.into_iter()
            .find(|t| t["parent_task_id"] == id.as_str())
            .ok_or_else(|| "not yet".to_owned())
    })
    .await;
    let due = taskstream_tests::utc(task["due_date"].as_str().unwrap());
    assert_eq!(
        taskstream_tests::utc(next["due_date"].as_str().unwrap()),
        due + chrono::Duration::days(1)
    );
    assert_eq!(
        fay.get_task(&id).await.expect(200)["status"],
        "pending",
        "still open"
    );
    // Completing the overdue one afterwards adds no second occurrence.
    let done = fay.complete(&id).await;
    assert_eq!(done.expect(200)["next_task"], Value::Null);
    let children = fay
        .list("")
        .await
        .into_iter()
        .filter(|t| t["parent_task_id"] == id.as_str())
        .count();
    assert_eq!(children, 1);
    fay.post(
        "/api/tasks",
        &json!({"title": "x", "recurrence_trigger": "weekly"}),
    )
    .await
    .expect_invalid("enum", json!(["body", "recurrence_trigger"]));
}

taskstream_tests::api_tests!(
    a_reminder_fires_once_and_becomes_a_notification,
    updates_rearm_and_deletes_cancel,
    completion_cancels_and_the_next_occurrence_reminds,
    several_reminders_fire_each_once_and_a_notification_snoozes,
    the_reminders_field_is_validated,
    on_due_recurrence_creates_the_next_occurrence_when_the_due_date_passes,
);

/// A sample of `name` (unlabelled, or the first labelled one) on `/metrics`.
async fn metric(srv: &TestServer, name: &str) -> Option<f64> {
    let text = srv
        .client()
        .get(srv.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .find(|line| {
            line.strip_prefix(name)
                .is_some_and(|rest| rest.starts_with(' ') || rest.starts_with('{'))
        })
        .and_then(|line| line.rsplit(' ').next()?.parse().ok())
}

/// `/metrics` counts what the reminders did: an on-time one fired from an event prepared ahead
/// (with its lateness in the histogram), then, across a restart, a late one and a missed one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reminder_metrics_count_fires_late_and_missed_ones() {
    let mut srv = TestServer::start_with(&["--missed-reminder-window-secs", "10"], &[]).await;
    let alice = srv.user("alice");
    let on_time = task_reminding_in(&alice, "on time", 1.0).await;
    wait_notified(&alice, &id_of(&on_time)).await;
    for name in [
        "reminders_fired_total",
        "reminders_prepared_total",
        "reminders_fired_prepared_total",
        "reminder_fire_lateness_seconds_count",
    ] {
        let value = metric(&srv, name).await;
        assert!(value.is_some_and(|n| n >= 1.0), "{name}: {value:?}");
    }
    assert!(
        metric(&srv, "reminder_fire_lateness_seconds_bucket")
            .await
            .is_some(),
        "lateness is a histogram with buckets (dashboards sum them across pods)"
    );
    assert!(metric(&srv, "reminders_pending").await.is_some());

    // Down for twelve seconds: one reminder is more than the ten-second window late (missed),
    // the other a few seconds (fired late).
    let missed = task_reminding_in(&alice, "missed", 0.2).await;
    let late = task_reminding_in(&alice, "late", 8.0).await;
    srv.sigkill();
    tokio::time::sleep(Duration::from_secs(12)).await;
    srv.restart().await;
    let alice = srv.user("alice");
    wait_notified(&alice, &id_of(&late)).await;
    let missed_id = id_of(&missed);
    eventually("the missed reminder recorded", CONSUMER_WAIT, || async {
        let notes = alice.notifications().await;
        if notes
            .iter()
            .any(|n| n["task_id"] == missed_id.as_str() && n["kind"] == "missed_reminder")
        {
            Ok(())
        } else {
            Err("no missed_reminder notification yet".to_owned())
        }
    })
    .await;
    for name in ["reminders_late_total", "reminders_missed_total"] {
        let value = metric(&srv, name).await;
        assert!(value.is_some_and(|n| n >= 1.0), "{name}: {value:?}");
    }
}
