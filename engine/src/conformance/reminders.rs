//! The [`crate::ports::ReminderStore`]: timers follow their tasks and fire once.

use super::*;

async fn armed_for<S: TaskStore + ?Sized>(store: &S, task_id: uuid::Uuid) -> Vec<DateTime<Utc>> {
    store
        .pending_reminders()
        .await
        .expect("pending")
        .into_iter()
        .filter(|(id, _)| *id == task_id)
        .map(|(_, at)| at)
        .collect()
}

pub async fn reminders_follow_their_tasks<S: TaskStore + ?Sized>(store: &S) {
    let user = fresh_user("reminded");
    let mut changes = store.reminder_changes();
    let task = create(store, &user, json!({"title": "call mum", "due_date": "2031-05-01T18:00:00Z", "reminder_offset_minutes": 30, "is_recurring": true, "recurrence_rule": "WEEKLY"})).await;
    assert_eq!(
        armed_for(store, task.id).await,
        [at("2031-05-01T17:30:00Z")]
    );
    let announced = changes.recv().await.expect("announced");
    assert_eq!(
        (announced.task_id, announced.fire_at),
        (task.id, vec![at("2031-05-01T17:30:00Z")])
    );

    let patch = parse_task_patch(&json!({"due_date": "2031-05-02T18:00:00Z"})).expect("valid");
    store
        .modify(task.id, &user, TaskOp::Update(patch), now())
        .await
        .expect("update");
    assert_eq!(
        armed_for(store, task.id).await,
        [at("2031-05-02T17:30:00Z")],
        "re-armed, the old time dropped"
    );

    let next = store
        .modify(task.id, &user, TaskOp::Complete, now())
        .await
        .expect("complete")
        .next
        .expect("next");
    assert!(
        armed_for(store, task.id).await.is_empty(),
        "completion cancels"
    );
    assert_eq!(
        armed_for(store, next.id).await,
        [at("2031-05-09T17:30:00Z")],
        "the next occurrence is armed"
    );

    store
        .modify(next.id, &user, TaskOp::Delete, now())
        .await
        .expect("delete");
    assert!(
        armed_for(store, next.id).await.is_empty(),
        "deletion cancels"
    );
    // A reminder time long past when it is set is not armed (nothing to fire, nothing missed);
    // one a moment ago is, and fires at once.
    let old = create(store, &user, json!({"title": "history", "due_date": "2020-01-01T10:00:00Z", "reminder_offset_minutes": 5})).await;
    assert!(armed_for(store, old.id).await.is_empty());
    let recent_due = (now() + chrono::Duration::seconds(30)).to_rfc3339();
    let recent = create(
        store,
        &user,
        json!({"title": "just now", "due_date": recent_due, "reminder_offset_minutes": 1}),
    )
    .await;
    assert_eq!(
        armed_for(store, recent.id).await.len(),
        1,
        "30 s past is within the grace"
    );
}

