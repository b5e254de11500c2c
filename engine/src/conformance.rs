//! The `TaskStore` conformance suite, written once and run by every adapter, so PostgreSQL
//! behaves exactly like SQLite. Each check panics with a message naming what broke.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use chrono::{DateTime, Utc};
use serde_json::json;

use crate::error::EngineError;
use crate::ports::TaskStore;
use crate::task::input::{parse_new_task, parse_task_patch};
use crate::task::{
    Priority, SortField, SortOrder, StatusFilter, Task, TaskOp, TaskQuery, TaskStatus, ops,
};
use crate::time::{now, parse_datetime};

mod projects;
pub use projects::project_store_suite;

fn at(text: &str) -> DateTime<Utc> {
    parse_datetime(text).expect("test date")
}

/// A user id unique to one run of the suite, so checks never see each other's rows.
fn fresh_user(label: &str) -> String {
    format!("{label}-{}", uuid::Uuid::new_v4())
}

async fn create<S: TaskStore + ?Sized>(store: &S, user: &str, body: serde_json::Value) -> Task {
    let draft = parse_new_task(&body).expect("valid test body");
    let (task, events) = ops::create(user, draft, now()).expect("valid draft");
    store.insert(task, events).await.expect("insert")
}

async fn titles<S: TaskStore + ?Sized>(store: &S, user: &str, query: TaskQuery) -> Vec<String> {
    store
        .list(user, &query)
        .await
        .expect("list")
        .into_iter()
        .map(|t| t.title)
        .collect()
}

/// Runs every check against `store`.
pub async fn task_store_suite<S: TaskStore + ?Sized>(store: &S) {
    round_trips_every_field(store).await;
    lists_only_the_owners_tasks_with_filters(store).await;
    sorts_as_the_contract_says(store).await;
    updates_and_rejects_foreign_users(store).await;
    completes_once_with_one_next_occurrence(store).await;
    deleting_a_parent_keeps_the_child(store).await;
    writes_events_with_each_change(store).await;
    concurrent_writes_all_land(store).await;
    relayed_events_leave_the_outbox(store).await;
    repairs_a_missing_next_occurrence_once(store).await;
    audit_and_notifications_are_once_per_event_and_scoped(store).await;
    reminders_follow_their_tasks(store).await;
    reminders_fire_once_late_or_missed(store).await;
    prepared_fires_end_as_ordinary_ones(store).await;
    several_reminders_and_snoozes(store).await;
    on_due_recurrence_spawns_once_at_the_due_date(store).await;
    store.ping().await.expect("ping");
}

pub async fn round_trips_every_field<S: TaskStore + ?Sized>(store: &S) {
    let user = fresh_user("roundtrip");
    let task = create(store, &user, json!({
        "title": "Pay rent", "description": "flat 3", "status": "in_progress", "priority": "high",
        "due_date": "2026-01-31T09:00:00.123456Z", "tags": ["home", "money"], "reminder_offset_minutes": 90,
        "is_recurring": true, "recurrence_rule": "RRULE:FREQ=MONTHLY;BYMONTHDAY=-1", "recurrence_from": "completion"
    })).await;
    let loaded = store.get(task.id).await.expect("get").expect("present");
    assert_eq!(loaded, task, "a stored task reads back unchanged");
    assert!(
        store
            .get(uuid::Uuid::new_v4())
            .await
            .expect("get")
            .is_none(),
        "unknown ids are absent"
    );
}

