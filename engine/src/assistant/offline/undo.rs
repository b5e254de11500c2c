//! "undo": the calls that reverse what the previous turn did, newest first.
//!
//! * an added task is deleted;
//! * a completed task is set back to `pending` (the tool does not report the status it had,
//!   and pending is what almost every completed task came from), and the next occurrence a
//!   recurring task spawned is deleted;
//! * a deleted task is created again from the copy the delete returned — with a new id, and
//!   pending, since `add_task` takes no status;
//! * an update is reversed by writing back the `previous` values it reported.
//!
//! Failed calls changed nothing and lists change nothing, so neither is undone. Undoing an
//! undo redoes (the undo's own calls are the previous turn's actions).

use serde_json::{Map, Value, json};

use super::super::{ToolCall, ToolInvocation};

/// The calls that reverse `actions`; empty when there is nothing to undo.
pub fn calls(actions: &[ToolInvocation]) -> Vec<ToolCall> {
    actions
        .iter()
        .rev()
        .filter(|invocation| invocation.success)
        .flat_map(reverse)
        .collect()
}

fn id_of(value: &Value) -> Option<&str> {
    value.get("id").and_then(Value::as_str)
}

fn reverse(invocation: &ToolInvocation) -> Vec<ToolCall> {
    let Some(result) = invocation.result.as_ref() else {
        return Vec::new();
    };
    match invocation.tool_name.as_str() {
        "add_task" => id_of(result)
            .map(|id| vec![ToolCall::new("delete_task", json!({ "task_id": id }))])
            .unwrap_or_default(),
        "complete_task" => {
            let mut calls = Vec::new();
            if let Some(next) = result.get("next_task").and_then(id_of) {
                calls.push(ToolCall::new("delete_task", json!({ "task_id": next })));
            }
            if let Some(id) = id_of(result) {
                calls.push(ToolCall::new(
                    "update_task",
                    json!({ "task_id": id, "status": "pending" }),
                ));
            }
            calls
        }
        "delete_task" => result
            .get("task")
            .and_then(recreate)
            .map(|call| vec![call])
            .unwrap_or_default(),
        "update_task" => {
            let (Some(id), Some(Value::Object(previous))) = (id_of(result), result.get("previous"))
            else {
                return Vec::new();
            };
            let mut args = Map::new();
            args.insert("task_id".into(), id.into());
            for (key, value) in previous {
                // `is_recurring` follows the rule; it is not an update_task parameter.
                if key != "is_recurring" {
                    args.insert(key.clone(), value.clone());
                }
            }
            if args.len() == 1 {
                return Vec::new();
            }
            vec![ToolCall::new("update_task", Value::Object(args))]
        }
        _ => Vec::new(),
    }
}

/// The `add_task` call that creates `task` (a summary) again.
fn recreate(task: &Value) -> Option<ToolCall> {
    let mut args = Map::new();
    args.insert("title".into(), task.get("title")?.clone());
    for key in [
        "description",
        "priority",
        "due_date",
        "reminder_offset_minutes",
        "recurrence_rule",
    ] {
        if let Some(value) = task.get(key).filter(|value| !value.is_null()) {
            args.insert(key.into(), value.clone());
        }
    }
    if let Some(tags) = task
        .get("tags")
        .filter(|tags| tags.as_array().is_some_and(|tags| !tags.is_empty()))
    {
        args.insert("tags".into(), tags.clone());
    }
    Some(ToolCall::new("add_task", Value::Object(args)))
}
