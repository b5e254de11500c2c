//! Mapping between tasks and rows, and the SQL of the list query.

use rusqlite::types::Value as SqlValue;
use rusqlite::{Connection, OptionalExtension, Row, params};
use uuid::Uuid;

use crate::error::EngineError;
use crate::event::OutboxEvent;
use crate::ports::OutboxRecord;
use crate::recurrence::Recurrence;
use crate::task::{
    Priority, ProjectFilter, RecurrenceFrom, SortField, SortOrder, StatusFilter, Task, TaskQuery,
    TaskStatus,
};
use crate::time::from_micros;

pub(crate) const TASK_COLUMNS: &str = "id, user_id, title, description, status, priority, due_date, created_at, updated_at, tags, reminder_offset_minutes, remind_at, is_recurring, recurrence_rule, recurrence_from, series_anchor, occurrence_index, parent_task_id, time_zone, reminders, recurrence_trigger, project_id, subtask_of";

/// A failed statement as the engine sees it (see [`super::error::SqliteError`]).
pub(crate) fn sql_error(error: rusqlite::Error) -> EngineError {
    super::error::SqliteError::Db(error).into()
}

fn corrupt(what: &str) -> rusqlite::Error {
    rusqlite::Error::InvalidColumnType(0, what.to_owned(), rusqlite::types::Type::Text)
}

fn uuid_at(row: &Row<'_>, index: usize) -> rusqlite::Result<Uuid> {
    let text: String = row.get(index)?;
    Uuid::parse_str(&text).map_err(|_| corrupt("uuid"))
}

pub(crate) fn instant_at(
    row: &Row<'_>,
    index: usize,
) -> rusqlite::Result<Option<chrono::DateTime<chrono::Utc>>> {
    let micros: Option<i64> = row.get(index)?;
    micros
        .map(|m| from_micros(m).ok_or_else(|| corrupt("timestamp")))
        .transpose()
}

pub(crate) fn required_instant_at(
    row: &Row<'_>,
    index: usize,
) -> rusqlite::Result<chrono::DateTime<chrono::Utc>> {
    instant_at(row, index)?.ok_or_else(|| corrupt("timestamp"))
}

pub(crate) fn task_from_row(row: &Row<'_>) -> rusqlite::Result<Task> {
    let status: String = row.get(4)?;
    let priority: i64 = row.get(5)?;
    let tags: String = row.get(9)?;
    let rule: Option<String> = row.get(13)?;
    let from: String = row.get(14)?;
    let parent: Option<String> = row.get(17)?;
    let zone: String = row.get(18)?;
    let reminders: String = row.get(19)?;
    let trigger: String = row.get(20)?;
    let optional_uuid = |index: usize, what: &str| -> rusqlite::Result<Option<Uuid>> {
        let text: Option<String> = row.get(index)?;
        text.map(|text| Uuid::parse_str(&text).map_err(|_| corrupt(what)))
            .transpose()
    };
    Ok(Task {
        id: uuid_at(row, 0)?,
        user_id: row.get(1)?,
        title: row.get(2)?,
        description: row.get(3)?,
        status: TaskStatus::parse(&status).ok_or_else(|| corrupt("status"))?,
        priority: Priority::from_rank(priority).ok_or_else(|| corrupt("priority"))?,
        due_date: instant_at(row, 6)?,
        created_at: required_instant_at(row, 7)?,
        updated_at: required_instant_at(row, 8)?,
        tags: serde_json::from_str(&tags).map_err(|_| corrupt("tags"))?,
        reminder_offset_minutes: row.get(10)?,
        remind_at: instant_at(row, 11)?,
        reminders: serde_json::from_str(&reminders).map_err(|_| corrupt("reminders"))?,
        is_recurring: row.get(12)?,
        recurrence_rule: rule
            .map(|text| {
                text.parse::<Recurrence>()
                    .map_err(|_| corrupt("recurrence_rule"))
            })
            .transpose()?,
        recurrence_from: RecurrenceFrom::parse(&from).ok_or_else(|| corrupt("recurrence_from"))?,
        recurrence_trigger: crate::task::RecurrenceTrigger::parse(&trigger)
            .ok_or_else(|| corrupt("recurrence_trigger"))?,
        series_anchor: instant_at(row, 15)?,
        occurrence_index: row.get(16)?,
        parent_task_id: parent
            .map(|text| Uuid::parse_str(&text).map_err(|_| corrupt("parent_task_id")))
            .transpose()?,
        time_zone: crate::recurrence::parse_zone(&zone).ok_or_else(|| corrupt("time_zone"))?,
        project_id: optional_uuid(21, "project_id")?,
        subtask_of: optional_uuid(22, "subtask_of")?,
    })
}

