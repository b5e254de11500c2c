//! Rows of the audit trail and of notifications.

use rusqlite::types::Value as SqlValue;
use rusqlite::{Connection, OptionalExtension, Row, params};
use uuid::Uuid;

use crate::activity::{AuditEntry, AuditFilter, Delivery, Notification};
use crate::time::from_micros;

fn corrupt(what: &str) -> rusqlite::Error {
    rusqlite::Error::InvalidColumnType(0, what.to_owned(), rusqlite::types::Type::Text)
}

fn uuid_at(row: &Row<'_>, index: usize) -> rusqlite::Result<Uuid> {
    let text: String = row.get(index)?;
    Uuid::parse_str(&text).map_err(|_| corrupt("uuid"))
}

fn json_at(row: &Row<'_>, index: usize) -> rusqlite::Result<serde_json::Value> {
    let text: String = row.get(index)?;
    serde_json::from_str(&text).map_err(|_| corrupt("json"))
}

fn instant_at(row: &Row<'_>, index: usize) -> rusqlite::Result<chrono::DateTime<chrono::Utc>> {
    from_micros(row.get(index)?).ok_or_else(|| corrupt("timestamp"))
}

/// Inserts unless the event was already audited; true when a row was added.
pub(crate) fn insert_audit(conn: &Connection, entry: &AuditEntry) -> rusqlite::Result<bool> {
    let added = conn
        .prepare_cached(
            "INSERT INTO audit_log (id, event_id, event_type, timestamp, received_at, user_id, task_id, source, payload)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9) ON CONFLICT (event_id) DO NOTHING",
        )?
        .execute(params![
            entry.id.to_string(),
            entry.event_id.to_string(),
            entry.event_type,
            entry.timestamp,
            entry.received_at.timestamp_micros(),
            entry.user_id,
            entry.task_id,
            entry.source,
            entry.payload.to_string(),
        ])?;
    Ok(added == 1)
}

pub(crate) fn list_audit(
    conn: &Connection,
    user_id: &str,
    filter: &AuditFilter,
) -> rusqlite::Result<Vec<AuditEntry>> {
    let mut sql = String::from(
        "SELECT id, event_id, event_type, timestamp, received_at, user_id, task_id, source, payload FROM audit_log WHERE user_id = ?",
    );
    let mut args = vec![SqlValue::Text(user_id.to_owned())];
    if let Some(task_id) = &filter.task_id {
        sql.push_str(" AND task_id = ?");
        args.push(SqlValue::Text(task_id.clone()));
    }
    if let Some(event_type) = &filter.event_type {
        sql.push_str(" AND event_type = ?");
        args.push(SqlValue::Text(event_type.clone()));
    }
    sql.push_str(" ORDER BY received_at DESC, id DESC LIMIT ? OFFSET ?");
    args.push(SqlValue::Integer(i64::from(filter.limit)));
    args.push(SqlValue::Integer(i64::from(filter.offset)));
    let mut statement = conn.prepare_cached(&sql)?;
    let rows = statement.query_map(rusqlite::params_from_iter(args), |row| {
        Ok(AuditEntry {
            id: uuid_at(row, 0)?,
            event_id: uuid_at(row, 1)?,
            event_type: row.get(2)?,
            timestamp: row.get(3)?,
            received_at: instant_at(row, 4)?,
            user_id: row.get(5)?,
            task_id: row.get(6)?,
            source: row.get(7)?,
            payload: json_at(row, 8)?,
        })
    })?;
    rows.collect()
}

/// Inserts unless the event already produced a notification; true when one was added.
pub(crate) fn insert_notification(conn: &Connection, n: &Notification) -> rusqlite::Result<bool> {
    let added = conn
        .prepare_cached(
            "INSERT INTO notifications (id, user_id, event_id, kind, task_id, title, message, created_at, read_at, payload)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10) ON CONFLICT (event_id) DO NOTHING",
        )?
        .execute(params![
            n.id.to_string(),
            n.user_id,
            n.event_id.to_string(),
            n.kind,
            n.task_id,
            n.title,
            n.message,
            n.created_at.timestamp_micros(),
            n.read_at.map(|at| at.timestamp_micros()),
            n.payload.to_string(),
        ])?;
    Ok(added == 1)
}