pub async fn reminders_fire_once_late_or_missed<S: TaskStore + ?Sized>(store: &S) {
    use crate::reminder::FireOutcome;
    let user = fresh_user("fired");
    let window = chrono::Duration::hours(24);
    let task = create(store, &user, json!({"title": "stretch", "due_date": "2031-06-01T10:00:00Z", "reminder_offset_minutes": 10})).await;
    let fire_at = at("2031-06-01T09:50:00Z");
    let before: std::collections::HashSet<_> = store
        .pending_events(1_000_000)
        .await
        .expect("outbox")
        .into_iter()
        .map(|r| r.envelope.event_id)
        .collect();

    let late = store
        .fire_reminder(task.id, fire_at, at("2031-06-01T09:50:07Z"), window)
        .await
        .expect("fire");
    assert_eq!(
        late,
        FireOutcome::Fired {
            late_by: chrono::Duration::seconds(7)
        }
    );
    let again = store
        .fire_reminder(task.id, fire_at, at("2031-06-01T09:50:08Z"), window)
        .await
        .expect("fire again");
    assert_eq!(again, FireOutcome::NotArmed, "never twice");
    let fired: Vec<_> = store
        .pending_events(1_000_000)
        .await
        .expect("outbox")
        .into_iter()
        .filter(|r| !before.contains(&r.envelope.event_id) && r.envelope.user_id == user)
        .collect();
    assert_eq!(fired.len(), 1);
    assert_eq!(fired[0].topic, "reminders");
    assert_eq!(fired[0].envelope.event_type, "reminder.triggered");
    assert_eq!(
        fired[0].envelope.payload["remind_at"],
        json!("2031-06-01T09:50:00Z")
    );
    assert_eq!(fired[0].envelope.payload["late_by_seconds"], json!(7));

    // The same time again after an unrelated edit: it already fired, so it is not re-armed.
    let patch = parse_task_patch(&json!({"title": "stretch more"})).expect("valid");
    store
        .modify(task.id, &user, TaskOp::Update(patch), now())
        .await
        .expect("update");
    assert!(armed_for(store, task.id).await.is_empty());

    // A reminder found far too late is recorded as missed and the user told, once.
    let old = create(
        store,
        &user,
        json!({"title": "old", "due_date": "2031-07-01T10:00:00Z", "reminder_offset_minutes": 5}),
    )
    .await;
    let missed = store
        .fire_reminder(
            old.id,
            at("2031-07-01T09:55:00Z"),
            at("2031-07-03T00:00:00Z"),
            window,
        )
        .await
        .expect("fire");
    assert_eq!(missed, FireOutcome::Missed);
    assert!(armed_for(store, old.id).await.is_empty());
    let notes = store
        .list_notifications(&user, 10)
        .await
        .expect("notifications");
    assert_eq!(notes.len(), 1);
    assert_eq!(
        (notes[0].kind.as_str(), notes[0].title.as_str()),
        ("missed_reminder", "old")
    );

    // A fire time that no longer matches the task does nothing.
    let moved = store
        .fire_reminder(
            old.id,
            at("2031-07-01T09:00:00Z"),
            at("2031-07-01T09:00:00Z"),
            window,
        )
        .await
        .expect("fire");
    assert_eq!(moved, FireOutcome::NotArmed);
}