fn tags_json(task: &Task) -> String {
    serde_json::to_string(&task.tags).unwrap_or_else(|_| "[]".to_owned())
}

fn reminders_json(task: &Task) -> String {
    serde_json::to_string(&task.reminders).unwrap_or_else(|_| "[]".to_owned())
}

pub(crate) fn insert_task(conn: &Connection, task: &Task) -> rusqlite::Result<()> {
    let sql = format!(
        "INSERT INTO tasks ({TASK_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21, ?22, ?23)"
    );
    conn.prepare_cached(&sql)?.execute(params![
        task.id.to_string(),
        task.user_id,
        task.title,
        task.description,
        task.status.as_str(),
        task.priority.rank(),
        task.due_date.map(|d| d.timestamp_micros()),
        task.created_at.timestamp_micros(),
        task.updated_at.timestamp_micros(),
        tags_json(task),
        task.reminder_offset_minutes,
        task.remind_at.map(|d| d.timestamp_micros()),
        task.is_recurring,
        task.recurrence_rule.as_ref().map(Recurrence::to_string),
        task.recurrence_from.as_str(),
        task.series_anchor.map(|d| d.timestamp_micros()),
        task.occurrence_index,
        task.parent_task_id.map(|id| id.to_string()),
        task.time_zone.name(),
        reminders_json(task),
        task.recurrence_trigger.as_str(),
        task.project_id.map(|id| id.to_string()),
        task.subtask_of.map(|id| id.to_string()),
    ])?;
    Ok(())
}

pub(crate) fn update_task(conn: &Connection, task: &Task) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "UPDATE tasks SET title = ?2, description = ?3, status = ?4, priority = ?5, due_date = ?6, updated_at = ?7, tags = ?8, reminder_offset_minutes = ?9, remind_at = ?10, is_recurring = ?11, recurrence_rule = ?12, recurrence_from = ?13, series_anchor = ?14, occurrence_index = ?15, time_zone = ?16, reminders = ?17, recurrence_trigger = ?18, project_id = ?19 WHERE id = ?1",
    )?
    .execute(params![
        task.id.to_string(),
        task.title,
        task.description,
        task.status.as_str(),
        task.priority.rank(),
        task.due_date.map(|d| d.timestamp_micros()),
        task.updated_at.timestamp_micros(),
        tags_json(task),
        task.reminder_offset_minutes,
        task.remind_at.map(|d| d.timestamp_micros()),
        task.is_recurring,
        task.recurrence_rule.as_ref().map(Recurrence::to_string),
        task.recurrence_from.as_str(),
        task.series_anchor.map(|d| d.timestamp_micros()),
        task.occurrence_index,
        task.time_zone.name(),
        reminders_json(task),
        task.recurrence_trigger.as_str(),
        task.project_id.map(|id| id.to_string()),
    ])?;
    Ok(())
}

pub(crate) fn delete_task(conn: &Connection, id: Uuid) -> rusqlite::Result<()> {
    conn.prepare_cached("DELETE FROM tasks WHERE id = ?1")?
        .execute([id.to_string()])?;
    Ok(())
}

pub(crate) fn load_task(conn: &Connection, id: Uuid) -> rusqlite::Result<Option<Task>> {
    let sql = format!("SELECT {TASK_COLUMNS} FROM tasks WHERE id = ?1");
    conn.prepare_cached(&sql)?
        .query_row([id.to_string()], task_from_row)
        .optional()
}

/// The subtasks of a task, oldest first.
pub(crate) fn subtasks_of(conn: &Connection, id: Uuid) -> rusqlite::Result<Vec<Task>> {
    let sql =
        format!("SELECT {TASK_COLUMNS} FROM tasks WHERE subtask_of = ?1 ORDER BY created_at, id");
    let mut statement = conn.prepare_cached(&sql)?;
    let rows = statement.query_map([id.to_string()], task_from_row)?;
    rows.collect()
}

pub(crate) fn has_next_occurrence(conn: &Connection, id: Uuid) -> rusqlite::Result<bool> {
    conn.prepare_cached("SELECT EXISTS (SELECT 1 FROM tasks WHERE parent_task_id = ?1)")?
        .query_row([id.to_string()], |row| row.get(0))
}