pub async fn lists_only_the_owners_tasks_with_filters<S: TaskStore + ?Sized>(store: &S) {
    let alice = fresh_user("alice");
    let bob = fresh_user("bob");
    create(
        store,
        &alice,
        json!({"title": "Buy 100% milk", "tags": ["shop", "home"], "priority": "low"}),
    )
    .await;
    create(store, &alice, json!({"title": "File taxes", "description": "form_b", "due_date": "2026-04-01T00:00:00Z", "status": "completed"})).await;
    create(store, &alice, json!({"title": "Water plants", "is_recurring": true, "recurrence_rule": "DAILY", "tags": ["home"]})).await;
    create(store, &bob, json!({"title": "Bob's milk"})).await;

    let list = |query: TaskQuery| titles(store, &alice, query);

    let all = list(TaskQuery::default()).await;
    assert_eq!(all.len(), 3, "only the owner's tasks are listed: {all:?}");
    assert_eq!(
        list(TaskQuery {
            search: Some("MILK".to_lowercase()),
            ..TaskQuery::default()
        })
        .await,
        ["Buy 100% milk"]
    );
    assert_eq!(
        list(TaskQuery {
            search: Some("0% m".into()),
            ..TaskQuery::default()
        })
        .await,
        ["Buy 100% milk"],
        "% is literal"
    );
    assert_eq!(
        list(TaskQuery {
            search: Some("y_1".into()),
            ..TaskQuery::default()
        })
        .await,
        Vec::<String>::new(),
        "_ is literal"
    );
    assert_eq!(
        list(TaskQuery {
            search: Some("form_b".into()),
            ..TaskQuery::default()
        })
        .await,
        ["File taxes"],
        "description is searched"
    );
    assert_eq!(
        list(TaskQuery {
            status: StatusFilter::Active,
            sort: SortField::Title,
            order: SortOrder::Asc,
            ..TaskQuery::default()
        })
        .await,
        ["Buy 100% milk", "Water plants"]
    );
    assert_eq!(
        list(TaskQuery {
            status: StatusFilter::Only(TaskStatus::Completed),
            ..TaskQuery::default()
        })
        .await,
        ["File taxes"]
    );
    assert_eq!(
        list(TaskQuery {
            priority: Some(Priority::Low),
            ..TaskQuery::default()
        })
        .await,
        ["Buy 100% milk"]
    );
    assert_eq!(
        list(TaskQuery {
            tags: vec!["home".into(), "shop".into()],
            ..TaskQuery::default()
        })
        .await,
        ["Buy 100% milk"],
        "tags are ANDed"
    );
    assert_eq!(
        list(TaskQuery {
            has_due_date: Some(true),
            ..TaskQuery::default()
        })
        .await,
        ["File taxes"]
    );
    assert_eq!(
        list(TaskQuery {
            is_recurring: Some(true),
            ..TaskQuery::default()
        })
        .await,
        ["Water plants"]
    );
    // Due windows: from inclusive, until exclusive.
    let due = |from: &str, until: &str| TaskQuery {
        due_from: (!from.is_empty()).then(|| crate::time::parse_datetime(from).expect("instant")),
        due_until: (!until.is_empty())
            .then(|| crate::time::parse_datetime(until).expect("instant")),
        ..TaskQuery::default()
    };
    assert_eq!(
        list(due("2026-04-01T00:00:00Z", "2026-04-02T00:00:00Z")).await,
        ["File taxes"]
    );
    assert!(
        list(due("2026-04-01T00:00:00.000001Z", ""))
            .await
            .is_empty()
    );
    assert!(list(due("", "2026-04-01T00:00:00Z")).await.is_empty());
    assert_eq!(
        list(due("", "2026-04-01T00:00:00.000001Z")).await,
        ["File taxes"]
    );
    assert_eq!(
        list(TaskQuery {
            sort: SortField::Title,
            order: SortOrder::Asc,
            limit: Some(1),
            offset: 1,
            ..TaskQuery::default()
        })
        .await,
        ["File taxes"]
    );
}

pub async fn sorts_as_the_contract_says<S: TaskStore + ?Sized>(store: &S) {
    let user = fresh_user("sorter");
    create(
        store,
        &user,
        json!({"title": "b-late", "due_date": "2026-05-01T00:00:00Z", "priority": "low"}),
    )
    .await;
    create(store, &user, json!({"title": "A-none", "priority": "high"})).await;
    create(
        store,
        &user,
        json!({"title": "c-early", "due_date": "2026-01-01T00:00:00Z"}),
    )
    .await;
    let titles = |query: TaskQuery| titles(store, &user, query);
    assert_eq!(
        titles(TaskQuery::default()).await,
        ["c-early", "A-none", "b-late"],
        "newest first by default"
    );
    assert_eq!(
        titles(TaskQuery {
            sort: SortField::DueDate,
            order: SortOrder::Asc,
            ..TaskQuery::default()
        })
        .await,
        ["c-early", "b-late", "A-none"]
    );
    assert_eq!(
        titles(TaskQuery {
            sort: SortField::DueDate,
            order: SortOrder::Desc,
            ..TaskQuery::default()
        })
        .await,
        ["b-late", "c-early", "A-none"],
        "no due date sorts last both ways"
    );
    assert_eq!(
        titles(TaskQuery {
            sort: SortField::Priority,
            order: SortOrder::Desc,
            ..TaskQuery::default()
        })
        .await,
        ["A-none", "c-early", "b-late"]
    );
    assert_eq!(
        titles(TaskQuery {
            sort: SortField::Title,
            order: SortOrder::Asc,
            ..TaskQuery::default()
        })
        .await,
        ["A-none", "b-late", "c-early"],
        "title sort ignores case"
    );
}

