//! Rows of projects, the placement of a new task's links, and subtask counts.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, Row, params};
use uuid::Uuid;

use super::rows::{self, required_instant_at, sql_error};
use crate::error::EngineError;
use crate::event::OutboxEvent;
use crate::project::rules::{self, Parent};
use crate::project::{Project, ProjectDeletion, ProjectSummary, SubtaskCount, name_key};
use crate::task::Task;

const SUMMARY: &str = "SELECT p.id, p.user_id, p.name, p.created_at, p.updated_at,
    (SELECT COUNT(*) FROM tasks AS t WHERE t.project_id = p.id),
    (SELECT COUNT(*) FROM tasks AS t WHERE t.project_id = p.id AND t.status != 'completed')
    FROM projects AS p";

fn project_from_row(row: &Row<'_>) -> rusqlite::Result<Project> {
    let id: String = row.get(0)?;
    Ok(Project {
        id: Uuid::parse_str(&id).map_err(|_| {
            rusqlite::Error::InvalidColumnType(0, "uuid".into(), rusqlite::types::Type::Text)
        })?,
        user_id: row.get(1)?,
        name: row.get(2)?,
        created_at: required_instant_at(row, 3)?,
        updated_at: required_instant_at(row, 4)?,
    })
}

fn summary_from_row(row: &Row<'_>) -> rusqlite::Result<ProjectSummary> {
    let tasks: i64 = row.get(5)?;
    let open: i64 = row.get(6)?;
    Ok(ProjectSummary {
        project: project_from_row(row)?,
        task_count: u64::try_from(tasks).unwrap_or_default(),
        open_task_count: u64::try_from(open).unwrap_or_default(),
    })
}

pub(crate) fn load(conn: &Connection, id: Uuid) -> rusqlite::Result<Option<Project>> {
    conn.prepare_cached(
        "SELECT id, user_id, name, created_at, updated_at FROM projects WHERE id = ?1",
    )?
    .query_row([id.to_string()], project_from_row)
    .optional()
}

pub(crate) fn summary(conn: &Connection, id: Uuid) -> rusqlite::Result<Option<ProjectSummary>> {
    conn.prepare_cached(&format!("{SUMMARY} WHERE p.id = ?1"))?
        .query_row([id.to_string()], summary_from_row)
        .optional()
}

pub(crate) fn list(conn: &Connection, user_id: &str) -> rusqlite::Result<Vec<ProjectSummary>> {
    let mut statement = conn.prepare_cached(&format!(
        "{SUMMARY} WHERE p.user_id = ?1 ORDER BY p.name_key, p.id"
    ))?;
    let rows = statement.query_map([user_id], summary_from_row)?;
    rows.collect()
}

/// Whether another of the user's projects (not `except`) has this name.
fn name_taken(
    conn: &Connection,
    user_id: &str,
    name: &str,
    except: Option<Uuid>,
) -> rusqlite::Result<bool> {
    conn.prepare_cached(
        "SELECT EXISTS (SELECT 1 FROM projects WHERE user_id = ?1 AND name_key = ?2 AND id IS NOT ?3)",
    )?
    .query_row(
        params![user_id, name_key(name), except.map(|id| id.to_string())],
        |row| row.get(0),
    )
}

