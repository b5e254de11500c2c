//! Task rows: round trips, queries, updates, completion, recurrence repair, concurrency.

use super::*;

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