pub async fn updates_and_rejects_foreign_users<S: TaskStore + ?Sized>(store: &S) {
    let user = fresh_user("editor");
    let task = create(
        store,
        &user,
        json!({"title": "draft", "due_date": "2026-03-01T12:00:00Z"}),
    )
    .await;
    let patch =
        parse_task_patch(&json!({"title": "final", "reminder_offset_minutes": 15})).expect("valid");
    let change = store
        .modify(task.id, &user, TaskOp::Update(patch), now())
        .await
        .expect("update");
    assert_eq!(change.task.title, "final");
    assert_eq!(change.task.remind_at, Some(at("2026-03-01T11:45:00Z")));
    assert_eq!(
        store.get(task.id).await.expect("get"),
        Some(change.task.clone()),
        "the update is persisted"
    );

    let foreign = store
        .modify(task.id, "someone-else", TaskOp::Delete, now())
        .await;
    assert!(
        matches!(foreign, Err(EngineError::Forbidden)),
        "foreign users are refused: {foreign:?}"
    );
    let missing = store
        .modify(uuid::Uuid::new_v4(), &user, TaskOp::Complete, now())
        .await;
    assert!(
        matches!(missing, Err(EngineError::NotFound)),
        "unknown ids are not found: {missing:?}"
    );

    let bad = parse_task_patch(&json!({"due_date": null})).expect("valid");
    let refused = store
        .modify(task.id, &user, TaskOp::Update(bad), now())
        .await;
    assert!(matches!(refused, Err(EngineError::ReminderRequiresDueDate)));
    assert_eq!(
        store.get(task.id).await.expect("get"),
        Some(change.task),
        "a refused change leaves the task alone"
    );
}

pub async fn completes_once_with_one_next_occurrence<S: TaskStore + ?Sized>(store: &S) {
    let user = fresh_user("completer");
    let task = create(store, &user, json!({"title": "rent", "due_date": "2026-01-31T09:00:00Z", "is_recurring": true, "recurrence_rule": "MONTHLY"})).await;
    let first = store
        .modify(task.id, &user, TaskOp::Complete, now())
        .await
        .expect("complete");
    let next = first.next.expect("a next occurrence");
    assert_eq!(next.due_date, Some(at("2026-02-28T09:00:00Z")));
    assert_eq!(store.get(next.id).await.expect("get"), Some(next.clone()));

    let second = store
        .modify(task.id, &user, TaskOp::Complete, now())
        .await
        .expect("complete again");
    assert!(
        second.next.is_none() && second.events.is_empty(),
        "a second completion changes nothing"
    );
    let reopen = parse_task_patch(&json!({"status": "pending"})).expect("valid");
    store
        .modify(task.id, &user, TaskOp::Update(reopen), now())
        .await
        .expect("reopen");
    let third = store
        .modify(task.id, &user, TaskOp::Complete, now())
        .await
        .expect("complete after reopening");
    assert!(
        third.next.is_none(),
        "never a second next occurrence for one task"
    );
    let children = store
        .list(&user, &TaskQuery::default())
        .await
        .expect("list")
        .into_iter()
        .filter(|t| t.parent_task_id == Some(task.id))
        .count();
    assert_eq!(children, 1);

    let after = store
        .modify(next.id, &user, TaskOp::Complete, now())
        .await
        .expect("complete the next");
    assert_eq!(
        after.next.and_then(|t| t.due_date),
        Some(at("2026-03-31T09:00:00Z")),
        "month ends do not drift"
    );
}

pub async fn deleting_a_parent_keeps_the_child<S: TaskStore + ?Sized>(store: &S) {
    let user = fresh_user("deleter");
    let task = create(
        store,
        &user,
        json!({"title": "stretch", "is_recurring": true, "recurrence_rule": "DAILY"}),
    )
    .await;
    let next = store
        .modify(task.id, &user, TaskOp::Complete, now())
        .await
        .expect("complete")
        .next
        .expect("next");
    assert_eq!(next.due_date, None, "no due date stays no due date");
    let deleted = store
        .modify(task.id, &user, TaskOp::Delete, now())
        .await
        .expect("delete the completed parent");
    assert!(deleted.deleted);
    assert!(store.get(task.id).await.expect("get").is_none());
    let orphan = store
        .get(next.id)
        .await
        .expect("get")
        .expect("child remains");
    assert_eq!(orphan.parent_task_id, None, "parent_task_id is set to null");
}