/// Fires prepared ahead ([`TaskStore::prepare_reminders`]) end exactly as unprepared ones,
/// whatever happened to the task between the preparation and the deadline.
pub async fn prepared_fires_end_as_ordinary_ones<S: TaskStore + ?Sized>(store: &S) {
    use crate::reminder::FireOutcome;
    let user = fresh_user("prepared");
    let window = chrono::Duration::hours(24);
    let fire_at = crate::time::truncate_micros(now() + chrono::Duration::milliseconds(300));
    let due = (fire_at + chrono::Duration::minutes(10)).to_rfc3339();
    let body =
        |title: &str| json!({"title": title, "due_date": due, "reminder_offset_minutes": 10});
    let mut tasks = Vec::new();
    for title in ["plain", "renamed", "completed", "moved", "deleted", "fired"] {
        tasks.push(create(store, &user, body(title)).await);
    }
    let ids: Vec<_> = tasks.iter().map(|task| (task.id, fire_at)).collect();
    assert!(ids.iter().all(|(_, at)| *at == fire_at));
    let before: std::collections::HashSet<_> = store
        .pending_events(1_000_000)
        .await
        .expect("outbox")
        .into_iter()
        .map(|r| r.envelope.event_id)
        .collect();
    store.prepare_reminders(ids.clone()).await.expect("prepare");

    let edit = |body: serde_json::Value| TaskOp::Update(parse_task_patch(&body).expect("valid"));
    let (renamed, completed, moved, deleted, fired) = (
        tasks[1].id,
        tasks[2].id,
        tasks[3].id,
        tasks[4].id,
        tasks[5].id,
    );
    store
        .modify(
            renamed,
            &user,
            edit(json!({"title": "renamed later"})),
            now(),
        )
        .await
        .expect("rename");
    store
        .modify(completed, &user, TaskOp::Complete, now())
        .await
        .expect("complete");
    let later = (fire_at + chrono::Duration::hours(1)).to_rfc3339();
    store
        .modify(moved, &user, edit(json!({"due_date": later})), now())
        .await
        .expect("move");
    store
        .modify(deleted, &user, TaskOp::Delete, now())
        .await
        .expect("delete");
    let first = store
        .fire_reminder(fired, fire_at, fire_at, window)
        .await
        .expect("fire");
    assert_eq!(
        first,
        FireOutcome::Fired {
            late_by: chrono::Duration::zero()
        }
    );

    if let Ok(wait) = (fire_at - Utc::now()).to_std() {
        tokio::time::sleep(wait).await;
    }
    let outcomes = store
        .fire_reminders(ids.clone(), window)
        .await
        .expect("fire the batch");
    let fired_now: Vec<bool> = outcomes
        .iter()
        .map(|outcome| matches!(outcome, FireOutcome::Fired { .. }))
        .collect();
    assert_eq!(
        fired_now,
        [true, true, false, false, false, false],
        "only the unchanged and the renamed task fire: {outcomes:?}"
    );
    assert!(
        outcomes[2..]
            .iter()
            .all(|outcome| *outcome == FireOutcome::NotArmed)
    );
    let again = store.fire_reminders(ids, window).await.expect("fire again");
    assert!(
        again
            .iter()
            .all(|outcome| *outcome == FireOutcome::NotArmed),
        "never twice"
    );
    let mut triggered: Vec<_> = store
        .pending_events(1_000_000)
        .await
        .expect("outbox")
        .into_iter()
        .filter(|r| !before.contains(&r.envelope.event_id) && r.envelope.user_id == user)
        .filter(|r| r.envelope.event_type == "reminder.triggered")
        .map(|r| (r.key, r.envelope.payload["task_title"].clone(), r.topic))
        .collect();
    triggered.sort_by_key(|fired| fired.1.to_string());
    assert_eq!(
        triggered,
        [
            (fired.to_string(), json!("fired"), "reminders".to_owned()),
            (
                tasks[0].id.to_string(),
                json!("plain"),
                "reminders".to_owned()
            ),
            (
                renamed.to_string(),
                json!("renamed later"),
                "reminders".to_owned()
            ),
        ],
        "one event each, from the task as it is at the deadline"
    );
    assert_eq!(
        armed_for(store, moved).await,
        [fire_at + chrono::Duration::minutes(50)],
        "the moved reminder waits for its new time (an hour later, 10 minutes before)"
    );
}

