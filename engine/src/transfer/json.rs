//! taskstream's own export: every task with every field the store keeps, so an import into an
//! empty data directory (or for another user) gives the same tasks back.
//!
//! ```json
//! {"format": "taskstream", "version": 2, "exported_at": "…", "user_id": "alice",
//!  "projects": [{"id": "…", "name": "Groceries", "created_at": "…", "updated_at": "…"}],
//!  "tasks": [{ …TaskResponse keys…, "reminders": [...], "recurrence_from": "due",
//!              "recurrence_trigger": "on_complete", "series_anchor": "…",
//!              "occurrence_index": 0, "time_zone": "Europe/Berlin",
//!              "project_id": "…" | null, "subtask_of": "…" | null }]}
//! ```
//!
//! Version 2 added `projects`, `project_id` and `subtask_of`; version 1 files (no projects)
//! are read as before. A task may also name its project as `"project": "Groceries"` (a
//! hand-made file). A bare array of `TaskResponse` objects (what `GET /api/tasks` answers) is
//! read too.

use chrono::{DateTime, Utc};
use serde_json::{Map, Value, json};
use uuid::Uuid;

use super::{FileError, FileProject, ParentRef, Parsed, Record};
use crate::project::Project;
use crate::task::Task;
use crate::time::format_utc;

/// The `format` value of an export.
pub const FORMAT_NAME: &str = "taskstream";
/// The version this build writes and reads.
pub const VERSION: u64 = 2;

/// The keys of a record that `POST /api/tasks` validates.
const BODY_KEYS: &[&str] = &[
    "title",
    "description",
    "status",
    "priority",
    "due_date",
    "tags",
    "reminder_offset_minutes",
    "reminders",
    "is_recurring",
    "recurrence_rule",
    "recurrence_from",
    "recurrence_trigger",
];

/// One task as exported.
pub fn task_json(task: &Task) -> Value {
    let mut value = serde_json::to_value(task.view()).unwrap_or_else(|_| json!({}));
    if let Value::Object(fields) = &mut value {
        fields.insert(
            "reminders".into(),
            Value::Array(task.reminders.iter().map(|spec| spec.view()).collect()),
        );
        fields.insert(
            "recurrence_from".into(),
            json!(task.recurrence_from.as_str()),
        );
        fields.insert(
            "recurrence_trigger".into(),
            json!(task.recurrence_trigger.as_str()),
        );
        fields.insert(
            "series_anchor".into(),
            json!(task.series_anchor.map(format_utc)),
        );
        fields.insert("occurrence_index".into(), json!(task.occurrence_index));
        fields.insert("time_zone".into(), json!(task.time_zone.name()));
        fields.insert("project_id".into(), json!(task.project_id));
        fields.insert("subtask_of".into(), json!(task.subtask_of));
    }
    value
}

/// One project as exported.
pub fn project_json(project: &Project) -> Value {
    json!({
        "id": project.id,
        "name": project.name,
        "created_at": format_utc(project.created_at),
        "updated_at": format_utc(project.updated_at),
    })
}

pub fn write(tasks: &[Task], projects: &[Project], user_id: &str, now: DateTime<Utc>) -> String {
    let document = json!({
        "format": FORMAT_NAME,
        "version": VERSION,
        "exported_at": format_utc(now),
        "user_id": user_id,
        "projects": projects.iter().map(project_json).collect::<Vec<_>>(),
        "tasks": tasks.iter().map(task_json).collect::<Vec<_>>(),
    });
    serde_json::to_string_pretty(&document).unwrap_or_default()
}

fn instant(
    fields: &Map<String, Value>,
    key: &str,
    at: &str,
) -> Result<Option<DateTime<Utc>>, FileError> {
    match fields.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(text)) => DateTime::parse_from_rfc3339(text)
            .map(|instant| Some(instant.with_timezone(&Utc)))
            .map_err(|_| {
                FileError::new(at, format!("{key}: {text:?} is not an RFC 3339 date-time"))
            }),
        Some(other) => Err(FileError::new(
            at,
            format!("{key}: expected a string, got {other}"),
        )),
    }
}

fn id(fields: &Map<String, Value>, key: &str, at: &str) -> Result<Option<Uuid>, FileError> {
    match fields.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(text)) => Uuid::parse_str(text)
            .map(Some)
            .map_err(|_| FileError::new(at, format!("{key}: {text:?} is not a UUID"))),
        Some(other) => Err(FileError::new(
            at,
            format!("{key}: expected a string, got {other}"),
        )),
    }
}

