//! Versioned schema migrations, tracked in `PRAGMA user_version`.

use rusqlite::Connection;

use crate::error::EngineError;

/// Each entry moves the schema one version forward; never edit a released entry, append one.
const MIGRATIONS: &[&str] = &[
    // 1: tasks and the outbox.
    r#"
    CREATE TABLE tasks (
        id TEXT PRIMARY KEY NOT NULL,
        user_id TEXT NOT NULL,
        title TEXT NOT NULL,
        description TEXT,
        status TEXT NOT NULL CHECK (status IN ('pending', 'in_progress', 'completed')),
        priority INTEGER NOT NULL CHECK (priority BETWEEN 0 AND 2),
        due_date INTEGER,
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL,
        tags TEXT NOT NULL DEFAULT '[]',
        reminder_offset_minutes INTEGER CHECK (reminder_offset_minutes >= 1),
        remind_at INTEGER,
        is_recurring INTEGER NOT NULL DEFAULT 0,
        recurrence_rule TEXT,
        recurrence_from TEXT NOT NULL DEFAULT 'due' CHECK (recurrence_from IN ('due', 'completion')),
        series_anchor INTEGER,
        occurrence_index INTEGER NOT NULL DEFAULT 0,
        parent_task_id TEXT UNIQUE REFERENCES tasks(id) ON DELETE SET NULL
    );
    CREATE INDEX tasks_by_user_created ON tasks (user_id, created_at);
    CREATE INDEX tasks_by_user_due ON tasks (user_id, due_date);

    CREATE TABLE outbox (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        event_id TEXT NOT NULL,
        topic TEXT NOT NULL,
        partition_key TEXT NOT NULL,
        event_type TEXT NOT NULL,
        envelope TEXT NOT NULL,
        created_at INTEGER NOT NULL
    );
    "#,
    // 2: what the consumers record: the audit trail and notifications, unique per event.
    r#"
    CREATE TABLE audit_log (
        id TEXT PRIMARY KEY NOT NULL,
        event_id TEXT NOT NULL UNIQUE,
        event_type TEXT NOT NULL,
        timestamp TEXT NOT NULL,
        received_at INTEGER NOT NULL,
        user_id TEXT NOT NULL,
        task_id TEXT,
        source TEXT NOT NULL,
        payload TEXT NOT NULL
    );
    CREATE INDEX audit_by_user ON audit_log (user_id, received_at);
    CREATE INDEX audit_by_user_task ON audit_log (user_id, task_id, received_at);

    CREATE TABLE notifications (
        id TEXT PRIMARY KEY NOT NULL,
        user_id TEXT NOT NULL,
        event_id TEXT NOT NULL UNIQUE,
        kind TEXT NOT NULL,
        task_id TEXT,
        title TEXT NOT NULL,
        message TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        read_at INTEGER,
        payload TEXT NOT NULL
    );
    CREATE INDEX notifications_by_user ON notifications (user_id, created_at);
    "#,
    // 3: the delivery log of notifications pushed to outside channels (webhooks).
    r#"
    CREATE TABLE notification_deliveries (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        event_id TEXT NOT NULL,
        notification_id TEXT NOT NULL,
        channel TEXT NOT NULL,
        attempt INTEGER NOT NULL,
        succeeded INTEGER NOT NULL,
        detail TEXT NOT NULL,
        at INTEGER NOT NULL
    );
    CREATE INDEX deliveries_by_event ON notification_deliveries (event_id, channel);
    "#,
    // 4: durable reminder timers, one row per (task, fire time), marked fired or missed.
    r#"
    CREATE TABLE reminders (
        task_id TEXT NOT NULL REFERENCES tasks(id) ON DELETE CASCADE,
        fire_at INTEGER NOT NULL,
        user_id TEXT NOT NULL,
        fired_at INTEGER,
        missed INTEGER NOT NULL DEFAULT 0,
        late_by_ms INTEGER,
        PRIMARY KEY (task_id, fire_at)
    );
    CREATE INDEX reminders_pending ON reminders (fire_at) WHERE fired_at IS NULL AND missed = 0;
    INSERT INTO reminders (task_id, fire_at, user_id)
        SELECT id, remind_at, user_id FROM tasks WHERE remind_at IS NOT NULL AND status != 'completed';
    "#,
    // 5: the time zone recurrence is computed in (IANA name).
    r#"
    ALTER TABLE tasks ADD COLUMN time_zone TEXT NOT NULL DEFAULT 'UTC';
    "#,
    // 6: chat history, one conversation per user (reference §3.2–3.3).
    r#"
    CREATE TABLE conversation (
        id TEXT PRIMARY KEY,
        user_id TEXT NOT NULL UNIQUE,
        title TEXT,
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL
    );
    CREATE TABLE message (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        id TEXT NOT NULL UNIQUE,
        conversation_id TEXT NOT NULL REFERENCES conversation(id) ON DELETE CASCADE,
        role TEXT NOT NULL CHECK (role IN ('user', 'assistant')),
        content TEXT NOT NULL,
        tool_calls TEXT,
        created_at INTEGER NOT NULL
    );
    CREATE INDEX message_by_conversation ON message (conversation_id, seq);
    "#,
    // 7: per-user settings (time zone, daily digest).
    r#"
    CREATE TABLE user_settings (
        user_id TEXT PRIMARY KEY,
        time_zone TEXT NOT NULL,
        daily_digest INTEGER NOT NULL,
        digest_hour INTEGER NOT NULL,
        updated_at INTEGER NOT NULL
    );
    CREATE INDEX user_settings_digest ON user_settings (daily_digest) WHERE daily_digest = 1;
    "#,
    // 8: several reminders per task, one-off snoozes (reminder rows not derived from the task),
    // and due-date-triggered recurrence (a `recur` timer at the due date).
    r#"
    ALTER TABLE tasks ADD COLUMN reminders TEXT NOT NULL DEFAULT '[]';
    ALTER TABLE tasks ADD COLUMN recurrence_trigger TEXT NOT NULL DEFAULT 'on_complete';
    CREATE TABLE reminders_v8 (
        task_id TEXT NOT NULL REFERENCES tasks(id) ON DELETE CASCADE,
        fire_at INTEGER NOT NULL,
        kind TEXT NOT NULL DEFAULT 'task' CHECK (kind IN ('task', 'snooze', 'recur')),
        user_id TEXT NOT NULL,
        fired_at INTEGER,
        missed INTEGER NOT NULL DEFAULT 0,
        late_by_ms INTEGER,
        PRIMARY KEY (task_id, fire_at, kind)
    );
    INSERT INTO reminders_v8 (task_id, fire_at, kind, user_id, fired_at, missed, late_by_ms)
        SELECT task_id, fire_at, 'task', user_id, fired_at, missed, late_by_ms FROM reminders;
    DROP TABLE reminders;
    ALTER TABLE reminders_v8 RENAME TO reminders;
    CREATE INDEX reminders_pending ON reminders (fire_at) WHERE fired_at IS NULL AND missed = 0;
    "#,
    // 9: local accounts of the built-in UI and their personal API tokens (keyed hashes only).
    r#"
    CREATE TABLE users (
        id TEXT PRIMARY KEY NOT NULL,
        email TEXT NOT NULL UNIQUE,
        password_hash TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL
    );
    CREATE TABLE api_tokens (
        id TEXT PRIMARY KEY NOT NULL,
        user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
        name TEXT NOT NULL,
        prefix TEXT NOT NULL,
        token_hash TEXT NOT NULL UNIQUE,
        created_at INTEGER NOT NULL,
        last_used_at INTEGER,
        revoked_at INTEGER
    );
    CREATE INDEX api_tokens_by_user ON api_tokens (user_id, created_at);
    "#,
    // 10: reminder events written ahead of their fire time and held back until it (a burst due at
    // one instant then only marks its timers fired). A held event (`held_fire_at` set) is
    // released by its gate, the task's `task` timer at that instant, turning fired; until then
    // the relay skips it, and any change to the task or to the timers at that instant withdraws
    // it. When the gate row goes (the task deleted), a released event stands on its own.
    r#"
    ALTER TABLE outbox ADD COLUMN held_fire_at INTEGER;
    CREATE INDEX outbox_held ON outbox (partition_key, held_fire_at) WHERE held_fire_at IS NOT NULL;
    CREATE TRIGGER outbox_held_withdrawn_on_task_change AFTER UPDATE ON tasks BEGIN
        DELETE FROM outbox WHERE partition_key = OLD.id AND held_fire_at IS NOT NULL
            AND NOT EXISTS (SELECT 1 FROM reminders AS gate WHERE gate.task_id = outbox.partition_key
                AND gate.fire_at = outbox.held_fire_at AND gate.kind = 'task' AND gate.fired_at IS NOT NULL);
    END;
    CREATE TRIGGER outbox_held_gate_gone AFTER DELETE ON reminders WHEN OLD.kind = 'task' BEGIN
        UPDATE outbox SET held_fire_at = NULL
            WHERE partition_key = OLD.task_id AND held_fire_at = OLD.fire_at AND OLD.fired_at IS NOT NULL;
        DELETE FROM outbox WHERE partition_key = OLD.task_id AND held_fire_at = OLD.fire_at;
    END;
    CREATE TRIGGER outbox_held_instant_shared AFTER INSERT ON reminders WHEN NEW.kind <> 'task' BEGIN
        DELETE FROM outbox WHERE partition_key = NEW.task_id AND held_fire_at = NEW.fire_at
            AND NOT EXISTS (SELECT 1 FROM reminders AS gate WHERE gate.task_id = NEW.task_id
                AND gate.fire_at = NEW.fire_at AND gate.kind = 'task' AND gate.fired_at IS NOT NULL);
    END;
    CREATE TRIGGER outbox_held_instant_shared_again AFTER UPDATE ON reminders WHEN NEW.kind <> 'task' BEGIN
        DELETE FROM outbox WHERE partition_key = NEW.task_id AND held_fire_at = NEW.fire_at
            AND NOT EXISTS (SELECT 1 FROM reminders AS gate WHERE gate.task_id = NEW.task_id
                AND gate.fire_at = NEW.fire_at AND gate.kind = 'task' AND gate.fired_at IS NOT NULL);
    END;
    "#,
    // 11: the unread notifications of a user, counted for the bell of every UI page.
    r#"
    CREATE INDEX notifications_unread ON notifications (user_id) WHERE read_at IS NULL;
    "#,
    // 12: sign-in sessions ended before their token expired (log-out), kept until it expires.
    r#"
    CREATE TABLE revoked_sessions (
        session_id TEXT PRIMARY KEY NOT NULL,
        user_id TEXT NOT NULL,
        expires_at INTEGER NOT NULL,
        revoked_at INTEGER NOT NULL
    );
    CREATE INDEX revoked_sessions_by_expiry ON revoked_sessions (expires_at);
    "#,
    // 13: the calendar feed token of each user (its keyed hash: the token is shown once).
    r#"
    CREATE TABLE calendar_feeds (
        user_id TEXT PRIMARY KEY NOT NULL,
        token_hash TEXT NOT NULL UNIQUE,
        created_at INTEGER NOT NULL
    );
    "#,
    // 14: projects (lists) of tasks, and subtasks. `name_key` is the lower-cased name, unique
    // per user. A project's deletion releases its tasks (the store clears `project_id` with an
    // event first; SET NULL is the backstop); a task's deletion takes its subtasks (the store
    // deletes them with their events first; CASCADE is the backstop).
    r#"
    CREATE TABLE projects (
        id TEXT PRIMARY KEY NOT NULL,
        user_id TEXT NOT NULL,
        name TEXT NOT NULL,
        name_key TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL,
        UNIQUE (user_id, name_key)
    );
    ALTER TABLE tasks ADD COLUMN project_id TEXT REFERENCES projects(id) ON DELETE SET NULL;
    ALTER TABLE tasks ADD COLUMN subtask_of TEXT REFERENCES tasks(id) ON DELETE CASCADE;
    CREATE INDEX tasks_by_project ON tasks (project_id) WHERE project_id IS NOT NULL;
    CREATE INDEX tasks_by_parent ON tasks (subtask_of) WHERE subtask_of IS NOT NULL;
    "#,
];

fn store_error(error: rusqlite::Error) -> EngineError {
    super::error::SqliteError::Migration(error).into()
}

/// Brings the database to the newest schema, one transaction per step.
pub fn migrate(conn: &mut Connection) -> Result<(), EngineError> {
    let current: i64 = conn
        .query_row("PRAGMA user_version", [], |row| row.get(0))
        .map_err(store_error)?;
    let known = MIGRATIONS.len() as i64;
    if current > known {
        return Err(super::error::SqliteError::SchemaTooNew {
            found: current,
            known,
        }
        .into());
    }
    for (index, sql) in MIGRATIONS.iter().enumerate().skip(current as usize) {
        let version = index + 1;
        let tx = conn.transaction().map_err(store_error)?;
        tx.execute_batch(sql).map_err(store_error)?;
        tx.pragma_update(None, "user_version", version as i64)
            .map_err(store_error)?;
        tx.commit().map_err(store_error)?;
        tracing::info!(version, "applied store migration");
    }
    Ok(())
}