pub async fn several_reminders_and_snoozes<S: TaskStore + ?Sized>(store: &S) {
    use crate::reminder::FireOutcome;
    let user = fresh_user("several");
    let window = chrono::Duration::hours(24);
    let task = create(
        store,
        &user,
        json!({"title": "exam", "due_date": "2031-08-10T09:00:00Z", "reminder_offset_minutes": 60,
               "reminders": [{"offset_minutes": 1440}, {"at": "2031-08-01T12:00:00+02:00"}, {"offset_minutes": 60}],
               "is_recurring": true, "recurrence_rule": "YEARLY"}),
    )
    .await;
    assert_eq!(
        armed_for(store, task.id).await,
        [
            at("2031-08-01T10:00:00Z"),
            at("2031-08-09T09:00:00Z"),
            at("2031-08-10T08:00:00Z")
        ],
        "every reminder armed once (the duplicate offset collapses)"
    );
    let first = store
        .fire_reminder(
            task.id,
            at("2031-08-01T10:00:00Z"),
            at("2031-08-01T10:00:00Z"),
            window,
        )
        .await
        .expect("fire");
    assert!(matches!(first, FireOutcome::Fired { .. }));
    assert_eq!(
        armed_for(store, task.id).await,
        [at("2031-08-09T09:00:00Z"), at("2031-08-10T08:00:00Z")],
        "the others stay armed"
    );
    let history = store.reminder_history(task.id).await.expect("history");
    assert_eq!(history.len(), 3);
    assert!(history[0].fired_at.is_some() && history[0].kind == "task");

    // Changing the due date moves the offsets, keeps the fixed instant (already fired).
    let patch = parse_task_patch(&json!({"due_date": "2031-08-12T09:00:00Z"})).expect("valid");
    store
        .modify(task.id, &user, TaskOp::Update(patch), now())
        .await
        .expect("update");
    assert_eq!(
        armed_for(store, task.id).await,
        [at("2031-08-11T09:00:00Z"), at("2031-08-12T08:00:00Z")]
    );

    // An offset without a due date is refused like reminder_offset_minutes.
    let refused = store
        .modify(
            task.id,
            &user,
            TaskOp::Update(
                parse_task_patch(&json!({"due_date": null, "reminder_offset_minutes": null}))
                    .expect("valid"),
            ),
            now(),
        )
        .await;
    assert!(matches!(refused, Err(EngineError::ReminderRequiresDueDate)));

    // The next occurrence keeps the offsets, not the one-off instant.
    let next = store
        .modify(task.id, &user, TaskOp::Complete, now())
        .await
        .expect("complete")
        .next
        .expect("next");
    assert_eq!(
        next.reminders,
        vec![
            crate::reminder::ReminderSpec::Offset {
                offset_minutes: 1440
            },
            crate::reminder::ReminderSpec::Offset { offset_minutes: 60 }
        ]
    );
    assert!(
        armed_for(store, task.id).await.is_empty(),
        "completion cancels all"
    );

    // Snooze: a reminder notification re-armed as a one-off, only for its owner.
    let note = crate::activity::Notification {
        id: crate::time::new_id(),
        user_id: user.clone(),
        event_id: crate::time::new_id(),
        kind: "reminder".to_owned(),
        task_id: Some(next.id.to_string()),
        title: next.title.clone(),
        message: "Reminder".to_owned(),
        created_at: now(),
        read_at: None,
        payload: json!({}),
    };
    store.record_notification(note.clone()).await.expect("note");
    let snoozed_at = at("2031-01-01T00:00:00Z");
    assert!(matches!(
        store.snooze("someone-else", note.id, 10, snoozed_at).await,
        Err(EngineError::NotificationNotFound)
    ));
    let snoozed = store
        .snooze(&user, note.id, 10, snoozed_at)
        .await
        .expect("snooze");
    assert_eq!(
        (snoozed.task_id, snoozed.fire_at),
        (next.id, at("2031-01-01T00:10:00Z"))
    );
    assert!(
        armed_for(store, next.id)
            .await
            .contains(&at("2031-01-01T00:10:00Z"))
    );
    let read = store.list_notifications(&user, 10).await.expect("list");
    assert!(
        read.iter().any(|n| n.id == note.id && n.read_at.is_some()),
        "snoozing reads it"
    );
    // An unrelated edit keeps the snooze; completion cancels it; firing it fires once.
    let patch = parse_task_patch(&json!({"priority": "high"})).expect("valid");
    store
        .modify(next.id, &user, TaskOp::Update(patch), now())
        .await
        .expect("update");
    assert!(
        armed_for(store, next.id)
            .await
            .contains(&at("2031-01-01T00:10:00Z"))
    );
    let fired = store
        .fire_reminder(
            next.id,
            at("2031-01-01T00:10:00Z"),
            at("2031-01-01T00:10:00Z"),
            window,
        )
        .await
        .expect("fire");
    assert!(matches!(fired, FireOutcome::Fired { .. }));
    let again = store
        .snooze(&user, note.id, 5, at("2031-01-01T00:20:00Z"))
        .await
        .expect("again");
    store
        .modify(next.id, &user, TaskOp::Complete, now())
        .await
        .expect("complete");
    assert!(
        !armed_for(store, next.id).await.contains(&again.fire_at),
        "completion cancels the snooze"
    );
    assert!(matches!(
        store.snooze(&user, note.id, 5, now()).await,
        Err(EngineError::Conflict(_))
    ));
}

