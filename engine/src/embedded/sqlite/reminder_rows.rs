//! Rows of the reminder timers.

use chrono::{DateTime, Utc};
use rusqlite::{Connection, params};
use uuid::Uuid;

use crate::reminder::{self, ReminderRecord as ReminderRow};
use crate::task::Task;
use crate::time::from_micros;

/// Makes the task's pending timer rows match it, as [`crate::reminder::plan_sync`] decides;
/// returns every pending time of the task after.
pub(crate) fn sync(conn: &Connection, task: &Task) -> rusqlite::Result<Vec<DateTime<Utc>>> {
    let has_next =
        reminder::recur_applies(task) && super::rows::has_next_occurrence(conn, task.id)?;
    let plan = reminder::plan_sync(
        task,
        &pending_rows(conn, task.id)?,
        reminder::recur_at(task, has_next),
    );
    let id = task.id.to_string();
    for (at, kind) in &plan.cancel {
        conn.prepare_cached(
            "DELETE FROM reminders WHERE task_id = ?1 AND fire_at = ?2 AND kind = ?3 AND fired_at IS NULL AND missed = 0",
        )?
        .execute(params![id, at.timestamp_micros(), kind])?;
    }
    for at in &plan.arm {
        conn.prepare_cached(
            "INSERT INTO reminders (task_id, fire_at, kind, user_id) VALUES (?1, ?2, 'task', ?3) ON CONFLICT DO NOTHING",
        )?
        .execute(params![id, at.timestamp_micros(), task.user_id])?;
    }
    if let Some(at) = plan.recur {
        conn.prepare_cached(
            "INSERT INTO reminders (task_id, fire_at, kind, user_id) VALUES (?1, ?2, 'recur', ?3) ON CONFLICT DO NOTHING",
        )?
        .execute(params![id, at.timestamp_micros(), task.user_id])?;
    }
    Ok(pending_rows(conn, task.id)?
        .into_iter()
        .map(|(at, _)| at)
        .collect())
}

/// The task's pending reminder rows (time, kind), soonest first.
fn pending_rows(
    conn: &Connection,
    task_id: Uuid,
) -> rusqlite::Result<Vec<(DateTime<Utc>, String)>> {
    let mut statement = conn.prepare_cached(
        "SELECT fire_at, kind FROM reminders WHERE task_id = ?1 AND fired_at IS NULL AND missed = 0 ORDER BY fire_at",
    )?;
    let rows = statement.query_map([task_id.to_string()], |row| {
        Ok((row.get::<_, i64>(0)?, row.get::<_, String>(1)?))
    })?;
    let mut out = Vec::new();
    for row in rows {
        let (at, kind) = row?;
        if let Some(at) = from_micros(at) {
            out.push((at, kind));
        }
    }
    Ok(out)
}

/// Arms a one-off snooze of `user_id`'s task; returns the task's pending times after.
pub(crate) fn snooze(
    conn: &Connection,
    task_id: Uuid,
    user_id: &str,
    fire_at: DateTime<Utc>,
) -> rusqlite::Result<Vec<DateTime<Utc>>> {
    conn.prepare_cached(
        "INSERT INTO reminders (task_id, fire_at, user_id, kind) VALUES (?1, ?2, ?3, 'snooze')
         ON CONFLICT (task_id, fire_at, kind) DO UPDATE SET fired_at = NULL, missed = 0, late_by_ms = NULL",
    )?
    .execute(params![task_id.to_string(), fire_at.timestamp_micros(), user_id])?;
    Ok(pending_rows(conn, task_id)?
        .into_iter()
        .map(|(at, _)| at)
        .collect())
}

/// Every reminder row of a task (pending, fired and missed), by time.
pub(crate) fn history(conn: &Connection, task_id: Uuid) -> rusqlite::Result<Vec<ReminderRow>> {
    let mut statement = conn.prepare_cached(
        "SELECT fire_at, kind, fired_at, missed, late_by_ms FROM reminders WHERE task_id = ?1 ORDER BY fire_at",
    )?;
    let rows = statement.query_map([task_id.to_string()], |row| {
        Ok((
            row.get::<_, i64>(0)?,
            row.get::<_, String>(1)?,
            row.get::<_, Option<i64>>(2)?,
            row.get::<_, bool>(3)?,
            row.get::<_, Option<i64>>(4)?,
        ))
    })?;
    let mut out = Vec::new();
    for row in rows {
        let (at, kind, fired, missed, late_by_ms) = row?;
        if let Some(fire_at) = from_micros(at) {
            out.push(ReminderRow {
                fire_at,
                kind,
                fired_at: fired.and_then(from_micros),
                missed,
                late_by_ms,
            });
        }
    }
    Ok(out)
}

/// Every armed reminder, soonest first.
pub(crate) fn pending(conn: &Connection) -> rusqlite::Result<Vec<(Uuid, DateTime<Utc>)>> {
    let mut statement = conn.prepare_cached(
        "SELECT task_id, fire_at FROM reminders WHERE fired_at IS NULL AND missed = 0 ORDER BY fire_at",
    )?;
    let rows = statement.query_map([], |row| {
        let id: String = row.get(0)?;
        let at: i64 = row.get(1)?;
        Ok((id, at))
    })?;
    let mut out = Vec::new();
    for row in rows {
        let (id, at) = row?;
        if let (Ok(id), Some(at)) = (Uuid::parse_str(&id), from_micros(at)) {
            out.push((id, at));
        }
    }
    Ok(out)
}

/// The kinds of the timers still armed for exactly this time (a reminder and a snooze, or a
/// `recur` timer, may share an instant).
pub(crate) fn armed_kinds(
    conn: &Connection,
    task_id: Uuid,
    fire_at: DateTime<Utc>,
) -> rusqlite::Result<Vec<String>> {
    let mut statement = conn.prepare_cached(
        "SELECT kind FROM reminders WHERE task_id = ?1 AND fire_at = ?2 AND fired_at IS NULL AND missed = 0 ORDER BY kind",
    )?;
    let kinds = statement
        .query_map(
            params![task_id.to_string(), fire_at.timestamp_micros()],
            |row| row.get(0),
        )?
        .collect::<rusqlite::Result<Vec<String>>>()?;
    Ok(kinds)
}

pub(crate) fn mark_fired(
    conn: &Connection,
    task_id: Uuid,
    fire_at: DateTime<Utc>,
    kind: &str,
    now: DateTime<Utc>,
) -> rusqlite::Result<()> {
    let late = (now - fire_at).num_milliseconds().max(0);
    conn.prepare_cached(
        "UPDATE reminders SET fired_at = ?3, late_by_ms = ?4 WHERE task_id = ?1 AND fire_at = ?2 AND kind = ?5",
    )?
    .execute(params![
        task_id.to_string(),
        fire_at.timestamp_micros(),
        now.timestamp_micros(),
        late,
        kind
    ])?;
    Ok(())
}

pub(crate) fn mark_missed(
    conn: &Connection,
    task_id: Uuid,
    fire_at: DateTime<Utc>,
    kind: &str,
) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "UPDATE reminders SET missed = 1 WHERE task_id = ?1 AND fire_at = ?2 AND kind = ?3",
    )?
    .execute(params![
        task_id.to_string(),
        fire_at.timestamp_micros(),
        kind
    ])?;
    Ok(())
}