pub async fn writes_events_with_each_change<S: TaskStore + ?Sized>(store: &S) {
    let user = fresh_user("events");
    let before: std::collections::HashSet<_> = store
        .pending_events(1_000_000)
        .await
        .expect("outbox")
        .into_iter()
        .map(|r| r.envelope.event_id)
        .collect();
    let task = create(
        store,
        &user,
        json!({"title": "e", "due_date": "2030-01-01T10:00:00Z", "reminder_offset_minutes": 5}),
    )
    .await;
    store
        .modify(task.id, &user, TaskOp::Delete, now())
        .await
        .expect("delete");
    let mine: Vec<_> = store
        .pending_events(1_000_000)
        .await
        .expect("outbox")
        .into_iter()
        .filter(|r| !before.contains(&r.envelope.event_id) && r.envelope.user_id == user)
        .collect();
    let kinds: Vec<(&str, &str)> = mine
        .iter()
        .map(|r| (r.topic.as_str(), r.envelope.event_type.as_str()))
        .collect();
    assert_eq!(
        kinds,
        [
            ("task-events", "task.created"),
            ("task-updates", "task.sync"),
            ("reminders", "reminder.scheduled"),
            ("task-events", "task.deleted"),
            ("task-updates", "task.sync"),
        ]
    );
    assert!(
        mine.windows(2).all(|pair| pair[0].seq < pair[1].seq),
        "outbox order is commit order"
    );
    assert!(
        mine.iter().all(|r| r.key == task.id.to_string()),
        "events are keyed by task id"
    );
    assert_eq!(
        mine[2].envelope.payload["remind_at"],
        json!("2030-01-01T09:55:00Z")
    );
}

pub async fn concurrent_writes_all_land<S: TaskStore + ?Sized>(store: &S) {
    let user = fresh_user("burst");
    let writes = (0..50).map(|i| create(store, &user, json!({"title": format!("task {i}")})));
    let created = futures_util::future::join_all(writes).await;
    let listed = store
        .list(&user, &TaskQuery::default())
        .await
        .expect("list");
    assert_eq!(
        listed.len(),
        created.len(),
        "every acknowledged write is visible"
    );
}

pub async fn relayed_events_leave_the_outbox<S: TaskStore + ?Sized>(store: &S) {
    let user = fresh_user("relay");
    let signal = store.commit_signal();
    let woken = signal.notified();
    create(store, &user, json!({"title": "relay me"})).await;
    tokio::time::timeout(std::time::Duration::from_secs(5), woken)
        .await
        .expect("a commit wakes the relay");
    let pending = store.pending_events(1_000_000).await.expect("outbox");
    let seqs: Vec<i64> = pending.iter().map(|record| record.seq).collect();
    assert!(!seqs.is_empty(), "events pending");
    let removed = store.delete_events(seqs).await.expect("delete");
    assert_eq!(removed as usize, pending.len());
    assert!(store.pending_events(10).await.expect("outbox").is_empty());
}

pub async fn repairs_a_missing_next_occurrence_once<S: TaskStore + ?Sized>(store: &S) {
    let user = fresh_user("repair");
    let task = create(store, &user, json!({"title": "weekly", "due_date": "2026-03-02T09:00:00Z", "is_recurring": true, "recurrence_rule": "WEEKLY"})).await;
    let open = store
        .modify(task.id, &user, TaskOp::EnsureNextOccurrence, now())
        .await
        .expect("ensure");
    assert!(open.next.is_none(), "an open task gets no next occurrence");
    let completed = store
        .modify(task.id, &user, TaskOp::Complete, now())
        .await
        .expect("complete");
    let next = completed.next.expect("next occurrence");
    let again = store
        .modify(task.id, &user, TaskOp::EnsureNextOccurrence, now())
        .await
        .expect("ensure");
    assert!(
        again.next.is_none() && again.events.is_empty(),
        "the existing next occurrence is kept"
    );
    // The next occurrence disappears (deleted): the repair creates one, and only once.
    store
        .modify(next.id, &user, TaskOp::Delete, now())
        .await
        .expect("delete next");
    let repaired = store
        .modify(task.id, &user, TaskOp::EnsureNextOccurrence, now())
        .await
        .expect("repair");
    assert_eq!(
        repaired.next.and_then(|t| t.due_date),
        Some(at("2026-03-09T09:00:00Z"))
    );
    let twice = store
        .modify(task.id, &user, TaskOp::EnsureNextOccurrence, now())
        .await
        .expect("repair again");
    assert!(twice.next.is_none());
}

