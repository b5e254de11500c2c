//! The tool layer against the real SQLite store: the reference's result shapes and error
//! strings, the extensions, and that every tool is scoped to the authenticated user.

use std::sync::Arc;

use chrono_tz::Tz;
use serde_json::{Value, json};

use super::tools::{ToolCall, ToolInvocation, ToolSpec, Tools, openai_tools, parse_due};
use crate::TaskService;
use crate::embedded::sqlite::SqliteTaskStore;
use crate::ports::{Outbox, TaskStore};

struct Fixture {
    tools: Tools,
    store: Arc<SqliteTaskStore>,
    _dir: tempfile::TempDir,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Arc::new(SqliteTaskStore::open(&dir.path().join("tasks.db")).expect("open"));
    let service = TaskService::new(Arc::clone(&store) as Arc<dyn TaskStore>);
    Fixture {
        tools: Tools::new(service),
        store,
        _dir: dir,
    }
}

impl Fixture {
    async fn call(&self, user: &str, name: &str, arguments: Value) -> ToolInvocation {
        self.tools
            .call(user, Tz::UTC, &ToolCall::new(name, arguments))
            .await
    }

    async fn ok(&self, user: &str, name: &str, arguments: Value) -> Value {
        let invocation = self.call(user, name, arguments).await;
        assert!(invocation.success, "{name} failed: {:?}", invocation.error);
        assert_eq!(invocation.tool_name, name);
        invocation.result.expect("data")
    }

    async fn error(&self, user: &str, name: &str, arguments: Value) -> String {
        let invocation = self.call(user, name, arguments).await;
        assert!(!invocation.success, "{name} should have failed");
        assert!(invocation.result.is_none());
        invocation.error.expect("error text")
    }
}

