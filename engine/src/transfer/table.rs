//! Tasks as CSV, one a row under a header: every field of the JSON export, so a spreadsheet
//! round trip keeps everything (a project by its name in `project`, a subtask's parent by id
//! in `subtask_of`). Reading matches columns by name (any order, any case); only
//! `title` is required, so a hand-made sheet with `title,due_date,tags` imports too.

use chrono::{DateTime, Utc};
use serde_json::{Map, Value, json};
use uuid::Uuid;

use super::csv::{Header, Row, line, read as read_rows};
use super::{FileError, FileProject, ParentRef, Parsed, Record};
use crate::project::Project;
use crate::task::Task;
use crate::time::format_utc;

/// The columns written, in order.
pub const COLUMNS: &[&str] = &[
    "id",
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
    "time_zone",
    "series_anchor",
    "occurrence_index",
    "parent_task_id",
    "created_at",
    "updated_at",
    "project",
    "subtask_of",
];

/// Tags as a cell: `home, money`, or a JSON array when a tag itself holds a comma.
fn tags_cell(tags: &[String]) -> String {
    if tags
        .iter()
        .any(|tag| tag.contains(',') || tag.starts_with('['))
    {
        serde_json::to_string(tags).unwrap_or_default()
    } else {
        tags.join(", ")
    }
}

/// The tasks under [`COLUMNS`]: `project` is the project's name, `subtask_of` the parent's id.
pub fn write(tasks: &[Task], projects: &[Project]) -> String {
    let mut out = line(COLUMNS);
    for task in tasks {
        let time = |instant: Option<DateTime<Utc>>| instant.map(format_utc).unwrap_or_default();
        let reminders = if task.reminders.is_empty() {
            String::new()
        } else {
            Value::Array(task.reminders.iter().map(|spec| spec.view()).collect()).to_string()
        };
        let row = [
            task.id.to_string(),
            task.title.clone(),
            task.description.clone().unwrap_or_default(),
            task.status.as_str().to_owned(),
            task.priority.as_str().to_owned(),
            time(task.due_date),
            tags_cell(&task.tags),
            task.reminder_offset_minutes
                .map(|minutes| minutes.to_string())
                .unwrap_or_default(),
            reminders,
            task.is_recurring.to_string(),
            task.recurrence_rule
                .as_ref()
                .map(ToString::to_string)
                .unwrap_or_default(),
            task.recurrence_from.as_str().to_owned(),
            task.recurrence_trigger.as_str().to_owned(),
            task.time_zone.name().to_owned(),
            time(task.series_anchor),
            task.occurrence_index.to_string(),
            task.parent_task_id
                .map(|id| id.to_string())
                .unwrap_or_default(),
            format_utc(task.created_at),
            format_utc(task.updated_at),
            super::project_name(projects, task.project_id)
                .unwrap_or_default()
                .to_owned(),
            task.subtask_of.map(|id| id.to_string()).unwrap_or_default(),
        ];
        out.push_str(&line(&row));
    }
    out
}

fn at(row: &Row) -> String {
    format!("line {}", row.line)
}

fn instant(row: &Row, column: &str, value: &str) -> Result<Option<DateTime<Utc>>, FileError> {
    if value.is_empty() {
        return Ok(None);
    }
    DateTime::parse_from_rfc3339(value)
        .map(|instant| Some(instant.with_timezone(&Utc)))
        .map_err(|_| {
            FileError::new(
                at(row),
                format!(
                    "{column}: {value:?} is not an RFC 3339 date-time (e.g. 2030-01-31T09:00:00Z)"
                ),
            )
        })
}

fn uuid(row: &Row, column: &str, value: &str) -> Result<Option<Uuid>, FileError> {
    if value.is_empty() {
        return Ok(None);
    }
    Uuid::parse_str(value)
        .map(Some)
        .map_err(|_| FileError::new(at(row), format!("{column}: {value:?} is not a UUID")))
}

/// A cell as the JSON value the API would take: booleans and numbers typed, the rest text.
fn typed(row: &Row, column: &str, value: &str) -> Result<Value, FileError> {
    match column {
        "is_recurring" => match value.to_ascii_lowercase().as_str() {
            "true" | "yes" | "1" => Ok(json!(true)),
            "false" | "no" | "0" => Ok(json!(false)),
            _ => Err(FileError::new(
                at(row),
                format!("is_recurring: {value:?} is not true or false"),
            )),
        },
        "reminder_offset_minutes" => value.parse::<i64>().map(Value::from).map_err(|_| {
            FileError::new(
                at(row),
                format!("reminder_offset_minutes: {value:?} is not a whole number"),
            )
        }),
        "reminders" => serde_json::from_str(value).map_err(|_| {
            FileError::new(
                at(row),
                "reminders: expected a JSON list such as [{\"offset_minutes\": 60}]".to_owned(),
            )
        }),
        "tags" if value.starts_with('[') => serde_json::from_str(value)
            .map_err(|_| FileError::new(at(row), "tags: not a JSON list of tags".to_owned())),
        "tags" => Ok(json!(
            value
                .split(',')
                .map(str::trim)
                .filter(|tag| !tag.is_empty())
                .collect::<Vec<_>>()
        )),
        _ => Ok(json!(value)),
    }
}

pub fn read(text: &str) -> Result<Parsed, FileError> {
    let rows = read_rows(text)
        .map_err(|error| FileError::new(format!("line {}", error.line), error.message))?;
    let Some((head, rows)) = rows.split_first() else {
        return Ok(Parsed::default());
    };
    let header = Header::new(head);
    if !header.has("title") {
        return Err(FileError::new(
            "line 1",
            format!(
                "the header has no \"title\" column (columns: {})",
                COLUMNS.join(",")
            ),
        ));
    }
    let mut records = Vec::with_capacity(rows.len());
    for row in rows {
        let mut body = Map::new();
        for column in [
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
        ] {
            let value = header.get(row, column);
            if column == "title" || !value.is_empty() {
                body.insert(column.to_owned(), typed(row, column, value)?);
            }
        }
        if body.get("recurrence_rule").is_some() && body.get("is_recurring").is_none() {
            body.insert("is_recurring".to_owned(), json!(true));
        }
        let mut record = Record::new(at(row), Value::Object(body));
        record.id = uuid(row, "id", header.get(row, "id"))?;
        record.parent_task_id = uuid(row, "parent_task_id", header.get(row, "parent_task_id"))?;
        record.subtask_of =
            uuid(row, "subtask_of", header.get(row, "subtask_of"))?.map(ParentRef::Id);
        let project = header.get(row, "project").trim();
        record.project = (!project.is_empty()).then(|| FileProject::named(project));
        record.created_at = instant(row, "created_at", header.get(row, "created_at"))?;
        record.updated_at = instant(row, "updated_at", header.get(row, "updated_at"))?;
        record.series_anchor = instant(row, "series_anchor", header.get(row, "series_anchor"))?;
        let index = header.get(row, "occurrence_index");
        if !index.is_empty() {
            record.occurrence_index = index.parse().map_err(|_| {
                FileError::new(
                    at(row),
                    format!("occurrence_index: {index:?} is not a count"),
                )
            })?;
        }
        let zone = header.get(row, "time_zone");
        if !zone.is_empty() {
            record.time_zone = Some(crate::recurrence::parse_zone(zone).ok_or_else(|| {
                FileError::new(at(row), format!("time_zone: unknown zone {zone:?}"))
            })?);
        }
        records.push(record);
    }
    Ok(Parsed {
        records,
        ..Parsed::default()
    })
}