pub async fn audit_and_notifications_are_once_per_event_and_scoped<S: TaskStore + ?Sized>(
    store: &S,
) {
    use crate::activity::{AuditEntry, AuditFilter, Notification};
    use crate::event::EventEnvelope;

    let alice = fresh_user("audited");
    let bob = fresh_user("other");
    let event = |user: &str, event_type: &str, task: &str| EventEnvelope {
        event_id: uuid::Uuid::new_v4(),
        event_type: event_type.to_owned(),
        timestamp: "2026-01-01T00:00:00Z".to_owned(),
        user_id: user.to_owned(),
        payload: json!({"id": task, "title": "t"}),
        source: "chat-api".to_owned(),
        specversion: "1.0".to_owned(),
    };
    let created = event(&alice, "task.created", "task-1");
    assert!(
        store
            .record_audit(AuditEntry::from_event(&created, now()))
            .await
            .expect("audit")
    );
    assert!(
        !store
            .record_audit(AuditEntry::from_event(&created, now()))
            .await
            .expect("audit again"),
        "one row per event id"
    );
    store
        .record_audit(AuditEntry::from_event(
            &event(&alice, "task.updated", "task-1"),
            now(),
        ))
        .await
        .expect("audit");
    store
        .record_audit(AuditEntry::from_event(
            &event(&alice, "task.created", "task-2"),
            now(),
        ))
        .await
        .expect("audit");
    store
        .record_audit(AuditEntry::from_event(
            &event(&bob, "task.created", "task-9"),
            now(),
        ))
        .await
        .expect("audit");

    let alice_ref = alice.as_str();
    let page = |filter: AuditFilter| async move {
        store.list_audit(alice_ref, &filter).await.expect("list")
    };
    let all = page(AuditFilter {
        limit: 100,
        ..AuditFilter::default()
    })
    .await;
    assert_eq!(all.len(), 3, "only alice's rows");
    assert!(
        all.windows(2).all(|w| w[0].received_at >= w[1].received_at),
        "newest first"
    );
    assert_eq!(
        page(AuditFilter {
            task_id: Some("task-1".into()),
            limit: 100,
            ..AuditFilter::default()
        })
        .await
        .len(),
        2
    );
    assert_eq!(
        page(AuditFilter {
            event_type: Some("task.created".into()),
            limit: 100,
            ..AuditFilter::default()
        })
        .await
        .len(),
        2
    );
    assert_eq!(
        page(AuditFilter {
            limit: 1,
            offset: 1,
            ..AuditFilter::default()
        })
        .await
        .len(),
        1
    );

    let notification = Notification {
        id: crate::time::new_id(),
        user_id: alice.clone(),
        event_id: created.event_id,
        kind: "reminder".to_owned(),
        task_id: Some("task-1".to_owned()),
        title: "t".to_owned(),
        message: "Reminder".to_owned(),
        created_at: now(),
        read_at: None,
        payload: json!({}),
    };
    assert!(
        store
            .record_notification(notification.clone())
            .await
            .expect("notify")
    );
    let duplicate = Notification {
        id: crate::time::new_id(),
        ..notification.clone()
    };
    assert!(
        !store
            .record_notification(duplicate)
            .await
            .expect("notify again"),
        "one notification per event"
    );
    assert_eq!(
        store.list_notifications(&alice, 10).await.expect("list"),
        vec![notification.clone()]
    );
    let unread = |user: String| async move {
        store
            .count_unread_notifications(&user)
            .await
            .expect("count")
    };
    assert_eq!(unread(alice.clone()).await, 1);
    assert_eq!(unread(bob.clone()).await, 0, "only the user's own");
    assert!(
        store
            .list_notifications(&bob, 10)
            .await
            .expect("list")
            .is_empty()
    );
    assert!(
        matches!(
            store
                .mark_notification_read(&bob, notification.id, now())
                .await,
            Err(EngineError::NotificationNotFound)
        ),
        "not bob's"
    );
    let read = store
        .mark_notification_read(&alice, notification.id, now())
        .await
        .expect("read");
    assert!(read.read_at.is_some());
    assert_eq!(unread(alice.clone()).await, 0, "read ones are not counted");
    let again = store
        .mark_notification_read(&alice, notification.id, now())
        .await
        .expect("read again");
    assert_eq!(again.read_at, read.read_at, "the first read time is kept");
}

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

