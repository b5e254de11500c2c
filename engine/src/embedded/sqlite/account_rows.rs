//! Rows of `users`, `api_tokens` and `revoked_sessions`.

use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, Row, params};

use super::rows::{instant_at, required_instant_at};
use crate::accounts::{AccountInsert, AccountRecord, ApiTokenRecord};

const ACCOUNT_COLUMNS: &str = "id, email, password_hash, created_at, updated_at";
const TOKEN_COLUMNS: &str =
    "id, user_id, name, prefix, token_hash, created_at, last_used_at, revoked_at";

fn account_from(row: &Row<'_>) -> rusqlite::Result<AccountRecord> {
    Ok(AccountRecord {
        id: row.get(0)?,
        email: row.get(1)?,
        password_hash: row.get(2)?,
        created_at: required_instant_at(row, 3)?,
        updated_at: required_instant_at(row, 4)?,
    })
}

fn token_from(row: &Row<'_>) -> rusqlite::Result<ApiTokenRecord> {
    Ok(ApiTokenRecord {
        id: row.get(0)?,
        user_id: row.get(1)?,
        name: row.get(2)?,
        prefix: row.get(3)?,
        token_hash: row.get(4)?,
        created_at: required_instant_at(row, 5)?,
        last_used_at: instant_at(row, 6)?,
        revoked_at: instant_at(row, 7)?,
    })
}

/// Runs inside the single writer's transaction, so the count check and the insert cannot
/// interleave with another sign-up.
pub(crate) fn insert_account(
    conn: &Connection,
    account: &AccountRecord,
    only_first: bool,
) -> rusqlite::Result<AccountInsert> {
    if only_first && count(conn)? > 0 {
        return Ok(AccountInsert::NotFirst);
    }
    let added = conn
        .prepare_cached(
            "INSERT INTO users (id, email, password_hash, created_at, updated_at)
             VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (email) DO NOTHING",
        )?
        .execute(params![
            account.id,
            account.email,
            account.password_hash,
            account.created_at.timestamp_micros(),
            account.updated_at.timestamp_micros()
        ])?;
    Ok(if added == 1 {
        AccountInsert::Created
    } else {
        AccountInsert::EmailTaken
    })
}

pub(crate) fn by_email(conn: &Connection, email: &str) -> rusqlite::Result<Option<AccountRecord>> {
    conn.prepare_cached(&format!(
        "SELECT {ACCOUNT_COLUMNS} FROM users WHERE email = ?1"
    ))?
    .query_row([email], account_from)
    .optional()
}

pub(crate) fn by_id(conn: &Connection, id: &str) -> rusqlite::Result<Option<AccountRecord>> {
    conn.prepare_cached(&format!(
        "SELECT {ACCOUNT_COLUMNS} FROM users WHERE id = ?1"
    ))?
    .query_row([id], account_from)
    .optional()
}

pub(crate) fn count(conn: &Connection) -> rusqlite::Result<u64> {
    let count: i64 = conn
        .prepare_cached("SELECT count(*) FROM users")?
        .query_row([], |row| row.get(0))?;
    Ok(u64::try_from(count).unwrap_or(0))
}

pub(crate) fn list(conn: &Connection) -> rusqlite::Result<Vec<AccountRecord>> {
    let mut statement = conn.prepare_cached(&format!(
        "SELECT {ACCOUNT_COLUMNS} FROM users ORDER BY created_at, id"
    ))?;
    let rows = statement.query_map([], account_from)?;
    rows.collect()
}

pub(crate) fn set_password_hash(
    conn: &Connection,
    id: &str,
    password_hash: &str,
    now: DateTime<Utc>,
) -> rusqlite::Result<bool> {
    let changed = conn
        .prepare_cached("UPDATE users SET password_hash = ?2, updated_at = ?3 WHERE id = ?1")?
        .execute(params![id, password_hash, now.timestamp_micros()])?;
    Ok(changed == 1)
}

pub(crate) fn insert_token(conn: &Connection, token: &ApiTokenRecord) -> rusqlite::Result<()> {
    conn.prepare_cached(&format!(
        "INSERT INTO api_tokens ({TOKEN_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)"
    ))?
    .execute(params![
        token.id,
        token.user_id,
        token.name,
        token.prefix,
        token.token_hash,
        token.created_at.timestamp_micros(),
        token.last_used_at.map(|at| at.timestamp_micros()),
        token.revoked_at.map(|at| at.timestamp_micros())
    ])?;
    Ok(())
}