const NOTIFICATION_COLUMNS: &str =
    "id, user_id, event_id, kind, task_id, title, message, created_at, read_at, payload";

fn notification_from_row(row: &Row<'_>) -> rusqlite::Result<Notification> {
    let read_at: Option<i64> = row.get(8)?;
    Ok(Notification {
        id: uuid_at(row, 0)?,
        user_id: row.get(1)?,
        event_id: uuid_at(row, 2)?,
        kind: row.get(3)?,
        task_id: row.get(4)?,
        title: row.get(5)?,
        message: row.get(6)?,
        created_at: instant_at(row, 7)?,
        read_at: read_at
            .map(|m| from_micros(m).ok_or_else(|| corrupt("timestamp")))
            .transpose()?,
        payload: json_at(row, 9)?,
    })
}

pub(crate) fn list_notifications(
    conn: &Connection,
    user_id: &str,
    limit: u32,
) -> rusqlite::Result<Vec<Notification>> {
    let sql = format!(
        "SELECT {NOTIFICATION_COLUMNS} FROM notifications WHERE user_id = ?1 ORDER BY created_at DESC, id DESC LIMIT ?2"
    );
    let mut statement = conn.prepare_cached(&sql)?;
    let rows = statement.query_map(params![user_id, i64::from(limit)], notification_from_row)?;
    rows.collect()
}

pub(crate) fn count_unread(conn: &Connection, user_id: &str) -> rusqlite::Result<u64> {
    conn.prepare_cached(
        "SELECT COUNT(*) FROM notifications WHERE user_id = ?1 AND read_at IS NULL",
    )?
    .query_row([user_id], |row| row.get::<_, i64>(0))
    .map(|count| u64::try_from(count).unwrap_or(0))
}

/// Marks one of the user's notifications read (keeping the first read time); `None` if the user
/// has no such notification.
pub(crate) fn mark_notification_read(
    conn: &Connection,
    user_id: &str,
    id: Uuid,
    now: chrono::DateTime<chrono::Utc>,
) -> rusqlite::Result<Option<Notification>> {
    conn.prepare_cached(
        "UPDATE notifications SET read_at = COALESCE(read_at, ?3) WHERE id = ?1 AND user_id = ?2",
    )?
    .execute(params![id.to_string(), user_id, now.timestamp_micros()])?;
    let sql =
        format!("SELECT {NOTIFICATION_COLUMNS} FROM notifications WHERE id = ?1 AND user_id = ?2");
    conn.prepare_cached(&sql)?
        .query_row(params![id.to_string(), user_id], notification_from_row)
        .optional()
}

/// Removes relayed events from the outbox: exactly those, since a held event skipped by the
/// relay may be released meanwhile.
pub(crate) fn delete_events(conn: &Connection, seqs: &[i64]) -> rusqlite::Result<usize> {
    let list = serde_json::to_string(seqs)
        .map_err(|error| rusqlite::Error::ToSqlConversionFailure(Box::new(error)))?;
    conn.prepare_cached("DELETE FROM outbox WHERE seq IN (SELECT value FROM json_each(?1))")?
        .execute([list])
}

pub(crate) fn insert_delivery(conn: &Connection, delivery: &Delivery) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "INSERT INTO notification_deliveries (event_id, notification_id, channel, attempt, succeeded, detail, at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?
    .execute(params![
        delivery.event_id.to_string(),
        delivery.notification_id.to_string(),
        delivery.channel,
        delivery.attempt,
        delivery.succeeded,
        delivery.detail,
        delivery.at.timestamp_micros(),
    ])?;
    Ok(())
}

pub(crate) fn delivered(
    conn: &Connection,
    event_id: Uuid,
    channel: &str,
) -> rusqlite::Result<bool> {
    conn.prepare_cached(
        "SELECT EXISTS (SELECT 1 FROM notification_deliveries WHERE event_id = ?1 AND channel = ?2 AND succeeded = 1)",
    )?
    .query_row(params![event_id.to_string(), channel], |row| row.get(0))
}
