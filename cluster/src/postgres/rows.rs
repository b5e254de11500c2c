//! Mapping between tasks and rows, the SQL of the list query, and the outbox.

use deadpool_postgres::GenericClient;
use tokio_postgres::Row;
use tokio_postgres::types::{Json, ToSql};
use uuid::Uuid;

use taskstream_engine::event::LIVE_TYPES;
use taskstream_engine::event::{EventEnvelope, OutboxEvent};
use taskstream_engine::ports::OutboxRecord;
use taskstream_engine::recurrence::{Recurrence, parse_zone};
use taskstream_engine::task::{
    Priority, ProjectFilter, RecurrenceFrom, SortField, SortOrder, StatusFilter, Task, TaskQuery,
    TaskStatus,
};

use super::error::PgError;

/// A boxed query parameter, for statements assembled at run time.
pub(crate) type Param = Box<dyn ToSql + Sync + Send>;

pub(crate) const TASK_COLUMNS: &str = "id, user_id, title, description, status, priority, due_date, created_at, updated_at, tags, reminder_offset_minutes, remind_at, is_recurring, recurrence_rule, recurrence_from, series_anchor, occurrence_index, parent_task_id, time_zone, reminders, recurrence_trigger, project_id, subtask_of";

/// Borrows boxed parameters the way the client wants them.
pub(crate) fn borrow(params: &[Param]) -> Vec<&(dyn ToSql + Sync)> {
    params
        .iter()
        .map(|param| param.as_ref() as &(dyn ToSql + Sync))
        .collect()
}

pub(crate) fn task_from_row(row: &Row) -> Result<Task, PgError> {
    let status: String = row.try_get(4)?;
    let priority: i16 = row.try_get(5)?;
    let rule: Option<String> = row.try_get(13)?;
    let from: String = row.try_get(14)?;
    let index: i64 = row.try_get(16)?;
    let zone: String = row.try_get(18)?;
    let Json(reminders) = row.try_get(19)?;
    let trigger: String = row.try_get(20)?;
    Ok(Task {
        id: row.try_get(0)?,
        user_id: row.try_get(1)?,
        title: row.try_get(2)?,
        description: row.try_get(3)?,
        status: TaskStatus::parse(&status).ok_or(PgError::Corrupt("task status"))?,
        priority: Priority::from_rank(i64::from(priority))
            .ok_or(PgError::Corrupt("task priority"))?,
        due_date: row.try_get(6)?,
        created_at: row.try_get(7)?,
        updated_at: row.try_get(8)?,
        tags: row.try_get(9)?,
        reminder_offset_minutes: row.try_get(10)?,
        remind_at: row.try_get(11)?,
        reminders,
        is_recurring: row.try_get(12)?,
        recurrence_rule: rule
            .map(|text| {
                text.parse::<Recurrence>()
                    .map_err(|_| PgError::Corrupt("recurrence rule"))
            })
            .transpose()?,
        recurrence_from: RecurrenceFrom::parse(&from)
            .ok_or(PgError::Corrupt("task recurrence_from"))?,
        recurrence_trigger: taskstream_engine::task::RecurrenceTrigger::parse(&trigger)
            .ok_or(PgError::Corrupt("task recurrence_trigger"))?,
        series_anchor: row.try_get(15)?,
        occurrence_index: u32::try_from(index)
            .map_err(|_| PgError::Corrupt("task occurrence_index"))?,
        parent_task_id: row.try_get(17)?,
        time_zone: parse_zone(&zone).ok_or(PgError::Corrupt("task time zone"))?,
        project_id: row.try_get(21)?,
        subtask_of: row.try_get(22)?,
    })
}

fn rank(task: &Task) -> i16 {
    // Ranks are 0..=2 by construction.
    i16::try_from(task.priority.rank()).unwrap_or_default()
}

pub(crate) async fn insert_task(client: &impl GenericClient, task: &Task) -> Result<(), PgError> {
    let sql = format!(
        "INSERT INTO tasks ({TASK_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22, $23)"
    );
    let statement = client.prepare_cached(&sql).await?;
    client
        .execute(
            &statement,
            &[
                &task.id,
                &task.user_id,
                &task.title,
                &task.description,
                &task.status.as_str(),
                &rank(task),
                &task.due_date,
                &task.created_at,
                &task.updated_at,
                &task.tags,
                &task.reminder_offset_minutes,
                &task.remind_at,
                &task.is_recurring,
                &task.recurrence_rule.as_ref().map(Recurrence::to_string),
                &task.recurrence_from.as_str(),
                &task.series_anchor,
                &i64::from(task.occurrence_index),
                &task.parent_task_id,
                &task.time_zone.name(),
                &Json(&task.reminders),
                &task.recurrence_trigger.as_str(),
                &task.project_id,
                &task.subtask_of,
            ],
        )
        .await?;
    Ok(())
}

