//! Rows of the reminder timers (the same rules as the SQLite store's `reminder_rows`).

use chrono::{DateTime, Utc};
use deadpool_postgres::GenericClient;
use uuid::Uuid;

use taskstream_engine::reminder::{self, ReminderRecord};
use taskstream_engine::task::Task;

use super::error::PgError;

/// Makes the task's pending timer rows match it, as
/// [`taskstream_engine::reminder::plan_sync`] decides; returns every pending time of the task
/// after.
pub(crate) async fn sync(
    client: &impl GenericClient,
    task: &Task,
) -> Result<Vec<DateTime<Utc>>, PgError> {
    let has_next =
        reminder::recur_applies(task) && super::rows::has_next_occurrence(client, task.id).await?;
    let plan = reminder::plan_sync(
        task,
        &pending_rows(client, task.id).await?,
        reminder::recur_at(task, has_next),
    );
    if !plan.cancel.is_empty() {
        let cancel = client
            .prepare_cached(
                "DELETE FROM reminders WHERE task_id = $1 AND fire_at = $2 AND kind = $3 AND fired_at IS NULL AND NOT missed",
            )
            .await?;
        for (at, kind) in &plan.cancel {
            client.execute(&cancel, &[&task.id, at, kind]).await?;
        }
    }
    if let Some(at) = plan.recur {
        let insert = client
            .prepare_cached(
                "INSERT INTO reminders (task_id, fire_at, user_id, kind) VALUES ($1, $2, $3, 'recur') ON CONFLICT DO NOTHING",
            )
            .await?;
        client
            .execute(&insert, &[&task.id, &at, &task.user_id])
            .await?;
    }
    if !plan.arm.is_empty() {
        let insert = client
            .prepare_cached(
                "INSERT INTO reminders (task_id, fire_at, user_id, kind)
                 SELECT $1, fire_at, $3, 'task' FROM unnest($2::timestamptz[]) AS t (fire_at)
                 ON CONFLICT DO NOTHING",
            )
            .await?;
        client
            .execute(&insert, &[&task.id, &plan.arm, &task.user_id])
            .await?;
    }
    Ok(pending_rows(client, task.id)
        .await?
        .into_iter()
        .map(|(at, _)| at)
        .collect())
}

/// The task's pending reminder rows (time, kind), soonest first.
async fn pending_rows(
    client: &impl GenericClient,
    task_id: Uuid,
) -> Result<Vec<(DateTime<Utc>, String)>, PgError> {
    let statement = client
        .prepare_cached(
            "SELECT fire_at, kind FROM reminders WHERE task_id = $1 AND fired_at IS NULL AND NOT missed ORDER BY fire_at",
        )
        .await?;
    client
        .query(&statement, &[&task_id])
        .await?
        .iter()
        .map(|row| Ok((row.try_get(0)?, row.try_get(1)?)))
        .collect()
}

/// Arms a one-off snooze of `user_id`'s task; returns the task's pending times after.
pub(crate) async fn snooze(
    client: &impl GenericClient,
    task_id: Uuid,
    user_id: &str,
    fire_at: DateTime<Utc>,
) -> Result<Vec<DateTime<Utc>>, PgError> {
    let statement = client
        .prepare_cached(
            "INSERT INTO reminders (task_id, fire_at, user_id, kind) VALUES ($1, $2, $3, 'snooze')
             ON CONFLICT (task_id, fire_at, kind) DO UPDATE SET fired_at = NULL, missed = false, late_by_ms = NULL",
        )
        .await?;
    client
        .execute(&statement, &[&task_id, &fire_at, &user_id])
        .await?;
    Ok(pending_rows(client, task_id)
        .await?
        .into_iter()
        .map(|(at, _)| at)
        .collect())
}

/// Every reminder row of a task (pending, fired and missed), by time.
pub(crate) async fn history(
    client: &impl GenericClient,
    task_id: Uuid,
) -> Result<Vec<ReminderRecord>, PgError> {
    let statement = client
        .prepare_cached(
            "SELECT fire_at, kind, fired_at, missed, late_by_ms FROM reminders WHERE task_id = $1 ORDER BY fire_at",
        )
        .await?;
    client
        .query(&statement, &[&task_id])
        .await?
        .iter()
        .map(|row| {
            Ok(ReminderRecord {
                fire_at: row.try_get(0)?,
                kind: row.try_get(1)?,
                fired_at: row.try_get(2)?,
                missed: row.try_get(3)?,
                late_by_ms: row.try_get(4)?,
            })
        })
        .collect()
}

/// Every armed reminder, soonest first.
pub(crate) async fn pending(
    client: &impl GenericClient,
) -> Result<Vec<(Uuid, DateTime<Utc>)>, PgError> {
    let statement = client
        .prepare_cached(
            "SELECT task_id, fire_at FROM reminders WHERE fired_at IS NULL AND NOT missed ORDER BY fire_at",
        )
        .await?;
    client
        .query(&statement, &[])
        .await?
        .iter()
        .map(|row| Ok((row.try_get(0)?, row.try_get(1)?)))
        .collect()
}

/// The kinds of the timers armed for exactly this time; locks their rows, so two replicas
/// taking up the same timer act on it once.
pub(crate) async fn lock_armed(
    client: &impl GenericClient,
    task_id: Uuid,
    fire_at: DateTime<Utc>,
) -> Result<Vec<String>, PgError> {
    let statement = client
        .prepare_cached(
            "SELECT kind FROM reminders WHERE task_id = $1 AND fire_at = $2 AND fired_at IS NULL AND NOT missed ORDER BY kind FOR UPDATE",
        )
        .await?;
    client
        .query(&statement, &[&task_id, &fire_at])
        .await?
        .iter()
        .map(|row| row.try_get(0).map_err(PgError::from))
        .collect()
}

pub(crate) async fn mark_fired(
    client: &impl GenericClient,
    task_id: Uuid,
    fire_at: DateTime<Utc>,
    kind: &str,
    now: DateTime<Utc>,
) -> Result<(), PgError> {
    let late = (now - fire_at).num_milliseconds().max(0);
    let statement = client
        .prepare_cached(
            "UPDATE reminders SET fired_at = $3, late_by_ms = $4 WHERE task_id = $1 AND fire_at = $2 AND kind = $5",
        )
        .await?;
    client
        .execute(&statement, &[&task_id, &fire_at, &now, &late, &kind])
        .await?;
    Ok(())
}

pub(crate) async fn mark_missed(
    client: &impl GenericClient,
    task_id: Uuid,
    fire_at: DateTime<Utc>,
    kind: &str,
) -> Result<(), PgError> {
    let statement = client
        .prepare_cached(
            "UPDATE reminders SET missed = true WHERE task_id = $1 AND fire_at = $2 AND kind = $3",
        )
        .await?;
    client
        .execute(&statement, &[&task_id, &fire_at, &kind])
        .await?;
    Ok(())
}
