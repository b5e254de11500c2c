//! The [`crate::ports::ProjectStore`] contract, and what every [`TaskStore`] must do with the
//! links of tasks (projects and subtasks).

use std::collections::HashSet;

use serde_json::json;
use uuid::Uuid;

use super::{create, fresh_user};
use crate::error::EngineError;
use crate::ports::TaskStore;
use crate::project::{PROJECTS_MAX, Project, SUBTASKS_MAX};
use crate::task::input::parse_new_task;
use crate::task::{ProjectFilter, TaskOp, TaskQuery, TaskStatus, ops};
use crate::time::now;

/// Every check of projects and subtasks.
pub async fn project_store_suite<S: TaskStore + ?Sized>(store: &S) {
    projects_are_per_user_unique_and_counted(store).await;
    projects_are_renamed_by_their_owner_only(store).await;
    tasks_go_into_the_users_projects_only(store).await;
    subtasks_are_one_level_bounded_and_follow_their_parent(store).await;
    moving_a_task_moves_its_subtasks_with_events(store).await;
    deleting_a_task_deletes_its_subtasks_with_events(store).await;
    deleting_a_project_releases_its_tasks_with_events(store).await;
    a_recurring_subtask_recurs_under_its_parent(store).await;
}

async fn new_project<S: TaskStore + ?Sized>(store: &S, user: &str, name: &str) -> Project {
    store
        .insert_project(Project::new(user, name.to_owned(), now()))
        .await
        .expect("insert project")
}

/// Inserts a task built from `body`, returning the store's answer (errors included).
async fn try_create<S: TaskStore + ?Sized>(
    store: &S,
    user: &str,
    body: serde_json::Value,
) -> Result<crate::task::Task, EngineError> {
    let draft = parse_new_task(&body).expect("valid test body");
    let (task, events) = ops::create(user, draft, now()).expect("valid draft");
    store.insert(task, events).await
}

/// Event types (and the task each is about) the outbox got for `user` since `before`.
async fn events_since<S: TaskStore + ?Sized>(
    store: &S,
    user: &str,
    before: &HashSet<Uuid>,
) -> Vec<(String, String)> {
    store
        .pending_events(1_000_000)
        .await
        .expect("outbox")
        .into_iter()
        .filter(|r| !before.contains(&r.envelope.event_id) && r.envelope.user_id == user)
        .filter(|r| r.topic == "task-events")
        .map(|r| (r.envelope.event_type, r.key))
        .collect()
}

async fn outbox_ids<S: TaskStore + ?Sized>(store: &S) -> HashSet<Uuid> {
    store
        .pending_events(1_000_000)
        .await
        .expect("outbox")
        .into_iter()
        .map(|r| r.envelope.event_id)
        .collect()
}

fn in_project(project: Uuid) -> TaskQuery {
    TaskQuery {
        project: Some(ProjectFilter::In(project)),
        ..TaskQuery::default()
    }
}

async fn titles<S: TaskStore + ?Sized>(store: &S, user: &str, query: TaskQuery) -> Vec<String> {
    let mut titles: Vec<String> = store
        .list(user, &query)
        .await
        .expect("list")
        .into_iter()
        .map(|t| t.title)
        .collect();
    titles.sort();
    titles
}

pub async fn projects_are_per_user_unique_and_counted<S: TaskStore + ?Sized>(store: &S) {
    let user = fresh_user("lists");
    let other = fresh_user("lists-other");
    let groceries = new_project(store, &user, "Groceries").await;
    let garden = new_project(store, &user, "garden").await;
    new_project(store, &other, "Groceries").await;
    let again = store
        .insert_project(Project::new(&user, "GROCERIES".into(), now()))
        .await;
    assert!(
        matches!(again, Err(EngineError::Conflict(_))),
        "a name differing only in case is taken: {again:?}"
    );
    create(
        store,
        &user,
        json!({"title": "milk", "project_id": groceries.id}),
    )
    .await;
    let eggs = create(
        store,
        &user,
        json!({"title": "eggs", "project_id": groceries.id}),
    )
    .await;
    store
        .modify(eggs.id, &user, TaskOp::Complete, now())
        .await
        .expect("complete");
    create(store, &user, json!({"title": "loose"})).await;

    let listed = store.list_projects(&user).await.expect("list projects");
    let names: Vec<&str> = listed.iter().map(|s| s.project.name.as_str()).collect();
    assert_eq!(names, ["garden", "Groceries"], "by name, ignoring case");
    assert_eq!((listed[1].task_count, listed[1].open_task_count), (2, 1));
    assert_eq!((listed[0].task_count, listed[0].open_task_count), (0, 0));
    let one = store
        .project(groceries.id)
        .await
        .expect("get")
        .expect("present");
    assert_eq!(
        one.project, groceries,
        "a stored project reads back unchanged"
    );
    assert_eq!(one.task_count, 2);
    assert!(store.project(Uuid::new_v4()).await.expect("get").is_none());
    assert_eq!(store.list_projects(&other).await.expect("list").len(), 1);
    assert_eq!(
        titles(store, &user, in_project(groceries.id)).await,
        ["eggs", "milk"]
    );
    assert!(titles(store, &user, in_project(garden.id)).await.is_empty());
    let loose = TaskQuery {
        project: Some(ProjectFilter::None),
        ..TaskQuery::default()
    };
    assert_eq!(titles(store, &user, loose).await, ["loose"]);
    assert!(
        titles(store, &other, in_project(groceries.id))
            .await
            .is_empty(),
        "lists stay the owner's"
    );

    let crowded = fresh_user("many-lists");
    for n in 0..PROJECTS_MAX {
        new_project(store, &crowded, &format!("list {n}")).await;
    }
    let over = store
        .insert_project(Project::new(&crowded, "one more".into(), now()))
        .await;
    assert!(
        matches!(over, Err(EngineError::Conflict(_))),
        "at most {PROJECTS_MAX} projects: {over:?}"
    );
}

