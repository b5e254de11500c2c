//! Rows of the audit trail, notifications and their delivery log.

use chrono::{DateTime, Utc};
use deadpool_postgres::GenericClient;
use tokio_postgres::Row;
use uuid::Uuid;

use taskstream_engine::activity::{AuditEntry, AuditFilter, Delivery, Notification};

use super::error::PgError;
use super::rows::{Param, borrow};

/// Inserts unless the event was already audited; true when a row was added.
pub(crate) async fn insert_audit(
    client: &impl GenericClient,
    entry: &AuditEntry,
) -> Result<bool, PgError> {
    let statement = client
        .prepare_cached(
            "INSERT INTO audit_log (id, event_id, event_type, timestamp, received_at, user_id, task_id, source, payload)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT (event_id) DO NOTHING",
        )
        .await?;
    let added = client
        .execute(
            &statement,
            &[
                &entry.id,
                &entry.event_id,
                &entry.event_type,
                &entry.timestamp,
                &entry.received_at,
                &entry.user_id,
                &entry.task_id,
                &entry.source,
                &entry.payload,
            ],
        )
        .await?;
    Ok(added == 1)
}

pub(crate) async fn list_audit(
    client: &impl GenericClient,
    user_id: &str,
    filter: &AuditFilter,
) -> Result<Vec<AuditEntry>, PgError> {
    let mut sql = String::from(
        "SELECT id, event_id, event_type, timestamp, received_at, user_id, task_id, source, payload FROM audit_log WHERE user_id = $1",
    );
    let mut params: Vec<Param> = vec![Box::new(user_id.to_owned())];
    if let Some(task_id) = &filter.task_id {
        params.push(Box::new(task_id.clone()));
        sql.push_str(&format!(" AND task_id = ${}", params.len()));
    }
    if let Some(event_type) = &filter.event_type {
        params.push(Box::new(event_type.clone()));
        sql.push_str(&format!(" AND event_type = ${}", params.len()));
    }
    params.push(Box::new(i64::from(filter.limit)));
    params.push(Box::new(i64::from(filter.offset)));
    sql.push_str(&format!(
        " ORDER BY received_at DESC, id DESC LIMIT ${} OFFSET ${}",
        params.len() - 1,
        params.len()
    ));
    let statement = client.prepare_cached(&sql).await?;
    client
        .query(&statement, &borrow(&params))
        .await?
        .iter()
        .map(|row| {
            Ok(AuditEntry {
                id: row.try_get(0)?,
                event_id: row.try_get(1)?,
                event_type: row.try_get(2)?,
                timestamp: row.try_get(3)?,
                received_at: row.try_get(4)?,
                user_id: row.try_get(5)?,
                task_id: row.try_get(6)?,
                source: row.try_get(7)?,
                payload: row.try_get(8)?,
            })
        })
        .collect()
}

/// Inserts unless the event already produced a notification; true when one was added.
pub(crate) async fn insert_notification(
    client: &impl GenericClient,
    n: &Notification,
) -> Result<bool, PgError> {
    let statement = client
        .prepare_cached(
            "INSERT INTO notifications (id, user_id, event_id, kind, task_id, title, message, created_at, read_at, payload)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) ON CONFLICT (event_id) DO NOTHING",
        )
        .await?;
    let added = client
        .execute(
            &statement,
            &[
                &n.id,
                &n.user_id,
                &n.event_id,
                &n.kind,
                &n.task_id,
                &n.title,
                &n.message,
                &n.created_at,
                &n.read_at,
                &n.payload,
            ],
        )
        .await?;
    Ok(added == 1)
}

const NOTIFICATION_COLUMNS: &str =
    "id, user_id, event_id, kind, task_id, title, message, created_at, read_at, payload";

fn notification_from_row(row: &Row) -> Result<Notification, PgError> {
    Ok(Notification {
        id: row.try_get(0)?,
        user_id: row.try_get(1)?,
        event_id: row.try_get(2)?,
        kind: row.try_get(3)?,
        task_id: row.try_get(4)?,
        title: row.try_get(5)?,
        message: row.try_get(6)?,
        created_at: row.try_get(7)?,
        read_at: row.try_get(8)?,
        payload: row.try_get(9)?,
    })
}

pub(crate) async fn list_notifications(
    client: &impl GenericClient,
    user_id: &str,
    limit: u32,
) -> Result<Vec<Notification>, PgError> {
    let sql = format!(
        "SELECT {NOTIFICATION_COLUMNS} FROM notifications WHERE user_id = $1 ORDER BY created_at DESC, id DESC LIMIT $2"
    );
    let statement = client.prepare_cached(&sql).await?;
    client
        .query(&statement, &[&user_id, &i64::from(limit)])
        .await?
        .iter()
        .map(notification_from_row)
        .collect()
}

pub(crate) async fn count_unread(
    client: &impl GenericClient,
    user_id: &str,
) -> Result<u64, PgError> {
    let statement = client
        .prepare_cached("SELECT COUNT(*) FROM notifications WHERE user_id = $1 AND read_at IS NULL")
        .await?;
    let count: i64 = client.query_one(&statement, &[&user_id]).await?.get(0);
    Ok(u64::try_from(count).unwrap_or(0))
}

/// Marks one of the user's notifications read (keeping the first read time); `None` if the user
/// has no such notification.
pub(crate) async fn mark_notification_read(
    client: &impl GenericClient,
    user_id: &str,
    id: Uuid,
    now: DateTime<Utc>,
) -> Result<Option<Notification>, PgError> {
    let sql = format!(
        "UPDATE notifications SET read_at = COALESCE(read_at, $3) WHERE id = $1 AND user_id = $2 RETURNING {NOTIFICATION_COLUMNS}"
    );
    let statement = client.prepare_cached(&sql).await?;
    client
        .query_opt(&statement, &[&id, &user_id, &now])
        .await?
        .as_ref()
        .map(notification_from_row)
        .transpose()
}

pub(crate) async fn insert_delivery(
    client: &impl GenericClient,
    delivery: &Delivery,
) -> Result<(), PgError> {
    let statement = client
        .prepare_cached(
            "INSERT INTO notification_deliveries (event_id, notification_id, channel, attempt, succeeded, detail, at)
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .await?;
    client
        .execute(
            &statement,
            &[
                &delivery.event_id,
                &delivery.notification_id,
                &delivery.channel,
                &i64::from(delivery.attempt),
                &delivery.succeeded,
                &delivery.detail,
                &delivery.at,
            ],
        )
        .await?;
    Ok(())
}

pub(crate) async fn delivered(
    client: &impl GenericClient,
    event_id: Uuid,
    channel: &str,
) -> Result<bool, PgError> {
    let statement = client
        .prepare_cached(
            "SELECT EXISTS (SELECT 1 FROM notification_deliveries WHERE event_id = $1 AND channel = $2 AND succeeded)",
        )
        .await?;
    Ok(client
        .query_one(&statement, &[&event_id, &channel])
        .await?
        .try_get(0)?)
}