pub(crate) fn insert(conn: &Connection, project: &Project) -> Result<(), EngineError> {
    let existing: i64 = conn
        .prepare_cached("SELECT COUNT(*) FROM projects WHERE user_id = ?1")
        .and_then(|mut statement| statement.query_row([&project.user_id], |row| row.get(0)))
        .map_err(sql_error)?;
    let taken = name_taken(conn, &project.user_id, &project.name, None).map_err(sql_error)?;
    rules::check_new_project(u64::try_from(existing).unwrap_or_default(), taken)?;
    conn.prepare_cached(
        "INSERT INTO projects (id, user_id, name, name_key, created_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )
    .and_then(|mut statement| {
        statement.execute(params![
            project.id.to_string(),
            project.user_id,
            project.name,
            name_key(&project.name),
            project.created_at.timestamp_micros(),
            project.updated_at.timestamp_micros(),
        ])
    })
    .map_err(sql_error)?;
    Ok(())
}

pub(crate) fn rename(
    conn: &Connection,
    user_id: &str,
    id: Uuid,
    name: String,
    now: DateTime<Utc>,
) -> Result<Project, EngineError> {
    let project = rules::owned(load(conn, id).map_err(sql_error)?, user_id)?;
    let taken = name_taken(conn, user_id, &name, Some(id)).map_err(sql_error)?;
    let renamed = rules::rename(project, name, taken, now)?;
    conn.prepare_cached(
        "UPDATE projects SET name = ?2, name_key = ?3, updated_at = ?4 WHERE id = ?1",
    )
    .and_then(|mut statement| {
        statement.execute(params![
            id.to_string(),
            renamed.name,
            name_key(&renamed.name),
            now.timestamp_micros(),
        ])
    })
    .map_err(sql_error)?;
    Ok(renamed)
}

/// Deletes the project after taking its tasks out of it; returns what happened and the events
/// to append. The tasks' reminders are untouched (their times did not change).
pub(crate) fn delete(
    conn: &Connection,
    user_id: &str,
    id: Uuid,
    now: DateTime<Utc>,
) -> Result<(ProjectDeletion, Vec<OutboxEvent>), EngineError> {
    let project = rules::owned(load(conn, id).map_err(sql_error)?, user_id)?;
    let sql = format!(
        "SELECT {} FROM tasks WHERE project_id = ?1 ORDER BY subtask_of IS NOT NULL, created_at, id",
        rows::TASK_COLUMNS
    );
    let tasks = conn
        .prepare_cached(&sql)
        .and_then(|mut statement| {
            statement
                .query_map([id.to_string()], rows::task_from_row)?
                .collect::<rusqlite::Result<Vec<Task>>>()
        })
        .map_err(sql_error)?;
    let (released, events) = rules::release(tasks, now);
    for task in &released {
        rows::update_task(conn, task).map_err(sql_error)?;
    }
    conn.prepare_cached("DELETE FROM projects WHERE id = ?1")
        .and_then(|mut statement| statement.execute([id.to_string()]))
        .map_err(sql_error)?;
    Ok((ProjectDeletion { project, released }, events))
}

/// Checks a new task's project and parent against the rows and completes its links (see
/// [`rules::place`]).
pub(crate) fn place(conn: &Connection, task: &mut Task) -> Result<(), EngineError> {
    if task.project_id.is_none() && task.subtask_of.is_none() {
        return Ok(());
    }
    let parent = match task.subtask_of {
        Some(id) => rows::load_task(conn, id).map_err(sql_error)?,
        None => None,
    };
    let siblings = match &parent {
        Some(parent) => count_subtasks(conn, parent.id).map_err(sql_error)?,
        None => 0,
    };
    let project = match (task.subtask_of, task.project_id) {
        (None, Some(id)) => load(conn, id).map_err(sql_error)?,
        _ => None,
    };
    rules::place(
        task,
        parent.as_ref().map(|task| Parent {
            task,
            subtasks: siblings,
        }),
        project.as_ref(),
    )
}

fn count_subtasks(conn: &Connection, parent: Uuid) -> rusqlite::Result<u64> {
    let count: i64 = conn
        .prepare_cached("SELECT COUNT(*) FROM tasks WHERE subtask_of = ?1")?
        .query_row([parent.to_string()], |row| row.get(0))?;
    Ok(u64::try_from(count).unwrap_or_default())
}

pub(crate) fn subtask_counts(
    conn: &Connection,
    user_id: &str,
    parents: &[Uuid],
) -> rusqlite::Result<HashMap<Uuid, SubtaskCount>> {
    let ids: Vec<String> = parents.iter().map(Uuid::to_string).collect();
    let ids = serde_json::to_string(&ids).unwrap_or_else(|_| "[]".to_owned());
    let mut statement = conn.prepare_cached(
        "SELECT subtask_of, COUNT(*), SUM(status = 'completed') FROM tasks
         WHERE user_id = ?1 AND subtask_of IN (SELECT value FROM json_each(?2))
         GROUP BY subtask_of",
    )?;
    let rows = statement.query_map(params![user_id, ids], |row| {
        let parent: String = row.get(0)?;
        let total: i64 = row.get(1)?;
        let completed: i64 = row.get(2)?;
        Ok((parent, total, completed))
    })?;
    let mut counts = HashMap::new();
    for row in rows {
        let (parent, total, completed) = row?;
        if let Ok(parent) = Uuid::parse_str(&parent) {
            counts.insert(
                parent,
                SubtaskCount {
                    total: u64::try_from(total).unwrap_or_default(),
                    completed: u64::try_from(completed).unwrap_or_default(),
                },
            );
        }
    }
    Ok(counts)
}