pub async fn projects_are_renamed_by_their_owner_only<S: TaskStore + ?Sized>(store: &S) {
    let user = fresh_user("renamer");
    let home = new_project(store, &user, "Home").await;
    new_project(store, &user, "Work").await;
    let renamed = store
        .rename_project(&user, home.id, "HOME".into(), now())
        .await
        .expect("a new case of its own name");
    assert_eq!(renamed.name, "HOME");
    assert!(renamed.updated_at >= home.updated_at);
    assert_eq!(
        store
            .project(home.id)
            .await
            .expect("get")
            .expect("present")
            .project,
        renamed
    );
    let taken = store
        .rename_project(&user, home.id, "work".into(), now())
        .await;
    assert!(matches!(taken, Err(EngineError::Conflict(_))), "{taken:?}");
    let foreign = store
        .rename_project("someone-else", home.id, "Mine".into(), now())
        .await;
    assert!(
        matches!(foreign, Err(EngineError::Forbidden)),
        "{foreign:?}"
    );
    let missing = store
        .rename_project(&user, Uuid::new_v4(), "Nope".into(), now())
        .await;
    assert!(
        matches!(missing, Err(EngineError::ProjectNotFound)),
        "{missing:?}"
    );
    let foreign_delete = store.delete_project("someone-else", home.id, now()).await;
    assert!(matches!(foreign_delete, Err(EngineError::Forbidden)));
    assert!(store.project(home.id).await.expect("get").is_some());
}

pub async fn tasks_go_into_the_users_projects_only<S: TaskStore + ?Sized>(store: &S) {
    let user = fresh_user("placer");
    let theirs = new_project(store, &fresh_user("owner"), "Theirs").await;
    for project in [theirs.id, Uuid::new_v4()] {
        let refused = try_create(store, &user, json!({"title": "t", "project_id": project})).await;
        assert!(
            matches!(refused, Err(EngineError::ProjectNotFound)),
            "{refused:?}"
        );
    }
    assert!(
        store
            .list(&user, &TaskQuery::default())
            .await
            .expect("list")
            .is_empty(),
        "a refused insert stores nothing"
    );
    let task = create(store, &user, json!({"title": "t"})).await;
    let moved = store
        .modify(task.id, &user, TaskOp::SetProject(Some(theirs.id)), now())
        .await;
    assert!(
        matches!(moved, Err(EngineError::ProjectNotFound)),
        "{moved:?}"
    );
    let foreign_task = store
        .modify(task.id, "someone-else", TaskOp::SetProject(None), now())
        .await;
    assert!(matches!(foreign_task, Err(EngineError::Forbidden)));
}