pub(crate) fn live_tokens(
    conn: &Connection,
    user_id: &str,
) -> rusqlite::Result<Vec<ApiTokenRecord>> {
    let mut statement = conn.prepare_cached(&format!(
        "SELECT {TOKEN_COLUMNS} FROM api_tokens WHERE user_id = ?1 AND revoked_at IS NULL
         ORDER BY created_at DESC, id DESC"
    ))?;
    let rows = statement.query_map([user_id], token_from)?;
    rows.collect()
}

pub(crate) fn revoke_token(
    conn: &Connection,
    user_id: &str,
    token_id: &str,
    now: DateTime<Utc>,
) -> rusqlite::Result<bool> {
    let changed = conn
        .prepare_cached(
            "UPDATE api_tokens SET revoked_at = ?3
             WHERE id = ?1 AND user_id = ?2 AND revoked_at IS NULL",
        )?
        .execute(params![token_id, user_id, now.timestamp_micros()])?;
    Ok(changed == 1)
}

pub(crate) fn live_token_by_hash(
    conn: &Connection,
    token_hash: &str,
) -> rusqlite::Result<Option<ApiTokenRecord>> {
    conn.prepare_cached(&format!(
        "SELECT {TOKEN_COLUMNS} FROM api_tokens WHERE token_hash = ?1 AND revoked_at IS NULL"
    ))?
    .query_row([token_hash], token_from)
    .optional()
}

pub(crate) fn touch_token(
    conn: &Connection,
    token_id: &str,
    now: DateTime<Utc>,
) -> rusqlite::Result<()> {
    conn.prepare_cached("UPDATE api_tokens SET last_used_at = ?2 WHERE id = ?1")?
        .execute(params![token_id, now.timestamp_micros()])?;
    Ok(())
}

/// Drops sessions that expired before `now` (their tokens are refused anyway), then records
/// this one.
pub(crate) fn revoke_session(
    conn: &Connection,
    session_id: &str,
    user_id: &str,
    expires_at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> rusqlite::Result<()> {
    conn.prepare_cached("DELETE FROM revoked_sessions WHERE expires_at < ?1")?
        .execute([now.timestamp_micros()])?;
    conn.prepare_cached(
        "INSERT INTO revoked_sessions (session_id, user_id, expires_at, revoked_at)
         VALUES (?1, ?2, ?3, ?4) ON CONFLICT (session_id) DO NOTHING",
    )?
    .execute(params![
        session_id,
        user_id,
        expires_at.timestamp_micros(),
        now.timestamp_micros()
    ])?;
    Ok(())
}

pub(crate) fn session_revoked(conn: &Connection, session_id: &str) -> rusqlite::Result<bool> {
    conn.prepare_cached("SELECT 1 FROM revoked_sessions WHERE session_id = ?1")?
        .query_row([session_id], |_| Ok(()))
        .optional()
        .map(|found| found.is_some())
}

pub(crate) fn set_feed_token(
    conn: &Connection,
    user_id: &str,
    token_hash: &str,
    created_at: DateTime<Utc>,
) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "INSERT INTO calendar_feeds (user_id, token_hash, created_at) VALUES (?1, ?2, ?3)
         ON CONFLICT (user_id) DO UPDATE SET token_hash = excluded.token_hash,
             created_at = excluded.created_at",
    )?
    .execute(params![user_id, token_hash, created_at.timestamp_micros()])?;
    Ok(())
}

pub(crate) fn feed_token_user(
    conn: &Connection,
    token_hash: &str,
) -> rusqlite::Result<Option<String>> {
    conn.prepare_cached("SELECT user_id FROM calendar_feeds WHERE token_hash = ?1")?
        .query_row([token_hash], |row| row.get(0))
        .optional()
}

pub(crate) fn feed_token_created(
    conn: &Connection,
    user_id: &str,
) -> rusqlite::Result<Option<DateTime<Utc>>> {
    let micros: Option<i64> = conn
        .prepare_cached("SELECT created_at FROM calendar_feeds WHERE user_id = ?1")?
        .query_row([user_id], |row| row.get(0))
        .optional()?;
    Ok(micros.and_then(DateTime::from_timestamp_micros))
}

pub(crate) fn delete_feed_token(conn: &Connection, user_id: &str) -> rusqlite::Result<bool> {
    Ok(conn
        .prepare_cached("DELETE FROM calendar_feeds WHERE user_id = ?1")?
        .execute([user_id])?
        > 0)
}
