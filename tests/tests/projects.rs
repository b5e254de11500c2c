//! Projects (lists) and subtasks through the REST API, in both shapes: their own routes (so
//! `TaskResponse` keeps exactly its keys), the rules (one level of subtasks, a subtask in its
//! parent's project, names unique per user), the limits, ownership (403 for another user's
//! project or task addressed by path, 404 for one named in a body or filter) and the events
//! moves and deletions produce.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;

use serde_json::{Value, json};
use taskstream_tests::{
    CONSUMER_WAIT, TestServer, User, assert_task, eventually, id_of, key_set, keys_of,
};

taskstream_tests::api_tests!(
    projects_are_created_listed_renamed_and_deleted,
    tasks_are_put_in_projects_and_listed_by_project,
    subtasks_are_one_level_under_their_parent,
    moves_and_deletions_are_announced_as_task_events,
);

const PROJECT_KEYS: &[&str] = &[
    "id",
    "name",
    "created_at",
    "updated_at",
    "task_count",
    "open_task_count",
];
const LINK_KEYS: &[&str] = &[
    "task_id",
    "project_id",
    "subtask_of",
    "subtask_count",
    "subtasks_completed",
];

async fn new_project(user: &User, name: &str) -> Value {
    let r = user.post("/api/projects", &json!({ "name": name })).await;
    let project = r.expect(201).clone();
    assert_eq!(keys_of(&project), key_set(PROJECT_KEYS), "{project}");
    project
}

fn titles(list: &[Value]) -> Vec<String> {
    let mut titles: Vec<String> = list
        .iter()
        .map(|task| task["title"].as_str().unwrap().to_owned())
        .collect();
    titles.sort();
    titles
}

async fn links(user: &User, id: &str) -> Value {
    let r = user.get(&format!("/api/tasks/{id}/links")).await;
    let links = r.expect(200).clone();
    assert_eq!(keys_of(&links), key_set(LINK_KEYS), "{links}");
    links
}

async fn projects_are_created_listed_renamed_and_deleted(srv: TestServer) {
    let alice = srv.user("alice");
    let bob = srv.user("bob");
    let groceries = new_project(&alice, "  Groceries ").await;
    assert_eq!(groceries["name"], "Groceries", "names are trimmed");
    assert_eq!(groceries["task_count"], 0);
    let garden = new_project(&alice, "garden").await;
    new_project(&bob, "Groceries").await;

    alice
        .post("/api/projects", &json!({"name": "GROCERIES"}))
        .await
        .expect_detail(409, "A project with this name already exists");
    alice
        .post("/api/projects", &json!({}))
        .await
        .expect_invalid("missing", json!(["body", "name"]));
    alice
        .post("/api/projects", &json!({"name": "  "}))
        .await
        .expect_invalid("string_too_short", json!(["body", "name"]));
    alice
        .post("/api/projects", &json!({"name": "x".repeat(101)}))
        .await
        .expect_invalid("string_too_long", json!(["body", "name"]));
    alice
        .post("/api/projects", &json!({"name": 3}))
        .await
        .expect_invalid("string_type", json!(["body", "name"]));

    let list = alice.get("/api/projects").await.expect(200).clone();
    let names: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["garden", "Groceries"], "by name, ignoring case");

    let gid = groceries["id"].as_str().unwrap();
    let path = format!("/api/projects/{gid}");
    assert_eq!(alice.get(&path).await.expect(200)["name"], "Groceries");
    bob.get(&path)
        .await
        .expect_detail(403, "Not authorized to access this resource");
    bob.put(&path, &json!({"name": "mine"}))
        .await
        .expect_detail(403, "Not authorized to access this resource");
    bob.delete(&path)
        .await
        .expect_detail(403, "Not authorized to access this resource");
    let unknown = format!("/api/projects/{}", uuid::Uuid::new_v4());
    alice
        .get(&unknown)
        .await
        .expect_detail(404, "Project not found");
    alice
        .get("/api/projects/not-a-uuid")
        .await
        .expect_invalid("uuid_parsing", json!(["path", "project_id"]));

    let renamed = alice.put(&path, &json!({"name": "Shopping"})).await;
    assert_eq!(renamed.expect(200)["name"], "Shopping");
    alice
        .put(&path, &json!({"name": "Garden"}))
        .await
        .expect_detail(409, "A project with this name already exists");

    let milk = alice
        .create(json!({"title": "milk", "project_id": gid}))
        .await;
    let deleted = alice.delete(&path).await.expect(200).clone();
    assert_eq!(
        deleted,
        json!({"id": gid, "deleted": true, "released_tasks": 1})
    );
    alice
        .get(&path)
        .await
        .expect_detail(404, "Project not found");
    let kept = alice.get_task(&id_of(&milk)).await.expect(200).clone();
    assert_task(&kept);
    assert_eq!(
        links(&alice, &id_of(&milk)).await["project_id"],
        Value::Null
    );
    assert_eq!(
        alice.get("/api/projects").await.expect(200)[0]["id"],
        garden["id"]
    );
    srv.client()
        .get(srv.url("/api/projects"))
        .send()
        .await
        .map(|r| assert_eq!(r.status(), 401))
        .unwrap();
}