pub async fn subtasks_are_one_level_bounded_and_follow_their_parent<S: TaskStore + ?Sized>(
    store: &S,
) {
    let user = fresh_user("parent");
    let home = new_project(store, &user, "Home").await;
    let parent = create(
        store,
        &user,
        json!({"title": "fix sink", "project_id": home.id}),
    )
    .await;
    let child = create(
        store,
        &user,
        json!({"title": "call plumber", "subtask_of": parent.id}),
    )
    .await;
    assert_eq!(child.subtask_of, Some(parent.id));
    assert_eq!(
        child.project_id,
        Some(home.id),
        "a subtask is in its parent's project"
    );
    assert_eq!(store.get(child.id).await.expect("get"), Some(child.clone()));

    let deeper = try_create(store, &user, json!({"title": "x", "subtask_of": child.id})).await;
    assert!(
        matches!(deeper, Err(EngineError::Conflict(_))),
        "{deeper:?}"
    );
    let elsewhere = new_project(store, &user, "Elsewhere").await;
    let split = try_create(
        store,
        &user,
        json!({"title": "x", "subtask_of": parent.id, "project_id": elsewhere.id}),
    )
    .await;
    assert!(matches!(split, Err(EngineError::Conflict(_))), "{split:?}");
    for foreign_parent in [parent.id, Uuid::new_v4()] {
        let refused = try_create(
            store,
            "someone-else",
            json!({"title": "x", "subtask_of": foreign_parent}),
        )
        .await;
        assert!(
            matches!(refused, Err(EngineError::ParentNotFound)),
            "{refused:?}"
        );
    }
    let alone = store
        .modify(child.id, &user, TaskOp::SetProject(None), now())
        .await;
    assert!(
        matches!(alone, Err(EngineError::Conflict(_))),
        "a subtask does not move alone: {alone:?}"
    );

    let full = create(store, &user, json!({"title": "big job"})).await;
    for n in 0..SUBTASKS_MAX {
        create(
            store,
            &user,
            json!({"title": format!("step {n}"), "subtask_of": full.id}),
        )
        .await;
    }
    let over = try_create(
        store,
        &user,
        json!({"title": "one more", "subtask_of": full.id}),
    )
    .await;
    assert!(matches!(over, Err(EngineError::Conflict(_))), "{over:?}");

    let done = create(
        store,
        &user,
        json!({"title": "buy washer", "subtask_of": parent.id}),
    )
    .await;
    store
        .modify(done.id, &user, TaskOp::Complete, now())
        .await
        .expect("complete");
    let listed = store
        .list(
            &user,
            &TaskQuery {
                subtask_of: Some(parent.id),
                ..TaskQuery::default()
            },
        )
        .await
        .expect("list subtasks");
    let mut ids: Vec<Uuid> = listed.iter().map(|t| t.id).collect();
    ids.sort();
    let mut expected = vec![child.id, done.id];
    expected.sort();
    assert_eq!(ids, expected);
    let counts = store
        .subtask_counts(&user, vec![parent.id, full.id, child.id, Uuid::new_v4()])
        .await
        .expect("counts");
    assert_eq!(
        counts.len(),
        2,
        "tasks without subtasks are absent: {counts:?}"
    );
    assert_eq!(
        (counts[&parent.id].total, counts[&parent.id].completed),
        (2, 1)
    );
    assert_eq!(counts[&full.id].total, SUBTASKS_MAX);
    assert!(
        store
            .subtask_counts("someone-else", vec![parent.id])
            .await
            .expect("counts")
            .is_empty(),
        "counts are the owner's"
    );
    let parent_after = store.get(parent.id).await.expect("get").expect("present");
    store
        .modify(parent.id, &user, TaskOp::Complete, now())
        .await
        .expect("complete the parent");
    assert_eq!(
        store
            .get(child.id)
            .await
            .expect("get")
            .expect("child")
            .status,
        TaskStatus::Pending,
        "completing a parent leaves its open subtasks open"
    );
    assert_eq!(parent_after.subtask_of, None);
}

pub async fn moving_a_task_moves_its_subtasks_with_events<S: TaskStore + ?Sized>(store: &S) {
    let user = fresh_user("mover");
    let work = new_project(store, &user, "Work").await;
    let parent = create(store, &user, json!({"title": "report"})).await;
    let child = create(
        store,
        &user,
        json!({"title": "figures", "subtask_of": parent.id}),
    )
    .await;
    let before = outbox_ids(store).await;
    let change = store
        .modify(parent.id, &user, TaskOp::SetProject(Some(work.id)), now())
        .await
        .expect("move");
    assert_eq!(change.task.project_id, Some(work.id));
    for id in [parent.id, child.id] {
        let task = store.get(id).await.expect("get").expect("present");
        assert_eq!(task.project_id, Some(work.id), "moved with its parent");
    }
    assert_eq!(
        events_since(store, &user, &before).await,
        [
            ("task.updated".to_owned(), parent.id.to_string()),
            ("task.updated".to_owned(), child.id.to_string()),
        ]
    );
    let before = outbox_ids(store).await;
    let same = store
        .modify(parent.id, &user, TaskOp::SetProject(Some(work.id)), now())
        .await
        .expect("move again");
    assert!(
        same.events.is_empty(),
        "moving to where it is changes nothing"
    );
    store
        .modify(parent.id, &user, TaskOp::SetProject(None), now())
        .await
        .expect("move out");
    assert_eq!(
        store
            .get(child.id)
            .await
            .expect("get")
            .expect("child")
            .project_id,
        None
    );
    assert_eq!(events_since(store, &user, &before).await.len(), 2);
}

