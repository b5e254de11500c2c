//! Rows of `users`, `api_tokens` and `revoked_sessions`.

use chrono::{DateTime, Utc};
use deadpool_postgres::GenericClient;
use tokio_postgres::Row;

use taskstream_engine::accounts::{AccountInsert, AccountRecord, ApiTokenRecord};

use super::error::PgError;

const ACCOUNT_COLUMNS: &str = "id, email, password_hash, created_at, updated_at";
const TOKEN_COLUMNS: &str =
    "id, user_id, name, prefix, token_hash, created_at, last_used_at, revoked_at";

fn account_from(row: &Row) -> Result<AccountRecord, PgError> {
    Ok(AccountRecord {
        id: row.try_get(0)?,
        email: row.try_get(1)?,
        password_hash: row.try_get(2)?,
        created_at: row.try_get(3)?,
        updated_at: row.try_get(4)?,
    })
}

fn token_from(row: &Row) -> Result<ApiTokenRecord, PgError> {
    Ok(ApiTokenRecord {
        id: row.try_get(0)?,
        user_id: row.try_get(1)?,
        name: row.try_get(2)?,
        prefix: row.try_get(3)?,
        token_hash: row.try_get(4)?,
        created_at: row.try_get(5)?,
        last_used_at: row.try_get(6)?,
        revoked_at: row.try_get(7)?,
    })
}

/// Inside a transaction: with `only_first`, the table lock (which conflicts with itself, not
/// with reads) makes the count check and the insert one step across replicas.
pub(crate) async fn insert_account(
    client: &impl GenericClient,
    account: &AccountRecord,
    only_first: bool,
) -> Result<AccountInsert, PgError> {
    if only_first {
        client
            .batch_execute("LOCK TABLE users IN SHARE ROW EXCLUSIVE MODE")
            .await?;
        if count(client).await? > 0 {
            return Ok(AccountInsert::NotFirst);
        }
    }
    let statement = client
        .prepare_cached(
            "INSERT INTO users (id, email, password_hash, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (email) DO NOTHING",
        )
        .await?;
    let added = client
        .execute(
            &statement,
            &[
                &account.id,
                &account.email,
                &account.password_hash,
                &account.created_at,
                &account.updated_at,
            ],
        )
        .await?;
    Ok(if added == 1 {
        AccountInsert::Created
    } else {
        AccountInsert::EmailTaken
    })
}

async fn one_account(
    client: &impl GenericClient,
    column: &str,
    value: &str,
) -> Result<Option<AccountRecord>, PgError> {
    let statement = client
        .prepare_cached(&format!(
            "SELECT {ACCOUNT_COLUMNS} FROM users WHERE {column} = $1"
        ))
        .await?;
    client
        .query_opt(&statement, &[&value])
        .await?
        .map(|row| account_from(&row))
        .transpose()
}

pub(crate) async fn by_email(
    client: &impl GenericClient,
    email: &str,
) -> Result<Option<AccountRecord>, PgError> {
    one_account(client, "email", email).await
}

pub(crate) async fn by_id(
    client: &impl GenericClient,
    id: &str,
) -> Result<Option<AccountRecord>, PgError> {
    one_account(client, "id", id).await
}

pub(crate) async fn count(client: &impl GenericClient) -> Result<u64, PgError> {
    let statement = client.prepare_cached("SELECT count(*) FROM users").await?;
    let count: i64 = client.query_one(&statement, &[]).await?.try_get(0)?;
    Ok(u64::try_from(count).unwrap_or(0))
}

pub(crate) async fn list(client: &impl GenericClient) -> Result<Vec<AccountRecord>, PgError> {
    let statement = client
        .prepare_cached(&format!(
            "SELECT {ACCOUNT_COLUMNS} FROM users ORDER BY created_at, id COLLATE \"C\""
        ))
        .await?;
    client
        .query(&statement, &[])
        .await?
        .iter()
        .map(account_from)
        .collect()
}

pub(crate) async fn set_password_hash(
    client: &impl GenericClient,
    id: &str,
    password_hash: &str,
    now: DateTime<Utc>,
) -> Result<bool, PgError> {
    let statement = client
        .prepare_cached("UPDATE users SET password_hash = $2, updated_at = $3 WHERE id = $1")
        .await?;
    Ok(client
        .execute(&statement, &[&id, &password_hash, &now])
        .await?
        == 1)
}

pub(crate) async fn insert_token(
    client: &impl GenericClient,
    token: &ApiTokenRecord,
) -> Result<(), PgError> {
    let statement = client
        .prepare_cached(&format!(
            "INSERT INTO api_tokens ({TOKEN_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
        ))
        .await?;
    client
        .execute(
            &statement,
            &[
                &token.id,
                &token.user_id,
                &token.name,
                &token.prefix,
                &token.token_hash,
                &token.created_at,
                &token.last_used_at,
                &token.revoked_at,
            ],
        )
        .await?;
    Ok(())
}