async fn tasks_are_put_in_projects_and_listed_by_project(srv: TestServer) {
    let alice = srv.user("alice");
    let bob = srv.user("bob");
    let home = new_project(&alice, "Home").await;
    let hid = home["id"].as_str().unwrap().to_owned();
    let bobs = new_project(&bob, "Bob's").await;
    let bid = bobs["id"].as_str().unwrap().to_owned();

    // The TaskResponse keeps exactly its keys (create asserts them).
    let sink = alice
        .create(json!({"title": "fix sink", "project_id": hid, "priority": "high"}))
        .await;
    let plain = alice.create(json!({"title": "call mum"})).await;
    alice
        .post("/api/tasks", &json!({"title": "t", "project_id": bid}))
        .await
        .expect_detail(404, "Project not found");
    alice
        .post(
            "/api/tasks",
            &json!({"title": "t", "project_id": uuid::Uuid::new_v4()}),
        )
        .await
        .expect_detail(404, "Project not found");
    alice
        .post("/api/tasks", &json!({"title": "t", "project_id": "home"}))
        .await
        .expect_invalid("uuid_parsing", json!(["body", "project_id"]));

    let l = links(&alice, &id_of(&sink)).await;
    assert_eq!(l["project_id"], hid.as_str());
    assert_eq!(l["subtask_of"], Value::Null);

    assert_eq!(
        titles(&alice.list(&format!("project_id={hid}")).await),
        ["fix sink"]
    );
    assert_eq!(titles(&alice.list("project_id=none").await), ["call mum"]);
    assert_eq!(
        titles(&alice.list(&format!("project_id={hid}&priority=low")).await),
        Vec::<String>::new()
    );
    alice
        .get("/api/tasks?project_id=home")
        .await
        .expect_invalid("uuid_parsing", json!(["query", "project_id"]));
    alice
        .get(&format!("/api/tasks?project_id={bid}"))
        .await
        .expect_detail(404, "Project not found");

    let in_home = alice
        .get(&format!("/api/projects/{hid}/tasks?sort=title&order=asc"))
        .await;
    let in_home = in_home.expect(200).as_array().unwrap().clone();
    assert_eq!(titles(&in_home), ["fix sink"]);
    in_home.iter().for_each(assert_task);
    bob.get(&format!("/api/projects/{hid}/tasks"))
        .await
        .expect_detail(403, "Not authorized to access this resource");

    // Moving: in, to another project, out; the counts follow.
    let pid = id_of(&plain);
    let moved = alice
        .put(
            &format!("/api/tasks/{pid}/project"),
            &json!({"project_id": hid}),
        )
        .await;
    assert_eq!(moved.expect(200)["project_id"], hid.as_str());
    let summary = alice.get(&format!("/api/projects/{hid}")).await;
    assert_eq!(summary.expect(200)["task_count"], 2);
    alice.complete(&pid).await.expect(200);
    let summary = alice.get(&format!("/api/projects/{hid}")).await;
    assert_eq!(summary.expect(200)["open_task_count"], 1);
    alice
        .put(
            &format!("/api/tasks/{pid}/project"),
            &json!({"project_id": bid}),
        )
        .await
        .expect_detail(404, "Project not found");
    alice
        .put(&format!("/api/tasks/{pid}/project"), &json!({}))
        .await
        .expect_invalid("missing", json!(["body", "project_id"]));
    bob.put(
        &format!("/api/tasks/{pid}/project"),
        &json!({"project_id": bid}),
    )
    .await
    .expect_detail(403, "Not authorized to access this resource");
    let out = alice
        .put(
            &format!("/api/tasks/{pid}/project"),
            &json!({"project_id": null}),
        )
        .await;
    assert_eq!(out.expect(200)["project_id"], Value::Null);
    bob.get(&format!("/api/tasks/{pid}/links"))
        .await
        .expect_detail(403, "Not authorized to access this resource");
}

