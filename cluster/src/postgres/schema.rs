//! Versioned schema migrations, tracked in `schema_migrations` and applied under an advisory
//! lock, so replicas starting together migrate once.

use tokio_postgres::Client;

use super::error::PgError;

/// Key of the session advisory lock held while migrating ("taskstrm" in ASCII). Shared by every
/// schema of the database: migrations are short, and the lock also guards `CREATE SCHEMA`.
const MIGRATION_LOCK: i64 = 0x7461_736b_7374_726d;

/// Each entry moves the schema one version forward; never edit a released entry, append one.
///
/// Version 1 is the SQLite store's eight migrations as one PostgreSQL schema: the same tables
/// and constraints, with native types (uuid, timestamptz at microsecond precision, text[] tags,
/// jsonb documents).
pub(crate) const MIGRATIONS: &[&str] = &[
    // 1: everything the embedded store has at its version 8.
    r#"
    CREATE TABLE tasks (
        id uuid PRIMARY KEY,
        user_id text NOT NULL,
        title text NOT NULL,
        description text,
        status text NOT NULL CHECK (status IN ('pending', 'in_progress', 'completed')),
        priority smallint NOT NULL CHECK (priority BETWEEN 0 AND 2),
        due_date timestamptz,
        created_at timestamptz NOT NULL,
        updated_at timestamptz NOT NULL,
        tags text[] NOT NULL DEFAULT '{}',
        reminder_offset_minutes bigint CHECK (reminder_offset_minutes >= 1),
        remind_at timestamptz,
        is_recurring boolean NOT NULL DEFAULT false,
        recurrence_rule text,
        recurrence_from text NOT NULL DEFAULT 'due' CHECK (recurrence_from IN ('due', 'completion')),
        series_anchor timestamptz,
        occurrence_index bigint NOT NULL DEFAULT 0 CHECK (occurrence_index >= 0),
        -- At most one next occurrence per task; deleting a parent keeps its child.
        parent_task_id uuid UNIQUE REFERENCES tasks (id) ON DELETE SET NULL,
        time_zone text NOT NULL DEFAULT 'UTC',
        reminders jsonb NOT NULL DEFAULT '[]',
        recurrence_trigger text NOT NULL DEFAULT 'on_complete' CHECK (recurrence_trigger IN ('on_complete', 'on_due'))
    );
    CREATE INDEX tasks_by_user_created ON tasks (user_id, created_at);
    CREATE INDEX tasks_by_user_due ON tasks (user_id, due_date);

    CREATE TABLE outbox (
        seq bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        event_id uuid NOT NULL,
        topic text NOT NULL,
        partition_key text NOT NULL,
        event_type text NOT NULL,
        envelope jsonb NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now()
    );
    -- Lets a relay see whether an older event of the same key is still waiting.
    CREATE INDEX outbox_by_key ON outbox (partition_key, seq);

    CREATE TABLE audit_log (
        id uuid PRIMARY KEY,
        event_id uuid NOT NULL UNIQUE,
        event_type text NOT NULL,
        timestamp text NOT NULL,
        received_at timestamptz NOT NULL,
        user_id text NOT NULL,
        task_id text,
        source text NOT NULL,
        payload jsonb NOT NULL
    );
    CREATE INDEX audit_by_user ON audit_log (user_id, received_at);
    CREATE INDEX audit_by_user_task ON audit_log (user_id, task_id, received_at);

    CREATE TABLE notifications (
        id uuid PRIMARY KEY,
        user_id text NOT NULL,
        event_id uuid NOT NULL UNIQUE,
        kind text NOT NULL,
        task_id text,
        title text NOT NULL,
        message text NOT NULL,
        created_at timestamptz NOT NULL,
        read_at timestamptz,
        payload jsonb NOT NULL
    );
    CREATE INDEX notifications_by_user ON notifications (user_id, created_at);

    CREATE TABLE notification_deliveries (
        id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        event_id uuid NOT NULL,
        notification_id uuid NOT NULL,
        channel text NOT NULL,
        attempt bigint NOT NULL,
        succeeded boolean NOT NULL,
        detail text NOT NULL,
        at timestamptz NOT NULL
    );
    CREATE INDEX deliveries_by_event ON notification_deliveries (event_id, channel);

    CREATE TABLE reminders (
        task_id uuid NOT NULL REFERENCES tasks (id) ON DELETE CASCADE,
        fire_at timestamptz NOT NULL,
        user_id text NOT NULL,
        fired_at timestamptz,
        missed boolean NOT NULL DEFAULT false,
        late_by_ms bigint,
        kind text NOT NULL DEFAULT 'task' CHECK (kind IN ('task', 'snooze', 'recur')),
        PRIMARY KEY (task_id, fire_at, kind)
    );
    CREATE INDEX reminders_pending ON reminders (fire_at) WHERE fired_at IS NULL AND NOT missed;

    CREATE TABLE conversation (
        id uuid PRIMARY KEY,
        user_id text NOT NULL UNIQUE,
        title text,
        created_at timestamptz NOT NULL,
        updated_at timestamptz NOT NULL
    );
    CREATE TABLE message (
        seq bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        id uuid NOT NULL UNIQUE,
        conversation_id uuid NOT NULL REFERENCES conversation (id) ON DELETE CASCADE,
        role text NOT NULL CHECK (role IN ('user', 'assistant')),
        content text NOT NULL,
        tool_calls jsonb,
        created_at timestamptz NOT NULL
    );
    CREATE INDEX message_by_conversation ON message (conversation_id, seq);

    CREATE TABLE user_settings (
        user_id text PRIMARY KEY,
        time_zone text NOT NULL,
        daily_digest boolean NOT NULL,
        digest_hour smallint NOT NULL,
        updated_at timestamptz NOT NULL
    );
    CREATE INDEX user_settings_digest ON user_settings (daily_digest) WHERE daily_digest;
    "#,
    // 2: local accounts and their personal API tokens (the SQLite store's version 9).
    r#"
    CREATE TABLE users (
        id text PRIMARY KEY,
        email text NOT NULL UNIQUE,
        password_hash text NOT NULL,
        created_at timestamptz NOT NULL,
        updated_at timestamptz NOT NULL
    );
    CREATE TABLE api_tokens (
        id text PRIMARY KEY,
        user_id text NOT NULL REFERENCES users (id) ON DELETE CASCADE,
        name text NOT NULL,
        prefix text NOT NULL,
        token_hash text NOT NULL UNIQUE,
        created_at timestamptz NOT NULL,
        last_used_at timestamptz,
        revoked_at timestamptz
    );
    CREATE INDEX api_tokens_by_user ON api_tokens (user_id, created_at);
    "#,
    // 3: the live stream behind `GET /api/events` (see `live.rs`): the `task.sync` and
    // `reminder.triggered` envelopes of each commit, numbered in commit order (written under the
    // outbox lock), kept for a while so a reconnect can resume; and the record of periodic job
    // runs that makes each run once per period across replicas (see `jobs.rs`).
    r#"
    CREATE TABLE live_events (
        seq bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        user_id text NOT NULL,
        envelope jsonb NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now()
    );
    CREATE INDEX live_events_by_user ON live_events (user_id, seq);
    CREATE INDEX live_events_by_age ON live_events (created_at);

    CREATE TABLE job_runs (
        job text NOT NULL,
        period text NOT NULL,
        handled bigint NOT NULL,
        finished_at timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (job, period)
    );
    "#,
    // 4: the unread notifications of a user, counted for the bell of every UI page.
    r#"
    CREATE INDEX notifications_unread ON notifications (user_id) WHERE read_at IS NULL;
    "#,
    // 5: failed log-ins, counted by every replica against the same limits (see `login_rows.rs`).
    r#"
    CREATE TABLE login_failures (
        kind text NOT NULL CHECK (kind IN ('email', 'client')),
        key text NOT NULL,
        at timestamptz NOT NULL DEFAULT clock_timestamp()
    );
    CREATE INDEX login_failures_by_key ON login_failures (kind, key, at);
    CREATE INDEX login_failures_by_age ON login_failures (at);
    "#,
    // 6: sign-in sessions ended before their token expired (the SQLite store's version 12).
    r#"
    CREATE TABLE revoked_sessions (
        session_id text PRIMARY KEY,
        user_id text NOT NULL,
        expires_at timestamptz NOT NULL,
        revoked_at timestamptz NOT NULL
    );
    CREATE INDEX revoked_sessions_by_expiry ON revoked_sessions (expires_at);
    "#,
    // 7: the calendar feed token of each user (the SQLite store's version 13).
    r#"
    CREATE TABLE calendar_feeds (
        user_id text PRIMARY KEY,
        token_hash text NOT NULL UNIQUE,
        created_at timestamptz NOT NULL
    );
    "#,
    // 8: projects (lists) and subtasks (the SQLite store's version 14). Project and subtask
    // changes of a user run under that user's advisory lock (see `project_rows.rs`).
    r#"
    CREATE TABLE projects (
        id uuid PRIMARY KEY,
        user_id text NOT NULL,
        name text NOT NULL,
        name_key text NOT NULL,
        created_at timestamptz NOT NULL,
        updated_at timestamptz NOT NULL,
        UNIQUE (user_id, name_key)
    );
    ALTER TABLE tasks ADD COLUMN project_id uuid REFERENCES projects (id) ON DELETE SET NULL;
    ALTER TABLE tasks ADD COLUMN subtask_of uuid REFERENCES tasks (id) ON DELETE CASCADE;
    CREATE INDEX tasks_by_project ON tasks (project_id) WHERE project_id IS NOT NULL;
    CREATE INDEX tasks_by_parent ON tasks (subtask_of) WHERE subtask_of IS NOT NULL;
    "#,
];