/// Every check of the [`crate::ports::ConversationStore`] contract.
pub async fn conversation_store_suite<S: crate::ports::ConversationStore + ?Sized>(store: &S) {
    use crate::assistant::{ChatMessage, Role, ToolInvocation};

    let message = |role: Role, content: &str, tools: Vec<ToolInvocation>| ChatMessage {
        id: crate::time::new_id(),
        role,
        content: content.to_owned(),
        tool_calls: tools,
        created_at: now(),
    };
    let (none, empty) = store.recent_messages("chat-alice", 20).await.expect("read");
    assert!(
        none.is_none() && empty.is_empty(),
        "no conversation before the first message"
    );

    let invocation = ToolInvocation {
        tool_name: "add_task".to_owned(),
        success: true,
        result: Some(json!({ "id": "x", "title": "Milk" })),
        error: None,
    };
    let first = store
        .append_message("chat-alice", message(Role::User, "add milk", vec![]))
        .await
        .expect("append");
    let reply = message(Role::Assistant, "", vec![invocation.clone()]);
    let second = store
        .append_message("chat-alice", reply.clone())
        .await
        .expect("append");
    assert_eq!(first, second, "one conversation per user");
    for n in 0..25 {
        store
            .append_message("chat-alice", message(Role::User, &format!("m{n}"), vec![]))
            .await
            .expect("append");
    }
    store
        .append_message("chat-bob", message(Role::User, "bob's", vec![]))
        .await
        .expect("append");

    let (id, all) = store
        .recent_messages("chat-alice", 100)
        .await
        .expect("read");
    assert_eq!(id, Some(first));
    assert_eq!(all.len(), 27, "every message of alice, none of bob");
    assert_eq!(all[0].content, "add milk", "oldest first");
    assert_eq!(all[1], reply, "tool calls and empty content round-trip");
    let (_, recent) = store.recent_messages("chat-alice", 20).await.expect("read");
    assert_eq!(recent.len(), 20);
    assert_eq!(recent[0].content, "m5", "the newest 20, oldest first");
    assert_eq!(recent[19].content, "m24");

    assert_eq!(
        store.clear_conversation("chat-alice").await.expect("clear"),
        27
    );
    assert_eq!(
        store.clear_conversation("chat-alice").await.expect("clear"),
        0
    );
    let (none, empty) = store.recent_messages("chat-alice", 20).await.expect("read");
    assert!(none.is_none() && empty.is_empty(), "cleared");
    let (_, bobs) = store.recent_messages("chat-bob", 20).await.expect("read");
    assert_eq!(bobs.len(), 1, "clearing alice leaves bob alone");
}