/// Rewrites a task's fields; `parent_task_id` and `subtask_of` never change after insert (and
/// leaving them out spares foreign-key checks that would lock the parents). `project_id` is
/// checked only when it changes (a move, under the user's lock).
pub(crate) async fn update_task(client: &impl GenericClient, task: &Task) -> Result<(), PgError> {
    let statement = client
        .prepare_cached(
            "UPDATE tasks SET title = $2, description = $3, status = $4, priority = $5, due_date = $6, updated_at = $7, tags = $8, reminder_offset_minutes = $9, remind_at = $10, is_recurring = $11, recurrence_rule = $12, recurrence_from = $13, series_anchor = $14, occurrence_index = $15, time_zone = $16, reminders = $17, recurrence_trigger = $18, project_id = $19 WHERE id = $1",
        )
        .await?;
    client
        .execute(
            &statement,
            &[
                &task.id,
                &task.title,
                &task.description,
                &task.status.as_str(),
                &rank(task),
                &task.due_date,
                &task.updated_at,
                &task.tags,
                &task.reminder_offset_minutes,
                &task.remind_at,
                &task.is_recurring,
                &task.recurrence_rule.as_ref().map(Recurrence::to_string),
                &task.recurrence_from.as_str(),
                &task.series_anchor,
                &i64::from(task.occurrence_index),
                &task.time_zone.name(),
                &Json(&task.reminders),
                &task.recurrence_trigger.as_str(),
                &task.project_id,
            ],
        )
        .await?;
    Ok(())
}

pub(crate) async fn delete_task(client: &impl GenericClient, id: Uuid) -> Result<(), PgError> {
    let statement = client
        .prepare_cached("DELETE FROM tasks WHERE id = $1")
        .await?;
    client.execute(&statement, &[&id]).await?;
    Ok(())
}

pub(crate) async fn load_task(
    client: &impl GenericClient,
    id: Uuid,
) -> Result<Option<Task>, PgError> {
    let sql = format!("SELECT {TASK_COLUMNS} FROM tasks WHERE id = $1");
    let statement = client.prepare_cached(&sql).await?;
    client
        .query_opt(&statement, &[&id])
        .await?
        .as_ref()
        .map(task_from_row)
        .transpose()
}

/// The owner of a task, read without a lock (it never changes).
pub(crate) async fn owner_of(
    client: &impl GenericClient,
    id: Uuid,
) -> Result<Option<String>, PgError> {
    let statement = client
        .prepare_cached("SELECT user_id FROM tasks WHERE id = $1")
        .await?;
    Ok(client
        .query_opt(&statement, &[&id])
        .await?
        .map(|row| row.try_get(0))
        .transpose()?)
}

/// Loads a task and locks its row until the transaction ends, so concurrent changes of one
/// task (two replicas completing it at once) run one after the other on fresh state.
pub(crate) async fn lock_task(
    client: &impl GenericClient,
    id: Uuid,
) -> Result<Option<Task>, PgError> {
    let sql = format!("SELECT {TASK_COLUMNS} FROM tasks WHERE id = $1 FOR UPDATE");
    let statement = client.prepare_cached(&sql).await?;
    client
        .query_opt(&statement, &[&id])
        .await?
        .as_ref()
        .map(task_from_row)
        .transpose()
}

/// The subtasks of a task, oldest first, locked until the transaction ends.
pub(crate) async fn lock_subtasks_of(
    client: &impl GenericClient,
    id: Uuid,
) -> Result<Vec<Task>, PgError> {
    let sql = format!(
        "SELECT {TASK_COLUMNS} FROM tasks WHERE subtask_of = $1 ORDER BY created_at, id FOR UPDATE"
    );
    let statement = client.prepare_cached(&sql).await?;
    client
        .query(&statement, &[&id])
        .await?
        .iter()
        .map(task_from_row)
        .collect()
}