pub fn read(text: &str) -> Result<Parsed, FileError> {
    let document: Value = serde_json::from_str(text).map_err(|error| {
        FileError::new(
            format!("line {}", error.line()),
            format!("not JSON: {error}"),
        )
    })?;
    let mut projects: Vec<FileProject> = Vec::new();
    let tasks = match &document {
        Value::Array(tasks) => tasks,
        Value::Object(fields) => {
            match fields.get("format").and_then(Value::as_str) {
                Some(FORMAT_NAME) => {}
                _ => {
                    return Err(FileError::new(
                        "file",
                        format!(
                            "not a taskstream export (its \"format\" is not \"{FORMAT_NAME}\")"
                        ),
                    ));
                }
            }
            match fields.get("version").and_then(Value::as_u64) {
                Some(version) if version <= VERSION => {}
                other => {
                    return Err(FileError::new(
                        "file",
                        format!(
                            "export version {other:?}: this build reads version {VERSION} and older"
                        ),
                    ));
                }
            }
            projects = read_projects(fields.get("projects"))?;
            fields
                .get("tasks")
                .and_then(Value::as_array)
                .ok_or_else(|| FileError::new("file", "no \"tasks\" array"))?
        }
        _ => {
            return Err(FileError::new(
                "file",
                "expected an export object or an array of tasks",
            ));
        }
    };
    let mut records = Vec::with_capacity(tasks.len());
    for (index, task) in tasks.iter().enumerate() {
        let at = format!("task {}", index + 1);
        let Value::Object(fields) = task else {
            return Err(FileError::new(at, "not an object"));
        };
        let body: Map<String, Value> = fields
            .iter()
            .filter(|(key, _)| BODY_KEYS.contains(&key.as_str()))
            .map(|(key, value)| (key.clone(), value.clone()))
            .collect();
        let mut record = Record::new(at.clone(), Value::Object(body));
        record.id = id(fields, "id", &at)?;
        record.created_at = instant(fields, "created_at", &at)?;
        record.updated_at = instant(fields, "updated_at", &at)?;
        record.series_anchor = instant(fields, "series_anchor", &at)?;
        record.parent_task_id = id(fields, "parent_task_id", &at)?;
        record.subtask_of = id(fields, "subtask_of", &at)?.map(ParentRef::Id);
        record.project = match (id(fields, "project_id", &at)?, fields.get("project")) {
            (Some(project_id), _) => Some(
                projects
                    .iter()
                    .find(|project| project.id == Some(project_id))
                    .cloned()
                    .ok_or_else(|| {
                        FileError::new(
                            &at,
                            format!("project_id: {project_id} is not in the file's \"projects\""),
                        )
                    })?,
            ),
            (None, None | Some(Value::Null)) => None,
            (None, Some(Value::String(name))) => Some(FileProject::named(name.clone())),
            (None, Some(other)) => {
                return Err(FileError::new(
                    at,
                    format!("project: expected a project's name, got {other}"),
                ));
            }
        };
        record.occurrence_index = match fields.get("occurrence_index") {
            None | Some(Value::Null) => 0,
            Some(value) => value
                .as_u64()
                .and_then(|n| u32::try_from(n).ok())
                .ok_or_else(|| {
                    FileError::new(&at, format!("occurrence_index: {value} is not a count"))
                })?,
        };
        record.time_zone = match fields.get("time_zone") {
            None | Some(Value::Null) => None,
            Some(Value::String(name)) => {
                Some(crate::recurrence::parse_zone(name).ok_or_else(|| {
                    FileError::new(&at, format!("time_zone: unknown zone {name:?}"))
                })?)
            }
            Some(other) => {
                return Err(FileError::new(
                    at,
                    format!("time_zone: expected a string, got {other}"),
                ));
            }
        };
        records.push(record);
    }
    Ok(Parsed {
        records,
        projects,
        ..Parsed::default()
    })
}

/// The `projects` of an export (version 2).
fn read_projects(value: Option<&Value>) -> Result<Vec<FileProject>, FileError> {
    let items = match value {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Array(items)) => items,
        Some(_) => return Err(FileError::new("projects", "expected an array of projects")),
    };
    let mut projects = Vec::with_capacity(items.len());
    for (index, item) in items.iter().enumerate() {
        let at = format!("project {}", index + 1);
        let Value::Object(fields) = item else {
            return Err(FileError::new(at, "not an object"));
        };
        let name = fields
            .get("name")
            .and_then(Value::as_str)
            .ok_or_else(|| FileError::new(&at, "name: expected the project's name"))?;
        projects.push(FileProject {
            id: id(fields, "id", &at)?,
            name: name.to_owned(),
            created_at: instant(fields, "created_at", &at)?,
            updated_at: instant(fields, "updated_at", &at)?,
        });
    }
    Ok(projects)
}