async fn subtasks_are_one_level_under_their_parent(srv: TestServer) {
    let alice = srv.user("alice");
    let bob = srv.user("bob");
    let home = new_project(&alice, "Home").await;
    let hid = home["id"].as_str().unwrap().to_owned();
    let sink = alice
        .create(json!({"title": "fix sink", "project_id": hid}))
        .await;
    let sid = id_of(&sink);
    let r = alice
        .post(
            &format!("/api/tasks/{sid}/subtasks"),
            &json!({"title": "call plumber", "due_date": "2030-01-02T09:00:00Z"}),
        )
        .await;
    let plumber = r.expect(201).clone();
    assert_task(&plumber);
    let l = links(&alice, &id_of(&plumber)).await;
    assert_eq!(l["subtask_of"], sid.as_str());
    assert_eq!(l["project_id"], hid.as_str(), "in its parent's project");
    let washer = alice
        .create(json!({"title": "buy washer", "subtask_of": sid}))
        .await;
    alice.complete(&id_of(&washer)).await.expect(200);

    let subtasks = alice.get(&format!("/api/tasks/{sid}/subtasks")).await;
    let subtasks = subtasks.expect(200).as_array().unwrap().clone();
    assert_eq!(
        subtasks.iter().map(id_of).collect::<Vec<_>>(),
        [id_of(&plumber), id_of(&washer)],
        "oldest first, completed included"
    );
    let l = links(&alice, &sid).await;
    assert_eq!(
        (l["subtask_count"].clone(), l["subtasks_completed"].clone()),
        (json!(2), json!(1))
    );

    // One level, the parent's project, the owner's tasks only.
    alice
        .post(
            &format!("/api/tasks/{}/subtasks", id_of(&plumber)),
            &json!({"title": "deeper"}),
        )
        .await
        .expect_detail(409, "A subtask cannot have subtasks of its own");
    let other = new_project(&alice, "Other").await;
    alice
        .post(
            "/api/tasks",
            &json!({"title": "x", "subtask_of": sid, "project_id": other["id"]}),
        )
        .await
        .expect_detail(409, "A subtask is in its parent's project");
    alice
        .put(
            &format!("/api/tasks/{}/project", id_of(&plumber)),
            &json!({"project_id": null}),
        )
        .await
        .expect_detail(
            409,
            "A subtask is in its parent's project; move its parent instead",
        );
    bob.post(
        &format!("/api/tasks/{sid}/subtasks"),
        &json!({"title": "x"}),
    )
    .await
    .expect_detail(403, "Not authorized to access this resource");
    bob.post("/api/tasks", &json!({"title": "x", "subtask_of": sid}))
        .await
        .expect_detail(404, "Parent task not found");
    bob.get(&format!("/api/tasks/{sid}/subtasks"))
        .await
        .expect_detail(403, "Not authorized to access this resource");
    let unknown = uuid::Uuid::new_v4();
    alice
        .post(
            &format!("/api/tasks/{unknown}/subtasks"),
            &json!({"title": "x"}),
        )
        .await
        .expect_detail(404, "Task not found");
    alice
        .post("/api/tasks", &json!({"title": "x", "subtask_of": 12}))
        .await
        .expect_invalid("uuid_type", json!(["body", "subtask_of"]));
    alice
        .post(&format!("/api/tasks/{sid}/subtasks"), &json!({}))
        .await
        .expect_invalid("missing", json!(["body", "title"]));

    // At most 100 subtasks.
    let big = alice.create(json!({"title": "big job"})).await;
    let bid = id_of(&big);
    for n in 0..100 {
        alice
            .post(
                &format!("/api/tasks/{bid}/subtasks"),
                &json!({"title": format!("step {n}")}),
            )
            .await
            .expect(201);
    }
    alice
        .post(
            &format!("/api/tasks/{bid}/subtasks"),
            &json!({"title": "one more"}),
        )
        .await
        .expect_detail(409, "A task has at most 100 subtasks");

    // Completing the parent leaves its open subtasks open; deleting it takes them along.
    alice.complete(&sid).await.expect(200);
    let still = alice.get_task(&id_of(&plumber)).await;
    assert_eq!(still.expect(200)["status"], "pending");
    let gone = alice.delete_task(&sid).await;
    assert_eq!(gone.expect(200), &json!({"id": sid, "deleted": true}));
    for id in [id_of(&plumber), id_of(&washer)] {
        alice
            .get_task(&id)
            .await
            .expect_detail(404, "Task not found");
    }
}