pub(crate) fn append_events(conn: &Connection, events: &[OutboxEvent]) -> rusqlite::Result<()> {
    let mut statement = conn.prepare_cached(
        "INSERT INTO outbox (event_id, topic, partition_key, event_type, envelope, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?;
    for event in events {
        let envelope = serde_json::to_string(&event.envelope)
            .map_err(|error| rusqlite::Error::ToSqlConversionFailure(Box::new(error)))?;
        statement.execute(params![
            event.envelope.event_id.to_string(),
            event.topic.name(),
            event.key,
            event.envelope.event_type,
            envelope,
            chrono::Utc::now().timestamp_micros(),
        ])?;
    }
    Ok(())
}

pub(crate) fn pending_events(
    conn: &Connection,
    limit: usize,
) -> rusqlite::Result<Vec<OutboxRecord>> {
    // Held reminder events (see `prepared_fires`) wait until released, which is never before
    // their fire time: the cheap time test spares the release check for the many held ahead of
    // a burst.
    let mut statement = conn.prepare_cached(&format!(
        "SELECT seq, topic, partition_key, envelope FROM outbox
         WHERE held_fire_at IS NULL OR (held_fire_at <= ?2 AND {}) ORDER BY seq LIMIT ?1",
        super::prepared_fires::RELEASED
    ))?;
    let now = chrono::Utc::now().timestamp_micros();
    let rows = statement.query_map([limit as i64, now], |row| {
        let envelope: String = row.get(3)?;
        Ok(OutboxRecord {
            seq: row.get(0)?,
            topic: row.get(1)?,
            key: row.get(2)?,
            envelope: serde_json::from_str(&envelope).map_err(|_| corrupt("envelope"))?,
        })
    })?;
    rows.collect()
}

/// The list query as SQL with its parameters.
pub(crate) fn list_sql(user_id: &str, query: &TaskQuery) -> (String, Vec<SqlValue>) {
    let mut sql = format!("SELECT {TASK_COLUMNS} FROM tasks WHERE user_id = ?");
    let mut args = vec![SqlValue::Text(user_id.to_owned())];
    match query.status {
        StatusFilter::All => {}
        StatusFilter::Active => sql.push_str(" AND status != 'completed'"),
        StatusFilter::Only(status) => {
            sql.push_str(" AND status = ?");
            args.push(SqlValue::Text(status.as_str().to_owned()));
        }
    }
    if let Some(priority) = query.priority {
        sql.push_str(" AND priority = ?");
        args.push(SqlValue::Integer(priority.rank()));
    }
    match query.has_due_date {
        Some(true) => sql.push_str(" AND due_date IS NOT NULL"),
        Some(false) => sql.push_str(" AND due_date IS NULL"),
        None => {}
    }
    if let Some(from) = query.due_from {
        sql.push_str(" AND due_date >= ?");
        args.push(SqlValue::Integer(from.timestamp_micros()));
    }
    if let Some(until) = query.due_until {
        sql.push_str(" AND due_date < ?");
        args.push(SqlValue::Integer(until.timestamp_micros()));
    }
    if let Some(recurring) = query.is_recurring {
        sql.push_str(" AND is_recurring = ?");
        args.push(SqlValue::Integer(i64::from(recurring)));
    }
    match query.project {
        Some(ProjectFilter::In(project)) => {
            sql.push_str(" AND project_id = ?");
            args.push(SqlValue::Text(project.to_string()));
        }
        Some(ProjectFilter::None) => sql.push_str(" AND project_id IS NULL"),
        None => {}
    }
    if let Some(parent) = query.subtask_of {
        sql.push_str(" AND subtask_of = ?");
        args.push(SqlValue::Text(parent.to_string()));
    }
    if let Some(needle) = &query.search {
        sql.push_str(" AND (contains_folded(title, ?) OR contains_folded(description, ?))");
        args.push(SqlValue::Text(needle.clone()));
        args.push(SqlValue::Text(needle.clone()));
    }
    for tag in &query.tags {
        sql.push_str(" AND EXISTS (SELECT 1 FROM json_each(tasks.tags) WHERE json_each.value = ?)");
        args.push(SqlValue::Text(tag.clone()));
    }
    let direction = match query.order {
        SortOrder::Asc => "ASC",
        SortOrder::Desc => "DESC",
    };
    let order = match query.sort {
        SortField::CreatedAt => format!("created_at {direction}, id {direction}"),
        SortField::DueDate => {
            format!("due_date IS NULL, due_date {direction}, created_at DESC, id")
        }
        SortField::Priority => format!("priority {direction}, created_at DESC, id"),
        SortField::Title => format!("title COLLATE NOCASE {direction}, created_at DESC, id"),
    };
    sql.push_str(" ORDER BY ");
    sql.push_str(&order);
    if let Some(limit) = query.limit {
        sql.push_str(" LIMIT ? OFFSET ?");
        args.push(SqlValue::Integer(i64::from(limit)));
        args.push(SqlValue::Integer(i64::from(query.offset)));
    } else if query.offset > 0 {
        sql.push_str(" LIMIT -1 OFFSET ?");
        args.push(SqlValue::Integer(i64::from(query.offset)));
    }
    (sql, args)
}
