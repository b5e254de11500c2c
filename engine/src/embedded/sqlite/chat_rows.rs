//! Rows of the chat history (`conversation`, `message`).

use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, params};
use uuid::Uuid;

use crate::assistant::{ChatMessage, Role, ToolInvocation};
use crate::time::from_micros;

fn corrupt(what: &str) -> rusqlite::Error {
    rusqlite::Error::InvalidColumnType(0, what.to_owned(), rusqlite::types::Type::Text)
}

fn conversation_of(conn: &Connection, user_id: &str) -> rusqlite::Result<Option<Uuid>> {
    conn.prepare_cached("SELECT id FROM conversation WHERE user_id = ?1")?
        .query_row([user_id], |row| row.get::<_, String>(0))
        .optional()?
        .map(|id| Uuid::parse_str(&id).map_err(|_| corrupt("uuid")))
        .transpose()
}

/// Inserts the message, creating the conversation on first use; returns the conversation id.
pub(crate) fn append(
    conn: &Connection,
    user_id: &str,
    message: &ChatMessage,
) -> rusqlite::Result<Uuid> {
    let now = message.created_at.timestamp_micros();
    let conversation = match conversation_of(conn, user_id)? {
        Some(id) => {
            conn.prepare_cached("UPDATE conversation SET updated_at = ?2 WHERE id = ?1")?
                .execute(params![id.to_string(), now])?;
            id
        }
        None => {
            let id = crate::time::new_id();
            conn.prepare_cached(
                "INSERT INTO conversation (id, user_id, created_at, updated_at) VALUES (?1, ?2, ?3, ?3)",
            )?
            .execute(params![id.to_string(), user_id, now])?;
            id
        }
    };
    // The reference stores NULL, not "[]", when no tool ran.
    let tool_calls = if message.tool_calls.is_empty() {
        None
    } else {
        Some(serde_json::to_string(&message.tool_calls).map_err(|_| corrupt("tool_calls"))?)
    };
    conn.prepare_cached(
        "INSERT INTO message (id, conversation_id, role, content, tool_calls, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?
    .execute(params![
        message.id.to_string(),
        conversation.to_string(),
        message.role.as_str(),
        message.content,
        tool_calls,
        now,
    ])?;
    Ok(conversation)
}

/// The conversation id and its newest `limit` messages, oldest first.
pub(crate) fn recent(
    conn: &Connection,
    user_id: &str,
    limit: u32,
) -> rusqlite::Result<(Option<Uuid>, Vec<ChatMessage>)> {
    let Some(conversation) = conversation_of(conn, user_id)? else {
        return Ok((None, Vec::new()));
    };
    let mut statement = conn.prepare_cached(
        "SELECT id, role, content, tool_calls, created_at FROM message
         WHERE conversation_id = ?1 ORDER BY seq DESC LIMIT ?2",
    )?;
    let mut messages = statement
        .query_map(params![conversation.to_string(), limit], |row| {
            let id: String = row.get(0)?;
            let role: String = row.get(1)?;
            let tool_calls: Option<String> = row.get(3)?;
            let created_at: DateTime<Utc> =
                from_micros(row.get(4)?).ok_or_else(|| corrupt("timestamp"))?;
            Ok(ChatMessage {
                id: Uuid::parse_str(&id).map_err(|_| corrupt("uuid"))?,
                role: Role::parse(&role).ok_or_else(|| corrupt("role"))?,
                content: row.get(2)?,
                tool_calls: match tool_calls {
                    None => Vec::new(),
                    Some(json) => serde_json::from_str::<Vec<ToolInvocation>>(&json)
                        .map_err(|_| corrupt("tool_calls"))?,
                },
                created_at,
            })
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    messages.reverse();
    Ok((Some(conversation), messages))
}

/// Deletes the user's conversation and, by cascade, its messages.
pub(crate) fn clear(conn: &Connection, user_id: &str) -> rusqlite::Result<u64> {
    let Some(conversation) = conversation_of(conn, user_id)? else {
        return Ok(0);
    };
    let removed = conn
        .prepare_cached("DELETE FROM message WHERE conversation_id = ?1")?
        .execute([conversation.to_string()])?;
    conn.prepare_cached("DELETE FROM conversation WHERE id = ?1")?
        .execute([conversation.to_string()])?;
    Ok(removed as u64)
}
