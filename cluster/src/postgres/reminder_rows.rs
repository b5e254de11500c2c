//! Rows of the reminder timers (the same rules as the SQLite store's `reminder_rows`).

use chrono::{DateTime, Utc};
use deadpool_postgres::GenericClient;
use uuid::Uuid;

use taskstream_engine::reminder::{ReminderRecord, armed_times, worth_arming};
use taskstream_engine::task::{RecurrenceTrigger, Task, TaskStatus};

use super::error::PgError;

/// Makes the task's pending reminders match its state: cancels pending rows for times it no
/// longer has (and pending snoozes once it is completed), arms each current time unless that
/// exact time already fired or was long past when it was set. A pending row for a current time
/// is kept even if it is past: a reminder waiting for catch-up. Returns every pending time of
/// the task after.
pub(crate) async fn sync(
    client: &impl GenericClient,
    task: &Task,
) -> Result<Vec<DateTime<Utc>>, PgError> {
    let wanted = armed_times(task);
    let recur_at = recur_time(client, task).await?;
    let open = task.status != TaskStatus::Completed;
    let stale: Vec<(DateTime<Utc>, String)> = pending_rows(client, task.id)
        .await?
        .into_iter()
        .filter(|(at, kind)| match kind.as_str() {
            "snooze" => !open,
            "recur" => recur_at != Some(*at),
            _ => !wanted.contains(at),
        })
        .collect();
    if !stale.is_empty() {
        let cancel = client
            .prepare_cached(
                "DELETE FROM reminders WHERE task_id = $1 AND fire_at = $2 AND kind = $3 AND fired_at IS NULL AND NOT missed",
            )
            .await?;
        for (at, kind) in &stale {
            client.execute(&cancel, &[&task.id, at, kind]).await?;
        }
    }
    if let Some(at) = recur_at {
        let insert = client
            .prepare_cached(
                "INSERT INTO reminders (task_id, fire_at, user_id, kind) VALUES ($1, $2, $3, 'recur') ON CONFLICT DO NOTHING",
            )
            .await?;
        client
            .execute(&insert, &[&task.id, &at, &task.user_id])
            .await?;
    }
    let arm: Vec<DateTime<Utc>> = wanted
        .into_iter()
        .filter(|at| worth_arming(*at, task.updated_at))
        .collect();
    if !arm.is_empty() {
        let insert = client
            .prepare_cached(
                "INSERT INTO reminders (task_id, fire_at, user_id, kind)
                 SELECT $1, fire_at, $3, 'task' FROM unnest($2::timestamptz[]) AS t (fire_at)
                 ON CONFLICT DO NOTHING",
            )
            .await?;
        client
            .execute(&insert, &[&task.id, &arm, &task.user_id])
            .await?;
    }
    Ok(pending_rows(client, task.id)
        .await?
        .into_iter()
        .map(|(at, _)| at)
        .collect())
}

/// When an `on_due` recurring task's next occurrence is due to be created: its due date, while
/// it is open and has no next occurrence yet (armed even when past: the series catches up).
async fn recur_time(
    client: &impl GenericClient,
    task: &Task,
) -> Result<Option<DateTime<Utc>>, PgError> {
    let applies = task.recurrence_trigger == RecurrenceTrigger::OnDue
        && task.is_recurring
        && task.recurrence_rule.is_some()
        && task.status != TaskStatus::Completed;
    match task.due_date {
        Some(due) if applies && !super::rows::has_next_occurrence(client, task.id).await? => {
            Ok(Some(due))
        }
        _ => Ok(None),
    }
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

/// Arms a one-off snooze; returns the task's pending times after.
pub(crate) async fn snooze(
    client: &impl GenericClient,
    task: &Task,
    fire_at: DateTime<Utc>,
) -> Result<Vec<DateTime<Utc>>, PgError> {
    let statement = client
        .prepare_cached(
            "INSERT INTO reminders (task_id, fire_at, user_id, kind) VALUES ($1, $2, $3, 'snooze')
             ON CONFLICT (task_id, fire_at, kind) DO UPDATE SET fired_at = NULL, missed = false, late_by_ms = NULL",
        )
        .await?;
    client
        .execute(&statement, &[&task.id, &fire_at, &task.user_id])
        .await?;
    Ok(pending_rows(client, task.id)
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