pub(crate) async fn has_next_occurrence(
    client: &impl GenericClient,
    id: Uuid,
) -> Result<bool, PgError> {
    let statement = client
        .prepare_cached("SELECT EXISTS (SELECT 1 FROM tasks WHERE parent_task_id = $1)")
        .await?;
    Ok(client.query_one(&statement, &[&id]).await?.try_get(0)?)
}

/// Appends events to the outbox. Takes the outbox lock first and holds it to commit, so
/// sequence numbers are handed out in commit order: a relay never sees a later event before an
/// earlier one commits (which relaying in `seq` order relies on). Call it last in a transaction.
pub(crate) async fn append_events(
    client: &impl GenericClient,
    outbox_lock: i64,
    events: &[OutboxEvent],
) -> Result<(), PgError> {
    if events.is_empty() {
        return Ok(());
    }
    let lock = client
        .prepare_cached("SELECT pg_advisory_xact_lock($1)")
        .await?;
    client.execute(&lock, &[&outbox_lock]).await?;
    let mut ids = Vec::with_capacity(events.len());
    let mut topics = Vec::with_capacity(events.len());
    let mut keys = Vec::with_capacity(events.len());
    let mut types = Vec::with_capacity(events.len());
    let mut envelopes = Vec::with_capacity(events.len());
    for event in events {
        ids.push(event.envelope.event_id);
        topics.push(event.topic.name());
        keys.push(event.key.as_str());
        types.push(event.envelope.event_type.as_str());
        envelopes.push(Json(&event.envelope));
    }
    let insert = client
        .prepare_cached(
            "INSERT INTO outbox (event_id, topic, partition_key, event_type, envelope)
             SELECT event_id, topic, partition_key, event_type, envelope
             FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::jsonb[])
                  WITH ORDINALITY AS e (event_id, topic, partition_key, event_type, envelope, n)
             ORDER BY n",
        )
        .await?;
    client
        .execute(&insert, &[&ids, &topics, &keys, &types, &envelopes])
        .await?;
    // The live stream's copy (still under the outbox lock, so its `seq` is in commit order too).
    let live: Vec<&OutboxEvent> = events
        .iter()
        .filter(|event| LIVE_TYPES.contains(&event.envelope.event_type.as_str()))
        .collect();
    if !live.is_empty() {
        let users: Vec<&str> = live
            .iter()
            .map(|event| event.envelope.user_id.as_str())
            .collect();
        let envelopes: Vec<Json<&EventEnvelope>> =
            live.iter().map(|event| Json(&event.envelope)).collect();
        let insert = client
            .prepare_cached(
                "INSERT INTO live_events (user_id, envelope)
                 SELECT user_id, envelope
                 FROM unnest($1::text[], $2::jsonb[]) WITH ORDINALITY AS e (user_id, envelope, n)
                 ORDER BY n",
            )
            .await?;
        client.execute(&insert, &[&users, &envelopes]).await?;
    }
    Ok(())
}

pub(crate) fn record_from_row(row: &Row) -> Result<OutboxRecord, PgError> {
    let Json(envelope): Json<EventEnvelope> = row
        .try_get(3)
        .map_err(|_| PgError::Corrupt("outbox envelope"))?;
    Ok(OutboxRecord {
        seq: row.try_get(0)?,
        topic: row.try_get(1)?,
        key: row.try_get(2)?,
        envelope,
    })
}

pub(crate) async fn pending_events(
    client: &impl GenericClient,
    limit: usize,
) -> Result<Vec<OutboxRecord>, PgError> {
    let statement = client
        .prepare_cached(
            "SELECT seq, topic, partition_key, envelope FROM outbox ORDER BY seq LIMIT $1",
        )
        .await?;
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    client
        .query(&statement, &[&limit])
        .await?
        .iter()
        .map(record_from_row)
        .collect()
}

pub(crate) async fn delete_events(
    client: &impl GenericClient,
    seqs: &[i64],
) -> Result<u64, PgError> {
    let statement = client
        .prepare_cached("DELETE FROM outbox WHERE seq = ANY($1)")
        .await?;
    Ok(client.execute(&statement, &[&seqs]).await?)
}

/// `needle` as an ILIKE pattern matching it anywhere, with `\`, `%` and `_` taken literally.
fn contains_pattern(needle: &str) -> String {
    let mut pattern = String::with_capacity(needle.len() + 2);
    pattern.push('%');
    for c in needle.chars() {
        if matches!(c, '\\' | '%' | '_') {
            pattern.push('\\');
        }
        pattern.push(c);
    }
    pattern.push('%');
    pattern
}