pub(crate) async fn live_tokens(
    client: &impl GenericClient,
    user_id: &str,
) -> Result<Vec<ApiTokenRecord>, PgError> {
    let statement = client
        .prepare_cached(&format!(
            "SELECT {TOKEN_COLUMNS} FROM api_tokens WHERE user_id = $1 AND revoked_at IS NULL
             ORDER BY created_at DESC, id COLLATE \"C\" DESC"
        ))
        .await?;
    client
        .query(&statement, &[&user_id])
        .await?
        .iter()
        .map(token_from)
        .collect()
}

pub(crate) async fn revoke_token(
    client: &impl GenericClient,
    user_id: &str,
    token_id: &str,
    now: DateTime<Utc>,
) -> Result<bool, PgError> {
    let statement = client
        .prepare_cached(
            "UPDATE api_tokens SET revoked_at = $3
             WHERE id = $1 AND user_id = $2 AND revoked_at IS NULL",
        )
        .await?;
    Ok(client
        .execute(&statement, &[&token_id, &user_id, &now])
        .await?
        == 1)
}

pub(crate) async fn live_token_by_hash(
    client: &impl GenericClient,
    token_hash: &str,
) -> Result<Option<ApiTokenRecord>, PgError> {
    let statement = client
        .prepare_cached(&format!(
            "SELECT {TOKEN_COLUMNS} FROM api_tokens WHERE token_hash = $1 AND revoked_at IS NULL"
        ))
        .await?;
    client
        .query_opt(&statement, &[&token_hash])
        .await?
        .map(|row| token_from(&row))
        .transpose()
}

pub(crate) async fn touch_token(
    client: &impl GenericClient,
    token_id: &str,
    now: DateTime<Utc>,
) -> Result<(), PgError> {
    let statement = client
        .prepare_cached("UPDATE api_tokens SET last_used_at = $2 WHERE id = $1")
        .await?;
    client.execute(&statement, &[&token_id, &now]).await?;
    Ok(())
}

/// Drops sessions that expired before `now` (their tokens are refused anyway) and records this
/// one, in one statement.
pub(crate) async fn revoke_session(
    client: &impl GenericClient,
    session_id: &str,
    user_id: &str,
    expires_at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<(), PgError> {
    let statement = client
        .prepare_cached(
            "WITH pruned AS (DELETE FROM revoked_sessions WHERE expires_at < $4)
             INSERT INTO revoked_sessions (session_id, user_id, expires_at, revoked_at)
             VALUES ($1, $2, $3, $4) ON CONFLICT (session_id) DO NOTHING",
        )
        .await?;
    client
        .execute(&statement, &[&session_id, &user_id, &expires_at, &now])
        .await?;
    Ok(())
}

pub(crate) async fn session_revoked(
    client: &impl GenericClient,
    session_id: &str,
) -> Result<bool, PgError> {
    let statement = client
        .prepare_cached("SELECT 1 FROM revoked_sessions WHERE session_id = $1")
        .await?;
    Ok(client
        .query_opt(&statement, &[&session_id])
        .await?
        .is_some())
}

pub(crate) async fn set_feed_token(
    client: &impl GenericClient,
    user_id: &str,
    token_hash: &str,
    created_at: DateTime<Utc>,
) -> Result<(), PgError> {
    let statement = client
        .prepare_cached(
            "INSERT INTO calendar_feeds (user_id, token_hash, created_at) VALUES ($1, $2, $3)
             ON CONFLICT (user_id) DO UPDATE SET token_hash = EXCLUDED.token_hash,
                 created_at = EXCLUDED.created_at",
        )
        .await?;
    client
        .execute(&statement, &[&user_id, &token_hash, &created_at])
        .await?;
    Ok(())
}

pub(crate) async fn feed_token_user(
    client: &impl GenericClient,
    token_hash: &str,
) -> Result<Option<String>, PgError> {
    let statement = client
        .prepare_cached("SELECT user_id FROM calendar_feeds WHERE token_hash = $1")
        .await?;
    Ok(client
        .query_opt(&statement, &[&token_hash])
        .await?
        .map(|row| row.get(0)))
}

pub(crate) async fn feed_token_created(
    client: &impl GenericClient,
    user_id: &str,
) -> Result<Option<DateTime<Utc>>, PgError> {
    let statement = client
        .prepare_cached("SELECT created_at FROM calendar_feeds WHERE user_id = $1")
        .await?;
    Ok(client
        .query_opt(&statement, &[&user_id])
        .await?
        .map(|row| row.get(0)))
}

pub(crate) async fn delete_feed_token(
    client: &impl GenericClient,
    user_id: &str,
) -> Result<bool, PgError> {
    let statement = client
        .prepare_cached("DELETE FROM calendar_feeds WHERE user_id = $1")
        .await?;
    Ok(client.execute(&statement, &[&user_id]).await? > 0)
}