async fn moves_and_deletions_are_announced_as_task_events(srv: TestServer) {
    let alice = srv.user("alice");
    let trip = new_project(&alice, "Trip").await;
    let tid = trip["id"].as_str().unwrap().to_owned();
    let pack = alice.create(json!({"title": "pack"})).await;
    let pid = id_of(&pack);
    let socks = alice
        .create(json!({"title": "socks", "subtask_of": pid}))
        .await;
    alice
        .put(
            &format!("/api/tasks/{pid}/project"),
            &json!({"project_id": tid}),
        )
        .await
        .expect(200);
    alice
        .delete(&format!("/api/projects/{tid}"))
        .await
        .expect(200);
    alice.delete_task(&pid).await.expect(200);

    // Each task's trail: created, moved in (updated), released (updated), deleted.
    let expected = [
        "task.created",
        "task.deleted",
        "task.updated",
        "task.updated",
    ];
    for id in [pid.clone(), id_of(&socks)] {
        let trail = eventually(
            &format!("the audit trail of {id}"),
            CONSUMER_WAIT,
            || async {
                let rows = alice.audit(&format!("task_id={id}&limit=100")).await;
                let mut kinds: Vec<String> = rows
                    .iter()
                    .map(|row| row["event_type"].as_str().unwrap().to_owned())
                    .filter(|kind| kind.starts_with("task."))
                    .collect();
                kinds.sort();
                if kinds.len() >= expected.len() {
                    Ok(kinds)
                } else {
                    Err(format!("{kinds:?}"))
                }
            },
        )
        .await;
        assert_eq!(trail, expected, "trail of {id}");
    }
    // The payloads are plain task views: no project or subtask keys leak into them.
    let rows = alice.audit(&format!("task_id={pid}&limit=100")).await;
    let updated: BTreeSet<String> = rows
        .iter()
        .filter(|row| row["event_type"] == "task.updated")
        .flat_map(|row| keys_of(&row["payload"]))
        .collect();
    assert!(!updated.is_empty());
    assert!(!updated.contains("project_id") && !updated.contains("subtask_of"));
}
