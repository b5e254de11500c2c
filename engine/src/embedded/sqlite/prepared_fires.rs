//! Reminders fired from work done ahead of time: a burst of reminders due at one instant must
//! not wait for each task to be read and each event to be built and written at the deadline.
//! Shortly before it, the writer renders each plain task reminder's `reminder.triggered` and
//! writes it to the outbox *held* (`held_fire_at`): the relay skips it until its gate, the
//! task's `task` timer at that instant, is marked fired. At the deadline the fire transaction
//! only marks gates fired, which releases their events in the same commit. Triggers of the
//! schema (migration 10) withdraw a held event as soon as its task changes or another timer
//! claims its instant, so a released event is always the one [`super::fire_in`] would have
//! written; anything else (a late or missed fire, an unprepared or withdrawn one) takes the
//! ordinary path, which withdraws what is still held first.

use chrono::{DateTime, Utc};
use rusqlite::{CachedStatement, Connection, OptionalExtension, params};
use uuid::Uuid;

use super::{reminder_rows, rows};
use crate::event::{Topic, TriggeredDraft};
use crate::reminder::due_timers;

/// Only an on-time fire releases a held event (stamped with its fire time); a later one
/// reports `late_by_seconds`, so it takes the ordinary path.
pub(crate) const ON_TIME: chrono::Duration = chrono::Duration::seconds(1);
/// A held event still unreleased this long after its time never will be: it is dropped.
const DEAD_AFTER: chrono::Duration = chrono::Duration::minutes(1);

/// True when an outbox row's gate has fired (a held event is released), in an outbox query.
pub(crate) const RELEASED: &str =
    "EXISTS (SELECT 1 FROM reminders AS gate WHERE gate.task_id = outbox.partition_key
    AND gate.fire_at = outbox.held_fire_at AND gate.kind = 'task' AND gate.fired_at IS NOT NULL)";

/// Drops held events never released (their fire came late, or never): they never will be.
pub(crate) fn drop_dead(conn: &Connection, now: DateTime<Utc>) -> rusqlite::Result<usize> {
    conn.prepare_cached(&format!(
        "DELETE FROM outbox WHERE held_fire_at IS NOT NULL AND held_fire_at < ?1 AND NOT {RELEASED}"
    ))?
    .execute([(now - DEAD_AFTER).timestamp_micros()])
}

/// Writes the held `reminder.triggered` of each timer in `due` that is a plain task reminder
/// (the only timer armed at its instant) of an open task and not held yet; returns how many.
pub(crate) fn hold(conn: &Connection, due: &[(Uuid, DateTime<Utc>)]) -> rusqlite::Result<usize> {
    let mut held = 0;
    for &(task_id, fire_at) in due {
        let kinds = reminder_rows::armed_kinds(conn, task_id, fire_at)?;
        if kinds != ["task"] || is_held(conn, task_id, fire_at)? {
            continue;
        }
        let Some(task) = rows::load_task(conn, task_id)? else {
            continue;
        };
        let timers = due_timers(&task, &kinds, fire_at);
        if timers.recur || timers.stale || timers.reminding != ["task"] {
            continue;
        }
        let event_id = crate::time::new_id();
        conn.prepare_cached(
            "INSERT INTO outbox (event_id, topic, partition_key, event_type, envelope, created_at, held_fire_at)
             VALUES (?1, ?2, ?3, 'reminder.triggered', ?4, ?5, ?5)",
        )?
        .execute(params![
            event_id.to_string(),
            Topic::Reminders.name(),
            task_id.to_string(),
            TriggeredDraft::new(&task, fire_at).render(event_id, fire_at),
            fire_at.timestamp_micros(),
        ])?;
        held += 1;
    }
    Ok(held)
}

fn is_held(conn: &Connection, task_id: Uuid, fire_at: DateTime<Utc>) -> rusqlite::Result<bool> {
    Ok(conn
        .prepare_cached("SELECT 1 FROM outbox WHERE partition_key = ?1 AND held_fire_at = ?2")?
        .query_row(
            params![task_id.to_string(), fire_at.timestamp_micros()],
            |_| Ok(()),
        )
        .optional()?
        .is_some())
}

/// Fires reminders by releasing their held events, one statement kept ready for a whole burst.
pub(crate) struct Releaser<'conn>(CachedStatement<'conn>);

impl<'conn> Releaser<'conn> {
    pub(crate) fn new(conn: &'conn Connection) -> rusqlite::Result<Self> {
        conn.prepare_cached(
            "UPDATE reminders SET fired_at = ?3, late_by_ms = ?4
             WHERE task_id = ?1 AND fire_at = ?2 AND kind = 'task' AND fired_at IS NULL AND missed = 0
               AND EXISTS (SELECT 1 FROM outbox WHERE partition_key = ?1 AND held_fire_at = ?2)",
        )
        .map(Self)
    }

    /// Fires the reminder at `now`: marks its timer fired if it is still armed and its event
    /// still held; false, with nothing written, otherwise.
    pub(crate) fn release(
        &mut self,
        task_id: Uuid,
        fire_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> rusqlite::Result<bool> {
        let late_ms = (now - fire_at).num_milliseconds().max(0);
        let marked = self.0.execute(params![
            task_id.to_string(),
            fire_at.timestamp_micros(),
            now.timestamp_micros(),
            late_ms,
        ])?;
        Ok(marked == 1)
    }
}

/// Drops the still-held event of the task's reminder at `fire_at`, if any: the ordinary path
/// is about to decide that timer's outcome itself.
pub(crate) fn withdraw(
    conn: &Connection,
    task_id: Uuid,
    fire_at: DateTime<Utc>,
) -> rusqlite::Result<()> {
    conn.prepare_cached(&format!(
        "DELETE FROM outbox WHERE partition_key = ?1 AND held_fire_at = ?2 AND NOT {RELEASED}"
    ))?
    .execute(params![task_id.to_string(), fire_at.timestamp_micros()])?;
    Ok(())
}
