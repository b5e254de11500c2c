//! Reminders fired from work done ahead of time: a burst of reminders due at one instant must
//! not wait for each task to be read and each event to be built inside the fire transaction.
//! Shortly before the deadline a reader loads each task and renders its `reminder.triggered`;
//! at the deadline the writer only checks, in one statement, that the timer is still armed and
//! the task still as read, marks it fired and inserts the prepared event. Anything else (the
//! task changed, a snooze or `recur` timer shares the instant, a late or missed fire) takes the
//! ordinary path, so the outcome is always the one [`super::fire_in`] would give.

use std::collections::HashMap;
use std::sync::Mutex;

use chrono::{DateTime, Utc};
use rusqlite::types::Value as SqlValue;
use rusqlite::{Connection, OptionalExtension, params};
use uuid::Uuid;

use super::{reminder_rows, rows};
use crate::event::{Topic, TriggeredDraft};
use crate::reminder::due_timers;

/// Prepared fires kept at most; beyond it, reminders take the ordinary path.
const CAPACITY: usize = 200_000;
/// A prepared fire this far past its time was never taken (its timer was cancelled): dropped.
const STALE_AFTER: chrono::Duration = chrono::Duration::minutes(1);
/// Only an on-time fire uses a prepared event: a later one reports `late_by_seconds`.
pub(crate) const ON_TIME: chrono::Duration = chrono::Duration::seconds(1);

/// The task columns a reminder's firing and its event depend on, in this order.
const FINGERPRINT: &str = "status, title, user_id, due_date, remind_at, reminders";

/// One reminder ready to fire: its event, and the task's columns as they were when it was
/// rendered (the fire only uses it while they are unchanged).
#[derive(Debug, Clone)]
pub(crate) struct PreparedFire {
    draft: TriggeredDraft,
    fingerprint: [SqlValue; 6],
}

/// A prepared fire with its (task, fire time).
pub(crate) type Keyed = ((Uuid, DateTime<Utc>), PreparedFire);

/// Prepared fires by (task, fire time), filled by readers and taken by the fire batch.
#[derive(Debug, Default)]
pub(crate) struct PreparedCache(Mutex<HashMap<(Uuid, DateTime<Utc>), PreparedFire>>);

impl PreparedCache {
    /// Keeps `fires`, dropping those whose time passed long ago.
    pub(crate) fn put(&self, fires: Vec<Keyed>, now: DateTime<Utc>) {
        let Ok(mut cache) = self.0.lock() else {
            return;
        };
        cache.retain(|(_, at), _| *at > now - STALE_AFTER);
        for (key, fire) in fires {
            if cache.len() >= CAPACITY {
                break;
            }
            cache.insert(key, fire);
        }
    }

    /// Takes the prepared fires of `due`, in order (`None` where there is none).
    pub(crate) fn take(&self, due: &[(Uuid, DateTime<Utc>)]) -> Vec<Option<PreparedFire>> {
        match self.0.lock() {
            Ok(mut cache) if !cache.is_empty() => due.iter().map(|key| cache.remove(key)).collect(),
            _ => vec![None; due.len()],
        }
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.0.lock().map(|cache| cache.len()).unwrap_or(0)
    }
}

/// Prepares the fire of each timer in `due` that is a plain task reminder (the only timer at
/// its instant) of an open task; the others are left to the ordinary path.
pub(crate) fn prepare(
    conn: &Connection,
    due: &[(Uuid, DateTime<Utc>)],
) -> rusqlite::Result<Vec<Keyed>> {
    let sql = format!(
        "SELECT {}, {FINGERPRINT} FROM tasks WHERE id = ?1",
        rows::TASK_COLUMNS
    );
    let mut load = conn.prepare_cached(&sql)?;
    let columns = load.column_count() - 6;
    let mut out = Vec::with_capacity(due.len());
    for &(task_id, fire_at) in due {
        let kinds = reminder_rows::armed_kinds(conn, task_id, fire_at)?;
        if kinds != ["task"] {
            continue;
        }
        let loaded = load
            .query_row([task_id.to_string()], |row| {
                let task = rows::task_from_row(row)?;
                let fingerprint: [SqlValue; 6] = [
                    row.get(columns)?,
                    row.get(columns + 1)?,
                    row.get(columns + 2)?,
                    row.get(columns + 3)?,
                    row.get(columns + 4)?,
                    row.get(columns + 5)?,
                ];
                Ok((task, fingerprint))
            })
            .optional()?;
        let Some((task, fingerprint)) = loaded else {
            continue;
        };
        let timers = due_timers(&task, &kinds, fire_at);
        if timers.recur || timers.stale || timers.reminding != ["task"] {
            continue;
        }
        out.push((
            (task_id, fire_at),
            PreparedFire {
                draft: TriggeredDraft::new(&task, fire_at),
                fingerprint,
            },
        ));
    }
    Ok(out)
}

/// Fires a prepared reminder at `now` if its timer is still armed (alone at its instant) and
/// its task unchanged since it was prepared; false, with nothing written, otherwise.
pub(crate) fn fire(
    conn: &Connection,
    task_id: Uuid,
    fire_at: DateTime<Utc>,
    prepared: &PreparedFire,
    now: DateTime<Utc>,
) -> rusqlite::Result<bool> {
    debug_assert_eq!(prepared.draft.key, task_id.to_string());
    let [status, title, user_id, due_date, remind_at, reminders] = &prepared.fingerprint;
    let late_ms = (now - fire_at).num_milliseconds().max(0);
    let marked = conn
        .prepare_cached(
            "UPDATE reminders SET fired_at = ?3, late_by_ms = ?4
             WHERE task_id = ?1 AND fire_at = ?2 AND kind = 'task' AND fired_at IS NULL AND missed = 0
               AND NOT EXISTS (SELECT 1 FROM reminders AS other WHERE other.task_id = ?1
                   AND other.fire_at = ?2 AND other.kind <> 'task' AND other.fired_at IS NULL
                   AND other.missed = 0)
               AND EXISTS (SELECT 1 FROM tasks WHERE id = ?1 AND status IS ?5 AND title IS ?6
                   AND user_id IS ?7 AND due_date IS ?8 AND remind_at IS ?9 AND reminders IS ?10)",
        )?
        .execute(params![
            prepared.draft.key,
            fire_at.timestamp_micros(),
            now.timestamp_micros(),
            late_ms,
            status,
            title,
            user_id,
            due_date,
            remind_at,
            reminders,
        ])?;
    if marked == 0 {
        return Ok(false);
    }
    let event_id = crate::time::new_id();
    conn.prepare_cached(
        "INSERT INTO outbox (event_id, topic, partition_key, event_type, envelope, created_at)
         VALUES (?1, ?2, ?3, 'reminder.triggered', ?4, ?5)",
    )?
    .execute(params![
        event_id.to_string(),
        Topic::Reminders.name(),
        prepared.draft.key,
        prepared.draft.render(event_id, now),
        now.timestamp_micros(),
    ])?;
    Ok(true)
}