pub async fn deleting_a_task_deletes_its_subtasks_with_events<S: TaskStore + ?Sized>(store: &S) {
    let user = fresh_user("pruner");
    let parent = create(store, &user, json!({"title": "move house"})).await;
    let first = create(
        store,
        &user,
        json!({"title": "boxes", "subtask_of": parent.id}),
    )
    .await;
    let second = create(
        store,
        &user,
        json!({"title": "van", "subtask_of": parent.id, "due_date": "2030-05-01T09:00:00Z", "reminder_offset_minutes": 60}),
    )
    .await;
    let before = outbox_ids(store).await;
    let change = store
        .modify(parent.id, &user, TaskOp::Delete, now())
        .await
        .expect("delete");
    assert_eq!(change.subtasks.len(), 2);
    for id in [parent.id, first.id, second.id] {
        assert!(store.get(id).await.expect("get").is_none(), "{id} is gone");
    }
    assert!(
        !store
            .pending_reminders()
            .await
            .expect("reminders")
            .iter()
            .any(|(id, _)| *id == second.id),
        "a deleted subtask's reminder is disarmed"
    );
    assert_eq!(
        events_since(store, &user, &before).await,
        [
            ("task.deleted".to_owned(), parent.id.to_string()),
            ("task.deleted".to_owned(), first.id.to_string()),
            ("task.deleted".to_owned(), second.id.to_string()),
        ]
    );
    // Deleting a subtask alone leaves its parent.
    let keep = create(store, &user, json!({"title": "keep"})).await;
    let leaf = create(
        store,
        &user,
        json!({"title": "leaf", "subtask_of": keep.id}),
    )
    .await;
    store
        .modify(leaf.id, &user, TaskOp::Delete, now())
        .await
        .expect("delete leaf");
    assert!(store.get(keep.id).await.expect("get").is_some());
}

pub async fn deleting_a_project_releases_its_tasks_with_events<S: TaskStore + ?Sized>(store: &S) {
    let user = fresh_user("unlister");
    let trip = new_project(store, &user, "Trip").await;
    let parent = create(
        store,
        &user,
        json!({"title": "pack", "project_id": trip.id}),
    )
    .await;
    let child = create(
        store,
        &user,
        json!({"title": "socks", "subtask_of": parent.id}),
    )
    .await;
    let before = outbox_ids(store).await;
    let deletion = store
        .delete_project(&user, trip.id, now())
        .await
        .expect("delete project");
    assert_eq!(deletion.project, trip);
    assert_eq!(deletion.released.len(), 2);
    assert!(store.project(trip.id).await.expect("get").is_none());
    for id in [parent.id, child.id] {
        let task = store.get(id).await.expect("get").expect("the task stays");
        assert_eq!(task.project_id, None);
    }
    assert_eq!(
        store
            .get(child.id)
            .await
            .expect("get")
            .expect("child")
            .subtask_of,
        Some(parent.id),
        "subtasks stay subtasks"
    );
    let mut events = events_since(store, &user, &before).await;
    events.sort();
    let mut expected = vec![
        ("task.updated".to_owned(), parent.id.to_string()),
        ("task.updated".to_owned(), child.id.to_string()),
    ];
    expected.sort();
    assert_eq!(events, expected);
    let gone = store.delete_project(&user, trip.id, now()).await;
    assert!(matches!(gone, Err(EngineError::ProjectNotFound)));
    // The name is free again.
    new_project(store, &user, "trip").await;
}

pub async fn a_recurring_subtask_recurs_under_its_parent<S: TaskStore + ?Sized>(store: &S) {
    let user = fresh_user("habit");
    let health = new_project(store, &user, "Health").await;
    let parent = create(
        store,
        &user,
        json!({"title": "routine", "project_id": health.id}),
    )
    .await;
    let child = create(
        store,
        &user,
        json!({"title": "stretch", "subtask_of": parent.id, "due_date": "2030-01-01T07:00:00Z", "is_recurring": true, "recurrence_rule": "DAILY"}),
    )
    .await;
    let next = store
        .modify(child.id, &user, TaskOp::Complete, now())
        .await
        .expect("complete")
        .next
        .expect("next occurrence");
    let stored = store.get(next.id).await.expect("get").expect("present");
    assert_eq!(stored.subtask_of, Some(parent.id));
    assert_eq!(stored.project_id, Some(health.id));
}