#[test]
fn schemas_come_from_the_spec_table() {
    let tools = openai_tools();
    let names: Vec<&str> = tools
        .as_array()
        .expect("array")
        .iter()
        .map(|tool| tool["function"]["name"].as_str().expect("name"))
        .collect();
    assert_eq!(
        names,
        [
            "add_task",
            "list_tasks",
            "complete_task",
            "update_task",
            "delete_task",
            "list_projects",
            "create_project"
        ]
    );
    let add = ToolSpec::find("add_task").expect("add").parameters_schema();
    assert_eq!(add["type"], "object");
    assert_eq!(add["required"], json!(["title"]));
    assert_eq!(
        add["properties"]["priority"]["enum"],
        json!(["low", "medium", "high"])
    );
    assert_eq!(add["properties"]["tags"]["items"]["type"], "string");
    let list = ToolSpec::find("list_tasks")
        .expect("list")
        .parameters_schema();
    assert_eq!(list["required"], json!([]));
    assert_eq!(
        list["properties"]["status"]["enum"],
        json!(["pending", "in_progress", "completed", "all"])
    );
    for name in ["complete_task", "update_task", "delete_task"] {
        let schema = ToolSpec::find(name).expect("tool").parameters_schema();
        assert_eq!(schema["required"], json!(["task_id"]), "{name}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn add_returns_the_summary_and_goes_through_the_service() {
    let f = fixture();
    let data = f
        .ok(
            "alice",
            "add_task",
            json!({"title": "  Pay rent ", "priority": "HIGH", "due_date": "2026-12-01T09:00:00+01:00",
                   "tags": ["Home", "home"], "reminder_offset_minutes": 30.0, "recurrence_rule": "monthly",
                   "user_id": "mallory"}),
        )
        .await;
    assert_eq!(data["title"], "Pay rent");
    assert_eq!(data["priority"], "high");
    assert_eq!(data["due_date"], "2026-12-01T08:00:00Z");
    assert_eq!(data["tags"], json!(["home"]));
    assert_eq!(data["reminder_offset_minutes"], 30);
    assert_eq!(data["remind_at"], "2026-12-01T07:30:00Z");
    assert_eq!(data["is_recurring"], true);
    assert_eq!(data["recurrence_rule"], "MONTHLY");
    assert!(
        data.get("user_id").is_none(),
        "summaries do not repeat the user"
    );
    let id = uuid::Uuid::parse_str(data["id"].as_str().expect("id")).expect("uuid");
    let stored = f.store.get(id).await.expect("get").expect("stored");
    assert_eq!(stored.user_id, "alice", "the model's user_id is ignored");
    let events = f.store.pending_events(10).await.expect("outbox");
    assert!(
        events
            .iter()
            .any(|e| e.envelope.event_type == "task.created"),
        "the tool emits the same events as REST"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn add_reports_the_reference_errors() {
    let f = fixture();
    assert_eq!(
        f.error("a", "add_task", json!({})).await,
        "Title is required"
    );
    assert_eq!(
        f.error("a", "add_task", json!({"title": "   "})).await,
        "Title is required"
    );
    assert_eq!(
        f.error("a", "add_task", json!({"title": "x".repeat(256)}))
            .await,
        "Title must be 255 characters or less"
    );
    assert_eq!(
        f.error(
            "a",
            "add_task",
            json!({"title": "t", "description": "d".repeat(2001)})
        )
        .await,
        "Description must be 2000 characters or less"
    );
    assert_eq!(
        f.error("a", "add_task", json!({"title": "t", "priority": "urgent"}))
            .await,
        "Invalid priority: urgent. Must be low, medium, or high"
    );
    assert_eq!(
        f.error(
            "a",
            "add_task",
            json!({"title": "t", "due_date": "next tuesday"})
        )
        .await,
        "Invalid due_date format: next tuesday. Use ISO 8601 format"
    );
    assert_eq!(
        f.error(
            "a",
            "add_task",
            json!({"title": "t", "reminder_offset_minutes": 10})
        )
        .await,
        "Reminder requires a due date"
    );
    assert!(
        f.error(
            "a",
            "add_task",
            json!({"title": "t", "recurrence_rule": "FORTNIGHTLY"})
        )
        .await
        .starts_with("Invalid recurrence_rule: "),
    );
    assert_eq!(
        f.error("a", "add_task", json!({"title": "t", "colour": "red"}))
            .await,
        "Unexpected argument: colour"
    );
    assert_eq!(
        f.error("a", "add_task", json!({"title": 5})).await,
        "Invalid title: 5"
    );
    assert_eq!(
        f.error("a", "fly_away", json!({})).await,
        "Unknown tool: fly_away"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_filters_and_validates() {
    let f = fixture();
    f.ok(
        "a",
        "add_task",
        json!({"title": "Buy milk", "tags": ["shop"], "due_date": "2020-01-01T00:00:00Z"}),
    )
    .await;
    f.ok(
        "a",
        "add_task",
        json!({"title": "Write report", "priority": "high", "due_date": "2099-01-05T00:00:00Z"}),
    )
    .await;
    f.ok("b", "add_task", json!({"title": "Bob's milk"})).await;
    let all = f.ok("a", "list_tasks", json!({})).await;
    assert_eq!(
        all.as_array().expect("array").len(),
        2,
        "only the caller's tasks"
    );
    assert_eq!(all[0]["title"], "Write report", "newest first");
    let milk = f.ok("a", "list_tasks", json!({"search": "MILK"})).await;
    assert_eq!(milk.as_array().expect("array").len(), 1);
    let high = f
        .ok(
            "a",
            "list_tasks",
            json!({"priority": "high", "status": "all"}),
        )
        .await;
    assert_eq!(high[0]["title"], "Write report");
    let overdue = f.ok("a", "list_tasks", json!({"overdue": true})).await;
    assert_eq!(overdue.as_array().expect("array").len(), 1);
    assert_eq!(overdue[0]["title"], "Buy milk");
    let window = f
        .ok(
            "a",
            "list_tasks",
            json!({"due_after": "2099-01-01", "due_before": "2099-02-01T00:00:00Z"}),
        )
        .await;
    assert_eq!(window.as_array().expect("array").len(), 1);
    assert_eq!(window[0]["title"], "Write report");
    let tagged = f.ok("a", "list_tasks", json!({"tags": ["Shop"]})).await;
    assert_eq!(tagged[0]["title"], "Buy milk");
    assert_eq!(
        f.error("a", "list_tasks", json!({"status": "done"})).await,
        "Invalid status: done. Must be pending, in_progress, completed, or all"
    );
    assert_eq!(
        f.error("a", "list_tasks", json!({"priority": "urgent"}))
            .await,
        "Invalid priority: urgent. Must be low, medium, high, or all"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn complete_update_delete_are_scoped_and_shaped() {
    let f = fixture();
    let task = f
        .ok("a", "add_task", json!({"title": "Stand-up", "due_date": "2026-12-01T09:00:00Z", "recurrence_rule": "DAILY", "description": "daily"}))
        .await;
    let id = task["id"].as_str().expect("id").to_owned();

    assert_eq!(
        f.error("b", "complete_task", json!({"task_id": id})).await,
        "You don't have access to this task"
    );
    assert_eq!(
        f.error("a", "complete_task", json!({"task_id": "nope"}))
            .await,
        "Invalid task ID format: nope"
    );
    let missing = uuid::Uuid::new_v4();
    assert_eq!(
        f.error("a", "delete_task", json!({"task_id": missing.to_string()}))
            .await,
        format!("Task not found: {missing}")
    );
    assert_eq!(
        f.error("a", "complete_task", json!({})).await,
        "Missing required argument: task_id"
    );

    let updated = f
        .ok(
            "a",
            "update_task",
            json!({"task_id": id, "priority": "low", "description": ""}),
        )
        .await;
    assert_eq!(updated["priority"], "low");
    assert_eq!(
        updated["description"],
        Value::Null,
        "an empty description clears it"
    );
    assert_eq!(updated["title"], "Stand-up", "fields not given stay");
    assert_eq!(updated["due_date"], "2026-12-01T09:00:00Z");
    assert_eq!(
        updated["previous"],
        json!({"priority": "medium", "description": "daily"}),
        "the old values of what changed, for undo"
    );
    assert_eq!(
        f.error("a", "update_task", json!({"task_id": id, "title": " "}))
            .await,
        "Title cannot be empty"
    );
    assert_eq!(
        f.error("a", "update_task", json!({"task_id": id, "status": "done"}))
            .await,
        "Invalid status: done. Must be pending, in_progress, or completed"
    );

    let done = f.ok("a", "complete_task", json!({"task_id": id})).await;
    assert_eq!(done["status"], "completed");
    assert_eq!(done["next_task"]["due_date"], "2026-12-02T09:00:00Z");
    assert_eq!(done["next_task"]["parent_task_id"], json!(id));
    let again = f.ok("a", "complete_task", json!({"task_id": id})).await;
    assert_eq!(
        again["next_task"],
        Value::Null,
        "completing twice creates nothing"
    );

    let cleared = f
        .ok(
            "a",
            "update_task",
            json!({"task_id": done["next_task"]["id"], "due_date": "null", "recurrence_rule": ""}),
        )
        .await;
    assert_eq!(cleared["due_date"], Value::Null);
    assert_eq!(cleared["is_recurring"], false);

    let deleted = f.ok("a", "delete_task", json!({"task_id": id})).await;
    assert_eq!(deleted["deleted_id"], json!(id));
    assert_eq!(deleted["deleted_title"], "Stand-up");
    assert_eq!(deleted["message"], "Task 'Stand-up' deleted successfully");
    assert_eq!(deleted["task"]["title"], "Stand-up");
}

#[test]
fn due_dates_without_an_offset_are_read_in_the_users_zone() {
    let berlin: Tz = "Europe/Berlin".parse().expect("zone");
    assert_eq!(
        parse_due("2026-07-01T09:00:00", berlin)
            .expect("naive")
            .to_rfc3339(),
        "2026-07-01T07:00:00+00:00"
    );
    assert_eq!(
        parse_due("2026-01-20", Tz::UTC).expect("date").to_rfc3339(),
        "2026-01-20T23:59:00+00:00",
        "a date alone is the end of that day"
    );
    assert_eq!(
        parse_due("2026-01-20T18:00:00Z", berlin)
            .expect("utc")
            .to_rfc3339(),
        "2026-01-20T18:00:00+00:00"
    );
    assert!(parse_due("soon", Tz::UTC).is_err());
}

#[tokio::test]
async fn project_and_parent_arguments_are_resolved_for_the_caller_only() {
    let f = fixture();
    let garden = f
        .ok("alice", "create_project", json!({"name": "Garden"}))
        .await;
    assert_eq!(garden["task_count"], 0);
    assert_eq!(
        f.error("alice", "create_project", json!({"name": " garden "}))
            .await,
        "A project with this name already exists"
    );
    assert_eq!(
        f.error("alice", "create_project", json!({"name": "  "}))
            .await,
        "Invalid name: A project name must not be empty"
    );
    let tulips = f
        .ok(
            "alice",
            "add_task",
            json!({"title": "Plant tulips", "project": "GARDEN"}),
        )
        .await;
    assert_eq!(tulips["project_id"], garden["id"]);
    assert_eq!(tulips["subtask_of"], Value::Null);
    // Two open tasks of the same title: the parent must be named by id.
    f.ok("alice", "add_task", json!({"title": "Fix sink"}))
        .await;
    f.ok("alice", "add_task", json!({"title": "fix sink"}))
        .await;
    let several = f
        .error(
            "alice",
            "add_task",
            json!({"title": "x", "subtask_of": "Fix sink"}),
        )
        .await;
    assert!(several.starts_with("2 tasks are titled"), "{several}");
    let bulbs = f
        .ok(
            "alice",
            "add_task",
            json!({"title": "Buy bulbs", "subtask_of": " plant tulips "}),
        )
        .await;
    assert_eq!(bulbs["subtask_of"], tulips["id"]);
    assert_eq!(bulbs["project_id"], garden["id"], "the parent's project");
    let listed = f
        .ok("alice", "list_tasks", json!({"project": "garden"}))
        .await;
    assert_eq!(listed.as_array().map(Vec::len), Some(2));
    // bob sees none of alice's projects or parents.
    assert!(
        f.error("bob", "list_tasks", json!({"project": "Garden"}))
            .await
            .starts_with("Project not found: Garden")
    );
    assert!(
        f.error(
            "bob",
            "add_task",
            json!({"title": "x", "subtask_of": tulips["id"]}),
        )
        .await
        .contains("Parent task not found")
    );
    assert_eq!(f.ok("bob", "list_projects", json!({})).await, json!([]));
}