pub async fn on_due_recurrence_spawns_once_at_the_due_date<S: TaskStore + ?Sized>(store: &S) {
    use crate::reminder::FireOutcome;
    let user = fresh_user("on-due");
    let window = chrono::Duration::hours(24);
    let task = create(
        store,
        &user,
        json!({"title": "water plants", "due_date": "2031-09-01T08:00:00Z", "is_recurring": true,
               "recurrence_rule": "DAILY", "recurrence_trigger": "on_due", "reminder_offset_minutes": 30}),
    )
    .await;
    assert_eq!(
        armed_for(store, task.id).await,
        [at("2031-09-01T07:30:00Z"), at("2031-09-01T08:00:00Z")],
        "the reminder and the recurrence timer"
    );
    let outcome = store
        .fire_reminder(
            task.id,
            at("2031-09-01T08:00:00Z"),
            at("2031-09-01T08:00:01Z"),
            window,
        )
        .await
        .expect("fire");
    let FireOutcome::Recurred { next } = outcome else {
        panic!("expected the next occurrence, got {outcome:?}");
    };
    let next = store.get(next).await.expect("get").expect("next exists");
    assert_eq!(next.parent_task_id, Some(task.id));
    assert_eq!(next.due_date, Some(at("2031-09-02T08:00:00Z")));
    assert_eq!(next.status, TaskStatus::Pending);
    assert_eq!(
        store.get(task.id).await.expect("get").expect("task").status,
        TaskStatus::Pending,
        "the task itself stays open"
    );
    assert_eq!(
        armed_for(store, next.id).await,
        [at("2031-09-02T07:30:00Z"), at("2031-09-02T08:00:00Z")],
        "the next occurrence has its own timers"
    );
    let again = store
        .fire_reminder(
            task.id,
            at("2031-09-01T08:00:00Z"),
            at("2031-09-01T08:00:02Z"),
            window,
        )
        .await
        .expect("fire again");
    assert_eq!(again, FireOutcome::NotArmed, "never twice");
    let done = store
        .modify(task.id, &user, TaskOp::Complete, now())
        .await
        .expect("complete");
    assert!(
        done.next.is_none(),
        "completing later adds no second occurrence"
    );

    // Completing before the due date: the usual next occurrence, and the timer moves with it.
    let early = create(
        store,
        &user,
        json!({"title": "standup", "due_date": "2031-10-01T09:00:00Z", "is_recurring": true,
               "recurrence_rule": "WEEKLY", "recurrence_trigger": "on_due"}),
    )
    .await;
    let next = store
        .modify(early.id, &user, TaskOp::Complete, now())
        .await
        .expect("complete")
        .next
        .expect("next");
    assert!(armed_for(store, early.id).await.is_empty());
    assert_eq!(
        armed_for(store, next.id).await,
        [at("2031-10-08T09:00:00Z")]
    );

    // After downtime the series catches up even past the missed window, in one step: the next
    // occurrence is the first one still ahead, never a backlog of past ones.
    let late = create(
        store,
        &user,
        json!({"title": "journal", "due_date": "2020-01-01T21:00:00Z", "is_recurring": true,
               "recurrence_rule": "DAILY", "recurrence_trigger": "on_due"}),
    )
    .await;
    assert_eq!(
        armed_for(store, late.id).await,
        [at("2020-01-01T21:00:00Z")]
    );
    let fired_at = now();
    let caught_up = store
        .fire_reminder(late.id, at("2020-01-01T21:00:00Z"), fired_at, window)
        .await
        .expect("fire");
    let FireOutcome::Recurred { next } = caught_up else {
        panic!("expected the next occurrence, got {caught_up:?}");
    };
    let next = store.get(next).await.expect("get").expect("next exists");
    let due = next.due_date.expect("due date");
    assert!(
        due > fired_at && due <= fired_at + chrono::Duration::days(1),
        "the next occurrence is the first one ahead: {due}"
    );
    assert_eq!(due.format("%H:%M").to_string(), "21:00", "same time of day");
    assert_eq!(
        armed_for(store, next.id).await,
        [due],
        "its timer waits for its own due date"
    );
}
