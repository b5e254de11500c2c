//! Rows of the chat history (`conversation`, `message`).

use deadpool_postgres::GenericClient;
use tokio_postgres::types::Json;
use uuid::Uuid;

use taskstream_engine::assistant::{ChatMessage, Role, ToolInvocation};

use super::error::PgError;

async fn conversation_of(
    client: &impl GenericClient,
    user_id: &str,
) -> Result<Option<Uuid>, PgError> {
    let statement = client
        .prepare_cached("SELECT id FROM conversation WHERE user_id = $1")
        .await?;
    client
        .query_opt(&statement, &[&user_id])
        .await?
        .map(|row| row.try_get(0))
        .transpose()
        .map_err(PgError::from)
}

/// Inserts the message, creating the conversation on first use; returns the conversation id.
/// One upsert, so two first messages arriving together still make one conversation.
pub(crate) async fn append(
    client: &impl GenericClient,
    user_id: &str,
    message: &ChatMessage,
) -> Result<Uuid, PgError> {
    let upsert = client
        .prepare_cached(
            "INSERT INTO conversation (id, user_id, created_at, updated_at) VALUES ($1, $2, $3, $3)
             ON CONFLICT (user_id) DO UPDATE SET updated_at = EXCLUDED.updated_at
             RETURNING id",
        )
        .await?;
    let conversation: Uuid = client
        .query_one(
            &upsert,
            &[
                &taskstream_engine::time::new_id(),
                &user_id,
                &message.created_at,
            ],
        )
        .await?
        .try_get(0)?;
    // The reference stores NULL, not "[]", when no tool ran.
    let tool_calls = (!message.tool_calls.is_empty()).then_some(Json(&message.tool_calls));
    let insert = client
        .prepare_cached(
            "INSERT INTO message (id, conversation_id, role, content, tool_calls, created_at)
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .await?;
    client
        .execute(
            &insert,
            &[
                &message.id,
                &conversation,
                &message.role.as_str(),
                &message.content,
                &tool_calls,
                &message.created_at,
            ],
        )
        .await?;
    Ok(conversation)
}

/// The conversation id and its newest `limit` messages, oldest first.
pub(crate) async fn recent(
    client: &impl GenericClient,
    user_id: &str,
    limit: u32,
) -> Result<(Option<Uuid>, Vec<ChatMessage>), PgError> {
    let Some(conversation) = conversation_of(client, user_id).await? else {
        return Ok((None, Vec::new()));
    };
    let statement = client
        .prepare_cached(
            "SELECT id, role, content, tool_calls, created_at FROM message
             WHERE conversation_id = $1 ORDER BY seq DESC LIMIT $2",
        )
        .await?;
    let mut messages = client
        .query(&statement, &[&conversation, &i64::from(limit)])
        .await?
        .iter()
        .map(|row| {
            let role: String = row.try_get(1)?;
            let tool_calls: Option<Json<Vec<ToolInvocation>>> = row
                .try_get(3)
                .map_err(|_| PgError::Corrupt("message tool_calls"))?;
            Ok(ChatMessage {
                id: row.try_get(0)?,
                role: Role::parse(&role).ok_or(PgError::Corrupt("message role"))?,
                content: row.try_get(2)?,
                tool_calls: tool_calls.map(|Json(calls)| calls).unwrap_or_default(),
                created_at: row.try_get(4)?,
            })
        })
        .collect::<Result<Vec<_>, PgError>>()?;
    messages.reverse();
    Ok((Some(conversation), messages))
}

/// Deletes the user's conversation and, by cascade, its messages; returns how many went.
pub(crate) async fn clear(client: &impl GenericClient, user_id: &str) -> Result<u64, PgError> {
    let Some(conversation) = conversation_of(client, user_id).await? else {
        return Ok(0);
    };
    let messages = client
        .prepare_cached("DELETE FROM message WHERE conversation_id = $1")
        .await?;
    let removed = client.execute(&messages, &[&conversation]).await?;
    let gone = client
        .prepare_cached("DELETE FROM conversation WHERE id = $1")
        .await?;
    client.execute(&gone, &[&conversation]).await?;
    Ok(removed)
}