/// Brings the database (or `schema`, created if missing) to the newest version. Holds the
/// migration lock on `client`'s session throughout; the caller closes that connection after,
/// which would release the lock even if unlocking failed.
pub(crate) async fn migrate(client: &mut Client, schema: Option<&str>) -> Result<(), PgError> {
    client
        .execute("SELECT pg_advisory_lock($1)", &[&MIGRATION_LOCK])
        .await?;
    let outcome = migrate_locked(client, schema).await;
    let unlocked = client
        .execute("SELECT pg_advisory_unlock($1)", &[&MIGRATION_LOCK])
        .await;
    outcome?;
    unlocked?;
    Ok(())
}

async fn migrate_locked(client: &mut Client, schema: Option<&str>) -> Result<(), PgError> {
    if let Some(schema) = schema {
        // Checked plain identifier (see `connect::check_schema`).
        client
            .batch_execute(&format!(
                "CREATE SCHEMA IF NOT EXISTS {schema}; SET search_path TO {schema}"
            ))
            .await?;
    }
    client
        .batch_execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations (
                version bigint PRIMARY KEY,
                applied_at timestamptz NOT NULL DEFAULT now()
            )",
        )
        .await?;
    let current: i64 = client
        .query_one(
            "SELECT COALESCE(max(version), 0) FROM schema_migrations",
            &[],
        )
        .await?
        .try_get(0)?;
    let known = MIGRATIONS.len() as i64;
    if current > known {
        return Err(PgError::SchemaTooNew {
            found: current,
            known,
        });
    }
    for (index, sql) in MIGRATIONS.iter().enumerate().skip(current as usize) {
        let version = index as i64 + 1;
        let failed = |source| PgError::Migration { version, source };
        let tx = client.transaction().await.map_err(failed)?;
        tx.batch_execute(sql).await.map_err(failed)?;
        tx.execute(
            "INSERT INTO schema_migrations (version) VALUES ($1)",
            &[&version],
        )
        .await
        .map_err(failed)?;
        tx.commit().await.map_err(failed)?;
        tracing::info!(version, "applied PostgreSQL store migration");
    }
    Ok(())
}

/// The newest applied version (0 for an empty database).
pub(crate) async fn version(
    client: &impl deadpool_postgres::GenericClient,
) -> Result<i64, PgError> {
    Ok(client
        .query_one(
            "SELECT COALESCE(max(version), 0) FROM schema_migrations",
            &[],
        )
        .await?
        .try_get(0)?)
}
