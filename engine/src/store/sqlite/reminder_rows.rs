//! Rows of the reminder timers.

use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, params};
use uuid::Uuid;

use crate::reminder::armed_at;
use crate::task::Task;
use crate::time::from_micros;

/// Makes the task's pending reminder match its state: cancels a pending one for another time,
/// arms the current one unless that exact time already fired (never twice per time) or was
/// already long past when it was set (see [`crate::reminder::worth_arming`]). A pending row for
/// the current time is kept even if it is past: that is a reminder waiting for catch-up.
pub(crate) fn sync(conn: &Connection, task: &Task) -> rusqlite::Result<()> {
    let armed = armed_at(task).map(|at| at.timestamp_micros());
    conn.prepare_cached(
        "DELETE FROM reminders WHERE task_id = ?1 AND fired_at IS NULL AND missed = 0 AND fire_at IS NOT ?2",
    )?
    .execute(params![task.id.to_string(), armed])?;
    let arm_now =
        armed_at(task).is_some_and(|at| crate::reminder::worth_arming(at, task.updated_at));
    if let Some(fire_at) = armed.filter(|_| arm_now) {
        conn.prepare_cached(
            "INSERT INTO reminders (task_id, fire_at, user_id) VALUES (?1, ?2, ?3) ON CONFLICT DO NOTHING",
        )?
        .execute(params![task.id.to_string(), fire_at, task.user_id])?;
    }
    Ok(())
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

/// Whether the reminder for exactly this time is still armed.
pub(crate) fn is_armed(
    conn: &Connection,
    task_id: Uuid,
    fire_at: DateTime<Utc>,
) -> rusqlite::Result<bool> {
    conn.prepare_cached(
        "SELECT 1 FROM reminders WHERE task_id = ?1 AND fire_at = ?2 AND fired_at IS NULL AND missed = 0",
    )?
    .query_row(params![task_id.to_string(), fire_at.timestamp_micros()], |_| Ok(()))
    .optional()
    .map(|found| found.is_some())
}

pub(crate) fn mark_fired(
    conn: &Connection,
    task_id: Uuid,
    fire_at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> rusqlite::Result<()> {
    let late = (now - fire_at).num_milliseconds().max(0);
    conn.prepare_cached(
        "UPDATE reminders SET fired_at = ?3, late_by_ms = ?4 WHERE task_id = ?1 AND fire_at = ?2",
    )?
    .execute(params![
        task_id.to_string(),
        fire_at.timestamp_micros(),
        now.timestamp_micros(),
        late
    ])?;
    Ok(())
}

pub(crate) fn mark_missed(
    conn: &Connection,
    task_id: Uuid,
    fire_at: DateTime<Utc>,
) -> rusqlite::Result<()> {
    conn.prepare_cached("UPDATE reminders SET missed = 1 WHERE task_id = ?1 AND fire_at = ?2")?
        .execute(params![task_id.to_string(), fire_at.timestamp_micros()])?;
    Ok(())
}