/// Every check of the [`crate::ports::SettingsStore`] contract.
pub async fn settings_store_suite<S: crate::ports::SettingsStore + ?Sized>(store: &S) {
    use crate::settings::UserSettings;

    assert_eq!(
        store.settings("settings-nobody").await.expect("read"),
        UserSettings::default(),
        "defaults until saved"
    );
    let tokyo = UserSettings {
        time_zone: chrono_tz::Asia::Tokyo,
        daily_digest: true,
        digest_hour: 6,
    };
    store
        .save_settings("settings-ann", tokyo, now())
        .await
        .expect("save");
    assert_eq!(store.settings("settings-ann").await.expect("read"), tokyo);
    let changed = UserSettings {
        daily_digest: false,
        ..tokyo
    };
    store
        .save_settings("settings-ann", changed, now())
        .await
        .expect("overwrite");
    assert_eq!(store.settings("settings-ann").await.expect("read"), changed);
    store
        .save_settings("settings-bo", tokyo, now())
        .await
        .expect("save");
    let subscribers = store.digest_subscribers().await.expect("subscribers");
    let names: Vec<&str> = subscribers.iter().map(|(user, _)| user.as_str()).collect();
    assert!(names.contains(&"settings-bo"), "opted in: {names:?}");
    assert!(
        !names.contains(&"settings-ann"),
        "opted out again: {names:?}"
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

/// Every check of the [`crate::ports::AccountStore`] contract. Needs a store without accounts.
pub async fn account_store_suite<S: crate::ports::AccountStore + ?Sized>(store: &S) {
    use crate::accounts::{AccountInsert, AccountRecord, ApiTokenRecord};

    let t0 = at("2030-01-01T10:00:00.123456Z");
    let account = |email: &str, created: DateTime<Utc>| AccountRecord {
        id: uuid::Uuid::now_v7().to_string(),
        email: email.to_owned(),
        password_hash: format!("$argon2id$v=19$fake-{email}"),
        created_at: created,
        updated_at: created,
    };
    assert_eq!(
        store.account_count().await.expect("count"),
        0,
        "empty store"
    );
    let ann = account("ann@example.com", t0);
    assert_eq!(
        store.insert_account(&ann, true).await.expect("insert"),
        AccountInsert::Created,
        "the first account may be created with only_first"
    );
    let bo = account("bo@example.com", t0 + chrono::Duration::seconds(1));
    assert_eq!(
        store.insert_account(&bo, true).await.expect("insert"),
        AccountInsert::NotFirst,
        "only_first refuses a second account"
    );
    assert_eq!(
        store.insert_account(&bo, false).await.expect("insert"),
        AccountInsert::Created
    );
    let twin = account("ann@example.com", t0);
    assert_eq!(
        store.insert_account(&twin, false).await.expect("insert"),
        AccountInsert::EmailTaken,
        "emails are unique"
    );
    assert_eq!(store.account_count().await.expect("count"), 2);
    assert_eq!(
        store
            .account_by_email("ann@example.com")
            .await
            .expect("by email"),
        Some(ann.clone()),
        "round-trips, timestamps to the microsecond"
    );
    assert_eq!(
        store.account_by_id(&bo.id).await.expect("by id"),
        Some(bo.clone())
    );
    assert_eq!(store.account_by_id("nobody").await.expect("by id"), None);
    assert_eq!(
        store
            .account_by_email("nobody@example.com")
            .await
            .expect("by email"),
        None
    );
    let listed: Vec<String> = store
        .list_accounts()
        .await
        .expect("list")
        .into_iter()
        .map(|account| account.email)
        .collect();
    assert_eq!(
        listed,
        ["ann@example.com", "bo@example.com"],
        "oldest first"
    );

    let later = t0 + chrono::Duration::hours(1);
    assert!(
        store
            .set_password_hash(&ann.id, "$argon2id$new", later)
            .await
            .expect("set")
    );
    let changed = store
        .account_by_id(&ann.id)
        .await
        .expect("by id")
        .expect("ann");
    assert_eq!(changed.password_hash, "$argon2id$new");
    assert_eq!(changed.updated_at, later);
    assert_eq!(changed.created_at, t0);
    assert!(
        !store
            .set_password_hash("nobody", "$argon2id$new", later)
            .await
            .expect("set"),
        "no such account"
    );

    let token = |user: &str, name: &str, hash: &str, created: DateTime<Utc>| ApiTokenRecord {
        id: uuid::Uuid::now_v7().to_string(),
        user_id: user.to_owned(),
        name: name.to_owned(),
        prefix: "tsk_abcd".to_owned(),
        token_hash: hash.to_owned(),
        created_at: created,
        last_used_at: None,
        revoked_at: None,
    };
    let old = token(&ann.id, "laptop", "hash-old", t0);
    let new = token(&ann.id, "ci", "hash-new", t0 + chrono::Duration::minutes(5));
    let bos = token(&bo.id, "bo's", "hash-bo", t0);
    for record in [&old, &new, &bos] {
        store.insert_api_token(record).await.expect("insert token");
    }
    assert!(
        store
            .insert_api_token(&token(&bo.id, "dup", "hash-old", t0))
            .await
            .is_err(),
        "token hashes are unique"
    );
    assert!(
        store
            .insert_api_token(&token("nobody", "orphan", "hash-orphan", t0))
            .await
            .is_err(),
        "a token needs an existing account"
    );
    assert_eq!(
        store.api_tokens(&ann.id).await.expect("tokens"),
        [new.clone(), old.clone()],
        "the user's own tokens, newest first"
    );
    assert_eq!(
        store.api_token_by_hash("hash-old").await.expect("by hash"),
        Some(old.clone())
    );
    assert_eq!(
        store.api_token_by_hash("hash-x").await.expect("by hash"),
        None
    );

    let used = t0 + chrono::Duration::minutes(30);
    store.touch_api_token(&old.id, used).await.expect("touch");
    assert_eq!(
        store
            .api_token_by_hash("hash-old")
            .await
            .expect("by hash")
            .and_then(|record| record.last_used_at),
        Some(used)
    );

    assert!(
        !store
            .revoke_api_token(&bo.id, &old.id, later)
            .await
            .expect("revoke"),
        "someone else's token is not revoked"
    );
    assert!(
        store
            .revoke_api_token(&ann.id, &old.id, later)
            .await
            .expect("revoke")
    );
    assert!(
        !store
            .revoke_api_token(&ann.id, &old.id, later)
            .await
            .expect("revoke"),
        "revoking twice reports nothing revoked"
    );
    assert!(
        !store
            .revoke_api_token(&ann.id, "no-such-token", later)
            .await
            .expect("revoke")
    );
    assert_eq!(
        store.api_token_by_hash("hash-old").await.expect("by hash"),
        None,
        "a revoked token no longer authenticates"
    );
    assert_eq!(
        store.api_tokens(&ann.id).await.expect("tokens"),
        [new],
        "revoked tokens are not listed"
    );
    assert_eq!(store.api_tokens(&bo.id).await.expect("tokens"), [bos]);

    // Ended sign-in sessions: known until their tokens expire, then dropped on the next insert.
    let (short, long, fresh) = (
        uuid::Uuid::new_v4().to_string(),
        uuid::Uuid::new_v4().to_string(),
        uuid::Uuid::new_v4().to_string(),
    );
    assert!(
        !store.session_revoked(&short).await.expect("revoked?"),
        "a session is live until revoked"
    );
    store
        .revoke_session(&short, &ann.id, t0 + chrono::Duration::hours(1), t0)
        .await
        .expect("revoke session");
    store
        .revoke_session(&long, &ann.id, t0 + chrono::Duration::days(7), t0)
        .await
        .expect("revoke session");
    assert!(store.session_revoked(&short).await.expect("revoked?"));
    assert!(store.session_revoked(&long).await.expect("revoked?"));
    store
        .revoke_session(&short, &ann.id, t0 + chrono::Duration::hours(1), t0)
        .await
        .expect("revoking twice is fine");
    assert!(
        !store.session_revoked(&fresh).await.expect("revoked?"),
        "only the revoked session is"
    );
    store
        .revoke_session(
            &fresh,
            "an-api-only-user",
            t0 + chrono::Duration::days(8),
            t0 + chrono::Duration::hours(2),
        )
        .await
        .expect("revoke a session of a user without an account");
    assert!(store.session_revoked(&fresh).await.expect("revoked?"));
    assert!(
        !store.session_revoked(&short).await.expect("revoked?"),
        "a session whose token expired is dropped when another is revoked"
    );
    assert!(
        store.session_revoked(&long).await.expect("revoked?"),
        "a session whose token is still valid is kept"
    );

    // Calendar feed tokens: one per user, found by hash, replaced by a new one, removable.
    let (first, second) = (
        format!("feed-{}", uuid::Uuid::new_v4()),
        format!("feed-{}", uuid::Uuid::new_v4()),
    );
    assert_eq!(store.feed_token_created(&ann.id).await.expect("feed"), None);
    assert_eq!(store.feed_token_user(&first).await.expect("feed"), None);
    store
        .set_feed_token(&ann.id, &first, t0)
        .await
        .expect("set feed");
    assert_eq!(
        store
            .feed_token_user(&first)
            .await
            .expect("feed")
            .as_deref(),
        Some(ann.id.as_str())
    );
    assert_eq!(
        store.feed_token_created(&ann.id).await.expect("feed"),
        Some(t0)
    );
    let later = t0 + chrono::Duration::minutes(5);
    store
        .set_feed_token(&ann.id, &second, later)
        .await
        .expect("rotate feed");
    assert_eq!(
        store.feed_token_user(&first).await.expect("feed"),
        None,
        "the old token is retired"
    );
    assert_eq!(
        store
            .feed_token_user(&second)
            .await
            .expect("feed")
            .as_deref(),
        Some(ann.id.as_str())
    );
    assert_eq!(
        store.feed_token_created(&ann.id).await.expect("feed"),
        Some(later)
    );
    assert_eq!(
        store
            .feed_token_created("somebody-else")
            .await
            .expect("feed"),
        None
    );
    assert!(
        !store
            .delete_feed_token("somebody-else")
            .await
            .expect("delete feed")
    );
    assert!(store.delete_feed_token(&ann.id).await.expect("delete feed"));
    assert_eq!(store.feed_token_user(&second).await.expect("feed"), None);
    assert!(
        !store
            .delete_feed_token(&ann.id)
            .await
            .expect("delete feed again")
    );
}

/// The failed log-in limits as every [`crate::ports::LoginAttempts`] must count them: the
/// in-memory one of a single process and the one replicas share.
pub async fn login_attempts_suite<S: crate::ports::LoginAttempts + ?Sized>(attempts: &S) {
    use crate::accounts::{ATTEMPT_WINDOW, CLIENT_LIMIT, EMAIL_LIMIT};
    let run = uuid::Uuid::new_v4().simple().to_string();
    let (email, other, client) = (
        format!("guessed-{run}@example.com"),
        format!("other-{run}@example.com"),
        format!("203.0.113.{}", run.len()),
    );
    for _ in 0..EMAIL_LIMIT - 1 {
        attempts.failed(&email, "").await.expect("count");
    }
    assert_eq!(
        attempts.blocked_for(&email, "").await.expect("check"),
        None,
        "one failure short of the limit"
    );
    attempts.failed(&email, "").await.expect("count");
    let wait = attempts
        .blocked_for(&email, "")
        .await
        .expect("check")
        .expect("blocked at the limit");
    assert!(
        (1..=ATTEMPT_WINDOW.as_secs()).contains(&wait),
        "waits until the oldest failure leaves the window: {wait}"
    );
    assert_eq!(
        attempts.blocked_for(&other, "").await.expect("check"),
        None,
        "another email is not affected"
    );
    attempts.succeeded(&email).await.expect("clear");
    assert_eq!(
        attempts.blocked_for(&email, "").await.expect("check"),
        None,
        "a successful log-in clears the email's failures"
    );

    // One client guessing many emails is stopped too, and a success does not clear it.
    for n in 0..CLIENT_LIMIT {
        attempts
            .failed(&format!("{n}-{other}"), &client)
            .await
            .expect("count");
    }
    attempts.succeeded(&other).await.expect("clear");
    assert!(
        attempts
            .blocked_for(&format!("fresh-{run}@example.com"), &client)
            .await
            .expect("check")
            .is_some(),
        "the client used up its failures"
    );
    assert_eq!(
        attempts
            .blocked_for(&format!("fresh-{run}@example.com"), "")
            .await
            .expect("check"),
        None,
        "the same email from an unknown client may try"
    );
}