/// The list query as SQL with its parameters, ordered exactly like the SQLite store.
pub(crate) fn list_sql(user_id: &str, query: &TaskQuery) -> (String, Vec<Param>) {
    let mut sql = format!("SELECT {TASK_COLUMNS} FROM tasks WHERE user_id = $1");
    let mut params: Vec<Param> = vec![Box::new(user_id.to_owned())];
    let mut bind = |sql: &mut String, template: &str, param: Param| {
        params.push(param);
        sql.push_str(&template.replace('?', &format!("${}", params.len())));
    };
    match query.status {
        StatusFilter::All => {}
        StatusFilter::Active => sql.push_str(" AND status <> 'completed'"),
        StatusFilter::Only(status) => {
            bind(&mut sql, " AND status = ?", Box::new(status.as_str()));
        }
    }
    if let Some(priority) = query.priority {
        let rank = i16::try_from(priority.rank()).unwrap_or_default();
        bind(&mut sql, " AND priority = ?", Box::new(rank));
    }
    match query.has_due_date {
        Some(true) => sql.push_str(" AND due_date IS NOT NULL"),
        Some(false) => sql.push_str(" AND due_date IS NULL"),
        None => {}
    }
    if let Some(from) = query.due_from {
        bind(&mut sql, " AND due_date >= ?", Box::new(from));
    }
    if let Some(until) = query.due_until {
        bind(&mut sql, " AND due_date < ?", Box::new(until));
    }
    if let Some(recurring) = query.is_recurring {
        bind(&mut sql, " AND is_recurring = ?", Box::new(recurring));
    }
    match query.project {
        Some(ProjectFilter::In(project)) => {
            bind(&mut sql, " AND project_id = ?", Box::new(project));
        }
        Some(ProjectFilter::None) => sql.push_str(" AND project_id IS NULL"),
        None => {}
    }
    if let Some(parent) = query.subtask_of {
        bind(&mut sql, " AND subtask_of = ?", Box::new(parent));
    }
    if let Some(needle) = &query.search {
        bind(
            &mut sql,
            r" AND (title ILIKE ? ESCAPE '\' OR description ILIKE ? ESCAPE '\')",
            Box::new(contains_pattern(needle)),
        );
    }
    if !query.tags.is_empty() {
        // Tags are stored and queried lower-cased; every asked tag must be present.
        bind(
            &mut sql,
            " AND tags @> ?::text[]",
            Box::new(query.tags.clone()),
        );
    }
    let direction = match query.order {
        SortOrder::Asc => "ASC",
        SortOrder::Desc => "DESC",
    };
    // Ties as in SQLite: newest first, then id. `lower(title COLLATE "C")` folds ASCII only and
    // compares bytes, which is SQLite's NOCASE.
    let order = match query.sort {
        SortField::CreatedAt => format!("created_at {direction}, id {direction}"),
        SortField::DueDate => {
            format!("due_date {direction} NULLS LAST, created_at DESC, id")
        }
        SortField::Priority => format!("priority {direction}, created_at DESC, id"),
        SortField::Title => {
            format!("lower(title COLLATE \"C\") {direction}, created_at DESC, id")
        }
    };
    sql.push_str(" ORDER BY ");
    sql.push_str(&order);
    if let Some(limit) = query.limit {
        bind(&mut sql, " LIMIT ?", Box::new(i64::from(limit)));
    }
    if query.offset > 0 {
        bind(&mut sql, " OFFSET ?", Box::new(i64::from(query.offset)));
    }
    (sql, params)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn search_patterns_are_literal() {
        assert_eq!(contains_pattern("100% y_1 a\\b"), r"%100\% y\_1 a\\b%");
    }

    #[test]
    fn list_sql_numbers_its_parameters() {
        let query = TaskQuery {
            search: Some("milk".into()),
            priority: Some(Priority::High),
            tags: vec!["home".into()],
            limit: Some(5),
            offset: 10,
            ..TaskQuery::default()
        };
        let (sql, params) = list_sql("alice", &query);
        assert_eq!(params.len(), 6);
        assert!(sql.contains("priority = $2"), "{sql}");
        assert!(
            sql.contains("title ILIKE $3") && sql.contains("description ILIKE $3"),
            "{sql}"
        );
        assert!(sql.contains("tags @> $4::text[]"), "{sql}");
        assert!(sql.ends_with("LIMIT $5 OFFSET $6"), "{sql}");
    }
}
